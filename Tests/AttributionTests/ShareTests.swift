import Accelerators
import AccelMetricsTesting
@testable import Attribution
import Exposition
import Foundation
import MetricSchema
import Testing

@Suite struct PodShareTests {
    static let uidA = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"
    static let uidB = "0b7e5c1d-2f3a-4b5c-9d6e-7f8091a2b3c4"
    static let uidC = "3c2b1a09-8f7e-4d6c-b5a4-93827160f5e4"
    static let idA = String(repeating: "a1", count: 32)
    static let idB = String(repeating: "b2", count: 32)
    static let idC = String(repeating: "c3", count: 32)

    static let a = Holder(namespace: "ml", pod: "train-a", container: "main")
    static let b = Holder(namespace: "ml", pod: "train-b", container: "main")
    static let c = Holder(namespace: "web", pod: "infer-c", container: "server")

    static let pods: [String: PodInfo] = [
        uidA: PodInfo(namespace: "ml", name: "train-a", containers: ["containerd://\(idA)": "main"]),
        uidB: PodInfo(namespace: "ml", name: "train-b", containers: ["containerd://\(idB)": "main"]),
        uidC: PodInfo(namespace: "web", name: "infer-c", containers: ["cri-o://\(idC)": "server"]),
    ]
    static let processPods: [Int32: ProcessPod] = [
        101: ProcessPod(podUID: uidA, containerID: idA, qosClass: "burstable"),
        102: ProcessPod(podUID: uidA, containerID: idA, qosClass: "burstable"),
        201: ProcessPod(podUID: uidB, containerID: idB, qosClass: "besteffort"),
        301: ProcessPod(podUID: uidC, containerID: idC, qosClass: "guaranteed"),
        // A pod the watch has not delivered yet.
        401: ProcessPod(podUID: "8a9b0c1d-2e3f-4051-9263-748596a7b8c9", containerID: idA, qosClass: "burstable"),
    ]

    static func device(_ accelerator: String, util: Double = 0.9, vram: Double = 40e9, processes: [ProcessUsage] = []) -> DeviceSample {
        var d = DeviceSample(identity: TestNode.identities.first { $0.accelerator == accelerator }!)
        d.utilizationRatio = util
        d.memoryUsedBytes["vram"] = vram
        d.processes = processes
        return d
    }

    static func table(_ pairs: [(String, Holder)], shared: Set<String> = []) -> AllocationTable {
        var t = AllocationTable(allocations: pairs.map {
            Allocation(accelerator: $0.0, namespace: $0.1.namespace, pod: $0.1.pod, container: $0.1.container)
        }.sorted(), shared: shared)
        var holders: [String: Set<Holder>] = [:]
        for (acc, h) in pairs { holders[acc, default: []].insert(h) }
        for (acc, set) in holders where set.count > 1 { t.shared.insert(acc) }
        return t
    }

    static func process(_ pid: Int32, _ util: Double?, _ memory: Double?) -> ProcessUsage {
        ProcessUsage(pid: pid, kind: .compute, memoryUsedBytes: memory, engineUtilizationRatio: util.map { ["compute": $0] } ?? [:])
    }

    @Test func exclusiveAllocationGetsTheDeviceFigures() {
        let result = PodShareCalculator.compute(devices: [Self.device(TestNode.gpu0, util: 0.7, vram: 12e9)],
                                                allocations: Self.table([(TestNode.gpu0, Self.a)]),
                                                processPods: Self.processPods, pods: Self.pods)
        #expect(result.shares == [PodShare(accelerator: TestNode.gpu0, holder: Self.a, utilizationRatio: 0.7, memoryUsedBytes: 12e9, exclusive: true)])
    }

    @Test func sharedWithProcessDataGetsTheMeasuredShare() {
        let gpu = Self.device(TestNode.gpu0, processes: [
            Self.process(101, 0.2, 1e9), Self.process(102, 0.1, 2e9),   // pod A, two processes
            Self.process(201, 0.5, 4e9),                                 // pod B
        ])
        let result = PodShareCalculator.compute(devices: [gpu], allocations: Self.table([(TestNode.gpu0, Self.a), (TestNode.gpu0, Self.b)]),
                                                processPods: Self.processPods, pods: Self.pods)
        let shares = result.shares
        #expect(shares.count == 2)
        let shareA = shares.first { $0.holder == Self.a }
        let shareB = shares.first { $0.holder == Self.b }
        #expect(abs((shareA?.utilizationRatio ?? -1) - 0.3) < 1e-9)
        #expect(shareA?.memoryUsedBytes == 3e9)
        #expect(shareB?.utilizationRatio == 0.5)
        #expect(shareB?.memoryUsedBytes == 4e9)
        // Never the device figure (0.9, 40e9) copied.
        let exclusive = shares.filter(\.exclusive)
        #expect(exclusive.isEmpty)
    }

    @Test func sharedWithoutProcessDataIsAbsent() {
        let result = PodShareCalculator.compute(devices: [Self.device(TestNode.gpu0)],
                                                allocations: Self.table([(TestNode.gpu0, Self.a), (TestNode.gpu0, Self.b)]),
                                                processPods: Self.processPods, pods: Self.pods)
        #expect(result.shares.isEmpty)
        #expect(result.diagnostics.sharedWithoutProcessData == 1)
    }

    @Test func aReplicaHeldByOneContainerIsStillShared() {
        // Time-slicing: one holder right now, but the device is handed out as shares; no process data → absent.
        let result = PodShareCalculator.compute(devices: [Self.device(TestNode.gpu1)],
                                                allocations: Self.table([(TestNode.gpu1, Self.a)], shared: [TestNode.gpu1]),
                                                processPods: Self.processPods, pods: Self.pods)
        #expect(result.shares.isEmpty)
    }

    @Test func anIdleHolderGetsZeroOnlyWhenEveryProcessWasAttributed() {
        let allocations = Self.table([(TestNode.gpu0, Self.a), (TestNode.gpu0, Self.b)])
        let complete = PodShareCalculator.compute(devices: [Self.device(TestNode.gpu0, processes: [Self.process(101, 0.4, 1e9)])],
                                                  allocations: allocations, processPods: Self.processPods, pods: Self.pods)
        let idleB = complete.shares.first { $0.holder == Self.b }
        #expect(idleB?.utilizationRatio == 0)
        #expect(idleB?.memoryUsedBytes == 0)

        // Process 999 cannot be attributed (gone, or outside pods): B's share is unknown, A's is still measured.
        let partial = PodShareCalculator.compute(devices: [Self.device(TestNode.gpu0, processes: [Self.process(101, 0.4, 1e9), Self.process(999, 0.3, 1e9)])],
                                                 allocations: allocations, processPods: Self.processPods, pods: Self.pods)
        let holders = partial.shares.map(\.holder)
        #expect(holders == [Self.a])
        #expect(partial.diagnostics.unattributedProcesses == 1)
    }

    @Test func perProcessCapableDevicesWithNoProcessesGiveZeroShares() {
        let result = PodShareCalculator.compute(devices: [Self.device(TestNode.gpu0)],
                                                allocations: Self.table([(TestNode.gpu0, Self.a), (TestNode.gpu0, Self.b)]),
                                                processPods: Self.processPods, pods: Self.pods, perProcessCapable: [TestNode.gpu0])
        let values = result.shares.map { [$0.utilizationRatio ?? -1, $0.memoryUsedBytes ?? -1] }
        #expect(values == [[0, 0], [0, 0]])
    }

    @Test func unknownPodsAndUnallocatedPodsAreNotHolders() {
        let gpu = Self.device(TestNode.gpu0, processes: [Self.process(101, 0.2, 1e9), Self.process(301, 0.3, 1e9), Self.process(401, 0.1, 1e9)])
        let result = PodShareCalculator.compute(devices: [gpu], allocations: Self.table([(TestNode.gpu0, Self.a), (TestNode.gpu0, Self.b)]),
                                                processPods: Self.processPods, pods: Self.pods)
        let diagnostics = result.diagnostics
        #expect(diagnostics.unallocatedProcesses == 1)   // pod C runs on the GPU without an allocation
        #expect(diagnostics.unknownPodUIDs == 1)         // 401's pod is not known yet
        let holders = result.shares.map(\.holder)
        #expect(holders == [Self.a])                     // B: unknown (incomplete), not 0
    }

    @Test func utilizationIsAbsentWhenNoProcessCarriesIt() {
        // MIG or drivers without process utilization: memory per process only.
        let gpu = Self.device(TestNode.gpu0, processes: [Self.process(101, nil, 1e9), Self.process(201, nil, 2e9)])
        let result = PodShareCalculator.compute(devices: [gpu], allocations: Self.table([(TestNode.gpu0, Self.a), (TestNode.gpu0, Self.b)]),
                                                processPods: Self.processPods, pods: Self.pods)
        let utilization = result.shares.map(\.utilizationRatio)
        let memory = result.shares.map(\.memoryUsedBytes)
        #expect(utilization == [nil, nil])
        #expect(memory == [1e9, 2e9])
    }

    @Test func aContainerUnknownToTheWatchFallsBackToTheOnlyHolderInItsPod() {
        let pods = [Self.uidA: PodInfo(namespace: "ml", name: "train-a")]   // no container statuses yet
        let gpu = Self.device(TestNode.gpu0, processes: [Self.process(101, 0.25, 1e9)])
        let result = PodShareCalculator.compute(devices: [gpu], allocations: Self.table([(TestNode.gpu0, Self.a)], shared: [TestNode.gpu0]),
                                                processPods: Self.processPods, pods: pods)
        let shares = result.shares.map(\.holder)
        #expect(shares == [Self.a])
    }

    @Test func drmClientsAreJoinedByPdev() {
        var amd = DeviceSample(identity: TestNode.identities.first { $0.vendor == "amd" }!)
        amd.utilizationRatio = 0.8
        let usage = [
            DRMClientUsage(key: DRMClientKey(driver: "amdgpu", pdev: "0000:03:00.0", clientID: 1), pids: [101],
                           engineUtilization: ["gfx": 0.1, "compute": 0.4], deviceMemoryBytes: 1e9),
            DRMClientUsage(key: DRMClientKey(driver: "amdgpu", pdev: "0000:03:00.0", clientID: 2), pids: [201],
                           engineUtilization: ["gfx": 0.2], deviceMemoryBytes: 5e8),
            DRMClientUsage(key: DRMClientKey(driver: "i915", pdev: "0000:00:02.0", clientID: 3), pids: [301],
                           engineUtilization: ["render": 0.5], deviceMemoryBytes: nil),
        ]
        let result = PodShareCalculator.compute(devices: [amd], allocations: Self.table([(TestNode.amd, Self.a), (TestNode.amd, Self.b)]),
                                                drmUsage: usage, processPods: Self.processPods, pods: Self.pods)
        let values = result.shares.map { [$0.utilizationRatio ?? -1, $0.memoryUsedBytes ?? -1] }
        #expect(values == [[0.4, 1e9], [0.2, 5e8]])
        #expect(result.diagnostics.unmappedDRMClients == 1)
    }
}

@Suite struct AttributionMetricsTests {
    @Test func familiesCarryTheSchemaLabelsInOrder() {
        let table = AllocationTable(allocations: [
            Allocation(accelerator: TestNode.gpu1, namespace: "ml", pod: "infer-0", container: "server", claim: "big"),
            Allocation(accelerator: TestNode.gpu0, namespace: "ml", pod: "train-0", container: "trainer"),
            Allocation(accelerator: "GPU-not-on-this-node", namespace: "x", pod: "y", container: "z"),
        ])
        let shares = [PodShare(accelerator: TestNode.gpu0, holder: Holder(namespace: "ml", pod: "train-0", container: "trainer"),
                               utilizationRatio: 0.5, memoryUsedBytes: nil, exclusive: true)]
        let families = AttributionMetrics.families(allocations: table, shares: shares, devices: TestNode.keys)
        let names = families.map(\.name)
        #expect(names == ["accelerator_allocated", "accelerator_pod_utilization_ratio"])
        let allocated = families[0].samples.map { $0.labels.map(\.name) }
        #expect(allocated == [["accelerator", "vendor", "model", "pci_bus_id", "namespace", "pod", "container"],
                              ["accelerator", "vendor", "model", "pci_bus_id", "namespace", "pod", "container", "claim"]])
        for family in families {
            for sample in family.samples { #expect(sample.labels.count <= 8) }
        }

        var text: [UInt8] = []
        ExpositionEncoder.encode(families, format: .text, into: &text)
        let rendered = String(decoding: text, as: UTF8.self)
        let expected = """
        # HELP accelerator_allocated \(Families.Pod.allocated.help)
        # TYPE accelerator_allocated gauge
        accelerator_allocated{accelerator="\(TestNode.gpu0)",vendor="nvidia",model="H100 80GB HBM3",pci_bus_id="0000:18:00.0",namespace="ml",pod="train-0",container="trainer"} 1
        accelerator_allocated{accelerator="\(TestNode.gpu1)",vendor="nvidia",model="H100 80GB HBM3",pci_bus_id="0000:3b:00.0",namespace="ml",pod="infer-0",container="server",claim="big"} 1
        # HELP accelerator_pod_utilization_ratio \(Families.Pod.utilization.help)
        # TYPE accelerator_pod_utilization_ratio gauge
        accelerator_pod_utilization_ratio{accelerator="\(TestNode.gpu0)",vendor="nvidia",model="H100 80GB HBM3",pci_bus_id="0000:18:00.0",namespace="ml",pod="train-0",container="trainer"} 0.5

        """
        #expect(rendered == expected)
    }
}

@Suite(.tags(.endToEnd), .endToEndEnabled) struct AttributionLintTests {
    /// House style: every exposition passes `promtool check metrics` without a lint.
    @Test func promtoolAcceptsTheAttributionFamilies() throws {
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/promtool"), "promtool missing: apt-get install prometheus")
        let table = AllocationMapper.map(PodResourcesList(pods: [
            TestNode.pod("ml", "train-0", [ContainerResources(name: "main", devices: [ContainerDevices(resourceName: "nvidia.com/gpu", deviceIDs: [TestNode.gpu0, TestNode.gpu1])])]),
            TestNode.pod("ml", "infer-0", [ContainerResources(name: "server", dynamicResources: [
                DynamicResource(claimName: "gpu", claimNamespace: "ml", claimResources: [
                    ClaimResource(cdiDevices: ["k8s.gpu.nvidia.com/device=\(TestNode.gpu1)"], driverName: "gpu.nvidia.com", poolName: "n", deviceName: "gpu-1"),
                ]),
            ])]),
        ]), devices: TestNode.keys)
        let shares = [
            PodShare(accelerator: TestNode.gpu0, holder: Holder(namespace: "ml", pod: "train-0", container: "main"), utilizationRatio: 0.5, memoryUsedBytes: 1e9, exclusive: true),
            PodShare(accelerator: TestNode.gpu1, holder: Holder(namespace: "ml", pod: "infer-0", container: "server"), utilizationRatio: 0.25, memoryUsedBytes: 2e9, exclusive: false),
        ]
        let families = AttributionMetrics.families(allocations: table, shares: shares, devices: TestNode.keys)
        var text: [UInt8] = []
        ExpositionEncoder.encode(families, format: .text, into: &text)
        let dir = TemporaryProcfs()
        dir.write("metrics.prom", String(decoding: text, as: UTF8.self))
        let (output, _, status) = try runProgram("/usr/bin/promtool", ["check", "metrics"], stdin: Data(contentsOf: dir.directory.url("metrics.prom")), mergingOutput: true)
        #expect(status == 0, "\(output)")
        #expect(output.isEmpty, "\(output)")
        let allocated = families.first { $0.name == "accelerator_allocated" }?.samples.count
        #expect(allocated == 3)

        var diagnostics = ShareDiagnostics()
        diagnostics.unknownPodUIDs = 2
        let self_ = AttributionMetrics.diagnosticFamilies(allocations: table, shares: diagnostics)
        var selfText: [UInt8] = []
        ExpositionEncoder.encode(self_, format: .text, into: &selfText)
        dir.write("self.prom", String(decoding: selfText, as: UTF8.self))
        let (selfOutput, _, selfStatus) = try runProgram("/usr/bin/promtool", ["check", "metrics"], stdin: Data(contentsOf: dir.directory.url("self.prom")), mergingOutput: true)
        #expect(selfStatus == 0, "\(selfOutput)")
        #expect(selfOutput.isEmpty, "\(selfOutput)")
        let rendered = String(decoding: selfText, as: UTF8.self)
        #expect(rendered.contains("accel_exporter_attribution_skipped_processes{reason=\"unknown_pod\"} 2\n"))
    }
}

@Suite struct AttributorEndToEndTests {
    /// The procfs fixture: pods U1 (PID 1001) and U5 (PID 1005) share the MI300X at 0000:03:00.0 through DRM
    /// clients 42 (open in both PIDs; 1001 is the lower PID and decides) and 43 (only in 1005).
    @Test func fixtureTreeGivesPerPodMemoryOnTheFirstTickAndUtilizationOnTheSecond() {
        let u1 = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"
        let u5 = "8a9b0c1d-2e3f-4051-9263-748596a7b8c9"
        let pods = [
            u1: PodInfo(namespace: "ml", name: "a", containers: ["containerd://4f9a0c2e7d1b3a5c6e8f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f": "main"]),
            u5: PodInfo(namespace: "ml", name: "b", containers: ["containerd://9d8c7b6a5f4e3d2c1b0a99887766554433221100ffeeddccbbaa998877665544": "main"]),
        ]
        let list = PodResourcesList(pods: [
            TestNode.pod("ml", "a", [ContainerResources(name: "main", devices: [ContainerDevices(resourceName: "amd.com/gpu", deviceIDs: ["0000:03:00.0"])])]),
            TestNode.pod("ml", "b", [ContainerResources(name: "main", devices: [ContainerDevices(resourceName: "amd.com/gpu", deviceIDs: ["0000:03:00.0"])])]),
        ])
        let allocations = AllocationMapper.map(list, devices: TestNode.keys)
        var amd = DeviceSample(identity: TestNode.identities.first { $0.vendor == "amd" }!)
        amd.utilizationRatio = 0.9
        amd.memoryUsedBytes["vram"] = 100e9

        var attributor = Attributor(procfs: fixtureProcfs())
        let first = attributor.tick(devices: [amd], allocations: allocations, pods: pods, at: MonotonicInstant(nanoseconds: 1_000_000_000))
        let memory = first.shares.shares.map(\.memoryUsedBytes)
        let utilization = first.shares.shares.map(\.utilizationRatio)
        #expect(memory == [Double(1 << 30), Double(512 << 20)])
        #expect(utilization == [nil, nil])
        let names = first.families.map(\.name)
        #expect(names == ["accelerator_allocated", "accelerator_pod_memory_used_bytes"])
        let resolved = attributor.resolver.cachedCount
        #expect(resolved == 5)   // the PIDs holding DRM fds: 1001…1005

        // Same counters one second later: both clients idle, 0 (measured), not absent.
        let second = attributor.tick(devices: [amd], allocations: allocations, pods: pods, at: MonotonicInstant(nanoseconds: 2_000_000_000))
        let idle = second.shares.shares.map(\.utilizationRatio)
        #expect(idle == [0, 0])
    }

    /// NVML processes on a time-sliced H100 held by two containers through replicas: PIDs 1001 (containerd,
    /// cgroup v2) and 1002 (cgroupfs, cgroup v1) resolve through the fixture's cgroup files to their pods.
    @Test func nvmlProcessesOnATimeSlicedGPUGoToTheirPods() {
        let u1 = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"
        let u2 = "0b7e5c1d-2f3a-4b5c-9d6e-7f8091a2b3c4"
        let pods = [
            u1: PodInfo(namespace: "ml", name: "a", containers: ["containerd://4f9a0c2e7d1b3a5c6e8f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f": "main"]),
            u2: PodInfo(namespace: "batch", name: "b", containers: ["containerd://a1b2c3d4e5f60718293a4b5c6d7e8f904f9a0c2e7d1b3a5c6e8f0a1b2c3d4e5f": "worker"]),
        ]
        let list = PodResourcesList(pods: [
            TestNode.pod("ml", "a", [ContainerResources(name: "main", devices: [ContainerDevices(resourceName: "nvidia.com/gpu", deviceIDs: [TestNode.gpu0 + "::0"])])]),
            TestNode.pod("batch", "b", [ContainerResources(name: "worker", devices: [ContainerDevices(resourceName: "nvidia.com/gpu", deviceIDs: [TestNode.gpu0 + "::3"])])]),
        ])
        let allocations = AllocationMapper.map(list, devices: TestNode.keys)
        var gpu = DeviceSample(identity: TestNode.identities[0])
        gpu.utilizationRatio = 0.95
        gpu.memoryUsedBytes["vram"] = 70e9
        gpu.processes = [
            ProcessUsage(pid: 1001, kind: .compute, memoryUsedBytes: 30e9, engineUtilizationRatio: ["compute": 0.6]),
            ProcessUsage(pid: 1002, kind: .compute, memoryUsedBytes: 20e9, engineUtilizationRatio: ["compute": 0.3]),
        ]
        var attributor = Attributor(procfs: fixtureProcfs(), scanDRM: false)
        let result = attributor.tick(devices: [gpu], allocations: allocations, pods: pods, at: MonotonicInstant(nanoseconds: 1))
        let shares = result.shares.shares.map { "\($0.holder.namespace)/\($0.holder.pod)/\($0.holder.container) \($0.utilizationRatio ?? -1) \($0.memoryUsedBytes ?? -1)" }
        #expect(shares == ["batch/b/worker 0.3 20000000000.0", "ml/a/main 0.6 30000000000.0"])
        let names = result.families.map(\.name)
        #expect(names == ["accelerator_allocated", "accelerator_pod_memory_used_bytes", "accelerator_pod_utilization_ratio"])
    }
}
