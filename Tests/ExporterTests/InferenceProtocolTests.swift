import Accelerators
import AccelMetricsTesting
@testable import Exporter
import Exposition
import Foundation
import Inference
import ScrapeClient
import Testing

/// Servers that follow the Gateway API Inference Extension's model-server protocol under names of their own: the
/// queue, running and KV-cache gauges named per server (pod annotations, or `;key=value` options of
/// `--inference.targets`), as the inference gateway's endpoint picker is configured.
@Suite(.serialized) struct InferenceProtocolTests {
    /// A server that is none of the known engines. The names are arbitrary on purpose: they come from the
    /// configuration, not from any engine.
    static func acme(queue: Double, running: Double, kvPercent: Double) -> String {
        """
        # HELP acme_queue_length Requests waiting for a batch slot.
        # TYPE acme_queue_length gauge
        acme_queue_length{model="mistral-7b"} \(queue)
        # HELP acme_active_requests Requests in the running batch.
        # TYPE acme_active_requests gauge
        acme_active_requests{model="mistral-7b"} \(running)
        # HELP acme_kv_cache_percent KV cache in use, percent.
        # TYPE acme_kv_cache_percent gauge
        acme_kv_cache_percent{model="mistral-7b"} \(kvPercent)
        # TYPE process_resident_memory_bytes gauge
        process_resident_memory_bytes 1.2e+09

        """
    }

    static let acmeOptions = ";queued-metric=acme_queue_length;running-metric=acme_active_requests;kv-cache-metric=acme_kv_cache_percent"
        + ";kv-cache-scale=0.01;model-label=model"

    static func value(_ families: [MetricFamily], _ name: String, pod: String) -> Double? {
        InferenceBadInputTests.value(families, name, pod: pod)
    }

    @Test func optionsParse() throws {
        let names = try #require(try CustomMetricNames.parse([
            ("queued-metric", "acme_queue_length"), ("kv-cache-metric", " acme:kv "), ("kv-cache-scale", "0.01"), ("model-label", "model"),
        ]))
        #expect(names == CustomMetricNames(queued: "acme_queue_length", kvCache: "acme:kv", kvCacheScale: 0.01, modelLabel: "model"))
        #expect(try CustomMetricNames.parse([]) == nil)
    }

    @Test(arguments: [
        ([("queued-metric", "2fast")], "queued-metric"),
        ([("queued-metric", "")], "queued-metric"),
        ([("running-metric", "a b")], "running-metric"),
        ([("kv-cache-metric", "kv"), ("kv-cache-scale", "0")], "kv-cache-scale"),
        ([("kv-cache-metric", "kv"), ("kv-cache-scale", "percent")], "kv-cache-scale"),
        ([("queued-metric", "q"), ("kv-cache-scale", "0.01")], "kv-cache-scale"),
        ([("model-label", "model")], "needs at least one"),
        ([("queued-metric", "q"), ("model-label", "mo-del")], "model-label"),
        ([("queue-metric", "q")], "unknown option"),
    ])
    func badOptionsAreRefusedByName(options: [(String, String)], mentions: String) {
        #expect {
            try CustomMetricNames.parse(options.map { (key: $0.0, value: $0.1) })
        } throws: { error in
            "\(error)".contains(mentions)
        }
    }

    @Test func targetListOptions() throws {
        let targets = try InferenceTarget.parseList(
            "ml/acme=http://10.0.0.5:8000/metrics\(Self.acmeOptions), ml/vllm=http://10.0.0.6:8000/metrics")
        #expect(targets.map(\.url.description) == ["http://10.0.0.5:8000/metrics", "http://10.0.0.6:8000/metrics"])
        #expect(targets[0].metricNames == CustomMetricNames(
            queued: "acme_queue_length", running: "acme_active_requests", kvCache: "acme_kv_cache_percent", kvCacheScale: 0.01,
            modelLabel: "model"))
        #expect(targets[1].metricNames == nil)
        for bad in ["ml/a=http://h/metrics;queued-metric", "ml/a=http://h/metrics;kv-cache-scale=0.01", "ml/a=http://h/metrics;queued-metric=1x"] {
            #expect(throws: ScrapeError.self, "\(bad)") { try InferenceTarget.parseList(bad) }
        }
    }

    @Test func annotations() {
        let base = ["inference.accelmetrics.io/scrape": "true", "inference.accelmetrics.io/port": "8000"]
        let pods = [
            InferenceDiscoveryTests.entry("acme", annotations: base.merging([
                "inference.accelmetrics.io/queued-metric": "acme_queue_length",
                "inference.accelmetrics.io/running-metric": "acme_active_requests",
                "inference.accelmetrics.io/kv-cache-metric": "acme_kv_cache_percent",
                "inference.accelmetrics.io/kv-cache-scale": "0.01",
            ]) { $1 }),
            InferenceDiscoveryTests.entry("probed", annotations: [
                "prometheus.io/scrape": "true", "prometheus.io/port": "8000", "inference.accelmetrics.io/queued-metric": "q",
            ]),
            InferenceDiscoveryTests.entry("typo", annotations: base.merging(["inference.accelmetrics.io/kv-cache-scale": "1%"]) { $1 }),
            InferenceDiscoveryTests.entry("plain", annotations: base),
        ]
        let targets = Dictionary(uniqueKeysWithValues: InferenceDiscovery.targets(pods).map { ($0.pod, $0) })
        #expect(targets["acme"]?.metricNames == CustomMetricNames(
            queued: "acme_queue_length", running: "acme_active_requests", kvCache: "acme_kv_cache_percent", kvCacheScale: 0.01))
        #expect(targets["acme"]?.configurationProblem == nil)
        #expect(targets["probed"]?.metricNames?.queued == "q")
        #expect(targets["probed"]?.probe == true)
        // A scale without a metric, or that is not a number: a target reported down with the reason, never a guess.
        #expect(targets["typo"]?.metricNames == nil)
        #expect(targets["typo"]?.configurationProblem?.contains("inference.accelmetrics.io/kv-cache-scale") == true)
        #expect(targets["plain"]?.metricNames == nil && targets["plain"]?.configurationProblem == nil)
    }

    @Test func customNamesThroughTheScrapePath() throws {
        let acme = try FakeModelServer()
        let percent = try FakeModelServer()
        let vllm = try FakeModelServer()
        let missing = try FakeModelServer()
        defer { for server in [acme, percent, vllm, missing] { server.stop() } }
        acme.serve(Self.acme(queue: 3, running: 10, kvPercent: 37.5))
        percent.serve(Self.acme(queue: 8, running: 16, kvPercent: 92.5))
        // vLLM behind a router that keeps the real queue: the configured gauge wins over vllm:num_requests_waiting.
        let model = "meta-llama/Llama-3.1-8B-Instruct"
        let vllmText = try InferenceEnginesEndToEndTests.text("vllm", "t1.prom")
        vllm.serve(vllmText + "# TYPE router_queue_depth gauge\nrouter_queue_depth{model_name=\"\(model)\"} 11\n")
        missing.serve("# TYPE node_load1 gauge\nnode_load1 0.5\n")
        var targets = try InferenceTarget.parseList(
            "llm/acme=\(acme.url)\(Self.acmeOptions),"
                + "llm/percent=\(percent.url);queued-metric=acme_queue_length;kv-cache-metric=acme_kv_cache_percent;model-label=model,"
                + "llm/vllm=\(vllm.url);queued-metric=router_queue_depth,"
                + "llm/missing=\(missing.url);queued-metric=acme_queue_length")
        targets.append(InferenceTarget(
            namespace: "llm", pod: "misconfigured", url: try ScrapeURL(parsing: acme.url),
            configurationProblem: "annotation inference.accelmetrics.io/kv-cache-scale: \"1%\" is not a positive number"))
        let source = InferenceSource(
            targets: targets, normalizer: EngineInferenceNormalizer(windowSeconds: 60), timeoutSeconds: 5, clock: { 1_750_000_000 })
        let families = source.sample(now: .now()).families
        func up(_ pod: String) -> Double? { Self.value(families, "accel_exporter_inference_target_up", pod: pod) }

        // acme: the three gauges from the configured names, the percent scaled to a ratio, the model from `model`.
        #expect(up("acme") == 1)
        #expect(Self.value(families, "inference_requests_waiting", pod: "acme") == 3)
        #expect(Self.value(families, "inference_requests_running", pod: "acme") == 10)
        #expect(Self.value(families, "inference_kv_cache_utilization_ratio", pod: "acme") == 0.375)
        let labels = families.first { $0.name == "inference_requests_waiting" }?.samples.first { $0.labels.contains(Label("pod", "acme")) }?.labels
        #expect(labels == [Label("model_name", "mistral-7b"), Label("namespace", "llm"), Label("pod", "acme")])

        // percent: no scale given, so 92.5 is not a ratio: refused and counted; the queue still served; no
        // running gauge was named, so none is made up.
        #expect(up("percent") == 1)
        #expect(Self.value(families, "accel_exporter_inference_rejected_series", pod: "percent") == 1)
        #expect(Self.value(families, "inference_kv_cache_utilization_ratio", pod: "percent") == nil)
        #expect(Self.value(families, "inference_requests_waiting", pod: "percent") == 8)
        #expect(Self.value(families, "inference_requests_running", pod: "percent") == nil)

        // vllm: the custom queue wins; everything else is still vLLM's.
        let scrape = FixtureScrape(vllmText)
        #expect(Self.value(families, "inference_requests_waiting", pod: "vllm") == 11)
        #expect(Self.value(families, "inference_requests_running", pod: "vllm") == scrape.sum("vllm:num_requests_running", by: nil)[""])
        #expect(Self.value(families, "inference_requests", pod: "vllm") == scrape.sum("vllm:request_success_total", by: nil)[""])
        #expect(families.first { $0.name == "inference_requests_waiting" }!.samples.filter { $0.labels.contains(Label("pod", "vllm")) }.count == 1)

        // None of the configured names served, and no known engine; or annotations that cannot be used: down.
        #expect(up("missing") == 0)
        #expect(up("misconfigured") == 0)
        #expect(Self.value(families, "inference_requests_waiting", pod: "misconfigured") == nil)
    }

    /// The exporter binary with a custom mapping on --inference.targets, and a bad option refused at start.
    @Test(.tags(.endToEnd), .endToEndEnabled) func throughTheExporterBinary() throws {
        let acme = try FakeModelServer()
        defer { acme.stop() }
        acme.serve(Self.acme(queue: 4, running: 12, kvPercent: 62.5))
        let exporter = try ExporterProcess(
            tree: nil,
            arguments: ["--no-collector.amdgpu", "--no-collector.hwmon", "--no-collector.nvidia", "--collect.interval", "200ms",
                        "--inference.targets", "llm/acme-0=\(acme.url)\(Self.acmeOptions)"])
        defer { exporter.stop() }
        let series = "{model_name=\"mistral-7b\",namespace=\"llm\",pod=\"acme-0\"}"
        let text = try exporter.waitForMetrics { $0.contains("inference_requests_waiting\(series) 4") }
        #expect(text.contains("inference_requests_running\(series) 12"))
        #expect(text.contains("inference_kv_cache_utilization_ratio\(series) 0.625"))
        #expect(text.contains("accel_exporter_inference_target_up{namespace=\"llm\",pod=\"acme-0\"} 1"))
        let (out, err, status) = try runProgramCapturingBytes(EndToEndTests.promtool, ["check", "metrics"], stdin: Data(text.utf8))
        #expect(status == 0, "\(String(decoding: out, as: UTF8.self)) \(err)")

        let (_, refusal, code) = try runProgramCapturingBytes(
            PackagePaths.product("accel-exporter"),
            ["--web.listen-address", "127.0.0.1:0", "--inference.targets", "llm/acme-0=\(acme.url);kv-cache-scale=percent"], timeout: 20)
        #expect(code != 0)
        #expect(refusal.contains("--inference.targets") && refusal.contains("kv-cache-scale"), "\(refusal)")
    }
}
