import Synchronization

/// A `Mutex` in a class, so a closure (an informer's change handler) can hold it.
public final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>

    /// The initial value.
    public init(_ value: Value) { mutex = Mutex(value) }

    /// Runs `body` with the value under the lock; keep it short, it blocks other callers.
    public func withLock<R>(_ body: (inout sending Value) throws -> sending R) rethrows -> R { try mutex.withLock(body) }
}
