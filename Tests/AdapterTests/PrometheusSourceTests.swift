import AccelMetricsTesting
import Foundation
import Testing

/// `--source=prometheus` against a real Prometheus (Debian `prometheus`) that scrapes the same exporters a
/// direct-source adapter scrapes: both adapters must give the same answers.
@Suite(.serialized, .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/prometheus")), .tags(.endToEnd), .endToEndEnabled)
final class PrometheusSourceTests {
    let exporter: ManagedProcess
    let pods: FakeExporter
    let prometheus: ManagedProcess
    let direct: ManagedProcess
    let viaPrometheus: ManagedProcess
    let directPort: Int
    let prometheusAdapterPort: Int
    let sampleTime = Date().timeIntervalSince1970.rounded(.down)

    init() throws {
        let root = PackagePaths.root.path
        exporter = try ManagedProcess(
            PackagePaths.product("accel-exporter"),
            [
                "--web.listen-address", "127.0.0.1:0", "--nvml.library", PackagePaths.product("libFakeNVML.so"),
                "--no-collector.amdgpu", "--no-collector.hwmon", "--kubernetes.node-name", "gpu-node-1",
            ],
            environment: ["FAKE_NVML_CONFIG": "\(root)/Tests/Fixtures/nvml/h100x8.nvml"])
        let exporterAddress = "127.0.0.1:" + (try exporter.waitFor(#"msg=listening address=127\.0\.0\.1:(\d+)"#))
        var node = FakeNode.reference
        node.sampleTime = sampleTime
        pods = try FakeExporter(node)

        let promPort = try freePort()
        let config = prometheusDirectory.appendingPathComponent("prometheus.yml")
        try """
        global:
          scrape_interval: 500ms
        scrape_configs:
          - job_name: accel-exporter
            honor_labels: true
            static_configs:
              - targets: ['\(exporterAddress)', '\(pods.address)']
        """.write(to: config, atomically: false, encoding: .utf8)
        prometheus = try ManagedProcess(
            "/usr/bin/prometheus",
            [
                "--config.file=\(config.path)", "--storage.tsdb.path=\(prometheusDirectory.path)/data",
                "--web.listen-address=127.0.0.1:\(promPort)", "--log.level=info",
            ])
        try prometheus.waitFor("Server is ready to receive web requests", timeout: 60)

        directPort = try freePort()
        direct = try ManagedProcess(
            PackagePaths.product("accel-metrics-adapter"),
            [
                "--secure-port", "0", "--insecure-port", "\(directPort)", "--bind-address", "127.0.0.1",
                "--exporters.targets", "\(exporterAddress),\(pods.address)", "--metric-resolution", "250ms",
            ])
        try direct.waitFor("accel-metrics-adapter started")
        prometheusAdapterPort = try freePort()
        viaPrometheus = try ManagedProcess(
            PackagePaths.product("accel-metrics-adapter"),
            [
                "--secure-port", "0", "--insecure-port", "\(prometheusAdapterPort)", "--bind-address", "127.0.0.1", "--source", "prometheus",
                "--prometheus.url", "http://127.0.0.1:\(promPort)", "--prometheus.series-selector",
                #"job="accel-exporter""#, "--metric-resolution", "250ms",
            ])
        try viaPrometheus.waitFor("accel-metrics-adapter started")
    }

    let prometheusDirectory: URL = {
        let url = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("accel-prom-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }()

    deinit {
        viaPrometheus.stop()
        direct.stop()
        prometheus.stop()
        exporter.stop()
        try? FileManager.default.removeItem(at: prometheusDirectory)
    }

    func items(port: Int, _ path: String) throws -> [[String: Any]] {
        let kubectl = try #require(PackagePaths.executable("kubectl"))
        let (out, _, status) = try runProgram(kubectl, ["--server", "http://127.0.0.1:\(port)", "get", "--raw", path])
        guard status == 0, let json = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any] else {
            return []
        }
        return json["items"] as? [[String: Any]] ?? []
    }

    /// name → value (and timestamp) of a list.
    func summary(_ items: [[String: Any]], withTime: Bool) -> [String: String] {
        var out: [String: String] = [:]
        for item in items {
            let name = (item["describedObject"] as? [String: Any])?["name"] as? String ?? item["metricName"] as? String ?? "?"
            let value = item["value"] as? String ?? "?"
            out[name] = withTime ? "\(value) @ \(item["timestamp"] as? String ?? "?")" : value
        }
        return out
    }

    @Test func bothSourcesGiveTheSameAnswers() throws {
        let paths: [(String, Bool)] = [
            ("/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/pods/%2A/gpu_utilization", true),
            ("/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/pods/%2A/gpu_memory_utilization", true),
            ("/apis/custom.metrics.k8s.io/v1beta1/namespaces/ml/pods/train-0/gpu_temperature_celsius", true),
            ("/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/metrics/gpu_power_watts", true),
            ("/apis/external.metrics.k8s.io/v1beta1/namespaces/ml/gpu_utilization?labelSelector=container%3Dc1", true),
            // The real exporter's sample time moves every tick; compare its values only.
            ("/apis/custom.metrics.k8s.io/v1beta2/nodes/%2A/gpu_power_watts", false),
            ("/apis/custom.metrics.k8s.io/v1beta2/nodes/gpu-node-1/gpu_memory_used_bytes", false),
        ]
        for (path, withTime) in paths {
            var fromExporters: [String: String] = [:]
            var fromPrometheus: [String: String] = [:]
            _ = try eventually(timeout: 30, pollInterval: 0.25) {
                fromExporters = summary(try items(port: directPort, path), withTime: withTime)
                fromPrometheus = summary(try items(port: prometheusAdapterPort, path), withTime: withTime)
                return !fromExporters.isEmpty && fromExporters == fromPrometheus
            }
            #expect(!fromExporters.isEmpty, "\(path)")
            #expect(fromExporters == fromPrometheus, "\(path)")
        }
        // Both nodes, as Prometheus' `instance` label tells them apart.
        let nodes = summary(try items(port: prometheusAdapterPort, "/apis/custom.metrics.k8s.io/v1beta2/nodes/%2A/gpu_utilization"), withTime: false)
        #expect(Set(nodes.keys) == ["gpu-node-1", "node-a"])
    }
}
