import Exporter
import Exposition
import Inference
import ScrapeClient

extension FuzzTargets {
    /// A model server's successive answers through the exporter's normalizer (vLLM, SGLang, TGI, Triton families
    /// into the `inference_*` schema, windows across scrapes) and a workload pod's own families through
    /// ``WorkloadMetrics/extract(_:names:namespace:pod:limits:)``.
    ///
    /// An optional first line `@;key=value;…` carries the target's `--inference.targets` options (custom gauge names,
    /// `metrics=a|b`), parsed as the flag is. The rest is up to four answers separated by form feeds, each parsed
    /// as the exporter parses an answer (OpenMetrics when it holds `# EOF`) and normalized 15 s after the one before.
    /// What comes out re-encodes in both formats; the schema's values are finite and non-negative.
    static let inferenceNormalizer = FuzzTarget("inference-normalizer", maxLength: 64 << 10) { (raw) throws(FuzzFinding) in
        var input = raw[...]
        var options = ""
        if input.first == UInt8(ascii: "@") {
            let end = input.firstIndex(of: UInt8(ascii: "\n")) ?? input.endIndex
            options = String(decoding: input[input.index(after: input.startIndex)..<end], as: UTF8.self)
            input = input[end...].dropFirst()
        }
        let plain = InferenceTarget(namespace: "ml", pod: "server-0", url: ScrapeURL(host: "10.0.0.1", port: 8000))
        let target = (try? InferenceTarget.parseList("ml/server-0=http://10.0.0.1:8000/metrics" + options))?.first ?? plain
        let normalizer = EngineInferenceNormalizer(windowSeconds: 60)
        let limits = InferenceSource.expositionLimits(maxBytes: InferenceSource.defaultMaxBytes)
        for (index, answer) in input.split(separator: 0x0C, maxSplits: 3, omittingEmptySubsequences: false).enumerated() {
            let bytes = Array(answer)
            let format: ExpositionFormat = bytes.firstRange(of: Array("# EOF".utf8)) == nil ? .text : .openMetrics
            guard let families = try? ExpositionParser.parse(bytes, format: format, limits: limits) else { continue }
            let (normalized, _) = normalizer.normalize(families, target: target, time: 1_700_000_000 + 15 * Double(index))
            try checkServed(normalized, "normalized", valuesInRange: true)
            let names = target.workloadFamilies.isEmpty ? families.prefix(12).map(\.name) : target.workloadFamilies
            let workload = WorkloadMetrics.extract(families, names: names, namespace: "ml", pod: "server-0", limits: .init())
            try checkServed(workload.families, "workload", valuesInRange: false)
        }
    }

    /// Families the exporter serves re-encode stably in both formats; the schema's (not a pod's own gauges) have no
    /// value that is negative or not finite.
    static func checkServed(_ families: [MetricFamily], _ what: String, valuesInRange: Bool) throws(FuzzFinding) {
        for family in families where valuesInRange {
            for sample in family.samples {
                try check(
                    sample.value.isFinite && sample.value >= 0,
                    "\(what): \(family.name)\(sample.suffix) \(sample.labels.map { "\($0.name)=\($0.value)" }) is \(sample.value)")
            }
        }
        for format in ExpositionFormat.allCases { try checkReencodes(families, format: format) }
    }
}
