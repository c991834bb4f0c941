import Synchronization

/// At most `limit` holders at once; others wait in arrival order. Used to bound concurrent scrapes.
package final class AsyncLimiter: Sendable {
    private struct State {
        var available: Int
        var waiters: [CheckedContinuation<Void, Never>] = []
        var head = 0
    }

    private let state: Mutex<State>

    /// `limit` must be positive (traps otherwise).
    package init(limit: Int) {
        precondition(limit > 0, "AsyncLimiter needs a positive limit")
        state = Mutex(State(available: limit))
    }

    /// Returns at once while fewer than `limit` hold it, else waits its turn (first come, first served). Not
    /// cancellable: a waiting task waits until a holder releases.
    package func acquire() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLock { state -> Bool in
                if state.available > 0 {
                    state.available -= 1
                    return true
                }
                state.waiters.append(continuation)
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    /// Exactly once per ``acquire()``: hands the slot to the longest waiter, if any.
    package func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if state.head < state.waiters.count {
                let next = state.waiters[state.head]
                state.head += 1
                if state.head > 64, state.head * 2 > state.waiters.count {
                    state.waiters.removeFirst(state.head)
                    state.head = 0
                }
                return next
            }
            state.available += 1
            return nil
        }
        next?.resume()
    }
}
