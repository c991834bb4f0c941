import DeviceSimulation
import AccelMetricsTesting
import Exporter
import FakeRPCServers
import Foundation
import HTTPServer
import Logging
import PodResourcesAPI
import Synchronization
import Testing

/// The exporter with the node's pod watch: pod names for per-process shares (no pod log directories), allow-listed
/// pod labels, ResourceSlice attributes for DRA claims, and model-server discovery from annotations.
@Suite("pod watch end to end", .serialized, .tags(.endToEnd), .endToEndEnabled)
struct PodWatchEndToEndTests {
    typealias K = KubeletEndToEndTests

    static func pod(_ namespace: String, _ name: String, uid: String, node: String = "node-a", labels: [String: String] = [:],
                    annotations: [String: String] = [:], containers: [(String, String?)] = [], ports: [Int] = [],
                    phase: String = "Running") -> [String: Any] {
        [
            "apiVersion": "v1", "kind": "Pod",
            "metadata": ["namespace": namespace, "name": name, "uid": uid, "labels": labels, "annotations": annotations],
            "spec": ["nodeName": node, "containers": [["name": "main", "ports": ports.map { ["containerPort": $0] }]]],
            "status": ["phase": phase, "podIP": "127.0.0.1",
                       "containerStatuses": containers.map { c -> [String: Any] in
                           var s: [String: Any] = ["name": c.0]
                           if let id = c.1 { s["containerID"] = id }
                           return s
                       }],
        ]
    }

    /// The runtime container id HostFiles puts in PID `pid`'s cgroup.
    static func containerID(_ pid: Int) -> String { String(String(repeating: String(pid), count: 13).prefix(64)) }

    @Test func podNamesLabelsSlicesAndModelServersFromTheAPIServer() async throws {
        let waiting = Mutex(4)
        let vllm = HTTPServer(configuration: .init(host: "127.0.0.1", port: 0, threads: 1), logger: Logger(label: "vllm"), handler: { _ in
            .text("""
                # TYPE vllm:num_requests_waiting gauge
                vllm:num_requests_waiting{model_name="llama"} \(waiting.withLock { $0 })
                # TYPE vllm:num_requests_running gauge
                vllm:num_requests_running{model_name="llama"} 2

                """)
        })
        try vllm.start()
        defer { vllm.stop() }
        // Another exporter on the node with the generic annotation: probed, never reported as a model server.
        let other = HTTPServer(configuration: .init(host: "127.0.0.1", port: 0, threads: 1), logger: Logger(label: "other"), handler: { _ in
            .text("# TYPE node_load1 gauge\nnode_load1 0.5\n")
        })
        try other.start()
        defer { other.stop() }

        let machine = try NVIDIATests.Machine("h100x8")
        // Per-process samples stamped with the call time, so each tick sees new ones (see KubeletEndToEndTests).
        try machine.replace(with: machine.text.replacingOccurrences(of: "cuda_version 12040\n", with: "cuda_version 12040\nvary 1\n"))
        let gpu5 = NVIDIATests.uuid(machine, 5)
        let gpu6 = NVIDIATests.uuid(machine, 6)
        let api = try FakeAPIServer(objects: [
            Self.pod("ml", "infer-a", uid: K.uidA, labels: ["app": "llm", "team": "search"],
                     annotations: ["inference.accelmetrics.io/scrape": "true", "inference.accelmetrics.io/port": "\(vllm.port)"],
                     containers: [("server", "containerd://" + Self.containerID(60110))]),
            Self.pod("ml", "infer-b", uid: K.uidB, labels: ["app": "llm"], containers: [("server", "containerd://" + Self.containerID(60111))]),
            Self.pod("ml", "train-0", uid: "1a2b3c4d-0000-4000-8000-0000000000c0", labels: ["app": "trainer"]),
            Self.pod("ops", "node-metrics", uid: "1a2b3c4d-0000-4000-8000-0000000000d0",
                     annotations: ["prometheus.io/scrape": "true"], ports: [other.port]),
            // Another node's model server: outside the field selector.
            Self.pod("ml", "elsewhere", uid: "1a2b3c4d-0000-4000-8000-0000000000e0", node: "node-b",
                     annotations: ["inference.accelmetrics.io/scrape": "true", "inference.accelmetrics.io/port": "\(vllm.port)"]),
            [
                "apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice",
                "metadata": ["name": "node-a-example"],
                "spec": ["driver": "gpu.example.com", "nodeName": "node-a", "pool": ["name": "pool-x", "generation": 1, "resourceSliceCount": 1],
                         "devices": [["name": "dev-7", "attributes": ["gpu.example.com/uuid": ["string": gpu6], "index": ["int": 6]]]]],
            ],
        ])
        defer { api.stop() }
        #expect(api.port > 0)

        let files = try K.HostFiles()
        let (dir, socket) = kubeletSocketPath()
        defer { dir.remove() }
        let fake = FakeKubelet(socketPath: socket)
        fake.set {
            $0.list = listMessage([
                podMessage("ml", "train-0", [containerMessage("trainer", ids: [K.gpu0])]),
                podMessage("ml", "infer-a", [containerMessage("server", ids: [K.gpu3 + "::0"])]),
                podMessage("ml", "infer-b", [containerMessage("server", ids: [K.gpu3 + "::1"])]),
                // NVIDIA's DRA driver names a full GPU by its minor number; no CDI name to go on.
                podMessage("ml", "dra-minor", [containerMessage("main", claims: [
                    claimMessage("by-minor", namespace: "ml", driver: "gpu.nvidia.com", pool: "node-a", device: "gpu-5", cdi: []),
                ])]),
                // A driver whose names say nothing: only its ResourceSlice's uuid attribute joins it.
                podMessage("ml", "dra-slice", [containerMessage("main", claims: [
                    claimMessage("by-slice", namespace: "ml", driver: "gpu.example.com", pool: "pool-x", device: "dev-7", cdi: []),
                ])]),
            ])
        }
        try await fake.start()
        let exporter = try NVIDIATests.exporter(machine, arguments: [
            "--kubelet.pod-resources-socket", socket, "--kubelet.refresh-interval", "1s",
            "--collector.processes", "--path.procfs", files.procfs, "--kubelet.pod-logs-path", "",
            "--kubeconfig", try api.kubeconfig(user: "exporter", token: "exporter-token").path, "--kubernetes.node-name", "node-a", "--kubernetes.pod-labels", "app,team",
        ])
        defer { exporter.stop() }

        let text = await K.waitFor(exporter) {
            $0.contains(K.kubeletUp) && K.sample($0, "accelerator_pod_utilization_ratio", [K.gpu3, #"pod="infer-b""#]) != nil
                && $0.contains(#"claim="by-slice""#) && $0.contains("inference_requests_waiting{")
        }
        // Per-process shares named through the pod watch (pod log directories are off).
        let aUtil = K.sample(text, "accelerator_pod_utilization_ratio", [K.gpu3, #"pod="infer-a""#, #"container="server""#])
        let bUtil = K.sample(text, "accelerator_pod_utilization_ratio", [K.gpu3, #"pod="infer-b""#, #"container="server""#])
        #expect(aUtil == 0.41)
        #expect(bUtil == 0.23)
        // DRA: by NVIDIA minor number, and through the ResourceSlice attribute.
        let byMinor = K.sample(text, "accelerator_allocated", [gpu5, #"pod="dra-minor""#, #"claim="by-minor""#])
        let bySlice = K.sample(text, "accelerator_allocated", [gpu6, #"pod="dra-slice""#, #"claim="by-slice""#])
        #expect(byMinor == 1)
        #expect(bySlice == 1)
        let unmatched = K.sample(text, "accel_exporter_attribution_unmatched_devices", [#"source="dra""#])
        #expect(unmatched == 0)
        // Allow-listed labels of the pods holding devices; pods holding none get no series.
        #expect(text.contains(#"accelerator_pod_labels{namespace="ml",pod="infer-a",label_app="llm",label_team="search"} 1"#))
        #expect(text.contains(#"accelerator_pod_labels{namespace="ml",pod="train-0",label_app="trainer"} 1"#))
        let opsLabels = text.contains(#"accelerator_pod_labels{namespace="ops""#)
        #expect(!opsLabels)
        #expect(text.contains(#"accel_exporter_collector_success{collector="pod_watch"} 1"#))
        #expect(text.contains("accel_exporter_attribution_up 1"))
        // The annotated model server is scraped; the generic-annotation exporter and the other node's pod are not reported.
        #expect(text.contains(#"inference_requests_waiting{model_name="llama",namespace="ml",pod="infer-a"} 4"#))
        #expect(text.contains(#"accel_exporter_inference_target_up{namespace="ml",pod="infer-a"} 1"#))
        let reportedOthers = text.contains(#"pod="node-metrics""#) || text.contains(#"pod="elsewhere""#)
        #expect(!reportedOthers)
        let (_, lint, lintStatus) = try runProgramCapturingBytes(EndToEndTests.promtool, ["check", "metrics"], stdin: Data(text.utf8))
        #expect(lintStatus == 0, "promtool: \(lint)")

        // The model-server pod goes away: its inference series and target go with it in the next snapshots.
        try api.control("DELETE", "/fake/objects?kind=Pod&namespace=ml&name=infer-a")
        let gone = await K.waitFor(exporter) { !$0.contains(#"pod="infer-a",model_name"#) && !$0.contains(#"namespace="ml",pod="infer-a"} "#) }
        let stillScraped = gone.contains(#"accel_exporter_inference_target_up{namespace="ml",pod="infer-a"}"#)
        #expect(!stillScraped)
        // A new one appears with the project's annotation and no port annotation: its declared container port is used.
        try api.control("POST", "/fake/objects", Self.pod("ml", "infer-c", uid: "1a2b3c4d-0000-4000-8000-0000000000f0",
                                                                annotations: ["inference.accelmetrics.io/scrape": "true"], ports: [vllm.port]))
        waiting.withLock { $0 = 7 }
        _ = await K.waitFor(exporter) { $0.contains(#"inference_requests_waiting{model_name="llama",namespace="ml",pod="infer-c"} 7"#) }

        // The kubelet goes away for good: attribution is kept for the staleness bound (6 × 1 s), then dropped.
        await fake.stop()
        let dropped = await K.waitFor(exporter, timeout: 30) { $0.contains("accel_exporter_attribution_up 0") }
        let leftover = dropped.contains("accelerator_allocated{")
        #expect(!leftover)
        let deviceUp = dropped.contains("accelerator_up{accelerator=\"\(K.gpu0)\"")
        #expect(deviceUp)
    }

    @Test func withoutAPIAccessTheWatchStaysOffWithOneLine() throws {
        let machine = try NVIDIATests.Machine("h100x8")
        let exporter = try NVIDIATests.exporter(machine, arguments: ["--no-collector.kubelet"])
        defer { exporter.stop() }
        let text = try exporter.waitForMetrics { $0.contains("accelerator_up{") }
        let watchSeries = text.contains(#"collector="pod_watch""#)
        #expect(!watchSeries)
        let offLines = exporter.log.components(separatedBy: "pod watch off").count - 1
        #expect(offLines == 1)
    }

    @Test func anUnreachableAPIServerIsAStatusNotACrash() throws {
        let dir = TemporaryDirectory(prefix: "kc")
        let kubeconfig = try writeKubeconfig(in: dir, server: "http://127.0.0.1:1", user: "exporter", token: "t")
        let machine = try NVIDIATests.Machine("h100x8")
        let exporter = try NVIDIATests.exporter(machine, arguments: ["--no-collector.kubelet", "--kubeconfig", kubeconfig.path, "--kubernetes.node-name", "n"])
        defer { exporter.stop() }
        let text = try exporter.waitForMetrics { $0.contains(#"accel_exporter_collector_success{collector="pod_watch"} 0"#) }
        #expect(text.contains("accelerator_up{"))
        // A refused connection fails after the client's connect timeout (10 s: it retries the connection until then).
        _ = eventually(timeout: 25, pollInterval: 0.2) { exporter.log.contains("list/watch failed") }
        Thread.sleep(forTimeInterval: 1.5)
        let warnings = exporter.log.components(separatedBy: "list/watch failed").count - 1
        #expect(warnings == 1, "once per failure streak:\n\(exporter.log.suffix(2000))")
    }
}

/// The real exporter on the simulated MI300X node (umockdev) with AMD device-plugin and DRA allocations from the fake
/// kubelet: a pod with two containers on two GPUs, a claim with two devices (AMD's DRA names `gpu-<card>-<render>`),
/// and one device in two claims.
@Suite("AMD attribution end to end", .serialized, .tags(.endToEnd), .endToEndEnabled)
struct AMDAttributionEndToEndTests {
    typealias K = KubeletEndToEndTests
    /// `accelerator` of the MI300X fixture's card i (its `unique_id`).
    static func id(_ i: Int) -> String { "accelerator=\"4a2b00000000100\(i)\"" }

    static func claim(_ name: String, devices: [String]) -> V1_DynamicResource {
        var claim = claimMessage(name, namespace: "ml", driver: "gpu.amd.com", pool: "node-a", device: devices[0], cdi: [])
        for device in devices.dropFirst() {
            var r = claim.claimResources[0]
            r.deviceName = device
            claim.claimResources.append(r)
        }
        return claim
    }

    @Test func devicePluginAndDRAOnAnAMDNode() async throws {
        let (dir, socket) = kubeletSocketPath()
        defer { dir.remove() }
        let fake = FakeKubelet(socketPath: socket)
        fake.set {
            $0.list = listMessage([
                podMessage("ml", "two-gpu", [
                    containerMessage("a", resource: "amd.com/gpu", ids: ["0000:05:00.0"]),
                    containerMessage("b", resource: "amd.com/gpu", ids: ["0000:15:00.0"]),
                ]),
                // card17/renderD145 is 0000:65:00.0, card25/renderD153 is 0000:75:00.0, card33/renderD161 is 0000:85:00.0.
                podMessage("ml", "dra-multi", [containerMessage("main", claims: [Self.claim("multi", devices: ["gpu-17-145", "gpu-25-153"])])]),
                podMessage("ml", "share-1", [containerMessage("main", claims: [Self.claim("first", devices: ["gpu-33-161"])])]),
                podMessage("ml", "share-2", [containerMessage("main", claims: [Self.claim("second", devices: ["gpu-33-161"])])]),
            ])
            $0.allocatable = nil
        }
        try await fake.start()
        let exporter = try ExporterProcess(tree: FixtureNodes.tree(named: "mi300x-8")!, arguments: [
            "--kubelet.pod-resources-socket", socket, "--kubelet.refresh-interval", "1s", "--no-collector.nvidia",
            "--collect.interval", "200ms",
        ])
        defer { exporter.stop() }
        let text = await K.waitFor(exporter) { $0.contains(K.kubeletUp) && $0.contains(#"claim="second""#) }
        let a = K.sample(text, "accelerator_allocated", [Self.id(0), #"pod="two-gpu""#, #"container="a""#])
        let b = K.sample(text, "accelerator_allocated", [Self.id(1), #"pod="two-gpu""#, #"container="b""#])
        #expect(a == 1)
        #expect(b == 1)
        let aUtil = K.sample(text, "accelerator_pod_utilization_ratio", [Self.id(0), #"container="a""#])
        let device0 = K.sample(text, "accelerator_utilization_ratio", [Self.id(0)])
        #expect(aUtil != nil)
        #expect(aUtil == device0)
        let multi2 = K.sample(text, "accelerator_allocated", [Self.id(2), #"pod="dra-multi""#, #"claim="multi""#])
        let multi3 = K.sample(text, "accelerator_allocated", [Self.id(3), #"pod="dra-multi""#, #"claim="multi""#])
        #expect(multi2 == 1)
        #expect(multi3 == 1)
        // One device in two claims: both allocated, shared, so no per-pod figures without per-process data.
        let first = K.sample(text, "accelerator_allocated", [Self.id(4), #"pod="share-1""#, #"claim="first""#])
        let second = K.sample(text, "accelerator_allocated", [Self.id(4), #"pod="share-2""#, #"claim="second""#])
        #expect(first == 1)
        #expect(second == 1)
        let sharedUtil = K.sample(text, "accelerator_pod_utilization_ratio", [Self.id(4)])
        #expect(sharedUtil == nil)
        let unmatched = K.sample(text, "accel_exporter_attribution_unmatched_devices", [#"source="dra""#])
        #expect(unmatched == 0)
        let (_, lint, lintStatus) = try runProgramCapturingBytes(EndToEndTests.promtool, ["check", "metrics"], stdin: Data(text.utf8))
        #expect(lintStatus == 0, "promtool: \(lint)")

        // Pods come and go: share-2 leaves, and its series go with it.
        fake.set {
            $0.list = listMessage([
                podMessage("ml", "share-1", [containerMessage("main", claims: [Self.claim("first", devices: ["gpu-33-161"])])]),
            ])
        }
        let after = await K.waitFor(exporter) { !$0.contains(#"pod="share-2""#) && !$0.contains(#"pod="two-gpu""#) }
        // Now held by one claim alone: exclusive, so the device's figures.
        let nowExclusive = K.sample(after, "accelerator_pod_utilization_ratio", [Self.id(4), #"pod="share-1""#])
        #expect(nowExclusive != nil)
        await fake.stop()
    }
}

/// MIG slices through the device plugin's mixed strategy (`nvidia.com/mig-<profile>` with MIG UUIDs) on the fake
/// A100 with four slices.
@Suite("MIG attribution end to end", .serialized, .tags(.endToEnd), .endToEndEnabled)
struct MIGAttributionEndToEndTests {
    typealias K = KubeletEndToEndTests

    @Test func migSlicesAreAllocatedByTheirUUIDs() async throws {
        let slice3g = "MIG-5b1e7c0a-3d92-5f48-b6a1-0c4e8f2d7a93"
        let slice1g = "MIG-0e9a3b57-1f6c-5d28-a4b7-e3c5d9f1a615"
        let (dir, socket) = kubeletSocketPath()
        defer { dir.remove() }
        let fake = FakeKubelet(socketPath: socket)
        fake.set {
            $0.list = listMessage([
                podMessage("ml", "big", [containerMessage("main", resource: "nvidia.com/mig-3g.20gb", ids: [slice3g])]),
                podMessage("ml", "small", [containerMessage("main", resource: "nvidia.com/mig-1g.5gb", ids: [slice1g])]),
            ])
            $0.allocatable = nil
        }
        try await fake.start()
        let machine = try NVIDIATests.Machine("a100-mig")
        let exporter = try NVIDIATests.exporter(machine, arguments: ["--kubelet.pod-resources-socket", socket, "--kubelet.refresh-interval", "1s"])
        defer { exporter.stop() }
        let text = await K.waitFor(exporter) { $0.contains(K.kubeletUp) && $0.contains(#"pod="small""#) }
        let big = K.sample(text, "accelerator_allocated", ["accelerator=\"\(slice3g)\"", #"pod="big""#])
        let small = K.sample(text, "accelerator_allocated", ["accelerator=\"\(slice1g)\"", #"pod="small""#])
        #expect(big == 1)
        #expect(small == 1)
        // Each slice is held exclusively: the slice's own memory figure is the pod's.
        let bigMemory = K.sample(text, "accelerator_pod_memory_used_bytes", ["accelerator=\"\(slice3g)\"", #"pod="big""#])
        let sliceMemory = K.sample(text, "accelerator_memory_used_bytes", ["accelerator=\"\(slice3g)\"", #"memory="vram""#])
        #expect(bigMemory != nil)
        #expect(bigMemory == sliceMemory)
        // The parent GPU is not allocated to anyone.
        let parentAllocated = text.split(separator: "\n").contains {
            $0.hasPrefix("accelerator_allocated{") && $0.contains("GPU-8a3f6c21-94d7-4b0e-a51c-2f7e9d3b6c48")
        }
        #expect(!parentAllocated)
        await fake.stop()
    }
}
