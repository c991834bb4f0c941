import Accelerators
import AccelMetricsTesting
import Exporter
import Exposition
import Foundation
import Inference
import Testing

/// The bad/ fixtures through the scrape path, each on its own server beside a sound vLLM server: every bad server
/// gets its own status (up or not, how many series refused, which families survive), and the sound server's
/// families are exactly what they are when it is scraped alone.
@Suite(.serialized) struct InferenceBadInputTests {
    static let bad = ["mixed-vllm", "not-a-model-server", "ambiguous", "sglang-percent", "tgi-summaries"]
    static let start = 1_750_000_000.0

    static func fixture(_ path: String) throws -> String {
        try InferenceEnginesEndToEndTests.text(path.components(separatedBy: "/")[0], path.components(separatedBy: "/")[1])
    }

    /// The samples of `pod`, as "family{labels} value" lines, the scrape duration left out.
    static func lines(_ families: [MetricFamily], pod: String) -> [String] {
        var out: [String] = []
        for family in families where family.name != "accel_exporter_inference_target_scrape_duration_seconds" {
            for sample in family.samples where sample.labels.contains(Label("pod", pod)) {
                out.append("\(family.name)\(sample.suffix){\(sample.labels.map { "\($0.name)=\($0.value)" }.joined(separator: ","))} \(sample.value)")
            }
        }
        return out.sorted()
    }

    static func value(_ families: [MetricFamily], _ name: String, pod: String) -> Double? {
        families.first { $0.name == name }?.samples.first { $0.labels.contains(Label("pod", pod)) }?.value
    }

    static func has(_ families: [MetricFamily], _ name: String, pod: String) -> Bool {
        value(families, name, pod: pod) != nil
    }

    @Test(.tags(.endToEnd), .endToEndEnabled) func eachBadServerIsItsOwnProblem() throws {
        let good = try FakeModelServer()
        defer { good.stop() }
        var servers: [String: FakeModelServer] = [:]
        defer { for server in servers.values { server.stop() } }
        for name in Self.bad {
            let server = try FakeModelServer()
            server.serve(try Self.fixture("bad/\(name).prom"))
            servers[name] = server
        }
        let clock = ManualClock(Self.start)
        func source(_ withBad: Bool) throws -> InferenceSource {
            var list = "llm/good=\(good.url)"
            if withBad { for name in Self.bad { list += ",llm/\(name)=\(servers[name]!.url)" } }
            return InferenceSource(
                targets: try InferenceTarget.parseList(list), normalizer: EngineInferenceNormalizer(windowSeconds: 60), timeoutSeconds: 5,
                clock: { clock.now })
        }
        // Two scrapes of the sound server (so that it has a window), alone and then among the bad ones.
        func twoScrapes(_ source: InferenceSource) throws -> [MetricFamily] {
            good.serve(try Self.fixture("vllm/t0.prom"))
            clock.set(Self.start)
            _ = source.sample(now: .now())
            good.serve(try Self.fixture("vllm/t1.prom"))
            clock.set(Self.start + 15)
            return source.sample(now: .now()).families
        }
        let alone = try twoScrapes(try source(false))
        let together = try twoScrapes(try source(true))
        #expect(Self.lines(together, pod: "good") == Self.lines(alone, pod: "good"))
        #expect(Self.has(alone, "inference_request_duration_p95_seconds", pod: "good"))

        func up(_ pod: String) -> Double? { Self.value(together, "accel_exporter_inference_target_up", pod: pod) }
        func rejected(_ pod: String) -> Double? { Self.value(together, "accel_exporter_inference_rejected_series", pod: pod) }

        // mixed-vllm: each lying family refused on its own — running (the same series twice), waiting (NaN), the
        // success counter (negative), e2e latency (no +Inf), TTFT (counts decrease with le), inter-token latency (a
        // bucket written twice). The KV-cache gauge and the queue-time histogram are sound and served.
        #expect(up("mixed-vllm") == 1)
        #expect(rejected("mixed-vllm") == 6)
        #expect(Self.value(together, "inference_kv_cache_utilization_ratio", pod: "mixed-vllm") == 0.25)
        #expect(Self.has(together, "inference_queue_time_seconds", pod: "mixed-vllm"))
        for refused in [
            "inference_requests_running", "inference_requests_waiting", "inference_requests", "inference_request_duration_seconds",
            "inference_time_to_first_token_seconds", "inference_time_per_output_token_seconds",
        ] {
            #expect(!Self.has(together, refused, pod: "mixed-vllm"), "\(refused)")
        }

        // Not a model server, or two engines in one exposition: down, nothing normalized.
        for pod in ["not-a-model-server", "ambiguous"] {
            #expect(up(pod) == 0, "\(pod)")
            // Only its status: up 0, the scrape's duration and why it is down.
            #expect(Self.lines(together, pod: pod).allSatisfy { $0.hasPrefix("accel_exporter_inference_target_") }, "\(pod)")
            #expect(Self.value(together, "accel_exporter_inference_target_down_reason", pod: pod) == 1, "\(pod)")
        }

        // SGLang with token usage in percent: the ratio refused (not rescaled by guess), its queue served.
        #expect(up("sglang-percent") == 1)
        #expect(rejected("sglang-percent") == 1)
        #expect(!Self.has(together, "inference_kv_cache_utilization_ratio", pod: "sglang-percent"))
        #expect(Self.value(together, "inference_requests_waiting", pod: "sglang-percent") == 2)

        // TGI writing summaries: no buckets, so no histogram and no percentiles; its gauges and counter served.
        #expect(up("tgi-summaries") == 1)
        #expect(rejected("tgi-summaries") == 1)
        #expect(!Self.has(together, "inference_request_duration_seconds", pod: "tgi-summaries"))
        #expect(Self.value(together, "inference_requests_waiting", pod: "tgi-summaries") == 2)
        #expect(Self.value(together, "inference_requests", pod: "tgi-summaries") == 1042)

        // Every output still lints.
        var bytes: [UInt8] = []
        ExpositionEncoder.encode(together, format: .text, into: &bytes)
        let (out, err, status) = try runProgramCapturingBytes(EndToEndTests.promtool, ["check", "metrics"], stdin: Data(bytes))
        #expect(status == 0, "\(String(decoding: out, as: UTF8.self)) \(err)")
    }

    /// The reasons, as the exporter logs them when they change: each names the series and what is wrong with it.
    @Test(arguments: [
        ("mixed-vllm", [
            "vllm:num_requests_running{engine=\"0\",model_name=\"llama-3-8b\"}: the series appears 2 times",
            "vllm:num_requests_waiting{engine=\"0\",model_name=\"llama-3-8b\"}: value nan out of range",
            "counter value -3.0 is not a finite non-negative number",
            "vllm:e2e_request_latency_seconds{engine=\"0\",model_name=\"llama-3-8b\"}: no +Inf bucket",
            "vllm:time_to_first_token_seconds{engine=\"0\",model_name=\"llama-3-8b\"}: bucket counts decrease with le",
            "vllm:inter_token_latency_seconds{engine=\"0\",model_name=\"llama-3-8b\"}: a bucket appears twice",
        ]),
        ("not-a-model-server", ["no vLLM, SGLang, TGI or Triton metrics found"]),
        ("ambiguous", ["metrics of several engines (vLLM, SGLang)"]),
        ("sglang-percent", ["sglang:token_usage{model_name=\"Qwen/Qwen2.5-7B-Instruct\"}: value 45.0 out of range (a ratio must be 0..1)"]),
        ("tgi-summaries", ["tgi_request_duration: a summary (quantiles, no buckets), not a histogram"]),
    ])
    func reasons(fixture: String, phrases: [String]) throws {
        let families = try ExpositionParser.parse(try Self.fixture("bad/\(fixture).prom"), format: .text)
        let (_, problems) = EngineNormalizer().normalize(families, namespace: "llm", pod: fixture, time: Self.start)
        #expect(problems.count == phrases.count, "\(problems)")
        for phrase in phrases {
            #expect(problems.contains { $0.contains(phrase) }, "\(phrase) not in \(problems)")
        }
    }
}
