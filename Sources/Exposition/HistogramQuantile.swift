/// Prometheus' `histogram_quantile` over cumulative buckets (upper bound `le` → count), as its promql
/// `bucketQuantile` does it:
/// - no `+Inf` bucket, or no observations: no value (never NaN or 0);
/// - counts that decrease with `le` (scrapes taken at slightly different times) are raised to the running maximum;
/// - the quantile's rank falls in the `+Inf` bucket: the largest finite upper bound;
/// - in the first bucket with a positive upper bound: interpolated from 0; otherwise linear within its bucket.
public enum HistogramQuantile {
    /// `q` in 0–1 (anything else, NaN included, gives nil); `buckets` maps each `le` to its cumulative
    /// count and must hold `+Inf` and at least one finite bound.
    public static func quantile(_ q: Double, buckets: [Double: Double]) -> Double? {
        guard q.isFinite, (0...1).contains(q) else { return nil }
        let sorted = buckets.sorted { $0.key < $1.key }
        guard let last = sorted.last, last.key == .infinity, sorted.count >= 2 else { return nil }
        var counts: [Double] = []
        var running = 0.0
        for (_, count) in sorted {
            running = max(running, count.isFinite ? count : 0)
            counts.append(running)
        }
        let total = counts[counts.count - 1]
        guard total > 0 else { return nil }
        let rank = q * total
        guard let index = counts.firstIndex(where: { $0 >= rank }) else { return nil }
        if index == sorted.count - 1 { return sorted[sorted.count - 2].key }
        let upper = sorted[index].key
        if index == 0 && upper <= 0 { return upper }
        let lower = index == 0 ? 0 : sorted[index - 1].key
        let before = index == 0 ? 0 : counts[index - 1]
        let inBucket = counts[index] - before
        guard inBucket > 0 else { return upper }
        return lower + (upper - lower) * ((rank - before) / inBucket)
    }
}
