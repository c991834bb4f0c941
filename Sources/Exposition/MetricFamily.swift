/// The in-memory metric model every source and renderer shares.
///
/// Families are named as the *text format* names them minus the counter `_total` suffix: a counter family
/// `accelerator_energy_joules` renders as `accelerator_energy_joules_total` in both formats, and an info family
/// `accelerator` renders as `accelerator_info` (a gauge in the text format, an `info` in OpenMetrics).
public struct MetricFamily: Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable {
        case gauge, counter, info, histogram, summary, unknown
    }

    public var name: String
    public var help: String
    public var kind: Kind
    /// OpenMetrics `# UNIT`; the family name must end in `_<unit>`.
    public var unit: String?
    public var samples: [Sample]

    public init(name: String, help: String, kind: Kind, unit: String? = nil, samples: [Sample] = []) {
        self.name = name
        self.help = help
        self.kind = kind
        self.unit = unit
        self.samples = samples
    }
}

/// One label pair. Kept as an array of pairs, not a dictionary: order is the render order after sorting.
public struct Label: Sendable, Equatable, Hashable {
    public var name: String
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

public struct Sample: Sendable, Equatable {
    /// Appended to the family's sample name: `""` for gauges/counters/info (the renderer adds `_total`/`_info`),
    /// `_bucket`, `_sum`, `_count` for histograms and summaries, `_created` for counters.
    public var suffix: String
    public var labels: [Label]
    public var value: Double
    /// Milliseconds since the epoch; rendered as ms in text 0.0.4, as seconds in OpenMetrics.
    public var timestampMilliseconds: Int64?

    public init(suffix: String = "", labels: [Label], value: Double, timestampMilliseconds: Int64? = nil) {
        self.suffix = suffix
        self.labels = labels
        self.value = value
        self.timestampMilliseconds = timestampMilliseconds
    }
}
