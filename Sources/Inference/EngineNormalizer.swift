public import Exposition

/// The model servers whose metrics are understood.
public enum InferenceEngine: String, Sendable, CaseIterable {
    case vllm, sglang, tgi, triton

    /// Recognized from the families a server exposes.
    public static func recognize(_ families: [MetricFamily]) -> InferenceEngine? {
        for family in families {
            if family.name.hasPrefix("vllm:") { return .vllm }
            if family.name.hasPrefix("sglang:") { return .sglang }
            if family.name.hasPrefix("tgi_") { return .tgi }
            if family.name.hasPrefix("nv_inference_") { return .triton }
        }
        return nil
    }
}

/// Turns one model server's exposition into the project's `inference_*` schema, labelled `namespace`, `pod`,
/// `model_name` (never `model`, which names hardware): gauges in base units, the engine's histograms passed through,
/// and percentiles over a sliding window computed from bucket deltas.
///
/// State is kept per target (the windows of cumulative buckets, Triton's previous counters); a counter or bucket
/// going backwards is a server restart: the window starts again from there.
public final class EngineNormalizer {
    public struct Mapping: Sendable {
        /// Gauges: engine family → (schema family, scale to base units).
        var gauges: [String: (String, Double)]
        /// Counters (the parser names them without `_total`) → schema counter family (also without `_total`).
        var counters: [String: String]
        /// Histograms: engine family → schema family.
        var histograms: [String: String]
        /// The label that names the served model.
        var modelLabel: String?
    }

    /// From the reference's metric names; `sglang:token_usage` is read as the KV-cache fill ratio (UNVERIFIED that
    /// it is 0..1 in every version: values above 1 are refused).
    public static let mappings: [InferenceEngine: Mapping] = [
        .vllm: Mapping(
            gauges: [
                "vllm:num_requests_running": ("inference_requests_running", 1),
                "vllm:num_requests_waiting": ("inference_requests_waiting", 1),
                "vllm:kv_cache_usage_perc": ("inference_kv_cache_utilization_ratio", 1),
                "vllm:gpu_cache_usage_perc": ("inference_kv_cache_utilization_ratio", 1),
            ],
            counters: ["vllm:request_success": "inference_requests", "vllm:generation_tokens": "inference_generated_tokens"],
            histograms: [
                "vllm:e2e_request_latency_seconds": "inference_request_duration_seconds",
                "vllm:time_to_first_token_seconds": "inference_time_to_first_token_seconds",
                "vllm:inter_token_latency_seconds": "inference_time_per_output_token_seconds",
                "vllm:time_per_output_token_seconds": "inference_time_per_output_token_seconds",
                "vllm:request_queue_time_seconds": "inference_queue_time_seconds",
            ],
            modelLabel: "model_name"),
        .sglang: Mapping(
            gauges: [
                "sglang:num_running_reqs": ("inference_requests_running", 1),
                "sglang:num_queue_reqs": ("inference_requests_waiting", 1),
                "sglang:token_usage": ("inference_kv_cache_utilization_ratio", 1),
            ],
            counters: [:],
            histograms: [
                "sglang:e2e_request_latency_seconds": "inference_request_duration_seconds",
                "sglang:time_to_first_token_seconds": "inference_time_to_first_token_seconds",
                "sglang:time_per_output_token_seconds": "inference_time_per_output_token_seconds",
            ],
            modelLabel: "model_name"),
        .tgi: Mapping(
            gauges: ["tgi_queue_size": ("inference_requests_waiting", 1), "tgi_batch_current_size": ("inference_requests_running", 1)],
            counters: ["tgi_request_success": "inference_requests"],
            histograms: [
                "tgi_request_duration": "inference_request_duration_seconds",
                "tgi_request_queue_duration": "inference_queue_time_seconds",
                "tgi_request_mean_time_per_token_duration": "inference_time_per_output_token_seconds",
            ],
            modelLabel: nil),
        .triton: Mapping(
            gauges: ["nv_inference_pending_request_count": ("inference_requests_waiting", 1)],
            counters: ["nv_inference_request_success": "inference_requests"],
            histograms: [:],
            modelLabel: "model"),
    ]

    /// Histograms that get windowed percentiles, and the quantiles.
    static let percentileFamilies: [String: String] = [
        "inference_request_duration_seconds": "inference_request_duration",
        "inference_time_to_first_token_seconds": "inference_time_to_first_token",
        "inference_time_per_output_token_seconds": "inference_time_per_output_token",
    ]
    static let quantiles: [(String, Double)] = [("p50", 0.5), ("p95", 0.95), ("p99", 0.99)]

    public let windowSeconds: Double

    /// series key → snapshots (time, upper bound → cumulative count), oldest first.
    private var windows: [String: [(time: Double, buckets: [Double: Double])]] = [:]
    /// Triton: series key → (request count, total µs) at the previous scrape.
    private var tritonPrevious: [String: (count: Double, micros: Double, queueMicros: Double)] = [:]

    public init(windowSeconds: Double = 60) {
        self.windowSeconds = windowSeconds
    }

    /// Normalized families for one scrape of one target at `time` (Unix seconds), and the problems found (series
    /// refused, unknown engine). `prefix` keys the target's state.
    public func normalize(
        _ families: [MetricFamily], namespace: String, pod: String, time: Double
    ) -> (families: [MetricFamily], problems: [String]) {
        guard let engine = InferenceEngine.recognize(families), let mapping = Self.mappings[engine] else {
            return ([], ["no vLLM, SGLang, TGI or Triton metrics found"])
        }
        var problems: [String] = []
        var out: [String: MetricFamily] = [:]
        func add(_ name: String, _ kind: MetricFamily.Kind, _ sample: Sample, unit: String? = nil) {
            let help = Self.help[name] ?? "Percentile of the requests observed in the last window (\(Int(windowSeconds)) s)."
            out[name, default: MetricFamily(name: name, help: help, kind: kind, unit: unit)].samples.append(sample)
        }
        func labels(_ source: [Label], extra: [Label] = []) -> [Label] {
            let model = mapping.modelLabel.flatMap { key in source.first { $0.name == key }?.value } ?? ""
            return ([Label("model_name", model), Label("namespace", namespace), Label("pod", pod)] + extra)
                .sorted { $0.name < $1.name }
        }
        for family in families {
            if let (target, scale) = mapping.gauges[family.name] {
                for sample in family.samples where sample.suffix.isEmpty {
                    let value = sample.value * scale
                    guard value.isFinite, value >= 0,
                        target != "inference_kv_cache_utilization_ratio" || value <= 1
                    else {
                        problems.append("\(family.name): value \(sample.value) out of range")
                        continue
                    }
                    add(target, .gauge, Sample(labels: labels(sample.labels), value: value))
                }
            } else if let target = mapping.counters[family.name] {
                for sample in family.samples where sample.suffix.isEmpty && sample.value.isFinite && sample.value >= 0 {
                    add(target, .counter, Sample(labels: labels(sample.labels), value: sample.value))
                }
            } else if let target = mapping.histograms[family.name], family.kind == .histogram {
                normalizeHistogram(
                    family, into: target, labels: labels, time: time, add: { add($0, $1, $2, unit: $3) }, problems: &problems)
            }
        }
        if engine == .triton {
            tritonMeans(
                families, mapping: mapping, namespace: namespace, pod: pod, labels: labels, add: { add($0, $1, $2, unit: $3) })
        }
        add(
            "accel_exporter_inference_rejected_series", .gauge,
            Sample(labels: [Label("namespace", namespace), Label("pod", pod)], value: Double(problems.count)), unit: nil)
        return (out.keys.sorted().compactMap { out[$0] }, problems)
    }

    /// Forgets a target's state.
    public func forget(namespace: String, pod: String) {
        let prefix = "\(namespace)/\(pod)\u{0}"
        windows = windows.filter { !$0.key.hasPrefix(prefix) }
        tritonPrevious = tritonPrevious.filter { !$0.key.hasPrefix(prefix) }
    }

    private func normalizeHistogram(
        _ family: MetricFamily, into target: String, labels: ([Label], [Label]) -> [Label], time: Double,
        add: (String, MetricFamily.Kind, Sample, String?) -> Void, problems: inout [String]
    ) {
        // Group the family's samples by series (labels without `le`).
        var series: [[Label]: (buckets: [Double: Double], sum: Double?, count: Double?)] = [:]
        for sample in family.samples {
            let base = sample.labels.filter { $0.name != "le" }
            switch sample.suffix {
            case "_bucket":
                guard let text = sample.labels.first(where: { $0.name == "le" })?.value,
                    let bound = text == "+Inf" ? Double.infinity : Double(text)
                else { continue }
                if series[base, default: ([:], nil, nil)].buckets[bound] != nil {
                    problems.append("\(family.name): duplicate bucket le=\(text)")
                }
                series[base, default: ([:], nil, nil)].buckets[bound] = sample.value
            case "_sum": series[base, default: ([:], nil, nil)].sum = sample.value
            case "_count": series[base, default: ([:], nil, nil)].count = sample.value
            default: break
            }
        }
        for (base, data) in series {
            let sorted = data.buckets.sorted { $0.key < $1.key }
            guard sorted.last?.key == .infinity else {
                problems.append("\(family.name): no +Inf bucket")
                continue
            }
            guard zip(sorted, sorted.dropFirst()).allSatisfy({ $0.value <= $1.value }),
                sorted.allSatisfy({ $0.value.isFinite && $0.value >= 0 })
            else {
                problems.append("\(family.name): bucket counts not monotonic")
                continue
            }
            let normalizedLabels = labels(base, [])
            for (bound, count) in sorted {
                let le = bound == .infinity ? "+Inf" : Self.format(bound)
                add(target, .histogram, Sample(suffix: "_bucket", labels: (normalizedLabels + [Label("le", le)]).sorted { $0.name < $1.name }, value: count), "seconds")
            }
            add(target, .histogram, Sample(suffix: "_sum", labels: normalizedLabels, value: data.sum ?? 0), "seconds")
            add(target, .histogram, Sample(suffix: "_count", labels: normalizedLabels, value: data.count ?? sorted.last!.value), "seconds")
            // The sliding window of cumulative buckets → percentiles of what happened inside it.
            guard let stem = Self.percentileFamilies[target] else { continue }
            let key = normalizedLabels.map { "\($0.name)=\($0.value)" }.joined(separator: ",") + "\u{0}" + target
            let stateKey = "\(normalizedLabels.first { $0.name == "namespace" }?.value ?? "")/\(normalizedLabels.first { $0.name == "pod" }?.value ?? "")\u{0}" + key
            var snapshots = windows[stateKey] ?? []
            if let last = snapshots.last, data.buckets.contains(where: { $0.value < (last.buckets[$0.key] ?? 0) }) {
                snapshots = []  // a restart: counts went backwards
            }
            snapshots.append((time, data.buckets))
            snapshots.removeAll { $0.time < time - windowSeconds }
            windows[stateKey] = snapshots
            guard snapshots.count >= 2, let first = snapshots.first else { continue }
            var delta: [Double: Double] = [:]
            for (bound, count) in data.buckets { delta[bound] = count - (first.buckets[bound] ?? 0) }
            for (name, q) in Self.quantiles {
                guard let value = HistogramQuantile.quantile(q, buckets: delta) else { continue }  // empty window
                add("\(stem)_\(name)_seconds", .gauge, Sample(labels: normalizedLabels, value: value), "seconds")
            }
        }
    }

    private func tritonMeans(
        _ families: [MetricFamily], mapping: Mapping, namespace: String, pod: String, labels: ([Label], [Label]) -> [Label],
        add: (String, MetricFamily.Kind, Sample, String?) -> Void
    ) {
        func values(_ name: String) -> [[Label]: Double] {
            var out: [[Label]: Double] = [:]
            for sample in families.first(where: { $0.name == name })?.samples ?? [] where sample.suffix.isEmpty {
                out[sample.labels] = sample.value
            }
            return out
        }
        let success = values("nv_inference_request_success")
        let duration = values("nv_inference_request_duration_us")
        let queue = values("nv_inference_queue_duration_us")
        for (series, count) in success {
            guard let micros = duration[series] else { continue }
            let queueMicros = queue[series] ?? 0
            let key = "\(namespace)/\(pod)\u{0}" + series.map { "\($0.name)=\($0.value)" }.joined(separator: ",")
            defer { tritonPrevious[key] = (count, micros, queueMicros) }
            guard let previous = tritonPrevious[key], count > previous.count, micros >= previous.micros else { continue }
            let requests = count - previous.count
            add("inference_request_duration_mean_seconds", .gauge,
                Sample(labels: labels(series, []), value: (micros - previous.micros) / requests / 1e6), "seconds")
            if queueMicros >= previous.queueMicros {
                add("inference_queue_time_mean_seconds", .gauge,
                    Sample(labels: labels(series, []), value: (queueMicros - previous.queueMicros) / requests / 1e6), "seconds")
            }
        }
    }

    static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? "\(Int(value)).0" : "\(value)"
    }

    static let help: [String: String] = [
        "inference_requests_running": "Requests the model server is processing.",
        "inference_requests_waiting": "Requests waiting in the model server's queue.",
        "inference_kv_cache_utilization_ratio": "Fraction of the KV cache in use, 0..1.",
        "inference_requests": "Requests completed.",
        "inference_generated_tokens": "Tokens generated.",
        "inference_request_duration_seconds": "End-to-end request latency.",
        "inference_time_to_first_token_seconds": "Time to the first token.",
        "inference_time_per_output_token_seconds": "Time per output token after the first.",
        "inference_queue_time_seconds": "Time requests waited in the queue.",
        "inference_request_duration_mean_seconds": "Mean request latency since the previous scrape (Triton).",
        "inference_queue_time_mean_seconds": "Mean queue time since the previous scrape (Triton).",
        "accel_exporter_inference_rejected_series": "Model-server series refused in the last scrape (malformed histograms, out-of-range values).",
    ]
}
