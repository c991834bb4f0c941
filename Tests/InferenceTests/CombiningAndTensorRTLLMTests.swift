import Exposition
import Inference
import Testing

/// Series that collapse onto one schema series, and Triton's TensorRT-LLM gauges (UNVERIFIED names, read only in
/// their documented shape).
@Suite struct CombiningAndTensorRTLLMTests {
    func normalize(_ text: String, custom: CustomMetricNames? = nil) throws -> (families: [MetricFamily], problems: [String]) {
        EngineNormalizer().normalize(try ExpositionParser.parse(text, format: .text), namespace: "llm", pod: "p", time: 0, custom: custom)
    }

    func values(_ families: [MetricFamily], _ name: String) -> [String: Double] {
        var out: [String: Double] = [:]
        for sample in families.first(where: { $0.name == name })?.samples ?? [] where sample.suffix.isEmpty {
            out[sample.labels.first { $0.name == "model_name" }!.value] = sample.value
        }
        return out
    }

    /// vLLM with two data-parallel engines for one model: one schema series each — queue and running added, the
    /// fullest KV cache, lifetime counters added over engines and finish reasons, buckets added by `le`.
    @Test func vllmEnginesOfOneModel() throws {
        let (families, problems) = try normalize("""
            # TYPE vllm:num_requests_waiting gauge
            vllm:num_requests_waiting{engine="0",model_name="m"} 3
            vllm:num_requests_waiting{engine="1",model_name="m"} 4
            # TYPE vllm:kv_cache_usage_perc gauge
            vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.5
            vllm:kv_cache_usage_perc{engine="1",model_name="m"} 0.75
            # TYPE vllm:request_success_total counter
            vllm:request_success_total{engine="0",finished_reason="stop",model_name="m"} 10
            vllm:request_success_total{engine="0",finished_reason="length",model_name="m"} 2
            vllm:request_success_total{engine="1",finished_reason="stop",model_name="m"} 5
            # TYPE vllm:e2e_request_latency_seconds histogram
            vllm:e2e_request_latency_seconds_bucket{engine="0",le="1.0",model_name="m"} 1
            vllm:e2e_request_latency_seconds_bucket{engine="0",le="+Inf",model_name="m"} 4
            vllm:e2e_request_latency_seconds_sum{engine="0",model_name="m"} 9
            vllm:e2e_request_latency_seconds_count{engine="0",model_name="m"} 4
            vllm:e2e_request_latency_seconds_bucket{engine="1",le="1.0",model_name="m"} 2
            vllm:e2e_request_latency_seconds_bucket{engine="1",le="+Inf",model_name="m"} 3
            vllm:e2e_request_latency_seconds_sum{engine="1",model_name="m"} 4
            vllm:e2e_request_latency_seconds_count{engine="1",model_name="m"} 3

            """)
        #expect(problems.isEmpty)
        #expect(values(families, "inference_requests_waiting") == ["m": 7])
        #expect(values(families, "inference_kv_cache_utilization_ratio") == ["m": 0.75])
        #expect(values(families, "inference_requests") == ["m": 17])
        let histogram = try #require(families.first { $0.name == "inference_request_duration_seconds" })
        let buckets = histogram.samples.filter { $0.suffix == "_bucket" }.map { "\($0.labels.first { $0.name == "le" }!.value)=\($0.value)" }
        #expect(buckets.sorted() == ["+Inf=7.0", "1.0=3.0"])
        #expect(histogram.samples.first { $0.suffix == "_sum" }?.value == 13)
        #expect(histogram.samples.first { $0.suffix == "_count" }?.value == 7)
    }

    /// Two series of one model whose buckets differ cannot be added: refused, with the reason.
    @Test func differentBucketLayoutsAreRefused() throws {
        let (families, problems) = try normalize("""
            # TYPE vllm:e2e_request_latency_seconds histogram
            vllm:e2e_request_latency_seconds_bucket{engine="0",le="1.0",model_name="m"} 1
            vllm:e2e_request_latency_seconds_bucket{engine="0",le="+Inf",model_name="m"} 4
            vllm:e2e_request_latency_seconds_bucket{engine="1",le="2.0",model_name="m"} 2
            vllm:e2e_request_latency_seconds_bucket{engine="1",le="+Inf",model_name="m"} 3

            """)
        #expect(families.first { $0.name == "inference_request_duration_seconds" } == nil)
        #expect(problems.count == 1 && problems[0].contains("different bucket layouts"), "\(problems)")
    }

    static func triton(requestTypes: [String: Double], blocks: [String: Double], pending: Double = 2) -> String {
        var lines = [
            "# TYPE nv_inference_pending_request_count gauge",
            "nv_inference_pending_request_count{model=\"tensorrt_llm\",version=\"1\"} \(pending)",
            "# TYPE nv_trt_llm_request_metrics gauge",
        ]
        for (type, value) in requestTypes.sorted(by: { $0.key < $1.key }) {
            lines.append("nv_trt_llm_request_metrics{model=\"tensorrt_llm\",request_type=\"\(type)\",version=\"1\"} \(value)")
        }
        lines.append("# TYPE nv_trt_llm_kv_cache_block_metrics gauge")
        for (type, value) in blocks.sorted(by: { $0.key < $1.key }) {
            lines.append("nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type=\"\(type)\",model=\"tensorrt_llm\",version=\"1\"} \(value)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    @Test func tensorRTLLMGauges() throws {
        // No fraction: used / max blocks. No `waiting` type: Triton's own pending count stays the queue. Types
        // that mean nothing here (context, scheduled, max, tokens_per) are ignored.
        let (families, problems) = try normalize(Self.triton(
            requestTypes: ["active": 9, "context": 2, "scheduled": 9, "max": 64], blocks: ["used": 1024, "max": 4096, "tokens_per": 64]))
        #expect(problems.isEmpty)
        #expect(values(families, "inference_requests_running") == ["tensorrt_llm": 9])
        #expect(values(families, "inference_requests_waiting") == ["tensorrt_llm": 2])
        #expect(values(families, "inference_kv_cache_utilization_ratio") == ["tensorrt_llm": 0.25])

        // The backend's own queue, when it reports one, replaces Triton's (which it drains at once): never added.
        let (withQueue, _) = try normalize(Self.triton(requestTypes: ["active": 9, "waiting": 5], blocks: ["fraction": 0.5, "used": 1, "max": 4]))
        #expect(values(withQueue, "inference_requests_waiting") == ["tensorrt_llm": 5])
        #expect(values(withQueue, "inference_kv_cache_utilization_ratio") == ["tensorrt_llm": 0.5])
    }

    @Test(arguments: [
        (["fraction": 1.5], "outside 0..1"),
        (["used": 5000, "max": 4096], "outside 0..1"),
    ])
    func tensorRTLLMOutOfRange(blocks: [String: Double], reason: String) throws {
        let (families, problems) = try normalize(Self.triton(requestTypes: ["active": -1], blocks: blocks))
        #expect(values(families, "inference_kv_cache_utilization_ratio").isEmpty)
        #expect(values(families, "inference_requests_running").isEmpty)
        #expect(problems.count == 2, "\(problems)")
        #expect(problems.contains { $0.contains(reason) })
        // The rest of the server is still served.
        #expect(values(families, "inference_requests_waiting") == ["tensorrt_llm": 2])
    }

    /// Configured names win over the TensorRT-LLM gauges too.
    @Test func customNamesWinOverTensorRTLLM() throws {
        let text = Self.triton(requestTypes: ["active": 9, "waiting": 5], blocks: ["fraction": 0.5])
            + "# TYPE gateway_queue gauge\ngateway_queue{model=\"tensorrt_llm\"} 12\n"
        let (families, problems) = try normalize(text, custom: CustomMetricNames(queued: "gateway_queue"))
        #expect(problems.isEmpty)
        #expect(values(families, "inference_requests_waiting") == ["tensorrt_llm": 12])
        #expect(values(families, "inference_requests_running") == ["tensorrt_llm": 9])
    }
}
