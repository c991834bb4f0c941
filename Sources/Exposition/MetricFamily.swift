/// The in-memory metric model every source and renderer shares.
///
/// Families are named as the *text format* names them minus the counter `_total` suffix: a counter family
/// `accelerator_energy_joules` renders as `accelerator_energy_joules_total` in both formats, and an info family
/// `accelerator` renders as `accelerator_info` (a gauge in the text format, an `info` in OpenMetrics).
public struct MetricFamily: Sendable, Equatable {
    /// The model's kinds; OpenMetrics `stateset` and `gaugehistogram` are parsed into ``gauge`` and ``histogram``.
    public enum Kind: String, Sendable, Equatable {
        case gauge, counter, info, histogram, summary, unknown
    }

    /// Without the counter `_total` or the info `_info` suffix (see the type's comment).
    public var name: String
    /// Unescaped; the encoder escapes it for `# HELP` (an empty help still gets its line).
    public var help: String
    public var kind: Kind
    /// OpenMetrics `# UNIT`; the family name must end in `_<unit>`.
    public var unit: String?
    /// Any order: the encoder renders them in series order (see `SampleOrder`); each part carries its
    /// ``Sample/suffix``.
    public var samples: [Sample]

    /// `unit` nil writes no `# UNIT` line.
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
    /// A label name; an invalid one traps in the encoder's debug-build checks and is written as given in release.
    public var name: String
    /// Unescaped UTF-8; the encoder escapes it.
    public var value: String

    /// Unchecked: names are the building collector's responsibility.
    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// One sample of a family: its suffix, labels, value and optional timestamp.
public struct Sample: Sendable, Equatable {
    /// Appended to the family's sample name: `""` for gauges/counters/info (the renderer adds `_total`/`_info`),
    /// `_bucket`, `_sum`, `_count` for histograms and summaries, `_created` for counters.
    public var suffix: String
    /// Written in this order; series sort by them pair by pair.
    public var labels: [Label]
    /// `+Inf`, `-Inf` and NaN are allowed and spelled as the format says.
    public var value: Double
    /// Milliseconds since the epoch; rendered as ms in text 0.0.4, as seconds in OpenMetrics.
    public var timestampMilliseconds: Int64?

    /// `timestampMilliseconds` nil writes no timestamp.
    public init(suffix: String = "", labels: [Label], value: Double, timestampMilliseconds: Int64? = nil) {
        self.suffix = suffix
        self.labels = labels
        self.value = value
        self.timestampMilliseconds = timestampMilliseconds
    }
}
