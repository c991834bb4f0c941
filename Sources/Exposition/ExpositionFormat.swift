/// The two wire formats a Prometheus-compatible scraper understands.
///
/// Both are rendered from the same `MetricFamily` model; they differ in counter/info metadata naming,
/// timestamp units, HELP escaping and the `# EOF` terminator (see `ExpositionEncoder`).
public enum ExpositionFormat: Sendable, Equatable, Hashable, CaseIterable {
    /// Prometheus text format 0.0.4: the lowest common denominator every scraper accepts.
    case text
    /// OpenMetrics 1.0.0: what Prometheus prefers, because it carries `_created`, `# UNIT` and `info` types.
    case openMetrics

    /// The exact `Content-Type` to answer with; scrapers pick their parser from it, so it must match the body.
    public var contentType: String {
        switch self {
        case .text: "text/plain; version=0.0.4; charset=utf-8"
        case .openMetrics: "application/openmetrics-text; version=1.0.0; charset=utf-8"
        }
    }
}
