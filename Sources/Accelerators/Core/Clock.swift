#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Nanoseconds on CLOCK_MONOTONIC: intervals and deadlines that wall-clock jumps cannot break.
public struct MonotonicInstant: Sendable, Comparable, Hashable {
    /// Since an arbitrary point (boot, on Linux); meaningful only against another instant.
    public var nanoseconds: UInt64

    /// For tests and fakes; real instants come from ``now()``.
    public init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }

    /// `clock_gettime(CLOCK_MONOTONIC)`.
    public static func now() -> MonotonicInstant {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return MonotonicInstant(nanoseconds: UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec))
    }

    /// Seconds from `earlier` to this instant; 0 when `earlier` is later.
    public func seconds(since earlier: MonotonicInstant) -> Double {
        nanoseconds >= earlier.nanoseconds ? Double(nanoseconds - earlier.nanoseconds) / 1e9 : 0
    }

    /// The instant `seconds` later; a negative value adds nothing.
    public func adding(seconds: Double) -> MonotonicInstant {
        MonotonicInstant(nanoseconds: nanoseconds &+ UInt64(max(0, seconds) * 1e9))
    }

    /// Earlier first.
    public static func < (a: Self, b: Self) -> Bool { a.nanoseconds < b.nanoseconds }
}

/// Milliseconds since the Unix epoch (CLOCK_REALTIME), for the landing page and timestamps.
public func wallClockMilliseconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}
