import Dispatch

/// A `TaskExecutor` on a serial Dispatch queue, as the kubelet client has (`QueueTaskExecutor`): the polling tasks
/// and the child tasks gRPC starts under them run there, not on Swift's cooperative pool, so whatever else blocks
/// that pool, the polls keep their deadlines. Its own copy keeps this module free of the kubelet client.
///
/// `@unchecked Sendable`: the only state is the queue, which is thread-safe.
final class SerialTaskExecutor: TaskExecutor, @unchecked Sendable {
    private let queue: DispatchQueue

    init(label: String) {
        queue = DispatchQueue(label: label)
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
