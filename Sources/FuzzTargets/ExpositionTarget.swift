import Exporter
import Inference
import Exposition

extension FuzzTargets {
    /// Prometheus text 0.0.4 and OpenMetrics 1.0, each input parsed as both, under the bounds the exporter parses a
    /// model server's answer with (``InferenceSource/expositionLimits(maxBytes:)``: 16 KiB lines, 50,000 series).
    ///
    /// What parses re-encodes to an exposition that parses to the same encoding (the encoder's own checks run too).
    /// Parsed again under tight bounds, the input is either refused or gives the same families: a bound refuses, it
    /// never truncates.
    static let exposition = FuzzTarget("exposition", maxLength: 64 << 10) { (raw) throws(FuzzFinding) in
        let bytes = raw.assumingMemoryBound(to: UInt8.self)
        let limits = InferenceSource.expositionLimits(maxBytes: InferenceSource.defaultMaxBytes)
        let tight = ExpositionParser.Limits(maxBytes: 4096, maxSamples: 16, maxLabelsPerSample: 4, maxLineLength: 256, maxNameLength: 48)
        for format in ExpositionFormat.allCases {
            let parsed = try? ExpositionParser.parse(bytes, format: format, limits: limits)
            if let families = parsed {
                try checkReencodes(families, format: format)
            }
            if let bounded = try? ExpositionParser.parse(bytes, format: format, limits: tight) {
                guard let families = parsed else {
                    throw FuzzFinding("\(format): parses under tight bounds but not under the exporter's")
                }
                try check(encoded(bounded, format) == encoded(families, format), "\(format): tight bounds changed the families")
            }
        }
    }

    /// Encoding, parsing and encoding again gives the same bytes.
    static func checkReencodes(_ families: [MetricFamily], format: ExpositionFormat) throws(FuzzFinding) {
        let first = encoded(families, format)
        let reparsed: [MetricFamily]
        do {
            reparsed = try ExpositionParser.parse(first, format: format)
        } catch {
            throw FuzzFinding("\(format): the re-encoded exposition does not parse: \(error)\n\(excerpt(String(decoding: first, as: UTF8.self)))")
        }
        let second = encoded(reparsed, format)
        try check(
            first == second,
            "\(format): re-encoding is not stable\n--- once\n\(excerpt(String(decoding: first, as: UTF8.self)))\n--- twice\n"
                + excerpt(String(decoding: second, as: UTF8.self)))
    }

    static func encoded(_ families: [MetricFamily], _ format: ExpositionFormat) -> [UInt8] {
        var out: [UInt8] = []
        ExpositionEncoder.encode(families, format: format, into: &out)
        return out
    }
}
