import AccelMetricsTesting
@testable import AdapterStore
import CustomMetricsAPI
import Exposition
import Testing

/// The inference rows from exporter-normalized `inference_*` series: values worked out by hand.
@Suite struct InferenceMetricsTests {
    /// Two vLLM pods of one workload and a TGI pod; `requests` is the lifetime counter at this sample.
    static func exposition(time: Double, requests: [String: Double]) -> String {
        func labels(_ pod: String, _ model: String) -> String { "model_name=\"\(model)\",namespace=\"llm\",pod=\"\(pod)\"" }
        return """
            # TYPE inference_requests_waiting gauge
            inference_requests_waiting{\(labels("vllm-0", "llama"))} 4
            inference_requests_waiting{\(labels("vllm-1", "llama"))} 10
            inference_requests_waiting{\(labels("tgi-0", "mistral"))} 1
            # TYPE inference_requests_running gauge
            inference_requests_running{\(labels("vllm-0", "llama"))} 8
            inference_requests_running{\(labels("vllm-1", "llama"))} 8
            # TYPE inference_kv_cache_utilization_ratio gauge
            inference_kv_cache_utilization_ratio{\(labels("vllm-0", "llama"))} 0.5
            inference_kv_cache_utilization_ratio{\(labels("vllm-1", "llama"))} 0.9
            # TYPE inference_request_duration_p95_seconds gauge
            inference_request_duration_p95_seconds{\(labels("vllm-0", "llama"))} 1.25
            inference_request_duration_p95_seconds{\(labels("vllm-0", "lora-a"))} 2.5
            # TYPE inference_requests_total counter
            inference_requests_total{\(labels("vllm-0", "llama"))} \(requests["vllm-0"] ?? 0)
            inference_requests_total{\(labels("vllm-1", "llama"))} \(requests["vllm-1"] ?? 0)
            # TYPE accel_exporter_last_sample_timestamp_seconds gauge
            accel_exporter_last_sample_timestamp_seconds \(time)

            """
    }

    let clock = TestClock(1_800_000_000)
    let api: MetricsAPI

    init() {
        let clock = self.clock
        api = MetricsAPI(
            store: MetricStore(maxAgeSeconds: 30, rateWindowSeconds: 60, clock: { clock.now }),
            catalog: MetricCatalog(MetricDefinition.builtIn),
            podLabels: StaticPodLabels([
                PodKey(namespace: "llm", name: "vllm-0"): ["app": "vllm"], PodKey(namespace: "llm", name: "vllm-1"): ["app": "vllm"],
                PodKey(namespace: "llm", name: "tgi-0"): ["app": "tgi"],
            ]))
    }

    func ingest(time: Double, requests: [String: Double]) throws {
        let families = try ExpositionParser.parse(Self.exposition(time: time, requests: requests), format: .text)
        api.store.update(
            TargetData(target: "n1:9445", parsed: families, keeping: api.catalog.families, scrapeTime: time, fallbackNode: "n1"),
            rateCounters: api.catalog.rateCounters)
    }

    func pods(_ metric: String) throws -> [String: String] {
        let list = try api.answer(CustomMetricRequest(
            version: .v1beta2, namespace: "llm", resource: .pods, objects: .all(labelSelector: .everything), metricName: metric))
        return Dictionary(uniqueKeysWithValues: list.items.map { ($0.describedObject.name, $0.value.description) })
    }

    func external(_ metric: String, _ selector: String) throws -> String? {
        try api.answer(ExternalMetricRequest(namespace: "llm", metricName: metric, metricSelector: try LabelSelector(parsing: selector)))
            .items.first?.value.description
    }

    @Test func gaugesPerPodAndPerWorkload() throws {
        try ingest(time: clock.now, requests: [:])
        #expect(try pods("inference_queue_depth") == ["vllm-0": "4", "vllm-1": "10", "tgi-0": "1"])
        // The workload's queue: 4 + 10.
        #expect(try external("inference_queue_depth", "app=vllm") == "14")
        // KV cache: 50 % and 90 %; the workload averages its pods: 70 %.
        #expect(try pods("inference_kv_cache_utilization") == ["vllm-0": "50", "vllm-1": "90"])
        #expect(try external("inference_kv_cache_utilization", "app=vllm") == "70")
        // The slowest model in the pod.
        #expect(try pods("inference_latency_p95_seconds") == ["vllm-0": "2500m"])
        // A workload's percentile is never an average of the pods' percentiles: it needs their histogram buckets,
        // which this exposition does not carry, so there is no value.
        #expect(try external("inference_latency_p95_seconds", "app=vllm") == nil)
    }

    @Test func requestRatesFromCounterDeltasWithResets() throws {
        try ingest(time: clock.now, requests: ["vllm-0": 100, "vllm-1": 50])
        // One sample: no rate yet.
        #expect(try pods("inference_requests_per_second").isEmpty)
        clock.advance(10)
        try ingest(time: clock.now, requests: ["vllm-0": 150, "vllm-1": 70])
        // (150 − 100) / 10 and (70 − 50) / 10.
        #expect(try pods("inference_requests_per_second") == ["vllm-0": "5", "vllm-1": "2"])
        clock.advance(10)
        // vllm-1 restarted: its counter starts from 0 again and counts 30 requests.
        try ingest(time: clock.now, requests: ["vllm-0": 200, "vllm-1": 30])
        // vllm-0: 100 over 20 s; vllm-1: (20 + 30) over 20 s.
        #expect(try pods("inference_requests_per_second") == ["vllm-0": "5", "vllm-1": "2500m"])
        #expect(try external("inference_requests_per_second", "app=vllm") == "7500m")
        // The same sample seen again changes nothing.
        try ingest(time: clock.now, requests: ["vllm-0": 200, "vllm-1": 30])
        #expect(try pods("inference_requests_per_second") == ["vllm-0": "5", "vllm-1": "2500m"])
        // Samples older than the window (60 s) leave it.
        clock.advance(70)
        try ingest(time: clock.now, requests: ["vllm-0": 270, "vllm-1": 100])
        #expect(try pods("inference_requests_per_second").isEmpty)
    }
}
