import AccelMetricsTesting
import Exposition
import Inference
import Testing

/// Exposition text an engine would serve, built from observations so the expected percentiles can be computed
/// independently.
struct FakeEngine {
    static let bounds: [Double] = [0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60]

    var observations: [Double] = []

    /// Cumulative counts per upper bound (and +Inf).
    var cumulative: [(String, Int)] {
        Self.bounds.map { bound in ("\(bound)", observations.filter { $0 <= bound }.count) } + [("+Inf", observations.count)]
    }

    func vllm(waiting: Int, kv: Double, success: Int) -> String {
        var lines = [
            "# TYPE vllm:num_requests_running gauge", "vllm:num_requests_running{engine=\"0\",model_name=\"llama\"} 4",
            "# TYPE vllm:num_requests_waiting gauge", "vllm:num_requests_waiting{engine=\"0\",model_name=\"llama\"} \(waiting)",
            "# TYPE vllm:kv_cache_usage_perc gauge", "vllm:kv_cache_usage_perc{engine=\"0\",model_name=\"llama\"} \(kv)",
            "# TYPE vllm:request_success_total counter", "vllm:request_success_total{engine=\"0\",finished_reason=\"stop\",model_name=\"llama\"} \(success)",
            "# TYPE vllm:e2e_request_latency_seconds histogram",
        ]
        for (bound, count) in cumulative {
            lines.append("vllm:e2e_request_latency_seconds_bucket{engine=\"0\",le=\"\(bound)\",model_name=\"llama\"} \(count)")
        }
        lines.append("vllm:e2e_request_latency_seconds_sum{engine=\"0\",model_name=\"llama\"} \(observations.reduce(0, +))")
        lines.append("vllm:e2e_request_latency_seconds_count{engine=\"0\",model_name=\"llama\"} \(observations.count)")
        return lines.joined(separator: "\n") + "\n"
    }
}

/// Prometheus' interpolation over buckets, written out independently: rank within the bucket where it falls.
func interpolatedQuantile(_ q: Double, _ values: [Double], bounds: [Double]) -> Double? {
    guard !values.isEmpty else { return nil }
    let rank = q * Double(values.count)
    var previousBound = 0.0, previousCount = 0.0
    for bound in bounds {
        let count = Double(values.filter { $0 <= bound }.count)
        if count >= rank {
            return previousBound + (bound - previousBound) * (rank - previousCount) / max(count - previousCount, 1e-300)
        }
        previousBound = bound
        previousCount = count
    }
    return bounds.last
}

@Suite struct EngineNormalizerTests {
    func parse(_ text: String) throws -> [MetricFamily] { try ExpositionParser.parse(text, format: .text) }

    func value(_ families: [MetricFamily], _ name: String) -> Double? {
        families.first { $0.name == name }?.samples.first?.value
    }

    @Test func vllmGaugesCountersAndLabels() throws {
        let normalizer = EngineNormalizer(windowSeconds: 60)
        var engine = FakeEngine()
        engine.observations = [0.4, 0.9, 1.2]
        let (families, problems) = normalizer.normalize(
            try parse(engine.vllm(waiting: 7, kv: 0.42, success: 3)), namespace: "ml", pod: "vllm-0", time: 1000)
        #expect(problems.isEmpty)
        #expect(value(families, "inference_requests_waiting") == 7)
        #expect(value(families, "inference_requests_running") == 4)
        #expect(value(families, "inference_kv_cache_utilization_ratio") == 0.42)
        #expect(value(families, "inference_requests") == 3)
        let labels = families.first { $0.name == "inference_requests_waiting" }?.samples.first?.labels.map { "\($0.name)=\($0.value)" }
        #expect(labels == ["model_name=llama", "namespace=ml", "pod=vllm-0"])
        let histogram = try #require(families.first { $0.name == "inference_request_duration_seconds" })
        #expect(histogram.kind == .histogram)
        #expect(histogram.samples.filter { $0.suffix == "_bucket" }.count == FakeEngine.bounds.count + 1)
        // One scrape: no window yet, so no percentile (never NaN or 0).
        #expect(value(families, "inference_request_duration_p95_seconds") == nil)
    }

    @Test(arguments: [7, 42, 2026])
    func windowedPercentilesMatchTheExactComputation(seed: UInt64) throws {
        var generator = SeededRandom(seed: seed)
        let normalizer = EngineNormalizer(windowSeconds: 60)
        var engine = FakeEngine()
        engine.observations = (0..<200).map { _ in Double.random(in: 0.1...20, using: &generator) }
        _ = normalizer.normalize(try parse(engine.vllm(waiting: 0, kv: 0.1, success: 200)), namespace: "ml", pod: "p", time: 1000)
        // 30 s later, 150 more requests: the window holds exactly those.
        let fresh = (0..<150).map { _ in Double.random(in: 0.1...60, using: &generator) }
        engine.observations += fresh
        let (families, _) = normalizer.normalize(try parse(engine.vllm(waiting: 0, kv: 0.1, success: 350)), namespace: "ml", pod: "p", time: 1030)
        for (name, q) in [("p50", 0.5), ("p95", 0.95), ("p99", 0.99)] {
            let served = try #require(value(families, "inference_request_duration_\(name)_seconds"))
            let expected = try #require(interpolatedQuantile(q, fresh, bounds: FakeEngine.bounds))
            #expect(abs(served - expected) < 1e-9, "\(name)")
            // And within one bucket of the true sample quantile.
            let exact = fresh.sorted()[min(fresh.count - 1, Int((q * Double(fresh.count)).rounded(.up)) - 1)]
            let bucket = FakeEngine.bounds.first { $0 >= exact } ?? 60
            let lower = FakeEngine.bounds.last { $0 < exact } ?? 0
            #expect(served >= lower - 1e-9 && served <= bucket + 1e-9, "\(name): \(served) vs \(exact)")
        }
    }

    @Test func restartsEmptyWindowsAndBadHistograms() throws {
        let normalizer = EngineNormalizer(windowSeconds: 60)
        var engine = FakeEngine()
        engine.observations = Array(repeating: 0.4, count: 50)
        _ = normalizer.normalize(try parse(engine.vllm(waiting: 0, kv: 0, success: 50)), namespace: "ml", pod: "p", time: 0)
        // A restart: counts start again from a few. They are the increase since the restart, counted from zero
        // (as rate() does), never a negative one: two requests in (2, 2.5], p50 at rank 1 → 2 + 0.5 × 1 / 2.
        engine.observations = [2.2, 2.4]
        let (afterRestart, _) = normalizer.normalize(try parse(engine.vllm(waiting: 0, kv: 0, success: 2)), namespace: "ml", pod: "p", time: 10)
        #expect(value(afterRestart, "inference_request_duration_p50_seconds") == 2.25)
        engine.observations += [0.4]
        let (next, _) = normalizer.normalize(try parse(engine.vllm(waiting: 0, kv: 0, success: 3)), namespace: "ml", pod: "p", time: 20)
        // Three requests since the restart, one in (0.3, 0.5] and two in (2, 2.5]: p50 at rank 1.5 → 2 + 0.5 × 0.5 / 2.
        #expect(value(next, "inference_request_duration_p50_seconds") == 2.125)
        // No new requests in the window: no value.
        let (idle, _) = normalizer.normalize(try parse(engine.vllm(waiting: 0, kv: 0, success: 3)), namespace: "ml", pod: "p", time: 200)
        #expect(value(idle, "inference_request_duration_p50_seconds") == nil)

        // Buckets that decrease with le, and a missing +Inf: refused, the rest of the target still normalized.
        let broken = """
            # TYPE vllm:num_requests_waiting gauge
            vllm:num_requests_waiting{model_name="m"} 2
            # TYPE vllm:e2e_request_latency_seconds histogram
            vllm:e2e_request_latency_seconds_bucket{le="1.0",model_name="m"} 5
            vllm:e2e_request_latency_seconds_bucket{le="2.0",model_name="m"} 3
            vllm:e2e_request_latency_seconds_bucket{le="+Inf",model_name="m"} 6
            vllm:e2e_request_latency_seconds_sum{model_name="m"} 1
            vllm:e2e_request_latency_seconds_count{model_name="m"} 6
            # TYPE vllm:time_to_first_token_seconds histogram
            vllm:time_to_first_token_seconds_bucket{le="1.0",model_name="m"} 5
            vllm:time_to_first_token_seconds_sum{model_name="m"} 1
            vllm:time_to_first_token_seconds_count{model_name="m"} 5
            # TYPE vllm:kv_cache_usage_perc gauge
            vllm:kv_cache_usage_perc{model_name="m"} 87
            """
        let (families, problems) = normalizer.normalize(try parse(broken), namespace: "ml", pod: "q", time: 0)
        #expect(value(families, "inference_requests_waiting") == 2)
        #expect(families.first { $0.name == "inference_request_duration_seconds" } == nil)
        #expect(problems.count == 3)  // non-monotonic, no +Inf, a ratio of 87
        #expect(value(families, "accel_exporter_inference_rejected_series") == 3)
    }

    @Test func tritonMeansFromCounterDeltasAndUnknownServers() throws {
        let normalizer = EngineNormalizer()
        func triton(_ success: Int, _ micros: Int, _ queue: Int) -> String {
            """
            # HELP nv_inference_request_success Number of successful inference requests
            # TYPE nv_inference_request_success counter
            nv_inference_request_success{model="resnet",version="1"} \(success)
            # TYPE nv_inference_request_duration_us counter
            nv_inference_request_duration_us{model="resnet",version="1"} \(micros)
            # TYPE nv_inference_queue_duration_us counter
            nv_inference_queue_duration_us{model="resnet",version="1"} \(queue)
            # TYPE nv_inference_pending_request_count gauge
            nv_inference_pending_request_count{model="resnet",version="1"} 3

            """
        }
        let (first, _) = normalizer.normalize(try parse(triton(100, 5_000_000, 1_000_000)), namespace: "ml", pod: "t", time: 0)
        #expect(value(first, "inference_request_duration_mean_seconds") == nil)  // lifetime averages are not served
        #expect(value(first, "inference_requests_waiting") == 3)
        let (second, _) = normalizer.normalize(try parse(triton(150, 7_500_000, 1_250_000)), namespace: "ml", pod: "t", time: 10)
        // 2.5 s over 50 requests; 0.25 s of queueing over 50.
        #expect(value(second, "inference_request_duration_mean_seconds") == 0.05)
        #expect(value(second, "inference_queue_time_mean_seconds") == 0.005)
        let model = second.first { $0.name == "inference_requests_waiting" }?.samples.first?.labels.first { $0.name == "model_name" }?.value
        #expect(model == "resnet")

        let (unknown, problems) = normalizer.normalize(try parse("# TYPE up gauge\nup 1\n"), namespace: "ml", pod: "x", time: 0)
        #expect(unknown.isEmpty)
        #expect(problems == ["no vLLM, SGLang, TGI or Triton metrics found"])
    }
}

@Suite struct OtherEngineTests {
    func value(_ families: [MetricFamily], _ name: String) -> Double? {
        families.first { $0.name == name }?.samples.first?.value
    }

    @Test func sglang() throws {
        let text = """
            # TYPE sglang:num_running_reqs gauge
            sglang:num_running_reqs{model_name="qwen"} 12
            # TYPE sglang:num_queue_reqs gauge
            sglang:num_queue_reqs{model_name="qwen"} 5
            # TYPE sglang:token_usage gauge
            sglang:token_usage{model_name="qwen"} 0.75
            # TYPE sglang:time_to_first_token_seconds histogram
            sglang:time_to_first_token_seconds_bucket{le="0.1",model_name="qwen"} 4
            sglang:time_to_first_token_seconds_bucket{le="+Inf",model_name="qwen"} 5
            sglang:time_to_first_token_seconds_sum{model_name="qwen"} 0.9
            sglang:time_to_first_token_seconds_count{model_name="qwen"} 5

            """
        let (families, problems) = EngineNormalizer().normalize(
            try ExpositionParser.parse(text, format: .text), namespace: "llm", pod: "sg", time: 0)
        #expect(problems.isEmpty)
        #expect(value(families, "inference_requests_running") == 12)
        #expect(value(families, "inference_requests_waiting") == 5)
        #expect(value(families, "inference_kv_cache_utilization_ratio") == 0.75)
        #expect(families.contains { $0.name == "inference_time_to_first_token_seconds" })
    }

    @Test func tgiHasNoModelLabel() throws {
        let text = """
            # TYPE tgi_queue_size gauge
            tgi_queue_size 6
            # TYPE tgi_batch_current_size gauge
            tgi_batch_current_size 16
            # TYPE tgi_request_success counter
            tgi_request_success 120
            # TYPE tgi_request_duration histogram
            tgi_request_duration_bucket{le="1.0"} 100
            tgi_request_duration_bucket{le="+Inf"} 120
            tgi_request_duration_sum 90
            tgi_request_duration_count 120

            """
        let (families, problems) = EngineNormalizer().normalize(
            try ExpositionParser.parse(text, format: .text), namespace: "llm", pod: "tgi-0", time: 0)
        #expect(problems.isEmpty)
        #expect(value(families, "inference_requests_waiting") == 6)
        #expect(value(families, "inference_requests_running") == 16)
        #expect(value(families, "inference_requests") == 120)
        let labels = families.first { $0.name == "inference_requests_waiting" }?.samples.first?.labels.map(\.name)
        #expect(labels == ["model_name", "namespace", "pod"])
        #expect(families.contains { $0.name == "inference_request_duration_seconds" })
    }
}
