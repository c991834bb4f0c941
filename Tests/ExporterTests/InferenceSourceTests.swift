import Accelerators
import AccelMetricsTesting
@testable import Exporter
@testable import Inference
import Exposition
import Foundation
import HTTPServer
import Logging
import ScrapeClient
import Synchronization
import Testing

/// Records what it was given and labels every sample with the target.
final class RecordingNormalizer: InferenceNormalizer, @unchecked Sendable {
    // @unchecked: only the test thread and the source's (serial) sample call touch it.
    var seen: [String: [String]] = [:]
    var forgotten: [String] = []
    func normalize(_ families: [MetricFamily], target: InferenceTarget, time: Double) -> (families: [MetricFamily], problem: String?) {
        seen[target.pod] = families.map(\.name)
        guard let waiting = families.first(where: { $0.name == "vllm:num_requests_waiting" }) else {
            return ([], "no vLLM families")
        }
        let value = waiting.samples.first?.value ?? 0
        return ([MetricFamily(name: "inference_requests_waiting", help: "", kind: .gauge,
                              samples: [Sample(labels: [Label("namespace", target.namespace), Label("pod", target.pod)], value: value)])], nil)
    }
    func forget(_ target: InferenceTarget) { forgotten.append(target.pod) }
}

@Suite struct InferenceSourceTests {
    @Test func eachTargetFailsAlone() throws {
        let good = HTTPServer(configuration: .init(host: "127.0.0.1", port: 0, threads: 1), logger: Logger(label: "t"),
                              handler: { _ in .text("# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting{model_name=\"m\"} 7\n") })
        let garbage = HTTPServer(configuration: .init(host: "127.0.0.1", port: 0, threads: 1), logger: Logger(label: "t"),
                                 handler: { _ in .text("this is { not an exposition\n") })
        let slow = HTTPServer(configuration: .init(host: "127.0.0.1", port: 0, threads: 1), logger: Logger(label: "t"),
                              handler: { _ in Thread.sleep(forTimeInterval: 2); return .text("x 1\n") })
        let other = HTTPServer(configuration: .init(host: "127.0.0.1", port: 0, threads: 1), logger: Logger(label: "t"),
                               handler: { _ in .text("# TYPE tgi_queue_size gauge\ntgi_queue_size 1\n") })
        for server in [good, garbage, slow, other] { try server.start() }
        defer { for server in [good, garbage, slow, other] { server.stop() } }
        let dead = HTTPServer(configuration: .init(host: "127.0.0.1", port: 0, threads: 1), logger: Logger(label: "t"), handler: { _ in .notFound })
        try dead.start()
        let deadPort = dead.port
        dead.stop()

        let targets = try InferenceTarget.parseList(
            "ml/good=http://127.0.0.1:\(good.port)/metrics, ml/garbage=http://127.0.0.1:\(garbage.port)/metrics,"
            + "ml/slow=http://127.0.0.1:\(slow.port)/metrics,ml/dead=http://127.0.0.1:\(deadPort)/metrics,"
            + "ml/other=http://127.0.0.1:\(other.port)/metrics")
        let normalizer = RecordingNormalizer()
        let source = InferenceSource(targets: targets, normalizer: normalizer, timeoutSeconds: 0.3, clock: { 1000 })
        // A tick takes the scrapes that finished within its wait; on a loaded machine that may take a few ticks.
        var result = source.sample(now: .now())
        var byPod: [String: Double] = [:]
        let deadline = Date().addingTimeInterval(10)
        while true {
            let up = result.families.first { $0.name == "accel_exporter_inference_target_up" }
            byPod = [:]
            for sample in up?.samples ?? [] { byPod[sample.labels.first { $0.name == "pod" }?.value ?? "?"] = sample.value }
            guard byPod.count < 5, Date() < deadline else { break }
            result = source.sample(now: .now())
        }
        // A server that answers but is not understood is down too, with its problem from the normalizer.
        #expect(byPod == ["good": 1, "garbage": 0, "slow": 0, "dead": 0, "other": 0])
        let waiting = result.families.first { $0.name == "inference_requests_waiting" }
        #expect(waiting?.samples.map(\.value) == [7])
        #expect(normalizer.seen.keys.sorted() == ["good", "other"])

        source.setTargets(Array(targets.prefix(1)))
        _ = source.sample(now: .now())
        #expect(normalizer.forgotten.sorted() == ["dead", "garbage", "other", "slow"])
    }

    /// Sample lines are counted before parsing (an answer over the series bound is refused unparsed): comments,
    /// blank lines and leading blanks are not samples; counting stops past the limit.
    @Test(arguments: [
        ("# HELP a x\n# TYPE a gauge\na 1\na{b=\"c\"} 2\n", 10, 2),
        ("\n  \n\t# EOF\n  a 1\r\nb 2", 10, 2),
        ("a 1\na 2\na 3\na 4\n", 2, 3),
        ("", 5, 0),
    ])
    func countsSampleLines(body: String, limit: Int, expected: Int) {
        #expect(InferenceSource.sampleLines(in: Array(body.utf8), over: limit) == expected)
    }

    @Test(arguments: ["ml=http://x/metrics", "ml/pod", "/pod=http://x/", "ml/pod=https://x/"])
    func badTargetLists(text: String) {
        #expect(throws: ScrapeError.self) { try InferenceTarget.parseList(text) }
    }
}

/// The exporter binary scraping a vLLM-shaped server: the normalized families in /metrics pass promtool, and move
/// with the server's readings.
@Suite(.serialized, .tags(.endToEnd), .endToEndEnabled) struct InferenceEndToEndTests {
    @Test func vllmThroughTheExporter() throws {
        let waiting = Mutex(3)
        let vllm = HTTPServer(configuration: .init(host: "127.0.0.1", port: 0, threads: 1), logger: Logger(label: "vllm"), handler: { _ in
            let value = waiting.withLock { $0 }
            return .text("""
                # TYPE vllm:num_requests_waiting gauge
                vllm:num_requests_waiting{model_name="llama"} \(value)
                # TYPE vllm:kv_cache_usage_perc gauge
                vllm:kv_cache_usage_perc{model_name="llama"} 0.5
                # TYPE vllm:e2e_request_latency_seconds histogram
                vllm:e2e_request_latency_seconds_bucket{le="1.0",model_name="llama"} 1
                vllm:e2e_request_latency_seconds_bucket{le="+Inf",model_name="llama"} 2
                vllm:e2e_request_latency_seconds_sum{model_name="llama"} 3
                vllm:e2e_request_latency_seconds_count{model_name="llama"} 2

                """)
        })
        try vllm.start()
        defer { vllm.stop() }
        let exporter = try ExporterProcess(
            tree: nil,
            arguments: ["--no-collector.amdgpu", "--no-collector.hwmon", "--no-collector.nvidia", "--collect.interval", "200ms",
                        "--inference.targets", "llm/vllm-0=http://127.0.0.1:\(vllm.port)/metrics,llm/gone=http://127.0.0.1:1/metrics"])
        defer { exporter.stop() }
        let text = try exporter.waitForMetrics { $0.contains("inference_requests_waiting{model_name=\"llama\",namespace=\"llm\",pod=\"vllm-0\"} 3") }
        #expect(text.contains("inference_kv_cache_utilization_ratio{model_name=\"llama\",namespace=\"llm\",pod=\"vllm-0\"} 0.5"))
        #expect(text.contains("inference_request_duration_seconds_bucket{le=\"+Inf\",model_name=\"llama\",namespace=\"llm\",pod=\"vllm-0\"} 2"))
        #expect(text.contains("accel_exporter_inference_target_up{namespace=\"llm\",pod=\"vllm-0\"} 1"))
        #expect(text.contains("accel_exporter_inference_target_up{namespace=\"llm\",pod=\"gone\"} 0"))
        waiting.withLock { $0 = 9 }
        _ = try exporter.waitForMetrics { $0.contains("inference_requests_waiting{model_name=\"llama\",namespace=\"llm\",pod=\"vllm-0\"} 9") }
        let (out, err, status) = try runProgramCapturingBytes("/usr/bin/promtool", ["check", "metrics"], stdin: Data(text.utf8))
        #expect(status == 0, "\(String(decoding: out, as: UTF8.self)) \(err)")
    }
}
