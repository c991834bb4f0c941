import Dispatch
import Synchronization

/// What one export attempt came to.
public enum ExportOutcome: Sendable, Equatable {
    /// Accepted; `rejectedPoints` > 0 when the receiver took the request but refused some points (OTLP partial
    /// success), which retrying would not change.
    case success(rejectedPoints: Int64, message: String)
    /// Worth another try: 429, 502, 503, 504 (gRPC: UNAVAILABLE, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED…), no
    /// connection, or no answer within the timeout. `retryAfter`: what the receiver asked for, in seconds.
    case retryable(reason: String, retryAfter: Double?)
    /// Refused for good (400, 401, 413…): retrying the same bytes would be refused again.
    case failed(reason: String)
}

/// One way of carrying an encoded `ExportMetricsServiceRequest` to a receiver.
///
/// `body` is the serialized request, gzip-compressed when `compressed` (the transport says so on the wire).
/// Called on the pusher's own thread, which it blocks; an implementation must return within the configured timeout,
/// whatever the peer does.
public protocol OTLPTransport: Sendable {
    func export(_ body: [UInt8], compressed: Bool) -> ExportOutcome
    /// Releases connections and threads; no export runs after it.
    func shutdown()
}

/// Runs an async operation from the pusher's thread and waits for it at most `seconds`: past that the operation is
/// cancelled and nil comes back at once (the transports built on SwiftNIO, https and gRPC, go through here).
func waitFor<T: Sendable>(_ seconds: Double, _ operation: @escaping @Sendable () async -> T) -> T? {
    let result = ResultSlot<T>()
    let done = DispatchSemaphore(value: 0)
    let task = Task {
        result.set(await operation())
        done.signal()
    }
    if done.wait(timeout: .now() + max(0, seconds)) == .timedOut {
        task.cancel()
        return nil
    }
    return result.value
}

private final class ResultSlot<T: Sendable>: Sendable {
    private let slot = Mutex<T?>(nil)
    func set(_ value: T) { slot.withLock { $0 = value } }
    var value: T? { slot.withLock { $0 } }
}
