import Accelerators
@testable import Attribution
import Testing

@Suite struct PCIAddressTests {
    @Test(arguments: [
        ("0000:18:00.0", "0000:18:00.0"),
        ("00000000:18:00.0", "0000:18:00.0"),
        ("00000000:3B:00.0", "0000:3b:00.0"),
        ("0000:3b:00.0", "0000:3b:00.0"),
        ("18:00.0", "0000:18:00.0"),
        ("0001:E5:1F.7", "0001:e5:1f.7"),
        ("0000-4d-00-0", "0000:4d:00.0"),
        ("pci-0000:03:00.0", "0000:03:00.0"),
    ])
    func normalizes(raw: String, expected: String) {
        let normalized = PCIAddress.normalize(raw)
        #expect(normalized == expected)
    }

    @Test(arguments: ["", "card1", "GPU-1a2b3c4d-0000-1111-2222-333344445555", "0000:18:00", "0000:18:40.0", "0000:18:00.8",
                      "1-2-3", "000000000:18:00.0", "zz:00.0", "0000:180:00.0"])
    func rejects(raw: String) {
        let normalized = PCIAddress.normalize(raw)
        #expect(normalized == nil)
    }
}

@Suite struct DevicePluginMappingTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var resource: String
        var id: String
        var accelerator: String?
        var shared: Bool
        var testDescription: String { "\(resource)=\(id)" }
    }

    static let cases: [Case] = [
        Case(resource: "nvidia.com/gpu", id: TestNode.gpu0, accelerator: TestNode.gpu0, shared: false),
        Case(resource: "nvidia.com/gpu", id: TestNode.gpu0.lowercased(), accelerator: TestNode.gpu0, shared: false),
        Case(resource: "nvidia.com/gpu", id: TestNode.gpu1 + "::3", accelerator: TestNode.gpu1, shared: true),
        Case(resource: "nvidia.com/gpu.shared", id: TestNode.gpu1 + "::0", accelerator: TestNode.gpu1, shared: true),
        Case(resource: "nvidia.com/mig-1g.5gb", id: TestNode.mig1, accelerator: TestNode.mig1, shared: false),
        Case(resource: "nvidia.com/gpu", id: TestNode.gpu2, accelerator: TestNode.gpu2, shared: false),
        Case(resource: "amd.com/gpu", id: "0000:03:00.0", accelerator: TestNode.amd, shared: false),
        Case(resource: "amd.com/gpu", id: "00000000:03:00.0", accelerator: TestNode.amd, shared: false),
        Case(resource: "amd.com/gpu", id: "PCB0042", accelerator: TestNode.amd, shared: false),
        Case(resource: "amd.com/gpu", id: TestNode.amd, accelerator: TestNode.amd, shared: false),
        Case(resource: "amd.com/gpu", id: "0000:03:00.0-slice-2", accelerator: TestNode.amd, shared: true),
        Case(resource: "amd.com/gpu", id: "0000:03:00.0-slice-", accelerator: nil, shared: false),
        Case(resource: "gpu.intel.com/i915", id: "card1", accelerator: TestNode.i915, shared: false),
        Case(resource: "gpu.intel.com/i915", id: "card1-2", accelerator: TestNode.i915, shared: true),
        // The Intel plugin names every card `card<N>-0` even without sharing.
        Case(resource: "gpu.intel.com/i915", id: "card1-0", accelerator: TestNode.i915, shared: false),
        Case(resource: "gpu.intel.com/xe", id: "card2-0", accelerator: TestNode.xe, shared: false),
        Case(resource: "gpu.intel.com/xe", id: "card2", accelerator: TestNode.xe, shared: false),
        Case(resource: "google.com/tpu", id: "0", accelerator: TestNode.tpu, shared: false),
        Case(resource: "habana.ai/gaudi", id: "AM24000123", accelerator: TestNode.gaudi, shared: false),
        Case(resource: "habana.ai/gaudi", id: "0000:19:00.0", accelerator: TestNode.gaudi, shared: false),
        // Unknown: no such device, the wrong vendor's device, a malformed replica, an unknown Intel share.
        Case(resource: "nvidia.com/gpu", id: "GPU-ffffffff-ffff-ffff-ffff-ffffffffffff", accelerator: nil, shared: false),
        Case(resource: "nvidia.com/gpu", id: "0000:03:00.0", accelerator: nil, shared: false),
        Case(resource: "nvidia.com/gpu", id: TestNode.gpu0 + "::", accelerator: nil, shared: false),
        Case(resource: "nvidia.com/gpu", id: TestNode.gpu0 + "::x", accelerator: nil, shared: false),
        Case(resource: "amd.com/gpu", id: "0000:99:00.0", accelerator: nil, shared: false),
        Case(resource: "gpu.intel.com/i915", id: "card9-1", accelerator: nil, shared: false),
        Case(resource: "gpu.intel.com/i915", id: "card1-", accelerator: nil, shared: false),
        Case(resource: "gpu.intel.com/i915", id: "card1-٣", accelerator: nil, shared: false),   // Arabic-Indic digit
        Case(resource: "gpu.intel.com/xe", id: "card1-0", accelerator: TestNode.i915, shared: false),
        // The MIG device's PCI address is its parent's; a PCI id names the parent GPU, never the slice.
        Case(resource: "nvidia.com/gpu", id: "0000:86:00.0", accelerator: TestNode.gpu2, shared: false),
    ]

    @Test(arguments: cases)
    func id(_ c: Case) {
        let list = PodResourcesList(pods: [TestNode.pod("ml", "trainer-0", [
            ContainerResources(name: "main", devices: [ContainerDevices(resourceName: c.resource, deviceIDs: [c.id])]),
        ])])
        let table = AllocationMapper.map(list, devices: TestNode.keys)
        let accelerators = table.allocations.map(\.accelerator)
        let expected = c.accelerator.map { [$0] } ?? []
        #expect(accelerators == expected)
        let shared = c.accelerator.map { table.shared.contains($0) } ?? false
        #expect(shared == c.shared)
        let unknown = table.unknownDevicePluginIDs.count
        #expect(unknown == (c.accelerator == nil ? 1 : 0))
    }

    @Test func unknownIDsAreCountedWithAFewSamples() {
        let ids = (0..<8).map { "GPU-00000000-0000-0000-0000-00000000000\($0)" }
        let list = PodResourcesList(pods: [TestNode.pod("ml", "p", [
            ContainerResources(name: "c", devices: [ContainerDevices(resourceName: "nvidia.com/gpu", deviceIDs: ids + [TestNode.gpu0])]),
        ])])
        let table = AllocationMapper.map(list, devices: TestNode.keys)
        let unknown = table.unknownDevicePluginIDs
        #expect(unknown.count == 8)
        #expect(unknown.samples.count == UnmatchedIDs.sampleLimit)
        #expect(unknown.samples.first == "nvidia.com/gpu=GPU-00000000-0000-0000-0000-000000000000")
        let accelerators = table.allocations.map(\.accelerator)
        #expect(accelerators == [TestNode.gpu0])
    }

    @Test func allocatableIDsThatNameNoAcceleratorAreReported() {
        let allocatable = AllocatableResources(devices: [
            ContainerDevices(resourceName: "nvidia.com/gpu", deviceIDs: [TestNode.gpu0, TestNode.gpu1 + "::0", "GPU-deadbeef-0000-0000-0000-000000000000"]),
            ContainerDevices(resourceName: "gpu.intel.com/i915", deviceIDs: ["card1-0", "card7"]),
            ContainerDevices(resourceName: "rdma/hca", deviceIDs: ["mlx5_0"]),
        ])
        let unmatched = AllocationMapper.unmatchedAllocatable(allocatable, devices: TestNode.keys)
        #expect(unmatched.count == 2)
        #expect(unmatched.samples == ["nvidia.com/gpu=GPU-deadbeef-0000-0000-0000-000000000000", "gpu.intel.com/i915=card7"])
    }

    @Test func allocatableSettlesWhetherAnIntelCardIsShared() {
        let list = PodResourcesList(pods: [TestNode.pod("media", "transcode-0", [
            ContainerResources(name: "ffmpeg", devices: [ContainerDevices(resourceName: "gpu.intel.com/i915", deviceIDs: ["card1-0"])]),
        ])])
        let single = AllocationMapper.map(list, devices: TestNode.keys, options: AllocationOptions(allocatable: AllocatableResources(devices: [
            ContainerDevices(resourceName: "gpu.intel.com/i915", deviceIDs: ["card1-0"]),
            ContainerDevices(resourceName: "gpu.intel.com/xe", deviceIDs: ["card2-0"]),
        ])))
        #expect(single.shared.isEmpty)
        let shared = AllocationMapper.map(list, devices: TestNode.keys, options: AllocationOptions(allocatable: AllocatableResources(devices: [
            ContainerDevices(resourceName: "gpu.intel.com/i915", deviceIDs: ["card1-0", "card1-1", "card1-2"]),
            ContainerDevices(resourceName: "gpu.intel.com/xe", deviceIDs: ["card2-0"]),
        ])))
        #expect(shared.shared == [TestNode.i915])
    }

    @Test func otherResourcesAreIgnoredUnlessConfigured() {
        let list = PodResourcesList(pods: [TestNode.pod("ml", "p", [
            ContainerResources(name: "c", devices: [
                ContainerDevices(resourceName: "rdma/hca_shared_devices_a", deviceIDs: ["mlx5_0"]),
                // Intel's monitoring resource: read access to every GPU, not an allocation.
                ContainerDevices(resourceName: "gpu.intel.com/i915_monitoring", deviceIDs: ["all"]),
                ContainerDevices(resourceName: "example.com/accel", deviceIDs: ["PCB0042"]),
            ]),
        ])])
        let plain = AllocationMapper.map(list, devices: TestNode.keys)
        #expect(plain.allocations.isEmpty)
        #expect(plain.unknownDevicePluginIDs.count == 0)

        let configured = AllocationMapper.map(list, devices: TestNode.keys, options: AllocationOptions(extraResourceNames: ["example.com/accel"]))
        let accelerators = configured.allocations.map(\.accelerator)
        #expect(accelerators == [TestNode.amd])
    }

    @Test func severalReplicasInOneContainerAreOneAllocation() {
        let list = PodResourcesList(pods: [TestNode.pod("ml", "p", [
            ContainerResources(name: "c", devices: [ContainerDevices(resourceName: "nvidia.com/gpu",
                                                                     deviceIDs: [TestNode.gpu1 + "::0", TestNode.gpu1 + "::1"])]),
        ])])
        let table = AllocationMapper.map(list, devices: TestNode.keys)
        #expect(table.allocations == [Allocation(accelerator: TestNode.gpu1, namespace: "ml", pod: "p", container: "c")])
        #expect(table.shared == [TestNode.gpu1])
    }

    @Test func twoContainersOnOneDeviceShareIt() {
        let gpu = ContainerDevices(resourceName: "nvidia.com/gpu", deviceIDs: [TestNode.gpu0])
        let list = PodResourcesList(pods: [
            TestNode.pod("a", "p1", [ContainerResources(name: "c", devices: [gpu])]),
            TestNode.pod("b", "p2", [ContainerResources(name: "c", devices: [gpu])]),
            TestNode.pod("b", "p3", [ContainerResources(name: "c", devices: [ContainerDevices(resourceName: "amd.com/gpu", deviceIDs: ["0000:03:00.0"])])]),
        ])
        let table = AllocationMapper.map(list, devices: TestNode.keys)
        #expect(table.shared == [TestNode.gpu0])
        let holders = table.holders(of: TestNode.gpu0)
        #expect(holders == [Holder(namespace: "a", pod: "p1", container: "c"), Holder(namespace: "b", pod: "p2", container: "c")])
    }
}

@Suite struct DRAMappingTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var resource: ClaimResource
        var accelerator: String?
        var unknown: Int
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "CDI name is the UUID",
             resource: ClaimResource(cdiDevices: ["k8s.gpu.nvidia.com/device=\(TestNode.gpu0)"], driverName: "gpu.nvidia.com",
                                     poolName: "node-1", deviceName: "gpu-0"),
             accelerator: TestNode.gpu0, unknown: 0),
        Case(name: "CDI name embeds the MIG UUID",
             resource: ClaimResource(cdiDevices: ["k8s.gpu.nvidia.com/claim=5e1f-\(TestNode.mig1)"], driverName: "gpu.nvidia.com",
                                     poolName: "node-1", deviceName: "gpu-2-mig-1g5gb-0"),
             accelerator: TestNode.mig1, unknown: 0),
        Case(name: "NVIDIA gpu-<minor> names the GPU with that minor number",
             resource: ClaimResource(cdiDevices: ["k8s.gpu.nvidia.com/device=gpu-1"], driverName: "gpu.nvidia.com",
                                     poolName: "node-1", deviceName: "gpu-1"),
             accelerator: TestNode.gpu1, unknown: 0),
        Case(name: "NVIDIA claim-scoped CDI name",
             resource: ClaimResource(cdiDevices: ["k8s.gpu.nvidia.com/claim=0d3c0a8e-4f1e-4b7a-9c55-1d2e3f4a5b6c-gpu-0"],
                                     driverName: "gpu.nvidia.com", poolName: "node-1", deviceName: "gpu-0"),
             accelerator: TestNode.gpu0, unknown: 0),
        Case(name: "a minor number no GPU has is unknown, not guessed",
             resource: ClaimResource(cdiDevices: ["k8s.gpu.nvidia.com/device=gpu-7"], driverName: "gpu.nvidia.com",
                                     poolName: "node-1", deviceName: "gpu-7"),
             accelerator: nil, unknown: 1),
        Case(name: "NVIDIA MIG names need the uuid attribute",
             resource: ClaimResource(cdiDevices: ["k8s.gpu.nvidia.com/device=gpu-2-mig-19-4-1"], driverName: "gpu.nvidia.com",
                                     poolName: "node-1", deviceName: "gpu-2-mig-19-4-1"),
             accelerator: nil, unknown: 1),
        Case(name: "AMD gpu-<card>-<render>",
             resource: ClaimResource(driverName: "gpu.amd.com", poolName: "node-1", deviceName: "gpu-3-131"),
             accelerator: TestNode.amd, unknown: 0),
        Case(name: "AMD card/render pair that does not match",
             resource: ClaimResource(driverName: "gpu.amd.com", poolName: "node-1", deviceName: "gpu-3-128"),
             accelerator: nil, unknown: 1),
        Case(name: "device name embeds a dashed PCI address",
             resource: ClaimResource(driverName: "gpu.intel.com", poolName: "node-1", deviceName: "0000-4d-00-0-0x56c0"),
             accelerator: TestNode.i915, unknown: 0),
        Case(name: "device name embeds a PCI address of another vendor's device",
             resource: ClaimResource(driverName: "gpu.intel.com", poolName: "node-1", deviceName: "gpu-0000-03-00-0"),
             accelerator: nil, unknown: 1),
        Case(name: "AMD CDI name is the PCI address",
             resource: ClaimResource(cdiDevices: ["amd.com/gpu=0000:03:00.0"], driverName: "gpu.amd.com", poolName: "node-1", deviceName: "gpu-3"),
             accelerator: TestNode.amd, unknown: 0),
        Case(name: "another driver's device is not an accelerator",
             resource: ClaimResource(cdiDevices: ["dra.example.com/nic=eth1"], driverName: "dra.example.com", poolName: "n", deviceName: "eth1"),
             accelerator: nil, unknown: 0),
        Case(name: "another driver naming a GPU still maps",
             resource: ClaimResource(cdiDevices: ["vendor.example/gpu=\(TestNode.gpu1)"], driverName: "gpu.example.com", poolName: "n", deviceName: "x"),
             accelerator: TestNode.gpu1, unknown: 0),
    ]

    static func list(_ r: ClaimResource) -> PodResourcesList {
        PodResourcesList(pods: [TestNode.pod("ml", "infer-0", [
            ContainerResources(name: "server", dynamicResources: [DynamicResource(claimName: "gpu-claim", claimNamespace: "ml", claimResources: [r])]),
        ])])
    }

    @Test(arguments: cases)
    func claim(_ c: Case) {
        let table = AllocationMapper.map(Self.list(c.resource), devices: TestNode.keys)
        let expected = c.accelerator.map { [Allocation(accelerator: $0, namespace: "ml", pod: "infer-0", container: "server", claim: "gpu-claim")] } ?? []
        #expect(table.allocations == expected)
        #expect(table.unknownDRADevices.count == c.unknown)
    }

    @Test(arguments: [
        (["uuid": TestNode.gpu0], TestNode.gpu0),
        (["gpu.nvidia.com/uuid": TestNode.gpu1], TestNode.gpu1),
        (["pciBusID": "0000:18:00.0"], TestNode.gpu0),
        (["pciBusID": "00000000:3B:00.0", "productName": "H100"], TestNode.gpu1),
        (["uuid": "GPU-ffffffff-ffff-ffff-ffff-ffffffffffff", "pciBusID": "0000:18:00.0"], TestNode.gpu0),
        // A MIG device publishes its parent's PCI address next to its own UUID: the UUID decides.
        (["pciBusID": "0000:86:00.0", "uuid": TestNode.mig1], TestNode.mig1),
        (["pciBusID": "0000:86:00.0"], TestNode.gpu2),
        // NVIDIA's driver spells it pcieBusID; the Kubernetes standard attribute is resource.kubernetes.io/pciBusID.
        (["pcieBusID": "0000:18:00.0", "parentUUID": TestNode.gpu1], TestNode.gpu0),
        (["resource.kubernetes.io/pciBusID": "0000:3b:00.0"], TestNode.gpu1),
    ] as [([String: String], String)])
    func resourceSliceAttributes(attributes: [String: String], expected: String) {
        // A device name that resolves by no naming rule, so the attributes decide.
        let r = ClaimResource(cdiDevices: ["k8s.gpu.nvidia.com/device=gpu-9"], driverName: "gpu.nvidia.com", poolName: "node-1", deviceName: "gpu-9")
        let options = AllocationOptions(resourceSliceAttributes: [ResourceSliceDevice(driver: "gpu.nvidia.com", pool: "node-1", device: "gpu-9"): attributes])
        let table = AllocationMapper.map(Self.list(r), devices: TestNode.keys, options: options)
        let accelerators = table.allocations.map(\.accelerator)
        #expect(accelerators == [expected])
        #expect(table.unknownDRADevices.count == 0)
    }

    @Test func attributesOfAnotherPoolDoNotApply() {
        let r = ClaimResource(driverName: "gpu.nvidia.com", poolName: "node-1", deviceName: "gpu-9")
        let options = AllocationOptions(resourceSliceAttributes: [ResourceSliceDevice(driver: "gpu.nvidia.com", pool: "node-2", device: "gpu-9"): ["uuid": TestNode.gpu0]])
        let table = AllocationMapper.map(Self.list(r), devices: TestNode.keys, options: options)
        #expect(table.allocations.isEmpty)
        #expect(table.unknownDRADevices.samples == ["gpu.nvidia.com/node-1/gpu-9"])
    }

    @Test func aShareIDMarksTheDeviceShared() {
        let r = ClaimResource(cdiDevices: ["k8s.gpu.nvidia.com/device=\(TestNode.gpu0)"], driverName: "gpu.nvidia.com",
                              poolName: "node-1", deviceName: "gpu-0", shareID: "8c5f0b8e-6a35-4a77-9a1b-2f0ce6c1a001")
        let table = AllocationMapper.map(Self.list(r), devices: TestNode.keys)
        #expect(table.shared == [TestNode.gpu0])
    }

    @Test func draAndDevicePluginOnOneNode() {
        let list = PodResourcesList(pods: [
            TestNode.pod("ml", "train-0", [
                ContainerResources(name: "trainer", devices: [ContainerDevices(resourceName: "nvidia.com/gpu", deviceIDs: [TestNode.gpu0])]),
            ]),
            TestNode.pod("ml", "infer-0", [
                ContainerResources(name: "server", dynamicResources: [
                    DynamicResource(claimName: "big", claimNamespace: "ml", claimResources: [
                        ClaimResource(cdiDevices: ["k8s.gpu.nvidia.com/device=\(TestNode.gpu1)"], driverName: "gpu.nvidia.com", poolName: "node-1", deviceName: "gpu-1"),
                    ]),
                ]),
                // Two containers of one pod share one claim: the GPU is shared between them.
                ContainerResources(name: "sidecar", dynamicResources: [
                    DynamicResource(claimName: "big", claimNamespace: "ml", claimResources: [
                        ClaimResource(cdiDevices: ["k8s.gpu.nvidia.com/device=\(TestNode.gpu1)"], driverName: "gpu.nvidia.com", poolName: "node-1", deviceName: "gpu-1"),
                    ]),
                ]),
            ]),
            TestNode.pod("vision", "amd-0", [
                ContainerResources(name: "c", devices: [ContainerDevices(resourceName: "amd.com/gpu", deviceIDs: ["0000:03:00.0"])],
                                   dynamicResources: [DynamicResource(claimName: "tpu", claimNamespace: "vision", claimResources: [
                                       ClaimResource(driverName: "tpu.google.com", poolName: "n", deviceName: "tpu-\(TestNode.tpu)"),
                                   ])]),
            ]),
        ])
        let table = AllocationMapper.map(list, devices: TestNode.keys)
        #expect(table.allocations == [
            Allocation(accelerator: TestNode.tpu, namespace: "vision", pod: "amd-0", container: "c", claim: "tpu"),
            Allocation(accelerator: TestNode.gpu0, namespace: "ml", pod: "train-0", container: "trainer"),
            Allocation(accelerator: TestNode.gpu1, namespace: "ml", pod: "infer-0", container: "server", claim: "big"),
            Allocation(accelerator: TestNode.gpu1, namespace: "ml", pod: "infer-0", container: "sidecar", claim: "big"),
            Allocation(accelerator: TestNode.amd, namespace: "vision", pod: "amd-0", container: "c"),
        ].sorted())
        #expect(table.shared == [TestNode.gpu1])
    }
}
