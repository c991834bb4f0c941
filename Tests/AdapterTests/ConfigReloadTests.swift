import AccelMetricsTesting
import Foundation
import Testing

/// `--metrics-config` on the real binary: a configured metric is served, a changed file is picked up, a broken
/// one is refused while the last good configuration keeps serving, and SIGHUP reloads.
@Suite(.serialized, .tags(.endToEnd), .endToEndEnabled) final class ConfigReloadTests {
    let exporter: FakeExporter
    let directory: TemporaryDirectory
    let configFile: URL

    init() throws {
        var node = FakeNode.reference
        node.sampleTime = Date().timeIntervalSince1970.rounded(.down)
        exporter = try FakeExporter(node)
        directory = TemporaryDirectory(prefix: "accel-config")
        configFile = directory.url("metrics.yaml")
    }

    deinit { directory.remove() }

    func write(_ text: String) throws {
        // Replace the file as a ConfigMap update does: a new inode, renamed over the old one.
        let temporary = directory.url("metrics.yaml.tmp")
        try text.write(to: temporary, atomically: false, encoding: .utf8)
        _ = rename(temporary.path, configFile.path)
    }

    func value(_ port: Int, _ path: String) throws -> String? {
        let kubectl = try #require(PackagePaths.executable("kubectl"))
        let (out, _, status) = try runProgram(kubectl, ["--server", "http://127.0.0.1:\(port)", "get", "--raw", path])
        guard status == 0, let json = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any] else { return nil }
        return (json["items"] as? [[String: Any]])?.first?["value"] as? String
    }

    func waitFor(_ port: Int, _ path: String, _ expected: String?) throws -> String? {
        var last: String?
        _ = try eventually(timeout: 15, pollInterval: 0.1) {
            last = try value(port, path)
            return last == expected
        }
        return last
    }

    @Test func reloadsOnChangeKeepsTheLastGoodAndAnswersSIGHUP() throws {
        try write("""
            metrics:
              - name: gpu_power_max_watts
                series: accelerator_power_watts
                aggregation: max
                resources: [nodes]
            """)
        let port = try freePort()
        let adapter = try ManagedProcess(
            PackagePaths.product("accel-metrics-adapter"),
            [
                "--secure-port", "0", "--insecure-port", "\(port)", "--bind-address", "127.0.0.1", "--exporters.targets", exporter.address,
                "--metric-resolution", "200ms", "--metrics-config", configFile.path,
            ])
        defer { adapter.stop() }
        try adapter.waitFor("accel-metrics-adapter started")
        let path = "/apis/custom.metrics.k8s.io/v1beta2/nodes/node-a/gpu_power_max_watts"
        // max(300, 200, 150, 100)
        #expect(try waitFor(port, path, "300") == "300")

        try write("""
            metrics:
              - {name: gpu_power_max_watts, series: accelerator_power_watts, aggregation: max, scale: 2, resources: [nodes]}
            """)
        #expect(try waitFor(port, path, "600") == "600")

        try write("metrics:\n  - {name: gpu_power_max_watts, series: accelerator_power_watts, aggregation: median}\n")
        try adapter.waitFor("metrics configuration rejected; keeping the previous one")
        #expect(adapter.log.contains(#"metrics[0].aggregation: \"median\" is not one of avg, max, sum"#))
        #expect(try value(port, path) == "600")

        kill(adapter.process.processIdentifier, SIGHUP)
        try adapter.waitFor("SIGHUP: reloading the metrics configuration")
        // Still refused, still serving the last good configuration; the built-ins are there too.
        #expect(try value(port, path) == "600")
        #expect(try waitFor(port, "/apis/custom.metrics.k8s.io/v1beta2/nodes/node-a/gpu_power_watts", "750") == "750")
    }

    @Test func aBrokenFileAtStartIsOneClearLine() throws {
        try write("metrics: [{name: x}]\n")
        let (_, err, status) = try runProgram(
            PackagePaths.product("accel-metrics-adapter"),
            ["--secure-port", "0", "--insecure-port", "\(try freePort())", "--exporters.targets", exporter.address, "--metrics-config", configFile.path])
        #expect(status == 1)
        #expect(err == "accel-metrics-adapter: --metrics-config: \(configFile.path): metrics[0].series: is required\n")
    }
}
