import Dispatch

/// A `TaskExecutor` on a serial Dispatch queue: the kubelet client's tasks (and the child tasks gRPC starts under
/// them) run there instead of Swift's cooperative pool, which is as wide as the machine has cores. Whatever else
/// the process does with that pool — or blocks it with — the refresh loop keeps its deadlines.
///
/// `@unchecked Sendable`: the only state is the queue, which is thread-safe.
public final class QueueTaskExecutor: TaskExecutor, @unchecked Sendable {
    private let queue: DispatchQueue

    /// `label` names the Dispatch queue.
    public init(label: String) {
        queue = DispatchQueue(label: label)
    }

    /// Runs the job on the queue, one at a time, in submission order.
    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
