/// When a sysfs source looks for its devices again: at its first sample, every `interval` seconds, and on the next
/// tick after a device stopped answering (it may have left). Shared by the AMD, Intel, Gaudi and TPU sources.
public struct DiscoverySchedule: Sendable {
    /// Seconds between rediscoveries.
    public let interval: Double
    private var last: MonotonicInstant?
    private var soon = true

    /// Due at once: the first ``isDue(_:)`` answers true.
    public init(interval: Double) {
        self.interval = interval
    }

    /// Whether discovery should run at `now`.
    public func isDue(_ now: MonotonicInstant) -> Bool {
        soon || last.map { now.seconds(since: $0) >= interval } ?? true
    }

    /// Discovery completed at `now`.
    public mutating func discovered(at now: MonotonicInstant) {
        last = now
        soon = false
    }

    /// Runs `discover` when it is due at `now`; returns the error it threw (the schedule then tries again next tick).
    public mutating func runIfDue<E: Error>(_ now: MonotonicInstant, _ discover: () throws(E) -> Void) -> E? {
        guard isDue(now) else { return nil }
        do {
            try discover()
        } catch {
            return error
        }
        discovered(at: now)
        return nil
    }

    /// Look again on the next tick rather than after the interval.
    public mutating func requestSoon() {
        soon = true
    }
}
