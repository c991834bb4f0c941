import AccelMetricsTesting
import Foundation
import Testing

/// Issue 15, case 6: the adapter ages an exporter's data by its own clock. An exporter whose clock runs an hour
/// ahead (or behind) is served while it samples, with timestamps from the adapter's clock, and is no longer served
/// once its data is older than the staleness bound by the adapter's clock, whatever it claims; one whose sampling
/// stopped (the same sample time again and again) goes stale too.
@Suite(.serialized, .tags(.endToEnd), .endToEndEnabled) final class ClockSkewTests {
    let directory: TemporaryDirectory

    init() throws { directory = TemporaryDirectory(prefix: "accel-skew") }
    deinit { directory.remove() }

    /// The node's `gpu_utilization` and its timestamp (Unix seconds), or nil when not served.
    func served(_ port: Int) throws -> (value: String, time: Double)? {
        let kubectl = try #require(PackagePaths.executable("kubectl"))
        let (out, _, status) = try runProgram(
            kubectl, ["--server", "http://127.0.0.1:\(port)", "get", "--raw", "/apis/custom.metrics.k8s.io/v1beta2/nodes/skewed/gpu_utilization"])
        guard status == 0, let json = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any],
              let item = (json["items"] as? [[String: Any]])?.first, let stamp = item["timestamp"] as? String,
              let date = ISO8601DateFormatter().date(from: stamp) else { return nil }
        return (item["value"] as? String ?? "?", date.timeIntervalSince1970)
    }

    /// Polls `served` until `done`, calling `step` (the exporter's sampling, or nothing) before each look.
    func waitFor(_ port: Int, within seconds: Double, step: () -> Void = {}, _ done: ((value: String, time: Double)?) -> Bool) throws -> (value: String, time: Double)? {
        var last: (value: String, time: Double)?
        _ = try eventually(timeout: seconds, pollInterval: 0.1) {
            step()
            last = try served(port)
            return done(last)
        }
        return last
    }

    @Test(arguments: [3600.0, -3600.0])
    func anExportersClockNeverDecidesFreshness(skew: Double) throws {
        var node = FakeNode(name: "skewed", devices: [.init(id: "GPU-1", utilization: 0.5)])
        node.sampleTime = Date().timeIntervalSince1970 + skew
        let exporter = try FakeExporter(node)
        let port = try freePort()
        let maxAge = 3.0
        let adapter = try ManagedProcess(
            PackagePaths.product("accel-metrics-adapter"),
            ["--secure-port", "0", "--insecure-port", "\(port)", "--bind-address", "127.0.0.1", "--exporters.targets", exporter.address,
             "--metric-resolution", "100ms", "--metrics-max-age", "\(Int(maxAge))s"])
        defer { adapter.stop() }
        try adapter.waitFor("accel-metrics-adapter started")

        // The exporter keeps sampling (its sample time moves on): served, stamped by the adapter's clock.
        func sample() {
            node.sampleTime = Date().timeIntervalSince1970 + skew
            exporter.publish(node)
        }
        let live = try waitFor(port, within: 10, step: sample) { $0 != nil }
        #expect(live?.value == "50")
        if let live { #expect(abs(live.time - Date().timeIntervalSince1970) < maxAge + 2, "timestamp \(live.time) from a skewed clock") }
        let stillSampling = Date().addingTimeInterval(maxAge + 1)
        while Date() < stillSampling {
            sample()
            Thread.sleep(forTimeInterval: 0.2)
        }
        #expect(try served(port) != nil, "still sampling, so still fresh")

        // Its sampling stops (the same sample time from now on): gone after the bound, by the adapter's clock.
        let stopped = Date()
        let gone = try waitFor(port, within: maxAge + 5) { $0 == nil }
        #expect(gone == nil)
        let after = Date().timeIntervalSince(stopped)
        #expect(after >= maxAge - 1 && after <= maxAge + 3, "went stale after \(after) s")
    }
}
