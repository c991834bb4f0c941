import AccelMetricsTesting
import ConfigYAML
import Foundation
import Testing

/// KAR-0057 as shipped: a workload's own gauge (deploy/examples/gpu-test-workload.yaml names
/// `app_test_queue_depth` in `accelmetrics.io/metrics`) drives the example HPA through both of the adapter's
/// sources. The pods are HTTP servers on loopback; the real exporter scrapes them and re-exports the named family
/// (direct source), and a real Prometheus scrapes them itself (Prometheus source). The gauge goes above the target
/// and below it, and the replica counts are the HPA controller's arithmetic on each adapter's answers.
@Suite(.serialized, .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/prometheus")), .tags(.endToEnd), .endToEndEnabled)
final class WorkloadMetricHPATests {
    static let metric = "app_test_queue_depth"
    let pods: [FakeExporter]
    let exporter: ManagedProcess
    let prometheus: ManagedProcess
    let direct: ManagedProcess
    let viaPrometheus: ManagedProcess
    let directPort: Int
    let prometheusAdapterPort: Int
    let directory: TemporaryDirectory

    init() throws {
        directory = TemporaryDirectory(prefix: "accel-workload-hpa")
        pods = try (0..<4).map { _ in try FakeExporter(FakeNode(name: "w", devices: [])) }
        for pod in pods { pod.publish(text: "") }
        // Pod w-0 also names an exporter family (refused: it may not pose as a device) and one it does not serve.
        let targets = pods.enumerated().map { index, pod in
            let names = index == 0 ? "\(Self.metric)|accelerator_utilization_ratio|app_missing" : Self.metric
            return "ml/w-\(index)=http://\(pod.address)/metrics;metrics=\(names);inference=false"
        }.joined(separator: ",")
        exporter = try ManagedProcess(
            PackagePaths.product("accel-exporter"),
            [
                "--web.listen-address", "127.0.0.1:0", "--no-collector.amdgpu", "--no-collector.hwmon", "--no-collector.nvidia",
                "--collect.interval", "200ms", "--inference.targets", targets,
            ])
        let exporterAddress = "127.0.0.1:" + (try exporter.waitFor(#"msg=listening address=127\.0\.0\.1:(\d+)"#))

        let config = directory.url("metrics.yaml")
        try "metrics:\n  - {name: \(Self.metric), series: \(Self.metric), aggregation: avg, resources: [pods]}\n"
            .write(to: config, atomically: false, encoding: .utf8)

        let promPort = try freePort()
        let promConfig = directory.url("prometheus.yml")
        // As Kubernetes service discovery would label the pods' targets.
        let jobs = pods.enumerated().map { index, pod in
            "      - targets: ['\(pod.address)']\n        labels: {namespace: ml, pod: w-\(index)}"
        }.joined(separator: "\n")
        try "global:\n  scrape_interval: 300ms\nscrape_configs:\n  - job_name: workload\n    static_configs:\n\(jobs)\n"
            .write(to: promConfig, atomically: false, encoding: .utf8)
        prometheus = try ManagedProcess(
            "/usr/bin/prometheus",
            ["--config.file=\(promConfig.path)", "--storage.tsdb.path=\(directory.path)/data", "--web.listen-address=127.0.0.1:\(promPort)"])
        try prometheus.waitFor("Server is ready to receive web requests", timeout: 60)

        directPort = try freePort()
        direct = try ManagedProcess(
            PackagePaths.product("accel-metrics-adapter"),
            [
                "--secure-port", "0", "--insecure-port", "\(directPort)", "--bind-address", "127.0.0.1",
                "--exporters.targets", exporterAddress, "--metric-resolution", "250ms", "--metrics-config", config.path,
            ])
        try direct.waitFor("accel-metrics-adapter started")
        prometheusAdapterPort = try freePort()
        viaPrometheus = try ManagedProcess(
            PackagePaths.product("accel-metrics-adapter"),
            [
                "--secure-port", "0", "--insecure-port", "\(prometheusAdapterPort)", "--bind-address", "127.0.0.1",
                "--source", "prometheus", "--prometheus.url", "http://127.0.0.1:\(promPort)", "--metric-resolution", "250ms",
                "--metrics-config", config.path,
            ])
        try viaPrometheus.waitFor("accel-metrics-adapter started")
    }

    deinit {
        viaPrometheus.stop()
        direct.stop()
        prometheus.stop()
        exporter.stop()
    }

    /// `pods/*/app_test_queue_depth` in milli units, once the adapter serves exactly `expected`.
    func served(port: Int, expected: [String: Int64]) throws -> [String: Int64] {
        let kubectl = try #require(PackagePaths.executable("kubectl"))
        var last: [String: Int64] = [:]
        _ = try eventually(timeout: 15, pollInterval: 0.1) {
            let (out, _, status) = try runProgram(
                kubectl, ["--server", "http://127.0.0.1:\(port)", "get", "--raw", "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/pods/%2A/\(Self.metric)"])
            guard status == 0, let json = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any] else { return false }
            last = [:]
            for item in json["items"] as? [[String: Any]] ?? [] {
                let name = (item["describedObject"] as? [String: Any])?["name"] as? String ?? "?"
                last[name] = try HPAReplicaTests.milli(item["value"] as? String ?? "")
            }
            return last == expected
        }
        return last
    }

    @Test("the example HPA scales on a pod-emitted gauge, from the exporters and from Prometheus")
    func scalesOnAPodEmittedGauge() throws {
        let text = try String(contentsOf: PackagePaths.file("deploy/examples/hpa-gpu-test-workload.yaml"), encoding: .utf8)
        let manifest = try YAMLDocument.parse(Array(text.utf8))
        let pods = try manifest.at("spec").at("metrics").items[0].at("pods")
        #expect(try pods.at("metric").string("name") == Self.metric)
        let targetMilli = Int64(try pods.at("target").number("averageValue") * 1000)
        let deployment = try String(contentsOf: PackagePaths.file("deploy/examples/gpu-test-workload.yaml"), encoding: .utf8)
        #expect(deployment.contains("accelmetrics.io/metrics: \"\(Self.metric)\""))

        for port in [directPort, prometheusAdapterPort] {
            var hpa = try HPABehavior(manifest: manifest)
            var running = 1
            var now = Date().timeIntervalSince1970
            var history: [Int] = []
            // The Deployment's whole queue per period: well above the target, then well below it.
            for total in [30.0, 30, 30, 3, 3, 3, 3, 3, 3, 3] {
                var expected: [String: Int64] = [:]
                for (index, pod) in self.pods.enumerated() {
                    guard index < running else { pod.publish(text: ""); continue }
                    let share = total / Double(running)
                    // The pod's own namespace/pod labels are hostile: the pod it runs as wins.
                    pod.publish(text: "# TYPE \(Self.metric) gauge\n\(Self.metric){namespace=\"other\",pod=\"x\"} \(share)\naccelerator_utilization_ratio 1\n")
                    expected["w-\(index)"] = Int64((share * 1000).rounded())
                }
                let served = try served(port: port, expected: expected)
                #expect(served == expected, "port \(port), queue \(total), \(running) pods")
                let calculatorPods = (0..<running).map { ReplicaCalculator.Pod(name: "w-\($0)", phase: .running) }
                let desired = ReplicaCalculator().desiredReplicas(current: running, pods: calculatorPods, metrics: served, targetMilli: targetMilli)
                running = hpa.reconcile(current: running, desired: desired, now: now)
                history.append(running)
                now += 15
            }
            // Up to the manifest's maximum while the queue is high (30 over 4 pods is still above 5), back to the
            // minimum once the 60 s scale-down window has passed with the queue low.
            #expect(history.prefix(3).contains(hpa.maxReplicas), "port \(port): \(history)")
            #expect(history.last == hpa.minReplicas, "port \(port): \(history)")
            let lowStart = 3
            #expect(history[lowStart..<(lowStart + 3)].allSatisfy { $0 == hpa.maxReplicas }, "scale-down waits out the window: \(history)")
        }

        // The exporter reports what it refused from w-0, and nothing of it reached the adapters.
        let (exporterMetrics, _, _) = try runProgram("/usr/bin/curl", ["-sS", "http://\(try exporterAddress())/metrics"])
        #expect(exporterMetrics.contains(#"accel_exporter_workload_families_dropped{namespace="ml",pod="w-0",reason="not_found"} 1"#))
        #expect(exporterMetrics.contains(#"accel_exporter_workload_families_dropped{namespace="ml",pod="w-0",reason="reserved_name"} 1"#))
        #expect(exporterMetrics.contains(#"accel_exporter_workload_target_up{namespace="ml",pod="w-0"} 0"#))
        #expect(!exporterMetrics.contains("accelerator_utilization_ratio{"))
        #expect(!exporterMetrics.contains(#"namespace="other""#))
    }

    func exporterAddress() throws -> String {
        "127.0.0.1:" + (try exporter.waitFor(#"msg=listening address=127\.0\.0\.1:(\d+)"#))
    }
}
