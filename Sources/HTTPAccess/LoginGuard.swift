import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What stands between clients and bcrypt runs (each about 50 ms at cost 10; the exporter runs them on a queue of
/// their own while the connection is suspended):
/// - at most ``maxConcurrent`` run at once; another is answered 503 at once rather than waiting, so a flood of
///   logins costs bounded CPU and memory;
/// - an address with ``allowedFailures`` failed logins within ``window`` seconds is answered 429 without a run
///   until the window since its first failure passes; a success clears its count.
/// The table of addresses is bounded (``maxAddresses``): when full, expired entries go, then all of them.
/// It outlives web configuration reloads.
public final class LoginGuard: Sendable {
    enum Admission: Equatable {
        case admitted
        case busy
        case throttled(retryAfter: Int)
    }

    let maxConcurrent: Int
    let allowedFailures: Int
    let window: Double
    let maxAddresses: Int
    private let state = Mutex(State())

    private struct State {
        var running = 0
        /// address → failures and when the first of them happened (monotonic seconds).
        var failures: [String: (count: Int, since: Double)] = [:]
    }

    /// Counts below 1 become 1; `window` is in seconds. The exporter makes one per process, with `maxConcurrent` one
    /// less than its HTTP threads (at least 1).
    public init(maxConcurrent: Int = 1, allowedFailures: Int = 5, window: Double = 60, maxAddresses: Int = 4096) {
        self.maxConcurrent = max(1, maxConcurrent)
        self.allowedFailures = max(1, allowedFailures)
        self.window = window
        self.maxAddresses = max(1, maxAddresses)
    }

    func admit(_ address: String, now: Double = LoginGuard.now()) -> Admission {
        state.withLock { state in
            if let entry = state.failures[address] {
                if now - entry.since >= window {
                    state.failures[address] = nil
                } else if entry.count >= allowedFailures {
                    return .throttled(retryAfter: max(1, Int((window - (now - entry.since)).rounded(.up))))
                }
            }
            guard state.running < maxConcurrent else { return .busy }
            state.running += 1
            return .admitted
        }
    }

    func finished() {
        state.withLock { $0.running = max(0, $0.running - 1) }
    }

    func failed(_ address: String, now: Double = LoginGuard.now()) {
        state.withLock { state in
            if state.failures[address] == nil, state.failures.count >= maxAddresses {
                state.failures = state.failures.filter { now - $0.value.since < window }
                if state.failures.count >= maxAddresses { state.failures.removeAll() }
            }
            let entry = state.failures[address] ?? (0, now)
            state.failures[address] = (entry.count + 1, entry.since)
        }
    }

    func succeeded(_ address: String) {
        _ = state.withLock { $0.failures.removeValue(forKey: address) }
    }

    static func now() -> Double {
        Double(DispatchTime.now().uptimeNanoseconds) / 1e9
    }
}
