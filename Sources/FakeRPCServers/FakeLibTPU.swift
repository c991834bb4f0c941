import Foundation
public import GRPCCore
import GRPCNIOTransportHTTP2Posix
import KubeletClient
import SwiftProtobuf
public import Synchronization
public import TPURuntimeAPI
import TPURuntimeGRPC

/// An in-process libtpu runtime-metrics server on loopback TCP: grpc-swift serving the service generated from the
/// same proto as the client's messages.
/// Its answers and failures are set while it runs; it counts the calls it gets. Both methods are served as raw
/// bytes so that it can also answer garbage.
public final class FakeLibTPU: Sendable {
    public enum Behaviour: Sendable {
        case answer
        /// Fails every call with this status code.
        case fail(RPCError.Code)
        /// Answers only after `seconds` (past the client's deadline).
        case hang(seconds: Double)
        /// Answers with bytes that are not the expected message.
        case garbage
    }

    public struct State: Sendable {
        /// Answers by metric name; a name not here answers NOT_FOUND.
        public var metrics: [String: Tpu_Monitoring_Runtime_MetricResponse] = [:]
        /// What `ListSupportedMetrics` lists; nil: every name in `metrics`. `unimplementedListing`: UNIMPLEMENTED.
        public var supported: [String]?
        public var unimplementedListing = false
        public var behaviour = Behaviour.answer
        public var calls: [String: Int] = [:]
        public var listCalls = 0
    }

    public let state = Mutex(State())
    private let executor = QueueTaskExecutor(label: "fake-libtpu")
    private let running = Mutex<(server: GRPCServer<HTTP2ServerTransport.Posix>, task: Task<Void, any Error>)?>(nil)
    private let boundPort = Mutex(0)

    public init() {}

    public func set(_ change: (inout State) -> Void) { state.withLock { change(&$0) } }
    public func calls(_ metric: String) -> Int { state.withLock { $0.calls[metric] ?? 0 } }
    public var listCalls: Int { state.withLock { $0.listCalls } }
    public var port: Int { boundPort.withLock { $0 } }
    public var address: String { "127.0.0.1:\(port)" }

    /// Serves on 127.0.0.1 (`port` 0: any free port; a previous port to come back where it was) until `stop()`.
    public func start(port: Int = 0) async throws {
        let transport = HTTP2ServerTransport.Posix(address: .ipv4(host: "127.0.0.1", port: port), transportSecurity: .plaintext)
        var router = RPCRouter<HTTP2ServerTransport.Posix>()
        let get = Tpu_Monitoring_Runtime_RuntimeMetricService.Method.GetRuntimeMetric.descriptor
        router.registerHandler(forMethod: get, deserializer: RawBytes(), serializer: RawBytes()) { [self] request, _ in
            var bytes: [UInt8] = []
            for try await message in request.messages { bytes = message }
            let name = (try? Tpu_Monitoring_Runtime_MetricRequest(serializedBytes: bytes))?.metricName ?? ""
            return StreamingServerResponse(single: ServerResponse(message: try await self.metricAnswer(name)))
        }
        let list = Tpu_Monitoring_Runtime_RuntimeMetricService.Method.ListSupportedMetrics.descriptor
        router.registerHandler(forMethod: list, deserializer: RawBytes(), serializer: RawBytes()) { [self] _, _ in
            StreamingServerResponse(single: ServerResponse(message: try await self.listAnswer()))
        }
        let server = GRPCServer(transport: transport, router: router)
        // Its own executor: other tests blocking the cooperative pool must not stall the fake's answers.
        let task = Task(executorPreference: executor) { try await server.serve() }
        let address = try await transport.listeningAddress
        boundPort.withLock { $0 = address.ipv4?.port ?? 0 }
        running.withLock { $0 = (server, task) }
    }

    /// The workload ends: connections close and the port refuses connections until `start(port:)` again.
    ///
    /// A graceful shutdown, awaited, not a cancelled serve task: cancelling it while a client keeps connecting can
    /// leave an accepted connection that nobody finishes, which NIO traps on (apple/swift-nio#3481). Handlers that
    /// hang are waited for (a few seconds at most in these tests); only past 10 s is the task cancelled.
    public func stop() async {
        guard let (server, task) = running.withLock({ r in defer { r = nil }; return r }) else { return }
        server.beginGracefulShutdown()
        let watchdog = Task {
            try await Task.sleep(for: .seconds(10))
            task.cancel()
        }
        _ = try? await task.value
        watchdog.cancel()
    }

    private func behave() async throws -> Bool {
        switch state.withLock({ $0.behaviour }) {
        case .answer: return true
        case .fail(let code): throw RPCError(code: code, message: "fake libtpu failure")
        case .hang(let seconds):
            try await Task.sleep(for: .seconds(seconds))
            return true
        case .garbage: return false
        }
    }

    /// Field 1, length-delimited, with a length running past the end.
    public static let garbage: [UInt8] = [0x0A, 0xFF, 0xFF, 0xFF, 0x0F, 0x01]

    public func metricAnswer(_ name: String) async throws -> [UInt8] {
        let answer = state.withLock { s in
            s.calls[name, default: 0] += 1
            return s.metrics[name]
        }
        guard try await behave() else { return Self.garbage }
        guard let answer else { throw RPCError(code: .notFound, message: "metric \(name) not found") }
        return try answer.serializedBytes()
    }

    public func listAnswer() async throws -> [UInt8] {
        let (names, unimplemented) = state.withLock { s in
            s.listCalls += 1
            return (s.supported ?? s.metrics.keys.sorted(), s.unimplementedListing)
        }
        guard try await behave() else { return Self.garbage }
        if unimplemented { throw RPCError(code: .unimplemented, message: "ListSupportedMetrics is not implemented") }
        var response = Tpu_Monitoring_Runtime_ListSupportedMetricsResponse()
        response.supportedMetric = names.map { n in
            var m = Tpu_Monitoring_Runtime_SupportedMetric()
            m.metricName = n
            return m
        }
        return try response.serializedBytes()
    }

    struct RawBytes: MessageSerializer, MessageDeserializer {
        func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes { Bytes(message) }
        func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> [UInt8] {
            serializedMessageBytes.withUnsafeBytes { Array($0) }
        }
    }
}

// MARK: Message builders

/// A data point whose attribute carries the device as an integer (memory, duty cycle).
public func tpuPoint(device: Int64, gauge: Tpu_Monitoring_Runtime_Gauge.OneOf_Value) -> Tpu_Monitoring_Runtime_Metric {
    var point = Tpu_Monitoring_Runtime_Metric()
    point.attribute.key = "device-id"
    point.attribute.value.intAttr = device
    var g = Tpu_Monitoring_Runtime_Gauge()
    g.value = gauge
    point.gauge = g
    return point
}

/// A data point keyed by `device_ordinal` in a key-value list (the HLO metrics), as a string (newer libtpu) or an
/// integer (older).
public func tpuHLOPoint(ordinal: Int, asString: Bool = true) -> Tpu_Monitoring_Runtime_Metric {
    var point = Tpu_Monitoring_Runtime_Metric()
    var ordinalAttribute = Tpu_Monitoring_Runtime_Attribute()
    ordinalAttribute.key = "device_ordinal"
    if asString { ordinalAttribute.value.stringAttr = "\(ordinal)" } else { ordinalAttribute.value.intAttr = Int64(ordinal) }
    var coreType = Tpu_Monitoring_Runtime_Attribute()
    coreType.key = "core_type"
    coreType.value.stringAttr = "tensor_core"
    var list = Tpu_Monitoring_Runtime_KeyValueList()
    list.attributes = [coreType, ordinalAttribute]
    point.attribute.key = "hlo"
    point.attribute.value.kvlistAttr = list
    return point
}

/// An exponential distribution (µs): `counts` per bucket, underflow first, scale 1 µs growing ×2 over 20 finite buckets.
public func tpuDistribution(_ counts: [Int64], mean: Double) -> Tpu_Monitoring_Runtime_Distribution {
    var d = Tpu_Monitoring_Runtime_Distribution()
    d.count = counts.reduce(0, +)
    d.mean = mean
    var exponential = Tpu_Monitoring_Runtime_Distribution.BucketOptions.Exponential()
    exponential.numFiniteBuckets = 20
    exponential.growthFactor = 2
    exponential.scale = 1
    d.bucketOptions.exponentialBuckets = exponential
    d.bucketCounts = counts
    return d
}

public func tpuResponse(_ name: String, _ points: [Tpu_Monitoring_Runtime_Metric]) -> Tpu_Monitoring_Runtime_MetricResponse {
    var response = Tpu_Monitoring_Runtime_MetricResponse()
    response.metric.name = name
    response.metric.description_p = "fake libtpu"
    response.metric.metrics = points
    return response
}

/// A workload's answers for `devices` devices at `step`; values move with the step so tests see them change.
/// Device d at step s: HBM used (d+1)·1 GiB + s·256 MiB of 16 GiB, duty cycle 10·d + 5·s %, HBM utilization 2·d + s %,
/// HLO queue (d + s) mod 4, execution times: d+1 observations in [32, 64) µs and s+1 in [1024, 2048) µs, mean 500 µs.
/// `dutyPerChip`: the duty-cycle values, per chip (`chips` of them) instead of per device.
public func tpuWorkload(devices: Int, step: Int, hlo: Bool = true, hbmUtilization: Bool = true, chips: Int? = nil)
    -> [String: Tpu_Monitoring_Runtime_MetricResponse] {
    let gib: Int64 = 1 << 30
    var out: [String: Tpu_Monitoring_Runtime_MetricResponse] = [:]
    out["tpu.runtime.hbm.memory.usage.bytes"] = tpuResponse("tpu.runtime.hbm.memory.usage.bytes", (0..<devices).map {
        tpuPoint(device: Int64($0), gauge: .asInt(Int64($0 + 1) * gib + Int64(step) * (gib / 4)))
    })
    out["tpu.runtime.hbm.memory.total.bytes"] = tpuResponse("tpu.runtime.hbm.memory.total.bytes", (0..<devices).map {
        tpuPoint(device: Int64($0), gauge: .asInt(16 * gib))
    })
    out["tpu.runtime.tensorcore.dutycycle.percent"] = tpuResponse("tpu.runtime.tensorcore.dutycycle.percent", (0..<(chips ?? devices)).map {
        tpuPoint(device: Int64($0), gauge: .asDouble(Double(10 * $0 + 5 * step)))
    })
    if hbmUtilization {
        out["tpu.runtime.hbm.utilization.percent"] = tpuResponse("tpu.runtime.hbm.utilization.percent", (0..<(chips ?? devices)).map {
            tpuPoint(device: Int64($0), gauge: .asDouble(Double(2 * $0 + step)))
        })
    }
    if hlo {
        out["hlo.queue.size.gauge"] = tpuResponse("hlo.queue.size.gauge", (0..<devices).map { d in
            var point = tpuHLOPoint(ordinal: d, asString: d % 2 == 0)
            var g = Tpu_Monitoring_Runtime_Gauge()
            g.asInt = Int64((d + step) % 4)
            point.gauge = g
            return point
        })
        out["hlo.execution.timing.distribution.microseconds"] = tpuResponse("hlo.execution.timing.distribution.microseconds", (0..<devices).map { d in
            var point = tpuHLOPoint(ordinal: d)
            // Bucket 6 is [32, 64) µs, bucket 11 is [1024, 2048) µs; trailing buckets left out.
            var counts = [Int64](repeating: 0, count: 12)
            counts[6] = Int64(d + 1)
            counts[11] = Int64(step + 1)
            point.distribution = tpuDistribution(counts, mean: 500)
            return point
        })
    }
    return out
}
