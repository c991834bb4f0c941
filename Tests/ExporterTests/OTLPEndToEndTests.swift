import AccelMetricsTesting
import Exposition
import Foundation
import Testing

/// The exporter's OTLP push against a real decoder: scripts/otlp-receiver.py (PyPI's opentelemetry-proto, and grpcio
/// for gRPC) on loopback, fed by the real binary on the fake NVML's eight H100s.
@Suite(.serialized, .tags(.endToEnd), .endToEndEnabled) struct OTLPEndToEndTests {
    /// The receiver process; stdout goes to a file (see `run`), from which its ports are read.
    final class Receiver {
        let process: ManagedProcess
        let directory = TemporaryDirectory(prefix: "accel-otlp")
        let out: URL
        let httpPort: Int
        let grpcPort: Int?

        init(_ arguments: [String] = [], grpc: Bool = false) throws {
            out = directory.url("received.jsonl")
            let script = PackagePaths.file("scripts/otlp-receiver.py").path
            let process = try ManagedProcess(
                "/usr/bin/env", ["python3", script, "--out", out.path] + (grpc ? ["--grpc-port", "0"] : []) + arguments)
            // SIGKILL: the test runner's ignored SIGTERM would be inherited across exec.
            process.stopSignal = SIGKILL
            self.process = process
            var http: Int?, grpcPort: Int?
            _ = eventually(timeout: 20) {
                for line in process.output.split(separator: "\n") {
                    let fields = line.split(separator: " ")
                    if fields.count == 2, fields[0] == "http" { http = Int(fields[1]) }
                    if fields.count == 2, fields[0] == "grpc" { grpcPort = Int(fields[1]) }
                }
                return http != nil && (!grpc || grpcPort != nil)
            }
            guard let http else {
                process.stop()
                throw HarnessError("the OTLP receiver did not start: \(process.log)")
            }
            httpPort = http
            self.grpcPort = grpcPort
        }

        /// Every decoded request so far, oldest first.
        var requests: [[String: Any]] {
            let text = (try? String(contentsOf: out, encoding: .utf8)) ?? ""
            return text.split(separator: "\n").compactMap { line in
                (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
            }
        }

        func waitForRequests(_ count: Int, timeout: Double = 20) -> [[String: Any]] {
            var now: [[String: Any]] = []
            _ = eventually(timeout: timeout, pollInterval: 0.1) {
                now = requests
                return now.count >= count
            }
            return now
        }
    }

    static func exporter(_ receiverURL: String, _ arguments: [String] = [], environment: [String: String] = [:]) throws -> ExporterProcess {
        let machine = try NVIDIATests.Machine("h100x8")
        return try NVIDIATests.exporter(machine, arguments: ["--otlp.endpoint", receiverURL, "--otlp.interval", "300ms"] + arguments,
                                        environment: environment)
    }

    // MARK: Reading the decoded JSON

    struct Point {
        var metric: String
        var unit: String
        var kind: String
        var monotonic: Bool?
        var temporality: String?
        var attributes: [String: String]
        var value: Double
        var startTime: UInt64
        var time: UInt64
    }

    static func points(_ request: [String: Any]) -> (resource: [String: String], points: [Point]) {
        func attributes(_ any: Any?) -> [String: String] {
            var out: [String: String] = [:]
            for kv in any as? [[String: Any]] ?? [] {
                let value = kv["value"] as? [String: Any]
                out[kv["key"] as? String ?? ""] = value?["string_value"] as? String ?? "\(value ?? [:])"
            }
            return out
        }
        func nanos(_ any: Any?) -> UInt64 { UInt64(any as? String ?? "") ?? 0 }
        let body = request["request"] as? [String: Any] ?? [:]
        let rm = (body["resource_metrics"] as? [[String: Any]] ?? []).first ?? [:]
        let resource = attributes((rm["resource"] as? [String: Any])?["attributes"])
        var out: [Point] = []
        for scope in rm["scope_metrics"] as? [[String: Any]] ?? [] {
            for metric in scope["metrics"] as? [[String: Any]] ?? [] {
                let name = metric["name"] as? String ?? ""
                let unit = metric["unit"] as? String ?? ""
                for kind in ["gauge", "sum", "histogram"] {
                    guard let data = metric[kind] as? [String: Any] else { continue }
                    for p in data["data_points"] as? [[String: Any]] ?? [] {
                        let value = (p["as_double"] as? Double) ?? Double(p["count"] as? String ?? "") ?? .nan
                        out.append(Point(metric: name, unit: unit, kind: kind, monotonic: data["is_monotonic"] as? Bool,
                                         temporality: data["aggregation_temporality"] as? String, attributes: attributes(p["attributes"]),
                                         value: value, startTime: nanos(p["start_time_unix_nano"]), time: nanos(p["time_unix_nano"])))
                    }
                }
            }
        }
        return (resource, out)
    }

    /// What the conventions say a `/metrics` device family becomes: name, unit, instrument, and how its labels
    /// read. Written from the conventions, not from the exporter's table.
    static let expected: [String: (name: String, unit: String, kind: String, monotonic: Bool?)] = [
        "accelerator_utilization_ratio": ("hw.gpu.utilization", "1", "gauge", nil),
        "accelerator_power_watts": ("hw.power", "W", "gauge", nil),
        "accelerator_energy_joules_total": ("hw.energy", "J", "sum", true),
        "accelerator_temperature_celsius": ("hw.temperature", "Cel", "gauge", nil),
        "accelerator_errors_total": ("hw.errors", "{error}", "sum", true),
        "accelerator_power_limit_watts": ("accelerator.power_limit", "W", "gauge", nil),
        "accelerator_clock_hertz": ("accelerator.clock", "Hz", "gauge", nil),
        "accelerator_pcie_link_width": ("accelerator.pcie_link_width", "1", "gauge", nil),
    ]

    static let renames = ["accelerator": "hw.id", "vendor": "hw.vendor", "model": "hw.model", "sensor": "hw.sensor_location", "type": "error.type"]

    @Test("every device value on /metrics arrives under its convention's name, unit, attributes and temporality")
    func valueForValue() throws {
        let receiver = try Receiver()
        let modelServer = try FakeModelServer()
        defer { modelServer.stop() }
        modelServer.serve(try String(contentsOf: InferenceEnginesEndToEndTests.fixtures.appendingPathComponent("vllm/t1.prom"), encoding: .utf8))
        let exporter = try Self.exporter("http://127.0.0.1:\(receiver.httpPort)", [
            "--otlp.header", "Authorization=Bearer t0ken", "--otlp.resource-attribute", "k8s.cluster.name=lab",
            "--inference.targets", "ml/vllm-0=\(modelServer.url)",
        ])
        defer { exporter.stop() }
        _ = try exporter.waitForMetrics { $0.contains("inference_request_duration_seconds_bucket") }
        let before = receiver.requests.count
        let received = receiver.waitForRequests(before + 2)
        try #require(received.count >= before + 2, "no pushes arrived: \(exporter.log.suffix(2000))")
        let text = try exporter.get("/metrics").text
        let families = try ExpositionParser.parse(text, format: .text)
        let last = try #require(received.last)
        #expect((last["headers"] as? [String: String])?["authorization"] == "Bearer t0ken")
        #expect((last["headers"] as? [String: String])?["content-encoding"] == "gzip")
        let (resource, points) = Self.points(last)
        #expect(resource["service.name"] == "accel-exporter")
        #expect(resource["k8s.node.name"] == "test-node")
        #expect(resource["host.name"] == "test-node")
        #expect(resource["k8s.cluster.name"] == "lab")
        #expect(resource["service.version"]?.isEmpty == false && resource["service.instance.id"]?.isEmpty == false)

        var checked = 0
        for family in families {
            for sample in family.samples {
                let sampleName = family.name + sample.suffix
                    + (family.kind == .counter && sample.suffix.isEmpty && !family.name.hasSuffix("_total") ? "_total" : "")
                guard let want = Self.expected[sampleName] else { continue }
                var attributes: [String: String] = [:]
                for label in sample.labels { attributes[Self.renames[label.name] ?? label.name] = label.value }
                let matches = points.filter { p in
                    p.metric == want.name && attributes.allSatisfy { p.attributes[$0.key] == $0.value }
                }
                guard let point = matches.first else {
                    Issue.record("\(sampleName)\(sample.labels) has no \(want.name) point")
                    continue
                }
                #expect(matches.count == 1, "\(sampleName)\(sample.labels)")
                #expect(point.value == sample.value, "\(want.name) \(attributes)")
                #expect(point.unit == want.unit && point.kind == want.kind, "\(want.name)")
                #expect(point.attributes["hw.type"] == "gpu")
                if want.kind == "sum" {
                    #expect(point.monotonic == want.monotonic && point.temporality == "AGGREGATION_TEMPORALITY_CUMULATIVE")
                    #expect(point.startTime > 0 && point.startTime <= point.time)
                }
                if want.name == "hw.gpu.utilization" { #expect(point.attributes["hw.gpu.task"] == "general") }
                checked += 1
            }
        }
        #expect(checked >= 8 * 5, "only \(checked) samples compared")
        // Memory: used and limit per GPU, and their ratio.
        let used = points.filter { $0.metric == "hw.gpu.memory.usage" }
        #expect(used.count == 8 && used.allSatisfy { $0.kind == "sum" && $0.monotonic != true && $0.unit == "By" })
        #expect(points.filter { $0.metric == "hw.gpu.memory.utilization" }.count == 8)
        #expect(points.filter { $0.metric == "hw.status" && $0.attributes["hw.state"] == "ok" && $0.value == 1 }.count == 8)
        #expect(text.contains(#"accel_exporter_otlp_exports_total{result="success"}"#))

        // Latency histograms: gen_ai.server.*, seconds, the same bounds, per-bucket counts, count and sum.
        let histograms = Self.histograms(last)
        let names = ["inference_request_duration_seconds": "gen_ai.server.request.duration",
                     "inference_time_to_first_token_seconds": "gen_ai.server.time_to_first_token",
                     "inference_time_per_output_token_seconds": "gen_ai.server.time_per_output_token"]
        var compared = 0
        for family in families where names[family.name] != nil {
            let otel = names[family.name]!
            var series: [[String: String]: (buckets: [(Double, Double)], sum: Double, count: Double)] = [:]
            for sample in family.samples {
                var labels: [String: String] = [:]
                var bound: Double?
                for label in sample.labels {
                    if label.name == "le" { bound = label.value == "+Inf" ? .infinity : Double(label.value) } else { labels[label.name] = label.value }
                }
                var entry = series[labels] ?? ([], 0, 0)
                switch sample.suffix {
                case "_bucket": entry.buckets.append((bound!, sample.value))
                case "_sum": entry.sum = sample.value
                case "_count": entry.count = sample.value
                default: break
                }
                series[labels] = entry
            }
            for (labels, entry) in series {
                let want = ["k8s.namespace.name": labels["namespace"], "k8s.pod.name": labels["pod"], "gen_ai.request.model": labels["model_name"]]
                let match = histograms.filter { h in h.metric == otel && want.allSatisfy { h.attributes[$0.key] == $0.value } }
                guard let h = match.first else { Issue.record("\(family.name)\(labels) has no \(otel) point"); continue }
                #expect(match.count == 1)
                #expect(h.unit == "s" && h.temporality == "AGGREGATION_TEMPORALITY_CUMULATIVE")
                let sorted = entry.buckets.sorted { $0.0 < $1.0 }
                #expect(h.bounds == sorted.map(\.0).filter(\.isFinite), "\(otel)")
                var previous = 0.0
                let perBucket = sorted.map { bucket -> Double in defer { previous = bucket.1 }; return bucket.1 - previous }
                #expect(h.buckets == perBucket, "\(otel)")
                #expect(h.count == entry.count && h.sum == entry.sum, "\(otel)")
                compared += 1
            }
        }
        #expect(compared >= 3, "only \(compared) histograms compared")
    }

    struct HistogramPoint {
        var metric: String
        var unit: String
        var temporality: String?
        var attributes: [String: String]
        var bounds: [Double]
        var buckets: [Double]
        var count: Double
        var sum: Double
    }

    static func histograms(_ request: [String: Any]) -> [HistogramPoint] {
        let body = request["request"] as? [String: Any] ?? [:]
        let rm = (body["resource_metrics"] as? [[String: Any]] ?? []).first ?? [:]
        var out: [HistogramPoint] = []
        for scope in rm["scope_metrics"] as? [[String: Any]] ?? [] {
            for metric in scope["metrics"] as? [[String: Any]] ?? [] {
                guard let data = metric["histogram"] as? [String: Any] else { continue }
                for p in data["data_points"] as? [[String: Any]] ?? [] {
                    var attributes: [String: String] = [:]
                    for kv in p["attributes"] as? [[String: Any]] ?? [] {
                        attributes[kv["key"] as? String ?? ""] = (kv["value"] as? [String: Any])?["string_value"] as? String
                    }
                    out.append(HistogramPoint(
                        metric: metric["name"] as? String ?? "", unit: metric["unit"] as? String ?? "",
                        temporality: data["aggregation_temporality"] as? String, attributes: attributes,
                        bounds: p["explicit_bounds"] as? [Double] ?? [],
                        buckets: (p["bucket_counts"] as? [String] ?? []).compactMap(Double.init),
                        count: Double(p["count"] as? String ?? "") ?? -1, sum: p["sum"] as? Double ?? -1))
                }
            }
        }
        return out
    }

    @Test("a receiver that refuses (429, 503) and then accepts gets every push, in order, after retries")
    func retriesWithoutLoss() throws {
        let receiver = try Receiver(["--refuse", "3", "--refuse-status", "429,503", "--retry-after", "1"])
        let exporter = try Self.exporter("http://127.0.0.1:\(receiver.httpPort)", ["--otlp.queue-size", "30"])
        defer { exporter.stop() }
        _ = receiver.waitForRequests(6, timeout: 30)
        let metrics = try exporter.waitForMetrics(timeout: 10) { $0.contains(#"accel_exporter_otlp_exports_total{result="retry"} 3"#) }
        #expect(metrics.contains(#"accel_exporter_otlp_exports_total{result="dropped"} 0"#))
        #expect(metrics.contains(#"accel_exporter_otlp_exports_total{result="failure"} 0"#))
        // Each push carries a later tick than the one before: nothing lost, nothing reordered.
        let times = receiver.requests.compactMap { Self.points($0).points.first?.time }
        #expect(times.count >= 6)
        #expect(zip(times, times.dropFirst()).allSatisfy { $0 < $1 }, "\(times)")
    }

    @Test("a full queue drops the oldest pushes and counts them")
    func boundedQueueDropsOldest() throws {
        let receiver = try Receiver(["--refuse", "6", "--refuse-status", "503", "--retry-after", "1"])
        let exporter = try Self.exporter("http://127.0.0.1:\(receiver.httpPort)", ["--otlp.queue-size", "2", "--otlp.interval", "200ms"])
        defer { exporter.stop() }
        let metrics = try exporter.waitForMetrics(timeout: 30) { text in
            text.contains(#"accel_exporter_otlp_exports_total{result="success"}"#)
                && !text.contains(#"accel_exporter_otlp_exports_total{result="success"} 0"#)
        }
        let dropped = metrics.split(separator: "\n").first { $0.hasPrefix(#"accel_exporter_otlp_exports_total{result="dropped"}"#) }
        let count = dropped.flatMap { Double($0.split(separator: " ").last ?? "") } ?? 0
        #expect(count >= 5, "6 refusals a second apart at 5 pushes a second with room for 2 must drop many: \(dropped ?? "none")")
        #expect(exporter.log.contains("OTLP queue full"))
    }

    @Test("a receiver that never answers does not slow /metrics, and the exporter still stops at once")
    func hangingReceiver() throws {
        let receiver = try Receiver(["--hang"])
        let exporter = try Self.exporter("http://127.0.0.1:\(receiver.httpPort)", ["--otlp.timeout", "1s", "--otlp.interval", "200ms"])
        for _ in 0..<20 {
            let started = Date()
            let response = try exporter.get("/metrics")
            #expect(response.status == 200)
            #expect(Date().timeIntervalSince(started) < 1, "a scrape waited on the OTLP push")
            Thread.sleep(forTimeInterval: 0.1)
        }
        _ = try exporter.waitForMetrics(timeout: 10) { text in
            !text.contains(#"accel_exporter_otlp_exports_total{result="retry"} 0"#) && text.contains(#"result="retry"}"#)
        }
        #expect(try exporter.get("/readyz").status == 200)
        let started = Date()
        exporter.stop()
        #expect(Date().timeIntervalSince(started) < 5, "stopping waited on the hanging receiver")
    }

    /// The collector's name resolves nowhere: only a push through `HTTP_PROXY` reaches the receiver, which takes the
    /// proxy's part (an HTTP/1.1 server accepts the absolute form). `NO_PROXY` sends the same push straight to its
    /// host, where the name does not resolve.
    @Test("HTTP_PROXY takes the pushes to the collector, and NO_PROXY keeps them off it, as the OpenTelemetry SDKs do")
    func throughAForwardProxy() throws {
        let receiver = try Receiver()
        let endpoint = "http://otel-collector.invalid:4318"
        let proxy = ["HTTP_PROXY": "127.0.0.1:\(receiver.httpPort)"]
        let exporter = try Self.exporter(endpoint, environment: proxy)
        defer { exporter.stop() }
        let first = try #require(receiver.waitForRequests(1).first, "nothing through the proxy: \(exporter.log.suffix(2000))")
        #expect(exporter.log.contains("OTLP pushes go through a proxy"))
        exporter.stop()
        #expect(first["target"] as? String == "\(endpoint)/v1/metrics")
        #expect(Self.points(first).points.filter { $0.metric == "hw.gpu.utilization" }.count == 8)

        let before = receiver.requests.count
        let exempt = try Self.exporter(endpoint, environment: proxy.merging(["NO_PROXY": ".invalid"]) { $1 })
        defer { exempt.stop() }
        _ = try exempt.waitForMetrics(timeout: 15) { text in
            !text.contains(#"accel_exporter_otlp_exports_total{result="retry"} 0"#) && text.contains(#"result="retry"}"#)
        }
        #expect(receiver.requests.count == before)
    }

    @Test("OTLP/gRPC reaches grpcio's MetricsService with the headers as metadata")
    func grpc() throws {
        let receiver = try Receiver(grpc: true)
        let port = try #require(receiver.grpcPort)
        let exporter = try Self.exporter("http://127.0.0.1:\(port)", ["--otlp.protocol", "grpc", "--otlp.header", "x-tenant=t1"])
        defer { exporter.stop() }
        let received = receiver.waitForRequests(1)
        let first = try #require(received.first, "nothing over gRPC: \(exporter.log.suffix(2000))")
        #expect(first["transport"] as? String == "grpc")
        #expect((first["headers"] as? [String: String])?["x-tenant"] == "t1")
        let points = Self.points(first).points
        #expect(points.filter { $0.metric == "hw.gpu.utilization" }.count == 8)
    }

    @Test("flag mistakes are one clear line", arguments: [
        (["--otlp.endpoint", "collector:4318"], "is not an http:// or https:// URL"),
        (["--otlp.endpoint", "http://c:4318", "--otlp.protocol", "thrift"], "neither http/protobuf nor grpc"),
        (["--otlp.endpoint", "http://c:4318", "--otlp.header", "novalue"], "is not key=value"),
        (["--otlp.endpoint", "http://c:4318", "--otlp.tls.cert-file", "/x.pem"], "go together"),
    ])
    func badFlags(arguments: [String], message: String) throws {
        let (_, stderr, status) = try runProgramCapturingBytes(PackagePaths.product("accel-exporter"), arguments + ["--no-collector.amdgpu"], timeout: 20)
        #expect(status != 0)
        #expect(stderr.contains(message), "\(stderr)")
        #expect(stderr.split(separator: "\n").count == 1, "\(stderr)")
    }
}
