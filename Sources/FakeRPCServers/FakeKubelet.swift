public import AccelMetricsTesting
import Foundation
public import GRPCCore
import KubeletClient
import GRPCNIOTransportHTTP2Posix
public import PodResourcesAPI
import PodResourcesGRPC
import SwiftProtobuf
public import Synchronization

/// An in-process kubelet pod-resources server on a unix socket: grpc-swift serving the service generated from the
/// same proto as the client's messages, so the client (UnaryGRPC over libcurl) meets a real gRPC server.
/// Its answers and failures are set while it runs; it counts the calls it gets.
public final class FakeKubelet: Sendable {
    public enum ListBehaviour: Sendable {
        case answer
        /// Fails every List with this status code.
        case fail(RPCError.Code)
        /// Answers only after `seconds` (past the client's deadline).
        case hang(seconds: Double)
        /// Answers with bytes that are not a `ListPodResourcesResponse`.
        case garbage
    }

    public struct State: Sendable {
        public var list = V1_ListPodResourcesResponse()
        /// nil: `Unimplemented`, as a kubelet with the feature gate off answers.
        public var allocatable: V1_AllocatableResourcesResponse? = V1_AllocatableResourcesResponse()
        public var listBehaviour = ListBehaviour.answer
        public var listCalls = 0
        public var allocatableCalls = 0
    }

    public let socketPath: String
    public let state = Mutex(State())
    private let executor = QueueTaskExecutor(label: "fake-kubelet")
    private let running = Mutex<(server: GRPCServer<HTTP2ServerTransport.Posix>, task: Task<Void, any Error>)?>(nil)

    public init(socketPath: String) {
        self.socketPath = socketPath
    }

    public var listCalls: Int { state.withLock { $0.listCalls } }
    public var allocatableCalls: Int { state.withLock { $0.allocatableCalls } }

    public func set(_ change: (inout State) -> Void) { state.withLock { change(&$0) } }

    /// Serves until `stop()`; returns once the socket accepts connections.
    public func start() async throws {
        unlink(socketPath)
        let transport = HTTP2ServerTransport.Posix(address: .unixDomainSocket(path: socketPath), transportSecurity: .plaintext)
        // List is served as raw bytes, so that it can also answer garbage; the rest through the generated service.
        var router = RPCRouter<HTTP2ServerTransport.Posix>()
        Service(fake: self).registerMethods(with: &router)
        router.registerHandler(forMethod: V1_PodResourcesLister.Method.List.descriptor, deserializer: RawBytes(), serializer: RawBytes()) {
            [self] _, _ in
            StreamingServerResponse(single: ServerResponse(message: try await self.listAnswer()))
        }
        let server = GRPCServer(transport: transport, router: router)
        // Its own executor: other tests blocking the cooperative pool must not stall the fake kubelet's answers.
        let task = Task(executorPreference: executor) { try await server.serve() }
        _ = try await transport.listeningAddress
        running.withLock { $0 = (server, task) }
    }

    /// The kubelet goes away: connections close and the socket file is removed (a kubelet restart recreates it).
    public func stop() async {
        guard let (server, task) = running.withLock({ r in defer { r = nil }; return r }) else { return }
        // Graceful shutdown, not cancellation: cancelling the serving task while a connection is accepted but not yet
        // served traps in NIO ("Deinited NIOAsyncWriter without calling finish()", apple/swift-nio#3481). A handler
        // still hanging on purpose is waited for a bounded time, then cancelled.
        server.beginGracefulShutdown()
        let finished = Mutex(false)
        let watchdog = Task {
            try await Task.sleep(for: .seconds(10))
            if !finished.withLock({ $0 }) { task.cancel() }
        }
        _ = try? await task.value
        finished.withLock { $0 = true }
        watchdog.cancel()
        unlink(socketPath)
    }

    /// The bytes of one List answer, after the configured failure or delay.
    public func listAnswer() async throws -> [UInt8] {
        let (behaviour, answer) = state.withLock { s in
            s.listCalls += 1
            return (s.listBehaviour, s.list)
        }
        switch behaviour {
        case .answer:
            return try answer.serializedBytes()
        case .fail(let code):
            throw RPCError(code: code, message: "fake kubelet failure")
        case .hang(let seconds):
            try await Task.sleep(for: .seconds(seconds))
            return try answer.serializedBytes()
        case .garbage:
            // Field 1, length-delimited, with a length running past the end.
            return [0x0A, 0xFF, 0xFF, 0xFF, 0x0F, 0x01]
        }
    }

    struct RawBytes: MessageSerializer, MessageDeserializer {
        func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes { Bytes(message) }
        func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> [UInt8] {
            serializedMessageBytes.withUnsafeBytes { Array($0) }
        }
    }

    struct Service: V1_PodResourcesLister.SimpleServiceProtocol {
        let fake: FakeKubelet

        /// Not routed (the raw List handler replaces it); kept for the protocol.
        func list(request: V1_ListPodResourcesRequest, context: ServerContext) async throws -> V1_ListPodResourcesResponse {
            try V1_ListPodResourcesResponse(serializedBytes: try await fake.listAnswer())
        }

        func getAllocatableResources(request: V1_AllocatableResourcesRequest, context: ServerContext) async throws
            -> V1_AllocatableResourcesResponse {
            let answer = fake.state.withLock { s in
                s.allocatableCalls += 1
                return s.allocatable
            }
            guard let answer else {
                throw RPCError(code: .unimplemented, message: "GetAllocatableResources disabled by feature gate")
            }
            return answer
        }

        func get(request: V1_GetPodResourcesRequest, context: ServerContext) async throws -> V1_GetPodResourcesResponse {
            throw RPCError(code: .unimplemented, message: "not faked")
        }
    }
}

// Builders for the messages tests send.
public func podMessage(_ namespace: String, _ name: String, _ containers: [V1_ContainerResources]) -> V1_PodResources {
    var p = V1_PodResources()
    p.namespace = namespace
    p.name = name
    p.containers = containers
    return p
}

public func containerMessage(_ name: String, resource: String = "nvidia.com/gpu", ids: [String] = [],
                      claims: [V1_DynamicResource] = []) -> V1_ContainerResources {
    var c = V1_ContainerResources()
    c.name = name
    if !ids.isEmpty {
        var d = V1_ContainerDevices()
        d.resourceName = resource
        d.deviceIds = ids
        c.devices = [d]
    }
    c.dynamicResources = claims
    return c
}

public func claimMessage(_ name: String, namespace: String, driver: String, pool: String, device: String, cdi: [String],
                  shareID: String? = nil) -> V1_DynamicResource {
    var r = V1_ClaimResource()
    r.driverName = driver
    r.poolName = pool
    r.deviceName = device
    r.cdiDevices = cdi.map { n in
        var d = V1_CDIDevice()
        d.name = n
        return d
    }
    if let shareID { r.shareID = shareID }
    var claim = V1_DynamicResource()
    claim.claimName = name
    claim.claimNamespace = namespace
    claim.claimResources = [r]
    return claim
}

public func listMessage(_ pods: [V1_PodResources]) -> V1_ListPodResourcesResponse {
    var l = V1_ListPodResourcesResponse()
    l.podResources = pods
    return l
}

/// A short unix socket path (sun_path holds 108 bytes) in a fresh directory under /tmp (not `$TMPDIR`, which may be
/// long), removed with the directory.
public func kubeletSocketPath() -> (dir: TemporaryDirectory, socket: String) {
    let dir = TemporaryDirectory(prefix: "kubelet", in: "/tmp")
    return (dir, dir.path("kubelet.sock"))
}
