import Accelerators
import Attribution
@testable import Exporter
@testable import Inference
import Exposition
import Foundation
import HTTPServer
import Kubernetes
import Logging
import ScrapeClient
import Testing

@Suite struct InferenceDiscoveryTests {
    static func entry(_ name: String, annotations: [String: String], ports: [Int] = [], phase: String? = "Running",
                      ip: String? = "10.0.0.7") -> NodePodWatch.Entry {
        NodePodWatch.Entry(uid: "uid-\(name)", namespace: "ml", name: name, labels: [:], annotations: annotations, podIP: ip,
                           hostNetwork: false, phase: phase, containers: [:], ports: ports)
    }

    @Test func annotationsPortsAndPaths() {
        let pods = [
            Self.entry("own", annotations: ["inference.accelmetrics.io/scrape": "true", "inference.accelmetrics.io/port": "8000"]),
            Self.entry("own-path", annotations: ["inference.accelmetrics.io/scrape": "TRUE", "inference.accelmetrics.io/path": "stats"], ports: [9000, 9001]),
            Self.entry("generic", annotations: ["prometheus.io/scrape": "true", "prometheus.io/port": "8080", "prometheus.io/path": "/m"]),
            Self.entry("opted-out", annotations: ["prometheus.io/scrape": "true", "prometheus.io/port": "8080", "inference.accelmetrics.io/scrape": "false"]),
            Self.entry("https", annotations: ["prometheus.io/scrape": "true", "prometheus.io/port": "8443", "prometheus.io/scheme": "https"]),
            Self.entry("no-port", annotations: ["inference.accelmetrics.io/scrape": "true"]),
            Self.entry("bad-port", annotations: ["inference.accelmetrics.io/scrape": "true", "inference.accelmetrics.io/port": "http"]),
            Self.entry("pending", annotations: ["inference.accelmetrics.io/scrape": "true", "inference.accelmetrics.io/port": "8000"], phase: "Pending"),
            Self.entry("no-ip", annotations: ["inference.accelmetrics.io/scrape": "true", "inference.accelmetrics.io/port": "8000"], ip: nil),
            Self.entry("plain", annotations: [:], ports: [8000]),
        ]
        let targets = InferenceDiscovery.targets(pods)
        let summary = targets.map { "\($0.pod) \($0.url) \($0.probe)" }
        #expect(summary == [
            "own http://10.0.0.7:8000/metrics false",
            "own-path http://10.0.0.7:9000/stats false",
            "generic http://10.0.0.7:8080/m true",
        ])
    }

    @Test func aProbeTargetIsReportedOnlyOnceItServesAKnownEngine() throws {
        let vllm = HTTPServer(configuration: .init(host: "127.0.0.1", port: 0, threads: 1), logger: Logger(label: "t"),
                              handler: { _ in .text("# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting 2\n") })
        let requests = RequestCounter()
        let other = HTTPServer(configuration: .init(host: "127.0.0.1", port: 0, threads: 1), logger: Logger(label: "t"),
                               handler: { _ in requests.add(); return .text("# TYPE node_load1 gauge\nnode_load1 1\n") })
        try vllm.start()
        try other.start()
        defer { vllm.stop(); other.stop() }
        let targets = [
            InferenceTarget(namespace: "ml", pod: "vllm", url: ScrapeURL(host: "127.0.0.1", port: vllm.port), probe: true),
            InferenceTarget(namespace: "ops", pod: "other", url: ScrapeURL(host: "127.0.0.1", port: other.port), probe: true),
            InferenceTarget(namespace: "ops", pod: "gone", url: ScrapeURL(host: "127.0.0.1", port: 1), probe: true),
        ]
        let source = InferenceSource(targets: targets, normalizer: RecordingNormalizer(), timeoutSeconds: 0.5, clock: { 1000 })
        let start = MonotonicInstant.now()
        for second in 0..<5 {
            let result = source.sample(now: start.adding(seconds: Double(second)))
            let up: MetricFamily? = result.families.first { $0.name == "accel_exporter_inference_target_up" }
            var pods: [String] = []
            for sample in up?.samples ?? [] {
                for label in sample.labels where label.name == "pod" { pods.append(label.value) }
            }
            #expect(pods == ["vllm"], "second \(second)")
        }
        // Not a model server: probed once, then left alone for the probe interval.
        #expect(requests.value == 1)
        _ = source.sample(now: start.adding(seconds: InferenceSource.probeInterval + 1))
        #expect(requests.value == 2)
    }

    @Test func podLabelNamesFollowKubeStateMetrics() {
        #expect(PodLabelNames.sanitized("app") == "label_app")
        #expect(PodLabelNames.sanitized("app.kubernetes.io/name") == "label_app_kubernetes_io_name")
        #expect(PodLabelNames.sanitized("team-ä") == "label_team__")
    }
}

final class RequestCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add() { lock.lock(); count += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}

@Suite struct TPUPodTargetTests {
    static func device(_ accelerator: String, vendor: String, pci: String) -> DeviceSample {
        DeviceSample(identity: DeviceIdentity(accelerator: accelerator, vendor: vendor, model: "m", pciAddress: pci))
    }

    @Test func eachTPUPodIsReachedAtItsIPWithTheChipsItHolds() {
        let devices = [
            Self.device("0000:05:00.0", vendor: "google", pci: "0000:05:00.0"),
            Self.device("0000:04:00.0", vendor: "google", pci: "0000:04:00.0"),
            Self.device("0000:06:00.0", vendor: "google", pci: "0000:06:00.0"),
            Self.device("GPU-1", vendor: "nvidia", pci: "0000:18:00.0"),
        ]
        let table = AllocationTable(allocations: [
            Allocation(accelerator: "0000:05:00.0", namespace: "ml", pod: "train", container: "c"),
            Allocation(accelerator: "0000:04:00.0", namespace: "ml", pod: "train", container: "c"),
            Allocation(accelerator: "0000:06:00.0", namespace: "ml", pod: "v6", container: "c"),
            Allocation(accelerator: "0000:06:00.0", namespace: "ml", pod: "pending", container: "c"),
            Allocation(accelerator: "GPU-1", namespace: "ml", pod: "gpu", container: "c"),
        ])
        func pod(_ name: String, ip: String, phase: String = "Running") -> NodePodWatch.Entry {
            NodePodWatch.Entry(uid: name, namespace: "ml", name: name, labels: [:], annotations: [:], podIP: ip,
                               hostNetwork: false, phase: phase, containers: [:], ports: [])
        }
        let targets = TPUPodTargets.targets(table, devices: devices, pods: [
            pod("gpu", ip: "10.0.0.1"), pod("pending", ip: "10.0.0.2", phase: "Pending"), pod("train", ip: "10.0.0.3"),
            pod("v6", ip: "fd00::7"), pod("idle", ip: "10.0.0.4"),
        ])
        let summary = targets.map { "\($0.owner ?? "") \($0.address) \($0.chips ?? [])" }
        #expect(summary == [
            "ml/train 10.0.0.3:8431 [\"0000:04:00.0\", \"0000:05:00.0\"]",
            "ml/v6 [fd00::7]:8431 [\"0000:06:00.0\"]",
        ])
    }
}
