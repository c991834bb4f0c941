import AccelMetricsTesting
import Dispatch
import Foundation
import HTTPServer
import Logging
import Synchronization
import Testing

/// A flag threads share.
final class SharedFlag: Sendable {
    private let value = Mutex(false)
    var isSet: Bool { value.withLock { $0 } }
    func set() { value.withLock { $0 = true } }
}

/// A TCP peer that accepts connections and then either says nothing at all or drips one byte a second, as a hung
/// or hostile model server does; closed by `stop()`.
final class MisbehavingServer: @unchecked Sendable {
    // Safe: `listener` and `port` are set in init and read afterwards; the accept thread owns the accepted sockets.
    enum Behaviour { case silent, drip }
    let listener: LoopbackListener
    let port: Int
    private let stopped = SharedFlag()
    private let finished = DispatchSemaphore(value: 0)

    init(_ behaviour: Behaviour) throws {
        listener = try LoopbackListener(backlog: 64)
        port = listener.port
        let fd = listener.fd
        let stopped = self.stopped, finished = self.finished
        Thread.detachNewThread {
            var clients: [Int32] = []
            defer {
                for client in clients { close(client) }
                finished.signal()
            }
            while !stopped.isSet {
                var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                if poll(&poller, 1, 200) > 0 {
                    let client = accept(fd, nil, nil)
                    if client >= 0 { clients.append(client) }
                }
                if behaviour == .drip {
                    let byte: [UInt8] = [UInt8(ascii: "H")]
                    for client in clients { _ = send(client, byte, 1, Int32(MSG_NOSIGNAL)) }
                    Thread.sleep(forTimeInterval: 0.8)
                }
            }
        }
    }

    func stop() {
        stopped.set()
        // The accept thread notices within one poll (or one drip); only then is the socket closed under it.
        _ = finished.wait(timeout: .now() + 5)
        listener.close()
    }
}

/// Issue 15, case 2: one model server that never answers, or drips a byte a second, must not blank the others;
/// a server that stops answering keeps its last values, marked down with the reason, until they are stale.
@Suite(.serialized, .tags(.endToEnd), .endToEndEnabled) struct InferenceIsolationTests {
    @Test func aHungServerDelaysOnlyItself() throws {
        let silent = try MisbehavingServer(.silent)
        let drip = try MisbehavingServer(.drip)
        defer { silent.stop(); drip.stop() }
        let hang = SharedFlag()
        func vllm(_ waiting: Int, hangs: SharedFlag? = nil) -> HTTPServer {
            HTTPServer(configuration: .init(host: "127.0.0.1", port: 0, threads: 2), logger: Logger(label: "vllm"), handler: { _ in
                if hangs?.isSet == true { Thread.sleep(forTimeInterval: 3) }
                return .text("# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting{model_name=\"m\"} \(waiting)\n")
            })
        }
        let good = vllm(4)
        let flaky = vllm(6, hangs: hang)
        try good.start()
        try flaky.start()
        defer { good.stop(); flaky.stop() }
        let targets = [
            "ml/good=http://127.0.0.1:\(good.port)/metrics", "ml/flaky=http://127.0.0.1:\(flaky.port)/metrics",
            "ml/silent=http://127.0.0.1:\(silent.port)/metrics", "ml/drip=http://127.0.0.1:\(drip.port)/metrics",
        ].joined(separator: ",")
        let exporter = try ExporterProcess(
            tree: nil,
            // A 1 s interval gives each scrape half a second and the sampler 800 ms for the collector: with 200 ms, a
            // busy CI machine could make the healthy servers miss their 100 ms and fail the test for the wrong reason.
            arguments: ["--no-collector.amdgpu", "--no-collector.hwmon", "--no-collector.nvidia", "--collect.interval", "1s",
                        "--inference.targets", targets])
        defer { exporter.stop() }
        let goodSeries = #"inference_requests_waiting{model_name="m",namespace="ml",pod="good"} 4"#
        var text = try exporter.waitForMetrics {
            $0.contains(goodSeries) && $0.contains(#"accel_exporter_inference_target_down_reason{namespace="ml",pod="silent",reason="timeout"} 1"#)
        }
        #expect(text.contains(#"accel_exporter_inference_target_down_reason{namespace="ml",pod="drip",reason="timeout"} 1"#))
        #expect(text.contains(#"accel_exporter_inference_target_up{namespace="ml",pod="drip"} 0"#))
        // Every scrape for the next few seconds still has the healthy servers, and the collector never misses.
        for _ in 0..<15 {
            text = try exporter.get("/metrics").text
            #expect(text.contains(goodSeries))
            #expect(text.contains(#"inference_requests_waiting{model_name="m",namespace="ml",pod="flaky"} 6"#))
            #expect(text.contains(#"accel_exporter_collector_success{collector="inference"} 1"#))
            Thread.sleep(forTimeInterval: 0.2)
        }
        // The flaky server starts hanging: down with the reason, its last value still served while fresh.
        hang.set()
        text = try exporter.waitForMetrics { $0.contains(#"accel_exporter_inference_target_up{namespace="ml",pod="flaky"} 0"#) }
        #expect(text.contains(#"accel_exporter_inference_target_down_reason{namespace="ml",pod="flaky",reason="timeout"} 1"#))
        #expect(text.contains(#"inference_requests_waiting{model_name="m",namespace="ml",pod="flaky"} 6"#))
        #expect(text.contains(goodSeries))
        #expect(!exporter.log.contains("collector missed its deadline"), "\(exporter.log.suffix(2000))")
    }

    /// Issue 15, case 3: a server flooding series (one `model_name` per request id) is refused whole, with the
    /// reason, and nothing of it is kept; the other servers are untouched.
    @Test func seriesFloodsAreRefusedWhole() throws {
        func server(_ body: String) -> HTTPServer {
            HTTPServer(configuration: .init(host: "127.0.0.1", port: 0, threads: 1), logger: Logger(label: "vllm"), handler: { _ in .text(body) })
        }
        let header = "# TYPE vllm:num_requests_waiting gauge\n"
        let flood = server(header + (0..<100_000).map { "vllm:num_requests_waiting{model_name=\"req-\($0)\"} 1\n" }.joined())
        let manyModels = server(header + (0..<300).map { "vllm:num_requests_waiting{model_name=\"m-\($0)\"} 1\n" }.joined())
        let good = server(header + "vllm:num_requests_waiting{model_name=\"m\"} 2\n")
        let longName = server(header + "vllm:num_requests_waiting{model_name=\"m\"} 3\nvllm:num_requests_waiting{model_name=\"\(String(repeating: "x", count: 2000))\"} 1\n")
        for s in [flood, manyModels, good, longName] { try s.start() }
        defer { for s in [flood, manyModels, good, longName] { s.stop() } }
        let targets = [("flood", flood), ("many", manyModels), ("good", good), ("long", longName)]
            .map { "ml/\($0.0)=http://127.0.0.1:\($0.1.port)/metrics" }.joined(separator: ",")
        let exporter = try ExporterProcess(
            tree: nil,
            arguments: ["--no-collector.amdgpu", "--no-collector.hwmon", "--no-collector.nvidia", "--collect.interval", "500ms",
                        "--inference.targets", targets])
        defer { exporter.stop() }
        let text = try exporter.waitForMetrics(timeout: 20) {
            $0.contains(#"accel_exporter_inference_target_down_reason{namespace="ml",pod="flood",reason="too_large"} 1"#)
                && $0.contains(#"accel_exporter_inference_target_down_reason{namespace="ml",pod="many",reason="too_many_models"} 1"#)
                && $0.contains(#"accel_exporter_inference_target_down_reason{namespace="ml",pod="long",reason="too_large"} 1"#)
        }
        #expect(!text.contains("xxxxxxxx"), "nothing of the server with a 2,000-byte model name is kept")
        #expect(!text.contains(#"pod="long"} 3"#))
        #expect(text.contains(#"inference_requests_waiting{model_name="m",namespace="ml",pod="good"} 2"#))
        #expect(!text.contains("req-"), "nothing of the flood is kept")
        #expect(!text.contains(#"model_name="m-"#), "nothing of the over-bound server is kept")
        #expect(text.contains(#"accel_exporter_inference_target_up{namespace="ml",pod="good"} 1"#))
    }
}
