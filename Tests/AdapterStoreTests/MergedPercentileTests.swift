import AccelMetricsTesting
@testable import AdapterStore
import CustomMetricsAPI
import Exposition
import Testing

@Suite struct MergedPercentileTests {
    @Test func histogramQuantileFollowsPrometheus() {
        let buckets: [Double: Double] = [0.1: 5, 0.5: 10, 1: 12, 2.5: 16, 5: 19.6, .infinity: 20]
        // rank 10 → the (0.1, 0.5] bucket holds ranks 5..10: its upper bound.
        #expect(HistogramQuantile.quantile(0.5, buckets: buckets) == 0.5)
        // rank 15 → (1, 2.5]: 1 + 1.5 × (15 − 12) / 4.
        #expect(HistogramQuantile.quantile(0.75, buckets: buckets) == 2.125)
        // rank 2.5 → the first bucket, interpolated from 0: 0.1 × 2.5 / 5.
        #expect(HistogramQuantile.quantile(0.125, buckets: buckets) == 0.05)
        // rank 19.9 → +Inf: the largest finite bound.
        #expect(HistogramQuantile.quantile(0.995, buckets: buckets) == 5)
        // No +Inf bucket, no observations, a bad q: no value.
        #expect(HistogramQuantile.quantile(0.5, buckets: [0.1: 1, 1: 2]) == nil)
        #expect(HistogramQuantile.quantile(0.5, buckets: [0.1: 0, .infinity: 0]) == nil)
        #expect(HistogramQuantile.quantile(1.5, buckets: buckets) == nil)
        // Counts that dip are raised to the running maximum: [4, 3→4, 8] — rank 4 lands in the first bucket.
        #expect(HistogramQuantile.quantile(0.5, buckets: [1: 4, 2: 3, .infinity: 8]) == 1)
    }

    /// Two vLLM pods; cumulative bucket counts at t0 and t0 + 10 s.
    static func exposition(time: Double, a: [Double], b: [Double]) -> String {
        let bounds = ["0.1", "0.5", "1.0", "2.5", "5.0", "+Inf"]
        var lines = ["# TYPE inference_request_duration_seconds histogram"]
        for (pod, counts) in [("vllm-a", a), ("vllm-b", b)] {
            for (bound, count) in zip(bounds, counts) {
                lines.append("inference_request_duration_seconds_bucket{le=\"\(bound)\",model_name=\"m\",namespace=\"llm\",pod=\"\(pod)\"} \(count)")
            }
            lines.append("inference_request_duration_seconds_sum{model_name=\"m\",namespace=\"llm\",pod=\"\(pod)\"} 0")
            lines.append("inference_request_duration_seconds_count{model_name=\"m\",namespace=\"llm\",pod=\"\(pod)\"} \(counts.last!)")
        }
        lines += ["# TYPE accel_exporter_last_sample_timestamp_seconds gauge", "accel_exporter_last_sample_timestamp_seconds \(time)", ""]
        return lines.joined(separator: "\n")
    }

    @Test func workloadPercentilesComeFromMergedBuckets() throws {
        let clock = TestClock(1_800_000_000)
        let api = MetricsAPI(
            store: MetricStore(maxAgeSeconds: 30, clock: { clock.now }), catalog: MetricCatalog(MetricDefinition.builtIn),
            podLabels: StaticPodLabels([PodKey(namespace: "llm", name: "vllm-a"): ["app": "vllm"],
                                        PodKey(namespace: "llm", name: "vllm-b"): ["app": "vllm"]]))
        func ingest(_ a: [Double], _ b: [Double]) throws {
            let families = try ExpositionParser.parse(Self.exposition(time: clock.now, a: a, b: b), format: .text)
            api.store.update(TargetData(target: "n1:9445", parsed: families, keeping: api.catalog.families,
                                        scrapeTime: clock.now, fallbackNode: "n1"), rateCounters: api.catalog.rateCounters)
        }
        func external(_ metric: String) throws -> String? {
            try api.answer(ExternalMetricRequest(namespace: "llm", metricName: metric, metricSelector: try LabelSelector(parsing: "app=vllm")))
                .items.first?.value.description
        }
        try ingest([1000, 1000, 1000, 1000, 1000, 1000], [7, 7, 7, 7, 7, 7])
        // One sample: no window yet, no value (never 0).
        #expect(try external("inference_latency_p95_seconds") == nil)
        clock.advance(10)
        // Increases over 10 s — a: 50, 90, 100, 100, 100, 100; b: 0, 10, 20, 60, 96, 100.
        try ingest([1050, 1090, 1100, 1100, 1100, 1100], [7, 17, 27, 67, 103, 107])
        // Merged rates: 5, 10, 12, 16, 19.6, 20 per second. p95: rank 19 in (2.5, 5]: 2.5 + 2.5 × 3 / 3.6.
        #expect(try external("inference_latency_p95_seconds") == "4583m")
        #expect(try external("inference_latency_p50_seconds") == "500m")
        // The Namespace object reads the same merged buckets.
        let namespace = try api.answer(CustomMetricRequest(
            version: .v1beta2, namespace: nil, resource: .namespaces, objects: .named("llm"), metricName: "inference_latency_p95_seconds"))
        #expect(namespace.items.first?.value.description == "4583m")
        // Idle window: the counters stop moving and the window empties of increases — no value.
        clock.advance(10)
        try ingest([1050, 1090, 1100, 1100, 1100, 1100], [7, 17, 27, 67, 103, 107])
        #expect(try external("inference_latency_p95_seconds") == "4583m")  // still 20 s of window, 10 s of traffic
        clock.advance(65)
        try ingest([1050, 1090, 1100, 1100, 1100, 1100], [7, 17, 27, 67, 103, 107])
        #expect(try external("inference_latency_p95_seconds") == nil)
    }
}
