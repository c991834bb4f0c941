import AccelMetricsTesting
import FakeRPCServers
import Foundation
import PodResourcesAPI
import Testing

/// The real exporter binary (fake NVML, 8× H100) attributing devices to pods from the in-process fake kubelet.
@Suite("pod attribution end to end", .serialized, .tags(.endToEnd), .endToEndEnabled)
struct KubeletEndToEndTests {
    // h100x8.nvml: GPU 0 runs one process; GPU 3 is time-sliced between PIDs 60110 (41 %, 17179869184 B) and 60111
    // (23 %, 12884901888 B); GPU 4 runs one process.
    static let gpu0 = "GPU-4f9c1c6e-0b59-4b53-8d2c-1a2b3c4d5e00"
    static let gpu3 = "GPU-b83a4d6f-1c2e-4f5a-a6b7-c8d9e0f1a273"
    static let gpu4 = "GPU-6e0f2a9c-8b7d-4c1e-b3a5-d4e5f6071884"
    static let uidA = "1a2b3c4d-0000-4000-8000-00000000000a"
    static let uidB = "1a2b3c4d-0000-4000-8000-00000000000b"

    static func allocations(exclusivePod: String = "train-0") -> V1_ListPodResourcesResponse {
        listMessage([
            podMessage("ml", exclusivePod, [containerMessage("trainer", ids: [gpu0])]),
            podMessage("ml", "infer-a", [containerMessage("server", ids: [gpu3 + "::0"])]),
            podMessage("ml", "infer-b", [containerMessage("server", ids: [gpu3 + "::1"])]),
            podMessage("ml", "dra-0", [containerMessage("main", claims: [
                claimMessage("gpu-claim", namespace: "ml", driver: "gpu.nvidia.com", pool: "test-node", device: "gpu-4",
                             cdi: ["k8s.gpu.nvidia.com/device=\(gpu4)"]),
            ])]),
            // Not an accelerator: ignored, not counted as unknown.
            podMessage("kube-system", "dns", [containerMessage("coredns", resource: "hugepages-2Mi", ids: ["x"])]),
        ])
    }

    /// A `--path.procfs` root with the two time-sliced processes in two pods, and the kubelet's pod log directories.
    final class HostFiles {
        let root: URL
        var procfs: String { root.appendingPathComponent("proc").path }
        var podLogs: String { root.appendingPathComponent("pods").path }

        init() throws {
            root = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("kubelet-e2e-\(UUID().uuidString)")
            for (pid, uid) in [(60110, KubeletEndToEndTests.uidA), (60111, KubeletEndToEndTests.uidB)] {
                let dir = root.appendingPathComponent("proc/\(pid)")
                try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
                let slice = uid.replacingOccurrences(of: "-", with: "_")
                let container = String(repeating: String(pid), count: 13).prefix(64)
                try "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod\(slice).slice/cri-containerd-\(container).scope\n"
                    .write(to: dir.appendingPathComponent("cgroup"), atomically: false, encoding: .utf8)
                try "\(pid) (python3) S 1 \(pid) \(pid) 0 -1 4194560 1520 0 3 0 12 4 0 0 20 0 8 0 \(100000 + pid) 1073741824 2048 0 0 0 0\n"
                    .write(to: dir.appendingPathComponent("stat"), atomically: false, encoding: .utf8)
            }
            for name in ["ml_infer-a_\(KubeletEndToEndTests.uidA)", "ml_infer-b_\(KubeletEndToEndTests.uidB)"] {
                try FileManager.default.createDirectory(at: root.appendingPathComponent("pods/\(name)/server"), withIntermediateDirectories: true)
            }
        }

        deinit { try? FileManager.default.removeItem(at: root) }
    }

    /// The value of the sample of `family` whose label set contains every `needle`; nil when there is none.
    static func sample(_ text: String, _ family: String, _ needles: [String]) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(family + "{") {
            if needles.allSatisfy({ line.contains($0) }) { return Double(line.split(separator: " ").last!) }
        }
        return nil
    }

    static func scrape(_ exporter: ExporterProcess) -> String { (try? exporter.get("/metrics").text) ?? "" }

    /// Polls fresh scrapes until `condition` holds (bounded); returns the last scrape.
    static func waitFor(_ exporter: ExporterProcess, timeout: Double = 20, _ condition: (String) -> Bool) async -> String {
        var last = ""
        _ = await eventually(timeout: timeout, pollInterval: 0.1) {
            last = scrape(exporter)
            return condition(last)
        }
        if !condition(last) { Issue.record("not met within \(timeout)s; scrape:\n\(last.prefix(2000))\nlog:\n\(exporter.log.suffix(3000))") }
        return last
    }

    static let kubeletUp = #"accel_exporter_collector_success{collector="kubelet"} 1"#
    static let kubeletDown = #"accel_exporter_collector_success{collector="kubelet"} 0"#

    @Test func allocationsAndPerPodSharesFromTheKubeletAndProcesses() async throws {
        let files = try HostFiles()
        let (dir, socket) = kubeletSocketPath()
        defer { dir.remove() }
        let fake = FakeKubelet(socketPath: socket)
        fake.set { $0.list = Self.allocations() }
        try await fake.start()
        let machine = try NVIDIATests.Machine("h100x8")
        // `vary 1`: per-process utilization samples stamped with the call time, so each tick sees new ones (as a
        // driver sampling every few hundred ms does); device figures then vary from tick to tick.
        try machine.replace(with: machine.text.replacingOccurrences(of: "cuda_version 12040\n", with: "cuda_version 12040\nvary 1\n"))
        let exporter = try NVIDIATests.exporter(machine, arguments: [
            "--kubelet.pod-resources-socket", socket, "--kubelet.refresh-interval", "1s",
            // Room for a loaded machine between the last good List and the first scrape that sees the kubelet gone.
            "--kubelet.stale-after", "30s",
            "--collector.processes", "--path.procfs", files.procfs, "--kubelet.pod-logs-path", files.podLogs,
        ])
        defer { exporter.stop() }

        let text = await Self.waitFor(exporter) {
            $0.contains(Self.kubeletUp) && $0.contains("accelerator_pod_utilization_ratio{") && $0.contains(#"pod="infer-b""#)
        }
        // Device plugin, exclusive: one allocation, and the device's own figures as the pod's.
        let trainAllocated = Self.sample(text, "accelerator_allocated", [Self.gpu0, #"namespace="ml""#, #"pod="train-0""#, #"container="trainer""#])
        #expect(trainAllocated == 1)
        let trainUtil = Self.sample(text, "accelerator_pod_utilization_ratio", [Self.gpu0, #"pod="train-0""#])
        let deviceUtil = Self.sample(text, "accelerator_utilization_ratio", [Self.gpu0])
        #expect(trainUtil != nil)
        #expect(trainUtil == deviceUtil)
        let trainMemory = Self.sample(text, "accelerator_pod_memory_used_bytes", [Self.gpu0, #"pod="train-0""#])
        let deviceMemory = Self.sample(text, "accelerator_memory_used_bytes", [Self.gpu0, #"memory="vram""#])
        #expect(trainMemory != nil)
        #expect(trainMemory == deviceMemory)
        // Time-sliced replicas `<UUID>::<n>`: both holders allocated, each with its own measured share.
        let aAllocated = Self.sample(text, "accelerator_allocated", [Self.gpu3, #"pod="infer-a""#, #"container="server""#])
        let bAllocated = Self.sample(text, "accelerator_allocated", [Self.gpu3, #"pod="infer-b""#, #"container="server""#])
        #expect(aAllocated == 1)
        #expect(bAllocated == 1)
        let aUtil = Self.sample(text, "accelerator_pod_utilization_ratio", [Self.gpu3, #"pod="infer-a""#])
        let bUtil = Self.sample(text, "accelerator_pod_utilization_ratio", [Self.gpu3, #"pod="infer-b""#])
        let aMemory = Self.sample(text, "accelerator_pod_memory_used_bytes", [Self.gpu3, #"pod="infer-a""#])
        let bMemory = Self.sample(text, "accelerator_pod_memory_used_bytes", [Self.gpu3, #"pod="infer-b""#])
        #expect(aUtil == 0.41)
        #expect(bUtil == 0.23)
        #expect(aMemory == 17_179_869_184)
        #expect(bMemory == 12_884_901_888)
        // DRA claim: the claim label, and exclusive figures.
        let claim = Self.sample(text, "accelerator_allocated", [Self.gpu4, #"pod="dra-0""#, #"container="main""#, #"claim="gpu-claim""#])
        #expect(claim == 1)
        let draUtil = Self.sample(text, "accelerator_pod_utilization_ratio", [Self.gpu4, #"pod="dra-0""#])
        let gpu4Util = Self.sample(text, "accelerator_utilization_ratio", [Self.gpu4])
        #expect(draUtil != nil)
        #expect(draUtil == gpu4Util)
        // Every series names its pod; nothing unmatched; device series keep no pod labels.
        let emptyLabel = text.contains(#"pod="""#) || text.contains(#"namespace="""#)
        #expect(!emptyLabel)
        let unmatched = Self.sample(text, "accel_exporter_attribution_unmatched_devices", [#"source="device_plugin""#])
        #expect(unmatched == 0)
        let deviceLineWithPod = text.split(separator: "\n").contains { $0.hasPrefix("accelerator_utilization_ratio{") && $0.contains("pod=") }
        #expect(!deviceLineWithPod)
        let (_, lint, lintStatus) = try runProgramCapturingBytes(EndToEndTests.promtool, ["check", "metrics"], stdin: Data(text.utf8))
        #expect(lintStatus == 0, "promtool: \(lint)")

        // Scraping hard never reaches the kubelet: List runs on its own 1 s interval.
        let callsBefore = fake.listCalls
        let started = Date()
        for _ in 0..<60 { _ = Self.scrape(exporter) }
        let elapsed = Date().timeIntervalSince(started)
        let listCalls = fake.listCalls - callsBefore
        #expect(listCalls <= Int(elapsed) + 2, "\(listCalls) List calls during 60 scrapes in \(elapsed)s")

        // With the client connected and 8 GPUs attributed, the exporter stays within the base DaemonSet's 64 MiB limit.
        let status = (try? String(contentsOfFile: "/proc/\(exporter.exporterPID)/status", encoding: .utf8)) ?? ""
        let rssKiB = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }
            .flatMap { Int($0.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") }
        print("accel-exporter VmRSS with the kubelet client connected: \(rssKiB ?? -1) KiB (\(PackagePaths.product("accel-exporter")))")
        #expect(rssKiB != nil)
        #expect((rssKiB ?? .max) < 64 * 1024)

        // The kubelet goes away: kubelet success 0, device metrics keep coming, allocations kept for a while.
        await fake.stop()
        let down = await Self.waitFor(exporter) { $0.contains(Self.kubeletDown) }
        let gpuUp = down.contains("accelerator_up{accelerator=\"\(Self.gpu0)\"")
        #expect(gpuUp)
        let kept = Self.sample(down, "accelerator_allocated", [Self.gpu0, #"pod="train-0""#])
        #expect(kept == 1)
        let healthz = try exporter.get("/healthz").status
        #expect(healthz == 200)

        // It comes back with a changed allocation: the new pod replaces the old one.
        fake.set { $0.list = Self.allocations(exclusivePod: "train-1") }
        try await fake.start()
        let back = await Self.waitFor(exporter) { $0.contains(Self.kubeletUp) && $0.contains(#"pod="train-1""#) }
        let replaced = Self.sample(back, "accelerator_allocated", [Self.gpu0, #"pod="train-0""#])
        #expect(replaced == nil)
        let newPod = Self.sample(back, "accelerator_pod_utilization_ratio", [Self.gpu0, #"pod="train-1""#])
        #expect(newPod != nil)
        let log = exporter.log
        let failureLines = log.components(separatedBy: "kubelet pod-resources List failing").count - 1
        #expect(failureLines >= 1 && failureLines <= 2, "log once per state change, not per attempt:\n\(log.suffix(3000))")
        await fake.stop()
    }

    @Test func sharedDevicesWithoutProcessDataGetNoPerPodSeries() async throws {
        let (dir, socket) = kubeletSocketPath()
        defer { dir.remove() }
        let fake = FakeKubelet(socketPath: socket)
        fake.set { $0.list = Self.allocations(); $0.allocatable = nil }
        try await fake.start()
        let machine = try NVIDIATests.Machine("h100x8")
        // No --collector.processes: PIDs name nothing, so GPU 3's sharers get allocations but no figures.
        let exporter = try NVIDIATests.exporter(machine, arguments: ["--kubelet.pod-resources-socket", socket, "--kubelet.refresh-interval", "1s"])
        defer { exporter.stop() }
        let text = await Self.waitFor(exporter) { $0.contains(Self.kubeletUp) && $0.contains("accelerator_allocated{") }
        let allocated = Self.sample(text, "accelerator_allocated", [Self.gpu3, #"pod="infer-a""#])
        #expect(allocated == 1)
        let shared = Self.sample(text, "accelerator_pod_utilization_ratio", [Self.gpu3])
        #expect(shared == nil)
        let sharedMemory = Self.sample(text, "accelerator_pod_memory_used_bytes", [Self.gpu3])
        #expect(sharedMemory == nil)
        let exclusive = Self.sample(text, "accelerator_pod_utilization_ratio", [Self.gpu0, #"pod="train-0""#])
        #expect(exclusive == 0.98)
        await fake.stop()
    }

    @Test func aNodeWithoutAKubeletLeavesTheCollectorOffQuietly() throws {
        let machine = try NVIDIATests.Machine("h100x8")
        let exporter = try NVIDIATests.exporter(machine, arguments: ["--kubelet.pod-resources-socket", "/nonexistent-kubelet-dir/kubelet.sock"])
        defer { exporter.stop() }
        let text = try exporter.waitForMetrics { $0.contains("accelerator_up{") }
        let kubeletSeries = text.contains(#"collector="kubelet""#)
        #expect(!kubeletSeries)
        let offLines = exporter.log.components(separatedBy: "kubelet collector off").count - 1
        #expect(offLines == 1)
    }

    /// The deploy components render with the real kustomize (kubectl's) on top of the NVIDIA overlay.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/kubectl")))
    func deployComponentsRender() throws {
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("kustomize-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("check"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: PackagePaths.file("deploy"), to: dir.appendingPathComponent("deploy"))
        try """
            apiVersion: kustomize.config.k8s.io/v1beta1
            kind: Kustomization
            resources: [../deploy/nvidia]
            components: [../deploy/attribution, ../deploy/attribution/processes]
            """.write(to: dir.appendingPathComponent("check/kustomization.yaml"), atomically: false, encoding: .utf8)
        let (out, err, status) = try runProgramCapturingBytes("/usr/bin/kubectl", ["kustomize", dir.appendingPathComponent("check").path])
        #expect(status == 0, "\(err)")
        let yaml = String(decoding: out, as: UTF8.self)
        for needle in ["hostPID: true", "- SYS_PTRACE", "- --collector.processes", "- --path.procfs=/host/proc",
                       "path: /var/lib/kubelet/pod-resources", "mountPath: /var/lib/kubelet/pod-resources", "runtimeClassName: nvidia"] {
            #expect(yaml.contains(needle), "\(needle) missing from:\n\(yaml)")
        }
    }
}
