public import Exposition
import MetricSchema

private typealias I = Families.Inference

/// The model servers whose metrics are understood.
public enum InferenceEngine: String, Sendable, CaseIterable {
    case vllm, sglang, tgi, triton

    /// The engine as its project spells it, for messages (the several-engines problem lists them).
    public var displayName: String {
        switch self {
        case .vllm: "vLLM"
        case .sglang: "SGLang"
        case .tgi: "TGI"
        case .triton: "Triton"
        }
    }

    /// Every engine whose families appear in `families` (by name prefix), in declaration order.
    public static func detect(_ families: [MetricFamily]) -> [InferenceEngine] {
        var found = Set<InferenceEngine>()
        for family in families {
            if family.name.hasPrefix("vllm:") {
                found.insert(.vllm)
            } else if family.name.hasPrefix("sglang:") {
                found.insert(.sglang)
            } else if family.name.hasPrefix("tgi_") {
                found.insert(.tgi)
            } else if family.name.hasPrefix("nv_inference_") || family.name.hasPrefix("nv_trt_llm_") {
                found.insert(.triton)
            }
        }
        return allCases.filter(found.contains)
    }

    /// The engine a server's families belong to; nil when they belong to none, or to several (a proxy merging
    /// servers: which one the gauges describe cannot be told).
    public static func recognize(_ families: [MetricFamily]) -> InferenceEngine? {
        let found = detect(families)
        return found.count == 1 ? found[0] : nil
    }
}

/// Turns one model server's exposition into the project's `inference_*` schema, labelled `namespace`, `pod`,
/// `model_name` (never `model`, which names hardware): gauges in base units, the engine's histograms passed through,
/// and percentiles over a sliding window computed from bucket deltas.
///
/// Series of one family that differ only in labels the schema does not keep (vLLM's `engine` and
/// `finished_reason`, Triton's `version`) are combined: counters, queue and running gauges and histogram buckets are
/// added, the KV-cache ratio takes the fullest. A series that appears twice, a value that is not a finite
/// non-negative number, a ratio outside 0..1, and a histogram without `+Inf`, with counts that decrease with `le`
/// or with a duplicated bucket are refused one by one, each a `problem`; the rest of the target is still served.
///
/// State is kept per target (the windows of cumulative buckets, Triton's previous counters). A bucket going
/// backwards is a server restart: the counts since the restart are the new increase, counted from zero as
/// Prometheus' `rate()` does, so the requests served between the restart and the next scrape are not lost.
public final class EngineNormalizer {
    /// How one engine's families map onto the schema: gauges with their scale, counters, histograms with their unit,
    /// the model label. Opaque outside the module; the tables are ``EngineNormalizer/mappings``.
    public struct Mapping: Sendable {
        struct Gauge: Sendable {
            var target: String
            /// Multiplies the value into base units.
            var scale: Double
            /// Where two sources fill the same schema series, only the higher priority's are used.
            var priority: Int
        }

        /// Gauges: engine family → schema family.
        var gauges: [String: Gauge]
        /// Counters (the parser names them without `_total`) → schema counter family (also without `_total`).
        var counters: [String: String]
        /// Histograms: engine family → schema family, and how many of its unit make a second (1000 for ms: a
        /// division, so that `le="25"` becomes exactly the double nearest 0.025).
        var histograms: [String: (target: String, perSecond: Double)]
        /// The label that names the served model.
        var modelLabel: String?
        /// Triton: also read the TensorRT-LLM backend's labelled gauges (UNVERIFIED, see `trtllm`).
        var tensorRTLLM = false

        static let empty = Mapping(gauges: [:], counters: [:], histograms: [:], modelLabel: nil)

        /// The custom names replace the engine's gauges for the schema families they fill.
        mutating func apply(_ custom: CustomMetricNames) {
            let named: [(String?, String, Double)] = [
                (custom.queued, I.requestsWaiting.name, 1), (custom.running, I.requestsRunning.name, 1),
                (custom.kvCache, EngineNormalizer.kvRatio, custom.kvCacheScale),
            ]
            for case let (name?, target, scale) in named {
                gauges = gauges.filter { $0.value.target != target }
                gauges[name] = Gauge(target: target, scale: scale, priority: 10)
                overridden.insert(target)
            }
            if let label = custom.modelLabel { modelLabel = label } else if modelLabel == nil { modelLabel = "model_name" }
        }

        /// Schema gauges a custom mapping fills: the TensorRT-LLM gauges leave them alone.
        var overridden: Set<String> = []
    }

    static let kvRatio = I.kvCacheUtilization.name

    /// From the reference's metric names. `sglang:token_usage` is read as the KV-cache fill ratio (UNVERIFIED that
    /// it is 0..1 in every version: values above 1 are refused). Triton's `nv_inference_first_response_histogram_ms`
    /// (opt-in, milliseconds) is read as the time to first token: for decoupled (streaming) models such as LLM
    /// backends the first response is the first token; for other models it is the whole answer.
    public static let mappings: [InferenceEngine: Mapping] = [
        .vllm: Mapping(
            gauges: [
                "vllm:num_requests_running": .init(target: I.requestsRunning.name, scale: 1, priority: 0),
                "vllm:num_requests_waiting": .init(target: I.requestsWaiting.name, scale: 1, priority: 0),
                "vllm:kv_cache_usage_perc": .init(target: kvRatio, scale: 1, priority: 0),
                "vllm:gpu_cache_usage_perc": .init(target: kvRatio, scale: 1, priority: 0),
            ],
            counters: ["vllm:request_success": I.requests.name, "vllm:generation_tokens": I.generatedTokens.name],
            histograms: [
                "vllm:e2e_request_latency_seconds": (I.requestDuration.name, 1),
                "vllm:time_to_first_token_seconds": (I.timeToFirstToken.name, 1),
                "vllm:inter_token_latency_seconds": (I.timePerOutputToken.name, 1),
                "vllm:time_per_output_token_seconds": (I.timePerOutputToken.name, 1),
                "vllm:request_queue_time_seconds": (I.queueTime.name, 1),
            ],
            modelLabel: "model_name"),
        .sglang: Mapping(
            gauges: [
                "sglang:num_running_reqs": .init(target: I.requestsRunning.name, scale: 1, priority: 0),
                "sglang:num_queue_reqs": .init(target: I.requestsWaiting.name, scale: 1, priority: 0),
                "sglang:token_usage": .init(target: kvRatio, scale: 1, priority: 0),
            ],
            counters: [:],
            histograms: [
                "sglang:e2e_request_latency_seconds": (I.requestDuration.name, 1),
                "sglang:time_to_first_token_seconds": (I.timeToFirstToken.name, 1),
                "sglang:time_per_output_token_seconds": (I.timePerOutputToken.name, 1),
            ],
            modelLabel: "model_name"),
        .tgi: Mapping(
            gauges: [
                "tgi_queue_size": .init(target: I.requestsWaiting.name, scale: 1, priority: 0),
                "tgi_batch_current_size": .init(target: I.requestsRunning.name, scale: 1, priority: 0),
            ],
            counters: ["tgi_request_success": I.requests.name],
            histograms: [
                "tgi_request_duration": (I.requestDuration.name, 1),
                "tgi_request_queue_duration": (I.queueTime.name, 1),
                "tgi_request_mean_time_per_token_duration": (I.timePerOutputToken.name, 1),
            ],
            modelLabel: nil),
        .triton: Mapping(
            gauges: ["nv_inference_pending_request_count": .init(target: I.requestsWaiting.name, scale: 1, priority: 0)],
            counters: ["nv_inference_request_success": I.requests.name],
            histograms: ["nv_inference_first_response_histogram_ms": (I.timeToFirstToken.name, 1000)],
            modelLabel: "model",
            tensorRTLLM: true),
    ]


    /// Span of the sliding window the percentiles are computed over, in seconds; older bucket snapshots are dropped.
    public let windowSeconds: Double

    /// series key → snapshots (time, upper bound → cumulative count), oldest first.
    private var windows: [String: [(time: Double, buckets: [Double: Double])]] = [:]
    /// Triton: series key → (request count, total µs, queue µs) at the previous scrape.
    private var tritonPrevious: [String: (count: Double, micros: Double, queueMicros: Double)] = [:]

    /// No state yet: the first scrape of a target opens its windows. The exporter passes `--inference.window`.
    public init(windowSeconds: Double = 60) {
        self.windowSeconds = windowSeconds
    }

    /// Normalized families for one scrape of one target at `time` (Unix seconds), and the problems found (series
    /// refused, unknown or ambiguous engine). `custom` names the protocol's gauges for this target (it wins over
    /// the engine's). No families with problems means the target was not understood at all.
    public func normalize(
        _ families: [MetricFamily], namespace: String, pod: String, time: Double, custom: CustomMetricNames? = nil
    ) -> (families: [MetricFamily], problems: [String]) {
        let engines = InferenceEngine.detect(families)
        var mapping: Mapping
        if let custom {
            mapping = engines.count == 1 ? Self.mappings[engines[0]]! : .empty
            mapping.apply(custom)
            let named = [custom.queued, custom.running, custom.kvCache].compactMap { $0 }
            if engines.count != 1, !families.contains(where: { named.contains($0.name) }) {
                return ([], ["none of the configured metrics (\(named.joined(separator: ", "))) found"])
            }
        } else {
            guard !engines.isEmpty else { return ([], ["no vLLM, SGLang, TGI or Triton metrics found"]) }
            guard engines.count == 1, let only = Self.mappings[engines[0]] else {
                return ([], [
                    "metrics of several engines (\(engines.map(\.displayName).joined(separator: ", "))): which one a gauge "
                        + "describes cannot be told; name the gauges with the inference.accelmetrics.io/*-metric annotations"
                ])
            }
            mapping = only
        }
        var run = Run(namespace: namespace, pod: pod, modelLabel: mapping.modelLabel)
        for family in families {
            if let gauge = mapping.gauges[family.name] {
                run.gauge(family, gauge)
            } else if let target = mapping.counters[family.name] {
                run.counter(family, into: target)
            } else if let (target, perSecond) = mapping.histograms[family.name] {
                run.histogram(family, into: target, perSecond: perSecond)
            }
        }
        if mapping.tensorRTLLM {
            run.tensorRTLLM(families, leaving: mapping.overridden)
        }
        let prefix = "\(namespace)/\(pod)\u{0}"
        var touched: Set<String> = []
        var out: [String: MetricFamily] = [:]
        func add(_ name: String, _ kind: MetricFamily.Kind, _ sample: Sample, unit: String? = nil) {
            out[name, default: Families.named(name)!.family()].samples.append(sample)
        }
        for (key, contributions) in run.gauges {
            let top = contributions.map(\.priority).max() ?? 0
            let values = contributions.filter { $0.priority == top }.map(\.value)
            add(key.family, .gauge, Sample(labels: key.labels, value: key.family == Self.kvRatio ? values.max()! : values.reduce(0, +)))
        }
        for (key, value) in run.counters {
            add(key.family, .counter, Sample(labels: key.labels, value: value))
        }
        for (key, histogram) in run.histograms {
            for (bound, count) in histogram.buckets.sorted(by: { $0.key < $1.key }) {
                let le = Label("le", bound == .infinity ? "+Inf" : Self.format(bound))
                add(key.family, .histogram, Sample(suffix: "_bucket", labels: (key.labels + [le]).sorted { $0.name < $1.name }, value: count), unit: "seconds")
            }
            add(key.family, .histogram, Sample(suffix: "_sum", labels: key.labels, value: histogram.sum), unit: "seconds")
            add(key.family, .histogram, Sample(suffix: "_count", labels: key.labels, value: histogram.count), unit: "seconds")
            guard I.percentileHistograms.contains(where: { $0.name == key.family }) else { continue }
            let stateKey = prefix + key.family + "\u{0}" + key.labels.map { "\($0.name)=\($0.value)" }.joined(separator: ",")
            touched.insert(stateKey)
            for (family, value) in windowedQuantiles(stateKey, time: time, buckets: histogram.buckets, histogram: key.family) {
                add(family, .gauge, Sample(labels: key.labels, value: value), unit: "seconds")
            }
        }
        if mapping.counters["nv_inference_request_success"] != nil {
            tritonMeans(families, run: &run, prefix: prefix, touched: &touched, add: { add($0, .gauge, $1, unit: "seconds") })
        }
        // Series that left (a model unloaded, a histogram refused) take their state with them.
        windows = windows.filter { !$0.key.hasPrefix(prefix) || touched.contains($0.key) }
        tritonPrevious = tritonPrevious.filter { !$0.key.hasPrefix(prefix) || touched.contains($0.key) }
        add(
            Families.Exporter.inferenceRejectedSeries.name, .gauge,
            Sample(labels: [Label("namespace", namespace), Label("pod", pod)], value: Double(run.problems.count)))
        return (out.keys.sorted().compactMap { out[$0] }, run.problems)
    }

    /// Forgets a target's state.
    public func forget(namespace: String, pod: String) {
        let prefix = "\(namespace)/\(pod)\u{0}"
        windows = windows.filter { !$0.key.hasPrefix(prefix) }
        tritonPrevious = tritonPrevious.filter { !$0.key.hasPrefix(prefix) }
    }

    /// Adds this scrape's cumulative buckets to the series' window and returns the quantiles of the increase over
    /// it (none while the window holds one scrape or no new requests).
    private func windowedQuantiles(_ key: String, time: Double, buckets: [Double: Double], histogram: String) -> [(String, Double)] {
        var snapshots = windows[key] ?? []
        if let last = snapshots.last {
            if time < last.time {
                snapshots = []  // the clock went backwards: start over
            } else if Set(last.buckets.keys) != Set(buckets.keys) || buckets.contains(where: { $0.value < (last.buckets[$0.key] ?? 0) }) {
                // A restart (counts went backwards, or a new bucket layout): everything counted now happened
                // since the previous scrape, so the increase is measured from zero at that scrape.
                snapshots = [(last.time, buckets.mapValues { _ in 0 })]
            } else if time == last.time {
                snapshots.removeLast()
            }
        }
        snapshots.append((time, buckets))
        snapshots.removeAll { $0.time < time - windowSeconds }
        windows[key] = snapshots
        guard snapshots.count >= 2, let first = snapshots.first else { return [] }
        var delta: [Double: Double] = [:]
        for (bound, count) in buckets { delta[bound] = count - (first.buckets[bound] ?? 0) }
        return I.percentiles.filter { $0.histogram.name == histogram }.compactMap { p in
            HistogramQuantile.quantile(p.quantile, buckets: delta).map { (p.family.name, $0) }
        }
    }

    /// Triton's mean request and queue times since the previous scrape, from its cumulative µs counters (never a
    /// lifetime average). A counter that went backwards (a restart) gives no mean for that scrape.
    private func tritonMeans(
        _ families: [MetricFamily], run: inout Run, prefix: String, touched: inout Set<String>, add: (String, Sample) -> Void
    ) {
        // The success counter's problems were counted when it was normalized; the µs counters' are counted here.
        let success = run.sums(families, "nv_inference_request_success", countingProblems: false)
        let duration = run.sums(families, "nv_inference_request_duration_us", countingProblems: true)
        let queue = run.sums(families, "nv_inference_queue_duration_us", countingProblems: true)
        for (labels, count) in success {
            guard let micros = duration[labels] else { continue }
            let queueMicros = queue[labels] ?? 0
            let key = prefix + "triton\u{0}" + labels.map { "\($0.name)=\($0.value)" }.joined(separator: ",")
            touched.insert(key)
            defer { tritonPrevious[key] = (count, micros, queueMicros) }
            guard let previous = tritonPrevious[key], count > previous.count, micros >= previous.micros else { continue }
            let requests = count - previous.count
            add(I.requestDurationMean.name, Sample(labels: labels, value: (micros - previous.micros) / requests / 1e6))
            if queueMicros >= previous.queueMicros, queue[labels] != nil {
                add(I.queueTimeMean.name, Sample(labels: labels, value: (queueMicros - previous.queueMicros) / requests / 1e6))
            }
        }
    }

    static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? "\(Int(value)).0" : "\(value)"
    }
}

/// One scrape's normalization: the schema series found so far, keyed by family and normalized labels, and the
/// problems.
struct Run {
    struct Key: Hashable {
        var family: String
        /// `model_name`, `namespace`, `pod`, sorted.
        var labels: [Label]
    }

    struct Histogram {
        var buckets: [Double: Double]
        var sum: Double
        var count: Double
    }

    let namespace: String
    let pod: String
    let modelLabel: String?
    var gauges: [Key: [(priority: Int, value: Double)]] = [:]
    var counters: [Key: Double] = [:]
    var histograms: [Key: Histogram] = [:]
    var problems: [String] = []

    init(namespace: String, pod: String, modelLabel: String?) {
        self.namespace = namespace
        self.pod = pod
        self.modelLabel = modelLabel
    }

    func labels(_ source: [Label]) -> [Label] {
        let model = modelLabel.flatMap { key in source.first { $0.name == key }?.value } ?? ""
        return [Label("model_name", model), Label("namespace", namespace), Label("pod", pod)]
    }

    static func render(_ labels: [Label]) -> String {
        "{" + labels.map { "\($0.name)=\"\($0.value)\"" }.joined(separator: ",") + "}"
    }

    /// The family's bare samples (no suffix), without series that appear more than once: those are refused, once
    /// each, since which of the values is current cannot be told.
    mutating func distinct(_ family: MetricFamily) -> [Sample] {
        var seen: [[Label]: Int] = [:]
        for sample in family.samples where sample.suffix.isEmpty {
            seen[sample.labels.sorted { $0.name < $1.name }, default: 0] += 1
        }
        for (labels, count) in seen where count > 1 {
            problems.append("\(family.name)\(Self.render(labels)): the series appears \(count) times")
        }
        return family.samples.filter { $0.suffix.isEmpty && seen[$0.labels.sorted { $0.name < $1.name }] == 1 }
    }

    mutating func gauge(_ family: MetricFamily, _ rule: EngineNormalizer.Mapping.Gauge) {
        for sample in distinct(family) {
            let value = sample.value * rule.scale
            guard value.isFinite, value >= 0, rule.target != EngineNormalizer.kvRatio || value <= 1 else {
                let range = rule.target == EngineNormalizer.kvRatio ? " (a ratio must be 0..1\(rule.scale == 1 ? "" : " after × \(rule.scale)"))" : ""
                problems.append("\(family.name)\(Self.render(sample.labels)): value \(sample.value) out of range\(range)")
                continue
            }
            gauges[Key(family: rule.target, labels: labels(sample.labels)), default: []].append((rule.priority, value))
        }
    }

    mutating func counter(_ family: MetricFamily, into target: String) {
        for (labels, value) in sums(family) {
            counters[Key(family: target, labels: labels), default: 0] += value
        }
    }

    /// A counter family's valid series, added up by normalized labels.
    mutating func sums(_ family: MetricFamily) -> [[Label]: Double] {
        var out: [[Label]: Double] = [:]
        for sample in distinct(family) {
            guard sample.value.isFinite, sample.value >= 0 else {
                problems.append("\(family.name)\(Self.render(sample.labels)): counter value \(sample.value) is not a finite non-negative number")
                continue
            }
            out[labels(sample.labels), default: 0] += sample.value
        }
        return out
    }

    /// The same for a family looked up by name (Triton's counters behind the means).
    mutating func sums(_ families: [MetricFamily], _ name: String, countingProblems: Bool) -> [[Label]: Double] {
        guard let family = families.first(where: { $0.name == name }) else { return [:] }
        let before = problems.count
        let out = sums(family)
        if !countingProblems { problems.removeLast(problems.count - before) }
        return out
    }

    mutating func histogram(_ family: MetricFamily, into target: String, perSecond: Double) {
        guard family.kind == .histogram else {
            let why = family.kind == .summary ? "a summary (quantiles, no buckets)" : "declared \(family.kind.rawValue)"
            problems.append("\(family.name): \(why), not a histogram: no latency buckets or percentiles from it")
            return
        }
        // Group by series (labels without `le`).
        var series: [[Label]: (buckets: [Double: Double], duplicate: Bool, sum: Double?, count: Double?)] = [:]
        for sample in family.samples {
            let base = sample.labels.filter { $0.name != "le" }.sorted { $0.name < $1.name }
            guard ["_bucket", "_sum", "_count"].contains(sample.suffix) else { continue }
            if series[base] == nil { series[base] = ([:], false, nil, nil) }
            switch sample.suffix {
            case "_bucket":
                guard let text = sample.labels.first(where: { $0.name == "le" })?.value,
                    let bound = text == "+Inf" ? Double.infinity : Double(text), !bound.isNaN
                else {
                    series[base]!.duplicate = true
                    continue
                }
                let scaled = bound / perSecond
                if series[base]!.buckets[scaled] != nil { series[base]!.duplicate = true }
                series[base]!.buckets[scaled] = sample.value
            case "_sum": series[base]!.sum = sample.value / perSecond
            default: series[base]!.count = sample.value
            }
        }
        var merged: [[Label]: Run.Histogram] = [:]
        var conflicting: Set<[Label]> = []
        for (base, data) in series.sorted(by: { Self.render($0.key) < Self.render($1.key) }) {
            let name = "\(family.name)\(Self.render(base))"
            let sorted = data.buckets.sorted { $0.key < $1.key }
            guard !data.duplicate else {
                problems.append("\(name): a bucket appears twice or has no valid le")
                continue
            }
            guard sorted.last?.key == .infinity else {
                problems.append("\(name): no +Inf bucket")
                continue
            }
            guard sorted.allSatisfy({ $0.value.isFinite && $0.value >= 0 }), zip(sorted, sorted.dropFirst()).allSatisfy({ $0.value <= $1.value })
            else {
                problems.append("\(name): bucket counts decrease with le (or are not finite)")
                continue
            }
            let histogram = Run.Histogram(buckets: data.buckets, sum: (data.sum ?? 0).isFinite ? data.sum ?? 0 : 0, count: sorted.last!.value)
            let normalized = labels(base)
            if let existing = merged[normalized] {
                guard Set(existing.buckets.keys) == Set(histogram.buckets.keys) else {
                    conflicting.insert(normalized)
                    continue
                }
                merged[normalized] = Run.Histogram(
                    buckets: existing.buckets.merging(histogram.buckets, uniquingKeysWith: +), sum: existing.sum + histogram.sum,
                    count: existing.count + histogram.count)
            } else {
                merged[normalized] = histogram
            }
        }
        for normalized in conflicting {
            problems.append("\(family.name): series of \(Self.render(normalized)) have different bucket layouts and cannot be added")
            merged[normalized] = nil
        }
        for (normalized, histogram) in merged {
            // Two engine families feeding one schema family (vLLM's old and new TPOT names): the first one wins.
            let key = Key(family: target, labels: normalized)
            if histograms[key] == nil { histograms[key] = histogram }
        }
    }

    /// Triton with the TensorRT-LLM backend. UNVERIFIED: the reference does not name these families; they are read
    /// only in the shape the backend is commonly documented with, and nothing else:
    /// - `nv_trt_llm_request_metrics{request_type="active"}` → running, `{request_type="waiting"}` → waiting (in
    ///   place of Triton's `nv_inference_pending_request_count` for that model, since the backend keeps its own
    ///   queue);
    /// - `nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="fraction"}` (0..1) → KV-cache ratio, else
    ///   `used` / `max` blocks.
    /// Other label values are ignored; a value that is not a finite non-negative number, a fraction above 1 or more
    /// blocks used than exist is refused as a problem.
    mutating func tensorRTLLM(_ families: [MetricFamily], leaving overridden: Set<String>) {
        if let family = families.first(where: { $0.name == "nv_trt_llm_request_metrics" }), family.kind == .gauge {
            for sample in distinct(family) {
                guard let type = sample.labels.first(where: { $0.name == "request_type" })?.value else { continue }
                let target: String
                switch type {
                case "active": target = I.requestsRunning.name
                case "waiting": target = I.requestsWaiting.name
                default: continue
                }
                guard !overridden.contains(target) else { continue }
                guard sample.value.isFinite, sample.value >= 0 else {
                    problems.append("\(family.name)\(Self.render(sample.labels)): value \(sample.value) out of range")
                    continue
                }
                gauges[Key(family: target, labels: labels(sample.labels)), default: []].append((5, sample.value))
            }
        }
        guard !overridden.contains(EngineNormalizer.kvRatio),
            let family = families.first(where: { $0.name == "nv_trt_llm_kv_cache_block_metrics" }), family.kind == .gauge
        else { return }
        var blocks: [[Label]: [String: Double]] = [:]
        for sample in distinct(family) {
            guard let type = sample.labels.first(where: { $0.name == "kv_cache_block_type" })?.value else { continue }
            blocks[sample.labels.filter { $0.name != "kv_cache_block_type" }.sorted { $0.name < $1.name }, default: [:]][type] = sample.value
        }
        for (base, values) in blocks {
            let ratio: Double
            if let fraction = values["fraction"] {
                ratio = fraction
            } else if let used = values["used"], let max = values["max"], max > 0 {
                ratio = used / max
            } else {
                continue
            }
            guard ratio.isFinite, (0...1).contains(ratio) else {
                problems.append("\(family.name)\(Self.render(base)): KV-cache fill \(ratio) is outside 0..1")
                continue
            }
            gauges[Key(family: EngineNormalizer.kvRatio, labels: labels(base)), default: []].append((5, ratio))
        }
    }
}
