import Accelerators
import AccelMetricsTesting
import Attribution
import FakeRPCServers
import Foundation
import GRPCCore
import KubeletClient
import Logging
import PodResourcesAPI
import SwiftProtobuf
import Testing

/// The pod-resources client against the fake kubelet in this process: answers, failures, recovery, staleness.
@Suite("kubelet pod-resources client")
struct KubeletClientTests {
    static let logger = Logger(label: "kubelet-test")

    /// A fake kubelet on a fresh socket, set up by `setUp` and started, and a started client on it (a `List` every
    /// 0.2 s unless `configure` says otherwise); afterwards both stop and the socket's folder is removed.
    static func withKubelet(
        _ setUp: (inout FakeKubelet.State) -> Void,
        configure: (inout PodResourcesClient.Configuration) -> Void = { _ in },
        _ body: (FakeKubelet, PodResourcesClient) async throws -> Void
    ) async throws {
        let (dir, socket) = kubeletSocketPath()
        defer { dir.remove() }
        let fake = FakeKubelet(socketPath: socket)
        fake.set(setUp)
        try await fake.start()
        var configuration = PodResourcesClient.Configuration(socketPath: socket, refreshInterval: 0.2)
        configure(&configuration)
        let client = PodResourcesClient(configuration: configuration, logger: logger)
        client.start()
        defer { client.stop() }
        do {
            try await body(fake, client)
        } catch {
            await fake.stop()
            throw error
        }
        await fake.stop()
    }

    @Test func generatedMessagesBecomeAttributionValues() throws {
        var devices = V1_ContainerDevices()
        devices.resourceName = "nvidia.com/gpu"
        devices.deviceIds = ["GPU-a::1"]
        var numa = V1_NUMANode()
        numa.id = 1
        devices.topology.nodes = [numa]
        var container = containerMessage("c", claims: [claimMessage("claim-a", namespace: "ns", driver: "gpu.nvidia.com", pool: "p",
                                                                      device: "gpu-0", cdi: ["k8s.gpu.nvidia.com/device=gpu-0"], shareID: "s1")])
        container.devices = [devices]
        container.cpuIds = [2, 3]
        // Through the wire format, as the kubelet would send it.
        let bytes: [UInt8] = try listMessage([podMessage("ns", "p", [container])]).serializedBytes()
        let decoded = try V1_ListPodResourcesResponse(serializedBytes: bytes)
        let list = PodResourcesList(decoded)
        let expected = PodResourcesList(pods: [PodResources(name: "p", namespace: "ns", containers: [
            ContainerResources(name: "c", devices: [ContainerDevices(resourceName: "nvidia.com/gpu", deviceIDs: ["GPU-a::1"], numaNodes: [1])],
                               cpuIDs: [2, 3],
                               dynamicResources: [DynamicResource(claimName: "claim-a", claimNamespace: "ns", claimResources: [
                                   ClaimResource(cdiDevices: ["k8s.gpu.nvidia.com/device=gpu-0"], driverName: "gpu.nvidia.com",
                                                 poolName: "p", deviceName: "gpu-0", shareID: "s1")])]),
        ])])
        #expect(list == expected)
        // share_id is `optional`: unset stays nil, not "".
        var plain = V1_ClaimResource()
        plain.deviceName = "gpu-1"
        let converted = ClaimResource(plain)
        #expect(converted.shareID == nil)
    }

    @Test func listsOnItsIntervalAndReadsAllocatableOncePerConnection() async throws {
        var alloc = V1_AllocatableResourcesResponse()
        var d = V1_ContainerDevices()
        d.resourceName = "nvidia.com/gpu"
        d.deviceIds = ["GPU-x"]
        alloc.devices = [d]
        try await Self.withKubelet({
            $0.list = listMessage([podMessage("ml", "train", [containerMessage("main", ids: ["GPU-x"])])])
            $0.allocatable = alloc
        }, configure: { $0.callTimeout = 1 }) { fake, client in
            let answered = await eventually { client.status.list?.pods.first?.name == "train" }
            #expect(answered)
            let status = client.status
            #expect(status.success)
            #expect(status.allocatable?.devices.first?.deviceIDs == ["GPU-x"])
            // A changed answer shows up on a later refresh, through the same channel (GetAllocatableResources once).
            fake.set { $0.list = listMessage([]) }
            let emptied = await eventually { client.status.list?.pods.isEmpty == true }
            #expect(emptied)
            let allocatableCalls = fake.allocatableCalls
            #expect(allocatableCalls == 1)
        }
    }

    @Test func namelessPodsAndContainersAreLeftOut() async throws {
        try await Self.withKubelet({
            $0.list = listMessage([
                podMessage("", "no-namespace", [containerMessage("c", ids: ["GPU-x"])]),
                podMessage("ml", "", [containerMessage("c", ids: ["GPU-x"])]),
                podMessage("ml", "ok", [containerMessage("", ids: ["GPU-y"]), containerMessage("main", ids: ["GPU-z"])]),
            ])
        }) { _, client in
            let answered = await eventually { client.status.list != nil }
            #expect(answered)
            let list = client.status.list
            let expected = PodResourcesList(pods: [PodResources(name: "ok", namespace: "ml", containers: [
                ContainerResources(name: "main", devices: [ContainerDevices(resourceName: "nvidia.com/gpu", deviceIDs: ["GPU-z"])]),
            ])])
            #expect(list == expected)
        }
    }

    @Test func unimplementedAllocatableIsNotAFailure() async throws {
        try await Self.withKubelet({ $0.allocatable = nil; $0.list = listMessage([podMessage("a", "b", [])]) }) { _, client in
            let answered = await eventually { client.status.list != nil }
            #expect(answered)
            let status = client.status
            #expect(status.success)
            #expect(status.allocatable == nil)
        }
    }

    @Test func aMissingSocketIsAClearFailureAndTheKubeletIsPickedUpWhenItComes() async throws {
        let (dir, socket) = kubeletSocketPath()
        defer { dir.remove() }
        let client = PodResourcesClient(configuration: .init(socketPath: socket, refreshInterval: 0.2), logger: Self.logger)
        client.start()
        defer { client.stop() }
        let failed = await eventually { client.status.error != nil }
        #expect(failed)
        let status = client.status
        #expect(!status.success)
        #expect(status.error?.contains("does not exist") == true)
        let fake = FakeKubelet(socketPath: socket)
        fake.set { $0.list = listMessage([podMessage("a", "b", [])]) }
        try await fake.start()
        let recovered = await eventually { client.status.success }
        #expect(recovered)
        await fake.stop()
    }

    @Test func aHangingListMissesItsDeadlineAndOldAllocationsAreDroppedWhenStale() async throws {
        // staleAfter leaves room for a loaded machine between the last good answer and the first failure seen here.
        try await Self.withKubelet({ $0.list = listMessage([podMessage("a", "b", [])]) },
                                   configure: { $0.callTimeout = 0.3; $0.staleAfter = 15 }) { fake, client in
            let answered = await eventually { client.status.success }
            #expect(answered)
            fake.set { $0.listBehaviour = .hang(seconds: 5) }
            let failed = await eventually { !client.status.success }
            #expect(failed)
            let failing = client.status
            #expect(failing.error?.contains("deadline") == true)
            // Kept for a bounded time after the last good answer, then dropped.
            #expect(failing.list != nil)
            let dropped = await eventually(timeout: 30) { client.status.list == nil }
            #expect(dropped)
            // An error status (e.g. a kubelet that cannot serve) is a failure too; answers come back after it.
            fake.set { $0.listBehaviour = .fail(.internalError) }
            let stillFailing = await eventually { client.status.error?.contains("fake kubelet failure") == true }
            #expect(stillFailing)
            fake.set { $0.listBehaviour = .answer }
            let back = await eventually { client.status.list != nil && client.status.success }
            #expect(back)
        }
    }

    @Test func anAnswerThatDoesNotDecodeIsAFailureNotACrash() async throws {
        try await Self.withKubelet({ $0.listBehaviour = .garbage }) { fake, client in
            let failed = await eventually { client.status.error != nil }
            #expect(failed)
            let status = client.status
            #expect(!status.success)
            #expect(status.list == nil)
            #expect(status.error?.contains("did not decode") == true, "\(status.error ?? "")")
            fake.set { $0.list = listMessage([podMessage("a", "b", [])]); $0.listBehaviour = .answer }
            let recovered = await eventually { client.status.success }
            #expect(recovered)
        }
    }

    @Test func podLogDirectoriesNamePodUIDs() throws {
        let dir = TemporaryDirectory(prefix: "pod-logs")
        let uid = "6f1c2a3b-4d5e-4f60-8172-93a4b5c6d7e8"
        for name in ["ml_train-0_\(uid)", "not-a-pod", "a_b_short"] {
            try dir.makeDirectory(name)
        }
        let pods = PodLogsDirectory.scan(FileRoot(dir.path))
        #expect(pods == [uid: PodInfo(namespace: "ml", name: "train-0")])
        let none = PodLogsDirectory.scan(FileRoot(dir.path + "/missing"))
        #expect(none.isEmpty)
    }
}
