/// A distribution a device reports as buckets (TPU HLO execution times), in base units.
///
/// Buckets are kept per bucket, not cumulative, so two of a chip's devices merge by adding. The renderer makes them
/// cumulative `_bucket{le}` samples with `+Inf` equal to `count`.
public struct DeviceHistogram: Sendable, Equatable {
    /// Finite upper bounds, strictly increasing.
    public var upperBounds: [Double]
    /// One count per bucket: `upperBounds.count + 1` values, the last for everything above the last bound.
    public var bucketCounts: [Double]
    /// Sum of the observations, in the histogram's base unit (seconds for HLO execution times).
    public var sum: Double
    /// Number of observations; equal to the sum of ``bucketCounts``.
    public var count: Double

    /// Nil unless the parts are consistent: as many counts as bounds + 1, bounds finite and strictly increasing,
    /// counts finite and non-negative and adding up to `count`, `sum` finite.
    public init?(upperBounds: [Double], bucketCounts: [Double], sum: Double, count: Double) {
        guard bucketCounts.count == upperBounds.count + 1, sum.isFinite, count.isFinite, count >= 0,
              upperBounds.allSatisfy(\.isFinite), zip(upperBounds, upperBounds.dropFirst()).allSatisfy({ $0 < $1 }),
              bucketCounts.allSatisfy({ $0.isFinite && $0 >= 0 })
        else { return nil }
        let total = bucketCounts.reduce(0, +)
        guard abs(total - count) <= max(1e-9 * count, 1e-9) else { return nil }
        self.upperBounds = upperBounds
        self.bucketCounts = bucketCounts
        self.sum = sum
        self.count = count
    }

    /// The two added together; nil when their bucket layouts differ (they cannot be added then).
    public func adding(_ other: DeviceHistogram) -> DeviceHistogram? {
        guard upperBounds == other.upperBounds else { return nil }
        return DeviceHistogram(upperBounds: upperBounds, bucketCounts: zip(bucketCounts, other.bucketCounts).map { $0 + $1 },
                               sum: sum + other.sum, count: count + other.count)
    }
}
