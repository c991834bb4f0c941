/// Debug-only checks behind the encoder's `assert`s.
///
/// A bad name is a bug in the collector that built the family, not something to repair at render time:
/// rewriting it would silently change the series a dashboard queries. These run only in debug builds, so they
/// favour clarity over speed.
extension ExpositionEncoder {
    static func isValid(_ family: MetricFamily) -> Bool {
        guard isValidMetricName(family.name) else { return false }
        switch family.kind {
        // The renderer adds these suffixes; a family already carrying one would render as `x_total_total`.
        case .counter where family.name.hasSuffix("_total"): return false
        case .info where family.name.hasSuffix("_info") || family.unit != nil: return false
        default: break
        }
        if let unit = family.unit, !unit.isEmpty, !family.name.hasSuffix("_" + unit) { return false }
        return family.samples.allSatisfy { isValid($0, kind: family.kind) }
    }

    static func isValid(_ sample: Sample, kind: MetricFamily.Kind) -> Bool {
        let allowedSuffixes: [String] =
            switch kind {
            case .gauge, .info, .unknown: [""]
            case .counter: ["", "_created"]
            case .histogram: ["_bucket", "_count", "_sum", "_created"]
            case .summary: ["", "_count", "_sum", "_created"]
            }
        guard allowedSuffixes.contains(sample.suffix) else { return false }
        guard sample.labels.allSatisfy({ isValidLabelName($0.name) }) else { return false }
        // Duplicate label names make the sample ambiguous in both formats.
        guard Set(sample.labels.map(\.name)).count == sample.labels.count else { return false }
        let boundLabel: String? =
            switch (kind, sample.suffix) {
            case (.histogram, "_bucket"): "le"
            case (.summary, ""): "quantile"
            default: nil
            }
        if let boundLabel {
            guard let bound = sample.labels.first(where: { $0.name == boundLabel }), Double(bound.value) != nil
            else { return false }
        }
        return kind != .info || sample.value == 1
    }

    /// `[a-zA-Z_:][a-zA-Z0-9_:]*`
    static func isValidMetricName(_ name: String) -> Bool {
        isValidName(name, allowColon: true)
    }

    /// `[a-zA-Z_][a-zA-Z0-9_]*`, without the `__` prefix Prometheus reserves for itself.
    static func isValidLabelName(_ name: String) -> Bool {
        isValidName(name, allowColon: false) && !name.hasPrefix("__")
    }

    private static func isValidName(_ name: String, allowColon: Bool) -> Bool {
        guard let first = name.utf8.first else { return false }
        func isLetterOrUnderscore(_ byte: UInt8) -> Bool {
            (byte | 0x20) >= UInt8(ascii: "a") && (byte | 0x20) <= UInt8(ascii: "z") || byte == UInt8(ascii: "_")
                || (allowColon && byte == UInt8(ascii: ":"))
        }
        guard isLetterOrUnderscore(first) else { return false }
        return name.utf8.allSatisfy { isLetterOrUnderscore($0) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) }
    }
}
