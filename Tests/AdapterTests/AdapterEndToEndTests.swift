import AccelMetricsTesting
import Exposition
import Foundation
import Testing

/// The real adapter binary scraping a real accel-exporter (fake NVML), a fake exporter carrying pod series, a slow
/// one and a dead port; read with kubectl, the real API client, and curl where status codes matter.
@Suite(.serialized, .tags(.endToEnd), .endToEndEnabled) final class AdapterEndToEndTests {
    let exporter: ManagedProcess
    let exporterAddress: String
    let pods: FakeExporter
    let slow: FakeExporter
    let deadAddress: String
    let adapter: ManagedProcess
    let port: Int
    let sampleTime: Double

    static let node = FakeNode.reference

    init() throws {
        let root = PackagePaths.root.path
        exporter = try ManagedProcess(
            PackagePaths.product("accel-exporter"),
            [
                "--web.listen-address", "127.0.0.1:0", "--nvml.library", PackagePaths.product("libFakeNVML.so"),
                "--no-collector.amdgpu", "--no-collector.hwmon", "--kubernetes.node-name", "gpu-node-1",
                "--collect.interval", "200ms",
            ],
            environment: ["FAKE_NVML_CONFIG": "\(root)/Tests/Fixtures/nvml/h100x8.nvml"])
        exporterAddress = "127.0.0.1:" + (try exporter.waitFor(#"msg=listening address=127\.0\.0\.1:(\d+)"#))
        sampleTime = (Date().timeIntervalSince1970).rounded(.down)
        var node = Self.node
        node.sampleTime = sampleTime
        pods = try FakeExporter(node)
        var slowNode = FakeNode(name: "slow-node", devices: [.init(id: "GPU-S", utilization: 0.1, memoryUsed: 1, memoryTotal: 2, power: 1)])
        slowNode.sampleTime = sampleTime
        slow = try FakeExporter(slowNode, delaySeconds: 3)
        deadAddress = "127.0.0.1:\(try freePort())"
        port = try freePort()
        adapter = try ManagedProcess(
            PackagePaths.product("accel-metrics-adapter"),
            [
                "--secure-port", "0", "--insecure-port", "\(port)", "--bind-address", "127.0.0.1",
                "--exporters.targets", [exporterAddress, pods.address, slow.address, deadAddress].joined(separator: ","),
                "--metric-resolution", "250ms", "--exporters.timeout", "500ms", "--metrics-max-age", "30s",
            ])
        try adapter.waitFor("accel-metrics-adapter started")
    }

    deinit {
        adapter.stop()
        exporter.stop()
    }

    // MARK: Clients

    func kubectl(_ path: String) throws -> (json: [String: Any]?, err: String, status: Int32) {
        let kubectl = try #require(PackagePaths.executable("kubectl"), "kubectl is preinstalled on these machines")
        let (out, err, status) = try runProgram(kubectl, ["--server", "http://127.0.0.1:\(port)", "get", "--raw", path])
        let json = try? JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any]
        return (json, err, status)
    }

    /// curl, for status codes and methods kubectl does not expose.
    func curl(_ path: String, method: String = "GET") throws -> (status: Int, json: [String: Any]?, body: String) {
        let (out, _, _) = try runProgram(
            "/usr/bin/curl", ["-s", "-m", "10", "-X", method, "-w", "\n%{http_code}", "http://127.0.0.1:\(port)\(path)"])
        let lines = out.split(separator: "\n", omittingEmptySubsequences: false)
        let status = Int(lines.last ?? "") ?? 0
        let body = lines.dropLast().joined(separator: "\n")
        return (status, try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any], body)
    }

    /// Polls kubectl until the list has items (the first scrapes take a moment).
    func waitForItems(_ path: String, timeout: Double = 15) throws -> [[String: Any]] {
        var last = ""
        var found: [[String: Any]] = []
        let listed = try eventually(timeout: timeout, pollInterval: 0.1) {
            let (json, err, status) = try kubectl(path)
            last = err
            found = status == 0 ? json?["items"] as? [[String: Any]] ?? [] : []
            return !found.isEmpty
        }
        if listed { return found }
        throw HarnessError("no items at \(path) within \(timeout) s: \(last)\nadapter log:\n\(adapter.log.suffix(2000))")
    }

    var stamp: String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: Date(timeIntervalSince1970: sampleTime))
    }

    // MARK: Tests

    @Test func discoveryDocuments() throws {
        let (groups, _, status) = try kubectl("/apis")
        #expect(status == 0)
        #expect(groups?["kind"] as? String == "APIGroupList")
        #expect(groups?["apiVersion"] as? String == "v1")
        let list = groups?["groups"] as? [[String: Any]] ?? []
        #expect(Set(list.compactMap { $0["name"] as? String }) == ["custom.metrics.k8s.io", "external.metrics.k8s.io"])

        let (custom, _, _) = try kubectl("/apis/custom.metrics.k8s.io")
        #expect(custom?["kind"] as? String == "APIGroup")
        let preferred = custom?["preferredVersion"] as? [String: Any]
        #expect(preferred?["groupVersion"] as? String == "custom.metrics.k8s.io/v1beta2")
        let versions = (custom?["versions"] as? [[String: Any]] ?? []).compactMap { $0["version"] as? String }
        #expect(versions == ["v1beta2", "v1beta1"])

        for version in ["v1beta1", "v1beta2"] {
            let (resources, _, status) = try kubectl("/apis/custom.metrics.k8s.io/\(version)")
            #expect(status == 0)
            #expect(resources?["kind"] as? String == "APIResourceList")
            #expect(resources?["groupVersion"] as? String == "custom.metrics.k8s.io/\(version)")
            let entries = resources?["resources"] as? [[String: Any]] ?? []
            // 5 GPU metrics × pods, nodes, namespaces; gpu_sm_active and gpu_tensor_active × pods, nodes; 9 inference
            // metrics × pods, namespaces.
            #expect(entries.count == 37)
            let names = Set(entries.compactMap { $0["name"] as? String })
            #expect(names.isSuperset(of: ["pods/gpu_sm_active", "nodes/gpu_sm_active", "pods/gpu_tensor_active", "nodes/gpu_tensor_active"]))
            #expect(!names.contains("namespaces/gpu_sm_active"))
            for entry in entries {
                let name = entry["name"] as? String ?? ""
                #expect(entry["namespaced"] as? Bool == name.hasPrefix("pods/"))
                #expect(entry["kind"] as? String == "MetricValueList")
                #expect(entry["verbs"] as? [String] == ["get"])
                #expect(entry["singularName"] as? String == "")
            }
        }
        let (external, _, _) = try kubectl("/apis/external.metrics.k8s.io/v1beta1")
        let entries = external?["resources"] as? [[String: Any]] ?? []
        #expect(entries.count == 14)  // 5 GPU metrics, 9 inference metrics
        #expect(entries.allSatisfy { $0["namespaced"] as? Bool == true && $0["kind"] as? String == "ExternalMetricValueList" })
    }

    @Test func podsBothVersionsFieldByField() throws {
        let items = try waitForItems("/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/pods/%2A/gpu_utilization")
        var values: [String: String] = [:]
        for item in items {
            let object = item["describedObject"] as? [String: Any] ?? [:]
            #expect(object["kind"] as? String == "Pod")
            #expect(object["namespace"] as? String == "ml")
            #expect(object["apiVersion"] as? String == "/v1")
            let metric = item["metric"] as? [String: Any] ?? [:]
            #expect(metric["name"] as? String == "gpu_utilization")
            #expect(metric.keys.contains("selector") && metric["selector"] is NSNull)
            #expect(item["timestamp"] as? String == stamp)
            #expect(item["windowSeconds"] as? Int == 1)
            values[object["name"] as? String ?? ""] = item["value"] as? String
        }
        #expect(values == ["train-0": "70", "infer-0": "15", "infer-1": "5"])

        let (old, _, status) = try kubectl("/apis/custom.metrics.k8s.io/v1beta1/namespaces/ml/pods/train-0/gpu_memory_utilization")
        #expect(status == 0)
        #expect(old?["kind"] as? String == "MetricValueList")
        #expect(old?["apiVersion"] as? String == "custom.metrics.k8s.io/v1beta1")
        let item = (old?["items"] as? [[String: Any]])?.first ?? [:]
        #expect(item["metricName"] as? String == "gpu_memory_utilization")
        #expect(item["window"] as? Int == 1)
        #expect(item.keys.contains("selector") && item["selector"] is NSNull)
        #expect(item["value"] as? String == "37500m")

        // metricLabelSelector, form-encoded as the aggregator sends it.
        let (picked, _, _) = try kubectl(
            "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/pods/infer-1/gpu_utilization?metricLabelSelector=container%3Dc1")
        let pickedItem = (picked?["items"] as? [[String: Any]])?.first ?? [:]
        #expect(pickedItem["value"] as? String == "3")
        let selector = (pickedItem["metric"] as? [String: Any])?["selector"] as? [String: Any]
        #expect(selector?["matchLabels"] as? [String: String] == ["container": "c1"])

        // The Namespace itself.
        let (namespace, _, _) = try kubectl("/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/metrics/gpu_power_watts")
        let nsItem = (namespace?["items"] as? [[String: Any]])?.first ?? [:]
        #expect((nsItem["describedObject"] as? [String: Any])?["kind"] as? String == "Namespace")
        #expect(nsItem["value"] as? String == "650")

        // External: the whole namespace's GPUs.
        let (external, _, _) = try kubectl("/apis/external.metrics.k8s.io/v1beta1/namespaces/ml/gpu_memory_used_bytes")
        #expect(external?["kind"] as? String == "ExternalMetricValueList")
        let externalItem = (external?["items"] as? [[String: Any]])?.first ?? [:]
        #expect(externalItem["metricName"] as? String == "gpu_memory_used_bytes")
        #expect(externalItem["value"] as? String == "90G")
        #expect(externalItem["timestamp"] as? String == stamp)
    }

    @Test func nodeFiguresMatchTheExportersOwn() throws {
        // What the exporter itself says, parsed independently of the adapter.
        let (text, _, _) = try runProgram("/usr/bin/curl", ["-s", "-m", "10", "http://\(exporterAddress)/metrics"])
        let families = try ExpositionParser.parse(text, format: .text)
        let power = families.first { $0.name == "accelerator_power_watts" }?.samples.map(\.value) ?? []
        #expect(power.count == 8)
        let expected = (power.reduce(0, +) * 1000).rounded() / 1000
        let items = try waitForItems("/apis/custom.metrics.k8s.io/v1beta2/nodes/gpu-node-1/gpu_power_watts")
        let value = try #require(items.first?["value"] as? String)
        let served = value.hasSuffix("m") ? Double(value.dropLast())! / 1000 : Double(value)!
        #expect(abs(served - expected) < 0.001)
        #expect((items.first?["describedObject"] as? [String: Any])?["kind"] as? String == "Node")

        // GPM through the fake NVML (h100x8.nvml): SM activity 88, 87, 64, 57, 90, 36, 0, 0 % and tensor activity
        // 58, 58, 43, 38, 60, 24, 0, 0 %, averaged over the node's GPUs.
        let sm = try waitForItems("/apis/custom.metrics.k8s.io/v1beta2/nodes/gpu-node-1/gpu_sm_active")
        #expect(sm.first?["value"] as? String == "52750m")
        let tensor = try waitForItems("/apis/custom.metrics.k8s.io/v1beta2/nodes/gpu-node-1/gpu_tensor_active")
        #expect(tensor.first?["value"] as? String == "35125m")
    }

    @Test func errorsAreStatusDocuments() throws {
        let unknown = try curl("/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/pods/%2A/nope")
        #expect(unknown.status == 404)
        #expect(unknown.json?["kind"] as? String == "Status")
        #expect(unknown.json?["apiVersion"] as? String == "v1")
        #expect(unknown.json?["status"] as? String == "Failure")
        #expect(unknown.json?["reason"] as? String == "NotFound")
        #expect(unknown.json?["code"] as? Int == 404)
        #expect(unknown.json?["message"] as? String == "the server could not find the metric nope for pods")
        let (_, err, status) = try kubectl("/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/pods/%2A/nope")
        #expect(status != 0)
        #expect(err.contains("the server could not find the metric nope for pods"))

        let badSelector = try curl("/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/pods/%2A/gpu_utilization?labelSelector=a%20in%20(")
        #expect(badSelector.status == 400)
        #expect(badSelector.json?["reason"] as? String == "BadRequest")

        let noWatch = try curl("/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/pods/%2A/gpu_utilization?labelSelector=app%3Dinfer")
        #expect(noWatch.status == 500)
        #expect(noWatch.json?["reason"] as? String == "InternalError")

        let badPath = try curl("/apis/custom.metrics.k8s.io/v1beta3")
        #expect(badPath.status == 404)
        let post = try curl("/apis/custom.metrics.k8s.io/v1beta2", method: "POST")
        #expect(post.status == 405)
    }

    @Test func healthAndOpenAPI() throws {
        for path in ["/healthz", "/livez", "/readyz"] {
            let answer = try curl(path)
            #expect(answer.status == 200)
            #expect(answer.body == "ok")
        }
        let v2 = try curl("/openapi/v2")
        #expect(v2.status == 200)
        #expect(v2.json?["swagger"] as? String == "2.0")
        let v3 = try curl("/openapi/v3")
        #expect(v3.status == 200)
        #expect(v3.json?["paths"] is [String: Any])
    }

    @Test func slowAndDeadExportersAreCountedNotWaitedFor() throws {
        _ = try waitForItems("/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/pods/%2A/gpu_utilization")
        var figures: [String: Double] = [:]
        _ = try eventually(timeout: 15, pollInterval: 0.2) {
            let text = try curl("/metrics").body
            let families = try ExpositionParser.parse(text, format: .text)
            figures = [:]
            for family in families {
                for sample in family.samples {
                    let labels = sample.labels.map { "\($0.name)=\($0.value)" }.joined(separator: ",")
                    figures["\(family.name)\(sample.suffix){\(labels)}"] = sample.value
                }
            }
            return figures["accel_metrics_adapter_scrapes{result=timeout}", default: 0] > 0
                && figures["accel_metrics_adapter_scrapes{result=connect_error}", default: 0] > 0
                && figures["accel_metrics_adapter_targets{state=up}"] == 2
        }
        #expect(figures["accel_metrics_adapter_targets{state=up}"] == 2)
        #expect(figures["accel_metrics_adapter_targets{state=down}"] == 2)
        #expect(figures["accel_metrics_adapter_scrapes{result=timeout}", default: 0] > 0)
        #expect(figures["accel_metrics_adapter_scrapes{result=connect_error}", default: 0] > 0)
        #expect(figures["accel_metrics_adapter_scrapes{result=success}", default: 0] > 0)
        // The slow exporter's node never reached the store; the others did.
        let (_, err, status) = try kubectl("/apis/custom.metrics.k8s.io/v1beta2/nodes/slow-node/gpu_utilization")
        #expect(status != 0)
        #expect(err.contains("could not find the metric gpu_utilization for nodes slow-node"))
        // One warning per failing target, not one per scrape.
        let warnings = adapter.log.components(separatedBy: "exporter scrape failed").count - 1
        #expect(warnings == 2)
    }

    @Test func changedReadingsAreServedOnTheNextScrapes() throws {
        _ = try waitForItems("/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/pods/train-0/gpu_utilization")
        var node = Self.node
        node.sampleTime = sampleTime + 5
        node.shares[0].utilization = 0.10  // train-0 on GPU-A: avg(10, 50) = 30
        pods.publish(node)
        var value: String?
        _ = try eventually(timeout: 10, pollInterval: 0.1) {
            let (json, _, _) = try kubectl("/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/pods/train-0/gpu_utilization")
            value = (json?["items"] as? [[String: Any]])?.first?["value"] as? String
            return value == "30"
        }
        #expect(value == "30")
    }
}
