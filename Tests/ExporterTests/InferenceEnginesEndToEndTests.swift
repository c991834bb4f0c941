import Accelerators
import AccelMetricsTesting
import Exporter
import Exposition
import Foundation
import HTTPServer
import Inference
import Logging
import Synchronization
import Testing

/// A model server on loopback answering whatever exposition it was last given.
final class FakeModelServer: Sendable {
    private final class Body: Sendable {
        let text = Mutex("")
    }

    private let body = Body()
    let server: HTTPServer

    init() throws {
        let body = self.body
        server = HTTPServer(
            configuration: .init(host: "127.0.0.1", port: 0, threads: 1), logger: Logger(label: "model-server"),
            handler: { _ in .text(body.text.withLock { $0 }) })
        try server.start()
    }

    var url: String { "http://127.0.0.1:\(server.port)/metrics" }
    func serve(_ text: String) { body.text.withLock { $0 = text } }
    func stop() { server.stop() }
}

/// The time InferenceSource stamps its scrapes with, moved by the test.
final class ManualClock: Sendable {
    private let seconds: Mutex<Double>
    init(_ start: Double) { seconds = Mutex(start) }
    var now: Double { seconds.withLock { $0 } }
    func set(_ value: Double) { seconds.withLock { $0 = value } }
}

/// One fixture exposition read line by line, independently of the project's parser: each sample line's name,
/// labels and value. (The fixtures are plain: no escapes in label values, no timestamps.)
struct FixtureScrape {
    struct Series {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    var series: [Series] = []

    init(_ text: String) {
        for line in text.split(separator: "\n") where !line.hasPrefix("#") && !line.allSatisfy({ $0 == " " }) {
            let space = line.lastIndex(of: " ")!
            let head = line[..<space]
            let valueText = line[line.index(after: space)...]
            let value = valueText == "+Inf" ? Double.infinity : valueText == "NaN" ? Double.nan : Double(valueText)!
            let name = String(head.prefix { $0 != "{" })
            var labels: [String: String] = [:]
            if let open = head.firstIndex(of: "{") {
                var rest = head[head.index(after: open)...].dropLast()  // the closing brace
                while let equals = rest.firstIndex(of: "=") {
                    let key = String(rest[..<equals]).trimmingCharacters(in: CharacterSet(charactersIn: ", "))
                    rest = rest[rest.index(equals, offsetBy: 2)...]  // past ="
                    let close = rest.firstIndex(of: "\"")!
                    labels[key] = String(rest[..<close])
                    rest = rest[rest.index(after: close)...]
                }
            }
            series.append(Series(name: name, labels: labels, value: value))
        }
    }

    /// Values of the samples named `name` (with `match`'s labels), added up by the value of `label` ("" without it).
    func sum(_ name: String, by label: String?, where match: [String: String] = [:]) -> [String: Double] {
        var out: [String: Double] = [:]
        for s in series where s.name == name && match.allSatisfy({ s.labels[$0.key] == $0.value }) {
            out[label.flatMap { s.labels[$0] } ?? "", default: 0] += s.value
        }
        return out
    }

    /// A histogram's buckets (upper bound / `perSecond` → cumulative count), sum / `perSecond` and count, by model.
    func histogram(_ name: String, perSecond: Double, by label: String?) -> [String: (buckets: [Double: Double], sum: Double, count: Double)] {
        var out: [String: (buckets: [Double: Double], sum: Double, count: Double)] = [:]
        for s in series where s.name.hasPrefix(name + "_") {
            let model = label.flatMap { s.labels[$0] } ?? ""
            switch s.name.dropFirst(name.count) {
            case "_bucket":
                let le = s.labels["le"]!
                out[model, default: ([:], 0, 0)].buckets[le == "+Inf" ? .infinity : Double(le)! / perSecond, default: 0] += s.value
            case "_sum": out[model, default: ([:], 0, 0)].sum += s.value / perSecond
            case "_count": out[model, default: ([:], 0, 0)].count += s.value
            default: break
            }
        }
        return out
    }
}

/// The fixtures' observations.txt: `<scrape index> <histogram> <seconds>`, each observed between scrape index − 1
/// and scrape index.
struct FixtureObservations {
    var entries: [(index: Int, histogram: String, value: Double)] = []

    init(_ text: String) {
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let fields = line.split(separator: " ")
            entries.append((Int(fields[0])!, String(fields[1]), Double(fields[2])!))
        }
    }

    func values(_ histogram: String, after first: Int, through last: Int) -> [Double] {
        entries.filter { $0.histogram == histogram && $0.index > first && $0.index <= last }.map(\.value)
    }
}

/// histogram_quantile's estimate, computed from the raw observations rather than from any scraped counts: count the
/// observations at or below each upper bound (the cumulative buckets the server filled with them), find the first
/// bucket whose count reaches the rank q × n, and place the rank linearly inside it — lower bound + (upper − lower)
/// × (rank − count below the bucket) / (count in the bucket), the lower bound of the first bucket being 0. A rank
/// that only the +Inf bucket reaches gives the highest finite bound. No observations: no value.
func expectedQuantile(_ q: Double, of observations: [Double], bounds: [Double]) -> Double? {
    guard !observations.isEmpty else { return nil }
    let rank = q * Double(observations.count)
    var lower = 0.0
    var below = 0.0
    for bound in bounds.sorted() where bound.isFinite {
        let atOrBelow = Double(observations.filter { $0 <= bound }.count)
        if atOrBelow >= rank {
            return lower + (bound - lower) * (rank - below) / (atOrBelow - below)
        }
        lower = bound
        below = atOrBelow
    }
    return bounds.filter(\.isFinite).max()
}

/// Each engine's fixture sequence through the exporter's real scrape path: a fake server on loopback, the
/// InferenceSource (HTTP scrape, size and time bounds, the project's parser) and the engine normalizer, with the
/// source's clock moved 15 s per scrape.
@Suite(.serialized, .tags(.endToEnd), .endToEndEnabled) struct InferenceEnginesEndToEndTests {
    static let fixtures = PackagePaths.file("Tests/Fixtures/inference")
    static let window = 60.0
    static let start = 1_750_000_000.0

    /// What the reference says each engine's families become. Gauges and counters: schema family → model → value,
    /// computed from one fixture scrape.
    struct Engine: Sendable {
        var directory: String
        var modelLabel: String?
        var expected: @Sendable (FixtureScrape) -> [String: [String: Double]]
        /// schema histogram → (engine family, its units per second).
        var histograms: [String: (family: String, perSecond: Double)]
        var tritonMeans = false
        /// Families served but not checked by this run.
        var unchecked: Set<String> = []
    }

    static let engines: [String: Engine] = [
        "vllm": Engine(
            directory: "vllm", modelLabel: "model_name",
            expected: { s in
                [
                    "inference_requests_running": s.sum("vllm:num_requests_running", by: "model_name"),
                    "inference_requests_waiting": s.sum("vllm:num_requests_waiting", by: "model_name"),
                    "inference_kv_cache_utilization_ratio": s.sum("vllm:kv_cache_usage_perc", by: "model_name"),
                    // Summed over finished_reason.
                    "inference_requests": s.sum("vllm:request_success_total", by: "model_name"),
                    "inference_generated_tokens": s.sum("vllm:generation_tokens_total", by: "model_name"),
                ]
            },
            histograms: [
                "inference_request_duration_seconds": ("vllm:e2e_request_latency_seconds", 1),
                "inference_time_to_first_token_seconds": ("vllm:time_to_first_token_seconds", 1),
                "inference_time_per_output_token_seconds": ("vllm:inter_token_latency_seconds", 1),
                "inference_queue_time_seconds": ("vllm:request_queue_time_seconds", 1),
            ]),
        "sglang": Engine(
            directory: "sglang", modelLabel: "model_name",
            expected: { s in
                [
                    "inference_requests_running": s.sum("sglang:num_running_reqs", by: "model_name"),
                    "inference_requests_waiting": s.sum("sglang:num_queue_reqs", by: "model_name"),
                    "inference_kv_cache_utilization_ratio": s.sum("sglang:token_usage", by: "model_name"),
                ]
            },
            histograms: [
                "inference_request_duration_seconds": ("sglang:e2e_request_latency_seconds", 1),
                "inference_time_to_first_token_seconds": ("sglang:time_to_first_token_seconds", 1),
                "inference_time_per_output_token_seconds": ("sglang:time_per_output_token_seconds", 1),
            ]),
        "tgi": Engine(
            directory: "tgi", modelLabel: nil,
            expected: { s in
                [
                    "inference_requests_waiting": s.sum("tgi_queue_size", by: nil),
                    "inference_requests_running": s.sum("tgi_batch_current_size", by: nil),
                    "inference_requests": s.sum("tgi_request_success", by: nil),
                ]
            },
            histograms: [
                "inference_request_duration_seconds": ("tgi_request_duration", 1),
                "inference_queue_time_seconds": ("tgi_request_queue_duration", 1),
                "inference_time_per_output_token_seconds": ("tgi_request_mean_time_per_token_duration", 1),
            ]),
        "triton": Engine(
            directory: "triton", modelLabel: "model",
            expected: { s in
                [
                    "inference_requests_waiting": s.sum("nv_inference_pending_request_count", by: "model"),
                    "inference_requests": s.sum("nv_inference_request_success", by: "model"),
                ]
            },
            histograms: ["inference_time_to_first_token_seconds": ("nv_inference_first_response_histogram_ms", 1000)],
            tritonMeans: true),
        "triton-trtllm": Engine(
            directory: "triton-trtllm", modelLabel: "model",
            expected: { s in
                // UNVERIFIED TensorRT-LLM gauges: active → running, waiting → waiting in place of Triton's pending
                // count for that model, the fraction of KV-cache blocks in use → the ratio.
                var waiting = s.sum("nv_inference_pending_request_count", by: "model")
                waiting.merge(s.sum("nv_trt_llm_request_metrics", by: "model", where: ["request_type": "waiting"])) { $1 }
                return [
                    "inference_requests_waiting": waiting,
                    "inference_requests_running": s.sum("nv_trt_llm_request_metrics", by: "model", where: ["request_type": "active"]),
                    "inference_kv_cache_utilization_ratio": s.sum(
                        "nv_trt_llm_kv_cache_block_metrics", by: "model", where: ["kv_cache_block_type": "fraction"]),
                    "inference_requests": s.sum("nv_inference_request_success", by: "model"),
                ]
            },
            histograms: ["inference_time_to_first_token_seconds": ("nv_inference_first_response_histogram_ms", 1000)],
            tritonMeans: true),
    ]

    /// The observation list's names for the schema histograms.
    static let observationNames = [
        "inference_request_duration_seconds": "request_duration", "inference_time_to_first_token_seconds": "time_to_first_token",
        "inference_time_per_output_token_seconds": "time_per_output_token", "inference_queue_time_seconds": "queue_time",
    ]
    static let percentileStems = [
        "inference_request_duration_seconds": "inference_request_duration",
        "inference_time_to_first_token_seconds": "inference_time_to_first_token",
        "inference_time_per_output_token_seconds": "inference_time_per_output_token",
    ]

    static func text(_ directory: String, _ file: String) throws -> String {
        try String(contentsOf: fixtures.appendingPathComponent("\(directory)/\(file)"), encoding: .utf8)
    }

    /// A sample's value by model, checking that every sample of the family carries exactly the schema's labels.
    static func byModel(_ families: [MetricFamily], _ name: String, pod: String) -> [String: Double]? {
        guard let family = families.first(where: { $0.name == name }) else { return nil }
        var out: [String: Double] = [:]
        for sample in family.samples {
            #expect(sample.labels.map(\.name) == ["model_name", "namespace", "pod"], "\(name): \(sample.labels)")
            #expect(sample.labels.first { $0.name == "namespace" }?.value == "llm")
            #expect(sample.labels.first { $0.name == "pod" }?.value == pod)
            let model = sample.labels.first { $0.name == "model_name" }!.value
            #expect(out[model] == nil, "\(name): two series for model \(model)")
            out[model] = sample.value
        }
        return out
    }

    /// Drives `engine` through its scrapes: (time offset, fixture file) in order. `restartAfter`: the index of the
    /// last file before the server restarted (its counts start again from zero at the next file). Returns the
    /// families of every step.
    @discardableResult
    static func drive(
        _ engine: Engine, steps: [(offset: Double, file: Int)], restartAfter: Int? = nil, golden goldenStep: Int? = nil
    ) throws -> [[MetricFamily]] {
        let server = try FakeModelServer()
        defer { server.stop() }
        let clock = ManualClock(start)
        let pod = engine.directory
        let source = InferenceSource(
            targets: try InferenceTarget.parseList("llm/\(pod)=\(server.url)"),
            normalizer: EngineInferenceNormalizer(windowSeconds: window), timeoutSeconds: 5, clock: { clock.now })
        let observations = FixtureObservations(try text(engine.directory, "observations.txt"))
        var previous: FixtureScrape?
        var results: [[MetricFamily]] = []
        for (step, (offset, file)) in steps.enumerated() {
            let raw = try text(engine.directory, "t\(file).prom")
            let scrape = FixtureScrape(raw)
            server.serve(raw)
            clock.set(start + offset)
            let families = source.sample(now: .now()).families
            results.append(families)
            let context = "\(engine.directory) step \(step) (t\(file) at +\(Int(offset)) s)"

            // The target's own status.
            #expect(byModelless(families, "accel_exporter_inference_target_up") == 1, "\(context)")
            #expect(byModelless(families, "accel_exporter_inference_rejected_series") == 0, "\(context)")

            // Gauges and counters, field by field, and no other series.
            let expected = engine.expected(scrape).filter { !$0.value.isEmpty }
            for (family, values) in expected {
                #expect(byModel(families, family, pod: pod) == values, "\(context): \(family)")
            }

            // Histograms: the engine's buckets (in seconds), sum and count, per model.
            for (schema, (source, perSecond)) in engine.histograms {
                let want = scrape.histogram(source, perSecond: perSecond, by: engine.modelLabel)
                let family = try #require(families.first { $0.name == schema }, "\(context): \(schema) missing")
                #expect(family.kind == .histogram)
                var got: [String: (buckets: [Double: Double], sum: Double, count: Double)] = [:]
                for sample in family.samples {
                    let model = sample.labels.first { $0.name == "model_name" }!.value
                    #expect(Set(sample.labels.map(\.name)).subtracting(["le"]) == ["model_name", "namespace", "pod"])
                    switch sample.suffix {
                    case "_bucket":
                        let le = sample.labels.first { $0.name == "le" }!.value
                        got[model, default: ([:], 0, 0)].buckets[le == "+Inf" ? .infinity : Double(le)!] = sample.value
                    case "_sum": got[model, default: ([:], 0, 0)].sum = sample.value
                    default: got[model, default: ([:], 0, 0)].count = sample.value
                    }
                }
                #expect(Set(got.keys) == Set(want.keys), "\(context): \(schema) models")
                for (model, histogram) in want {
                    let mine = got[model]
                    #expect(mine?.buckets.count == histogram.buckets.count, "\(context): \(schema) bucket count")
                    for (bound, count) in histogram.buckets {
                        #expect(mine?.buckets[bound] == count, "\(context): \(schema) le=\(bound)")
                    }
                    #expect(abs((mine?.sum ?? .nan) - histogram.sum) <= 1e-9 * max(1, histogram.sum), "\(context): \(schema)_sum")
                    #expect(mine?.count == histogram.count, "\(context): \(schema)_count")
                }

                // Windowed percentiles against the observations inside the window: the scrapes the window keeps
                // are those at or after now − 60 s; the increase runs from the first of them (or from zero at the
                // last scrape before a restart) to this one.
                guard let stem = percentileStems[schema] else { continue }
                let kept = steps[0...step].filter { $0.offset >= offset - window }
                var from = kept.first!.file
                if let restartAfter, file > restartAfter, from <= restartAfter { from = restartAfter }
                let inWindow = observations.values(observationNames[schema]!, after: from, through: file)
                let bounds = Array(want.values.first!.buckets.keys)
                for (suffix, q) in [("p50", 0.5), ("p95", 0.95), ("p99", 0.99)] {
                    let served = byModel(families, "\(stem)_\(suffix)_seconds", pod: pod)
                    if let value = expectedQuantile(q, of: inWindow, bounds: bounds) {
                        let model = want.keys.first!
                        let got = try #require(served?[model], "\(context): \(stem)_\(suffix) missing (\(inWindow.count) in window)")
                        #expect(abs(got - value) <= 1e-9 * max(1, value), "\(context): \(stem)_\(suffix) \(got) ≠ \(value)")
                    } else {
                        // Nothing observed in the window (or only one scrape of it): no value, never 0 or NaN.
                        #expect(served == nil, "\(context): \(stem)_\(suffix) served for an empty window")
                    }
                }
            }

            // Triton: means over the last interval from the cumulative µs counters, only where requests arrived.
            if engine.tritonMeans {
                var wantDuration: [String: Double] = [:]
                var wantQueue: [String: Double] = [:]
                if let previous {
                    let count = scrape.sum("nv_inference_request_success", by: "model")
                    let before = previous.sum("nv_inference_request_success", by: "model")
                    for (model, n) in count where n > before[model] ?? 0 {
                        let requests = n - before[model]!
                        wantDuration[model] =
                            (scrape.sum("nv_inference_request_duration_us", by: "model")[model]!
                                - previous.sum("nv_inference_request_duration_us", by: "model")[model]!) / requests / 1e6
                        wantQueue[model] =
                            (scrape.sum("nv_inference_queue_duration_us", by: "model")[model]!
                                - previous.sum("nv_inference_queue_duration_us", by: "model")[model]!) / requests / 1e6
                    }
                }
                let duration = byModel(families, "inference_request_duration_mean_seconds", pod: pod) ?? [:]
                let queue = byModel(families, "inference_queue_time_mean_seconds", pod: pod) ?? [:]
                #expect(Set(duration.keys) == Set(wantDuration.keys), "\(context): means")
                for (model, value) in wantDuration {
                    #expect(abs(duration[model]! - value) <= 1e-12, "\(context): mean duration \(model)")
                    #expect(abs(queue[model]! - wantQueue[model]!) <= 1e-12, "\(context): mean queue \(model)")
                }
            }

            // No family beyond those accounted for.
            var allowed: Set<String> = [
                "accel_exporter_inference_target_up", "accel_exporter_inference_target_scrape_duration_seconds",
                "accel_exporter_inference_rejected_series",
            ]
            allowed.formUnion(expected.keys)
            allowed.formUnion(engine.unchecked)
            allowed.formUnion(engine.histograms.keys)
            for (schema, stem) in percentileStems where engine.histograms[schema] != nil {
                allowed.formUnion(["p50", "p95", "p99"].map { "\(stem)_\($0)_seconds" })
            }
            if engine.tritonMeans { allowed.formUnion(["inference_request_duration_mean_seconds", "inference_queue_time_mean_seconds"]) }
            #expect(Set(families.map(\.name)).isSubset(of: allowed), "\(context): \(Set(families.map(\.name)).subtracting(allowed))")
            previous = scrape

            if step == goldenStep { try checkGolden(families, name: engine.directory) }
        }
        return results
    }

    static func byModelless(_ families: [MetricFamily], _ name: String) -> Double? {
        families.first { $0.name == name }?.samples.first?.value
    }

    /// The rendered exposition of the normalized families (the scrape duration left out: it varies per run) equals
    /// the golden file and passes promtool.
    static func checkGolden(_ families: [MetricFamily], name: String) throws {
        var bytes: [UInt8] = []
        ExpositionEncoder.encode(
            families.filter { $0.name != "accel_exporter_inference_target_scrape_duration_seconds" }, format: .text, into: &bytes)
        let text = String(decoding: bytes, as: UTF8.self)
        let expected = try expectMatchesGolden(text, "Tests/Fixtures/inference/golden/\(name).prom", what: "golden mismatch for \(name)")
        try #require(FileManager.default.isExecutableFile(atPath: EndToEndTests.promtool), "promtool missing: apt-get install prometheus")
        let (out, err, status) = try runProgramCapturingBytes(EndToEndTests.promtool, ["check", "metrics"], stdin: Data(expected.utf8))
        #expect(status == 0, "promtool on golden/\(name).prom: \(String(decoding: out, as: UTF8.self)) \(err)")
    }

    /// t0..t3 15 s apart, then t3 again: at +75 s the window (60 s) has let t0 go, so it holds t1 → t3's requests;
    /// at +120 s it holds only repeats of t3: nothing new, no percentiles.
    static let sequence: [(offset: Double, file: Int)] = [(0, 0), (15, 1), (30, 2), (45, 3), (60, 3), (75, 3), (120, 3)]

    @Test(arguments: ["vllm", "sglang", "tgi", "triton", "triton-trtllm"])
    func engineThroughTheScrapePath(name: String) throws {
        try Self.drive(Self.engines[name]!, steps: Self.sequence, golden: 3)
    }

    /// vLLM restarting between t1 and t2: its counters go back to zero. The increase after a restart counts from
    /// zero (as rate() does), so the requests served between the restart and t2 are in the window; lifetime
    /// counters pass through as the server reports them.
    @Test func vllmRestart() throws {
        var engine = Self.engines["vllm"]!
        engine.directory = "vllm-restart"
        engine.expected = { s in
            [
                "inference_requests_waiting": s.sum("vllm:num_requests_waiting", by: "model_name"),
                "inference_requests": s.sum("vllm:request_success_total", by: "model_name"),
            ]
        }
        engine.histograms = ["inference_request_duration_seconds": ("vllm:e2e_request_latency_seconds", 1)]
        let results = try Self.drive(engine, steps: [(0, 0), (15, 1), (30, 2), (45, 3)], restartAfter: 1)
        // The restart is visible in the lifetime counter, and the window after it is not empty.
        let requests = results.map { Self.byModelless($0, "inference_requests") ?? -1 }
        #expect(requests[2] < requests[1], "\(requests)")
        #expect(results[2].contains { $0.name == "inference_request_duration_p95_seconds" })
    }

    /// Triton restarting: a success or µs counter that goes backwards gives no mean for that scrape (never a
    /// negative one), and the next scrape's mean covers only the time since.
    @Test func tritonRestart() throws {
        var engine = Self.engines["triton"]!
        // The TTFT window across these out-of-order scrapes is not what this test is about.
        engine.histograms = [:]
        engine.unchecked = Set(["inference_time_to_first_token_seconds"])
            .union(["p50", "p95", "p99"].map { "inference_time_to_first_token_\($0)_seconds" })
        // t3, then the server comes back with t0's counters (lower), then t1's.
        let results = try Self.drive(engine, steps: [(0, 3), (15, 0), (30, 1)])
        #expect(results[1].first { $0.name == "inference_request_duration_mean_seconds" } == nil)
        #expect(results[2].first { $0.name == "inference_request_duration_mean_seconds" } != nil)
    }
}
