/// Renders metric families straight into bytes, in either exposition format.
///
/// A hand-written encoder rather than swift-prometheus' because the device exposition needs sorted, deterministic
/// output, OpenMetrics, and exact `+Inf`/`NaN` spelling, and because it runs every scrape over 10k+ series:
/// it appends into a buffer the caller keeps (`removeAll(keepingCapacity: true)` between scrapes), so a
/// steady-state scrape allocates only two small index arrays.
public enum ExpositionEncoder {
    /// Appends the exposition of `families` to `buffer`.
    ///
    /// Families are written sorted by name, samples in `SampleOrder`. The input is not modified. Invalid names,
    /// suffixes that do not belong to the family's kind, and duplicate family names are programmer errors: they
    /// trap in debug builds and are written as given in release builds, never silently renamed.
    public static func encode(_ families: [MetricFamily], format: ExpositionFormat, into buffer: inout [UInt8]) {
        var familyOrder = Array(families.indices)
        familyOrder.sort { families[$0].name < families[$1].name }
        var sampleOrder: [Int] = []
        var bounds: [Double] = []
        var previousName: String?
        for index in familyOrder {
            let family = families[index]
            assert(family.name != previousName, "metric family \(family.name) appears more than once")
            assert(isValid(family), "invalid metric family \(family.name)")
            previousName = family.name
            writeMetadata(family, format: format, into: &buffer)
            SampleOrder(kind: family.kind).sort(family.samples, into: &sampleOrder, bounds: &bounds)
            for sampleIndex in sampleOrder {
                writeSample(family.samples[sampleIndex], of: family, format: format, into: &buffer)
            }
        }
        if format == .openMetrics {
            buffer.appendASCII("# EOF\n")
        }
    }

    /// `# HELP`, `# TYPE` and (OpenMetrics only) `# UNIT`, once per family and before any of its samples.
    ///
    /// The HELP line always carries the separating space, even for empty help: the OpenMetrics grammar requires
    /// it and the text parser accepts it.
    private static func writeMetadata(_ family: MetricFamily, format: ExpositionFormat, into buffer: inout [UInt8]) {
        buffer.appendASCII("# HELP ")
        writeMetadataName(family, format: format, into: &buffer)
        buffer.append(UInt8(ascii: " "))
        buffer.appendEscaped(family.help, quotes: format == .openMetrics)
        buffer.appendASCII("\n# TYPE ")
        writeMetadataName(family, format: format, into: &buffer)
        buffer.append(UInt8(ascii: " "))
        buffer.appendASCII(typeName(family.kind, format: format))
        buffer.append(UInt8(ascii: "\n"))
        if format == .openMetrics, let unit = family.unit, !unit.isEmpty {
            buffer.appendASCII("# UNIT ")
            buffer.appendUTF8(family.name)
            buffer.append(UInt8(ascii: " "))
            buffer.appendUTF8(unit)
            buffer.append(UInt8(ascii: "\n"))
        }
    }

    /// The text format has no notion of a family distinct from its sample name, so its metadata names the
    /// sample (`x_total`, `x_info`); OpenMetrics names the family.
    private static func writeMetadataName(_ family: MetricFamily, format: ExpositionFormat, into buffer: inout [UInt8]) {
        buffer.appendUTF8(family.name)
        guard format == .text else { return }
        switch family.kind {
        case .counter: buffer.appendASCII("_total")
        case .info: buffer.appendASCII("_info")
        default: break
        }
    }

    private static func typeName(_ kind: MetricFamily.Kind, format: ExpositionFormat) -> StaticString {
        switch (kind, format) {
        case (.gauge, _): "gauge"
        case (.counter, _): "counter"
        case (.histogram, _): "histogram"
        case (.summary, _): "summary"
        case (.info, .text): "gauge"
        case (.info, .openMetrics): "info"
        case (.unknown, .text): "untyped"
        case (.unknown, .openMetrics): "unknown"
        }
    }

    /// `name{label="value",…} value [timestamp]`.
    ///
    /// `_created` samples are OpenMetrics-only: in the text format they would parse as a stray untyped metric
    /// interleaved with the family, so they are left out there.
    private static func writeSample(
        _ sample: Sample, of family: MetricFamily, format: ExpositionFormat, into buffer: inout [UInt8]
    ) {
        if format == .text, sample.suffix == "_created" { return }
        buffer.appendUTF8(family.name)
        switch family.kind {
        case .counter where sample.suffix.isEmpty: buffer.appendASCII("_total")
        case .info: buffer.appendASCII("_info")
        default: buffer.appendUTF8(sample.suffix)
        }
        if !sample.labels.isEmpty {
            buffer.append(UInt8(ascii: "{"))
            for (position, label) in sample.labels.enumerated() {
                if position > 0 { buffer.append(UInt8(ascii: ",")) }
                buffer.appendUTF8(label.name)
                buffer.appendASCII("=\"")
                buffer.appendEscaped(label.value, quotes: true)
                buffer.append(UInt8(ascii: "\""))
            }
            buffer.append(UInt8(ascii: "}"))
        }
        buffer.append(UInt8(ascii: " "))
        buffer.appendValue(sample.value)
        if let milliseconds = sample.timestampMilliseconds {
            buffer.append(UInt8(ascii: " "))
            switch format {
            case .text: buffer.appendInteger(milliseconds)
            case .openMetrics: buffer.appendSeconds(milliseconds: milliseconds)
            }
        }
        buffer.append(UInt8(ascii: "\n"))
    }
}
