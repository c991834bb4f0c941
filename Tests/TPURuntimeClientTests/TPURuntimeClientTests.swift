import Accelerators
import AccelMetricsTesting
import FakeRPCServers
import Foundation
import GRPCCore
import Logging
import SwiftProtobuf
import Synchronization
import Testing
import TPURuntimeAPI
import TPURuntimeClient

/// The libtpu runtime-metrics client: conversion of every answer shape, and the client against the fake libtpu in
/// this process — answers, changing values, supported-metric handling, no workload, a server that vanishes and
/// comes back, garbage, deadlines, staleness.
@Suite("TPU runtime-metrics client", .serialized)
struct TPURuntimeClientTests {
    // MARK: Conversion

    @Test func answersBecomeCheckedValues() throws {
        var snapshot = TPURuntimeSnapshot()
        for (name, response) in tpuWorkload(devices: 2, step: 1) {
            let metric = try #require(TPURuntimeMetric(rawValue: name))
            // Through the wire format, as libtpu would send it.
            let decoded = try Tpu_Monitoring_Runtime_MetricResponse(serializedBytes: try response.serializedBytes() as [UInt8])
            #expect(TPURuntimeConversion.add(decoded, as: metric, to: &snapshot).isEmpty)
        }
        let gib = Double(1 << 30)
        #expect(snapshot.hbmUsedBytes == [0: gib * 1.25, 1: gib * 2.25])
        #expect(snapshot.hbmTotalBytes == [0: 16 * gib, 1: 16 * gib])
        #expect(snapshot.dutyCyclePercent == [0: 5, 1: 15])
        #expect(snapshot.hbmUtilizationPercent == [0: 1, 1: 3])
        #expect(snapshot.hloQueueSize == [0: 1, 1: 2])  // ordinal 0 as a string, 1 as an integer
        let histogram = try #require(snapshot.hloExecutionSeconds[1])
        // Exponential, scale 1 µs, growth 2, 20 finite buckets: upper bounds 1, 2, 4, … 2^20 µs → seconds.
        #expect(histogram.upperBounds.count == 21)
        #expect(histogram.upperBounds.first == 1e-6 && histogram.upperBounds[6] == 64e-6 && histogram.upperBounds.last == 1.048576)
        #expect(histogram.bucketCounts[6] == 2 && histogram.bucketCounts[11] == 2 && histogram.bucketCounts.reduce(0, +) == 4)
        #expect(histogram.count == 4 && abs(histogram.sum - 4 * 500e-6) < 1e-12)
    }

    @Test func bucketLayouts() throws {
        var d = Tpu_Monitoring_Runtime_Distribution()
        d.count = 6
        d.mean = 10
        var explicit = Tpu_Monitoring_Runtime_Distribution.BucketOptions.Explicit()
        explicit.bounds = [5, 10, 20]
        d.bucketOptions.explicitBuckets = explicit
        d.bucketCounts = [1, 2, 3]  // the last (overflow) bucket left out
        let a = try TPURuntimeConversion.histogram(d, scale: 1).get()
        #expect(a.upperBounds == [5, 10, 20] && a.bucketCounts == [1, 2, 3, 0] && a.sum == 60)
        var linear = Tpu_Monitoring_Runtime_Distribution.BucketOptions.Linear()
        linear.numFiniteBuckets = 2
        linear.width = 10
        linear.offset = 100
        d.bucketOptions.linearBuckets = linear
        d.bucketCounts = [0, 1, 2, 3]
        let b = try TPURuntimeConversion.histogram(d, scale: 1e-6).get()
        #expect(b.upperBounds == [100e-6, 110e-6, 120e-6] && b.bucketCounts == [0, 1, 2, 3])
        // No layout and no counts: everything in +Inf, count and sum still told.
        d.clearBucketOptions()
        d.bucketCounts = []
        let c = try TPURuntimeConversion.histogram(d, scale: 1).get()
        #expect(c.upperBounds.isEmpty && c.bucketCounts == [6] && c.count == 6)
    }

    @Test(arguments: [
        "counts disagree", "too many counts", "negative count", "no layout", "bad growth", "decreasing bounds", "nan mean", "huge layout",
    ])
    func garbageDistributionsAreRefused(kind: String) {
        var d = tpuDistribution([1, 2, 3], mean: 5)
        switch kind {
        case "counts disagree": d.count = 7
        case "too many counts": d.bucketCounts = [Int64](repeating: 1, count: 30); d.count = 30
        case "negative count": d.bucketCounts = [1, -2, 7]
        case "no layout": d.clearBucketOptions()
        case "bad growth": d.bucketOptions.exponentialBuckets.growthFactor = 0.5
        case "decreasing bounds":
            var explicit = Tpu_Monitoring_Runtime_Distribution.BucketOptions.Explicit()
            explicit.bounds = [3, 2, 1]
            d.bucketOptions.explicitBuckets = explicit
        case "nan mean": d.mean = .nan
        default: d.bucketOptions.exponentialBuckets.numFiniteBuckets = Int32.max
        }
        guard case .failure(let reason) = TPURuntimeConversion.histogram(d, scale: 1e-6) else {
            Issue.record("\(kind) was accepted")
            return
        }
        #expect(!reason.message.isEmpty)
    }

    @Test func garbageValuesAreDroppedOneByOne() throws {
        func add(_ name: String, _ points: [Tpu_Monitoring_Runtime_Metric], to s: inout TPURuntimeSnapshot) -> [String] {
            TPURuntimeConversion.add(tpuResponse(name, points), as: TPURuntimeMetric(rawValue: name)!, to: &s)
        }
        var s = TPURuntimeSnapshot()
        var noAttribute = tpuPoint(device: 0, gauge: .asInt(1))
        noAttribute.clearAttribute()
        var distribution = tpuPoint(device: 6, gauge: .asInt(1))
        distribution.distribution = tpuDistribution([1], mean: 1)
        let usage = add("tpu.runtime.hbm.memory.usage.bytes", [
            tpuPoint(device: 0, gauge: .asInt(100)), tpuPoint(device: 0, gauge: .asInt(200)),     // twice: first kept
            tpuPoint(device: 1, gauge: .asString("lots")), tpuPoint(device: 2, gauge: .asInt(-5)),
            tpuPoint(device: 3, gauge: .asDouble(.nan)), tpuPoint(device: -1, gauge: .asInt(1)),
            tpuPoint(device: 99_999, gauge: .asInt(1)), noAttribute, distribution, tpuPoint(device: 7, gauge: .asBool(true)),
            tpuPoint(device: 4, gauge: .asDouble(4096)), tpuPoint(device: 5, gauge: .asInt(900)),
        ], to: &s)
        #expect(s.hbmUsedBytes == [0: 100, 4: 4096, 5: 900])
        #expect(usage.count == 9)
        _ = add("tpu.runtime.hbm.memory.total.bytes", [tpuPoint(device: 5, gauge: .asInt(800)), tpuPoint(device: 0, gauge: .asInt(1000))], to: &s)
        // In use beyond the total: one of the two is wrong; the use is dropped.
        let consistency = TPURuntimeConversion.checkConsistency(&s)
        #expect(s.hbmUsedBytes == [0: 100, 4: 4096] && consistency.count == 1)
        let duty = add("tpu.runtime.tensorcore.dutycycle.percent", [
            tpuPoint(device: 0, gauge: .asDouble(100.2)), tpuPoint(device: 1, gauge: .asDouble(250)),
            tpuPoint(device: 2, gauge: .asDouble(-1)), tpuPoint(device: 3, gauge: .asDouble(42.5)),
        ], to: &s)
        #expect(s.dutyCyclePercent == [0: 100, 3: 42.5] && duty.count == 2)
        var badOrdinal = tpuHLOPoint(ordinal: 0)
        badOrdinal.attribute.value.kvlistAttr.attributes[1].value.stringAttr = "0x1"
        badOrdinal.gauge = { var g = Tpu_Monitoring_Runtime_Gauge(); g.asInt = 1; return g }()
        var fractional = tpuHLOPoint(ordinal: 1)
        fractional.gauge = { var g = Tpu_Monitoring_Runtime_Gauge(); g.asDouble = 1.5; return g }()
        let queue = add("hlo.queue.size.gauge", [badOrdinal, fractional], to: &s)
        #expect(s.hloQueueSize.isEmpty && queue.count == 2)
        // An answer about another metric is not taken for the one asked.
        let other = TPURuntimeConversion.add(tpuResponse("something.else", [tpuPoint(device: 0, gauge: .asInt(1))]), as: .hbmTotal, to: &s)
        #expect(other.count == 1 && s.hbmTotalBytes == [5: 800, 0: 1000])
    }

    @Test func addresses() {
        for (text, host, port) in [("localhost:8431", "localhost", 8431), ("10.4.0.7:8431", "10.4.0.7", 8431), ("[fd00::7]:8431", "fd00::7", 8431)] {
            #expect((try? TPURuntimeAddress.parse(text).get()) == TPURuntimeAddress(host: host, port: port))
        }
        for bad in ["", "localhost", ":8431", "host:0", "host:99999", "fd00::7:8431", "[fd00::7]8431", "a b:1", "http://x:1"] {
            #expect((try? TPURuntimeAddress.parse(bad).get()) == nil, "\(bad) accepted")
        }
    }

    // MARK: Against the fake libtpu

    static func client(_ address: String, interval: Double = 0.2, timeout: Double = 0.5, log: CapturedLog) -> TPURuntimeClient {
        TPURuntimeClient(configuration: .init(addresses: [address], refreshInterval: interval, callTimeout: timeout), logger: log.logger(level: .debug))
    }

    @Test func pollsAndFollowsChangingValues() async throws {
        let fake = FakeLibTPU()
        fake.set { $0.metrics = tpuWorkload(devices: 8, step: 0) }
        try await fake.start()
        let log = CapturedLog()
        let client = Self.client(fake.address, log: log)
        // Nothing before activation: nodes without TPUs never poll.
        try await Task.sleep(for: .milliseconds(300))
        #expect(fake.listCalls == 0 && !client.isActive)
        client.activate()
        client.activate()
        defer { client.stop() }
        let answered = await eventually { client.reports.first?.snapshot?.hbmUsedBytes[7] == 8 * Double(1 << 30) }
        #expect(answered)
        #expect(client.reports.first?.state == .answering)
        #expect(client.reports.first?.snapshot?.hloExecutionSeconds.count == 8)
        fake.set { $0.metrics = tpuWorkload(devices: 8, step: 2) }
        let moved = await eventually { client.reports.first?.snapshot?.dutyCyclePercent[7] == 80 }
        #expect(moved)
        // One listing per connection; every metric once per poll.
        #expect(fake.listCalls == 1)
        let polls = client.polls(fake.address)
        #expect(polls >= 2 && abs(fake.calls("hlo.queue.size.gauge") - polls) <= 1)
        #expect(log.count("TPU runtime metrics answering") == 1)
        client.stop()
        await fake.stop()
    }

    @Test func onlyListedMetricsAreAskedAndOlderLibtpuIsProbed() async throws {
        let fake = FakeLibTPU()
        // Lists the three basic metrics only: the HLO metrics and HBM utilization are never asked for.
        fake.set {
            $0.metrics = tpuWorkload(devices: 4, step: 0)
            $0.supported = ["tpu.runtime.hbm.memory.usage.bytes", "tpu.runtime.hbm.memory.total.bytes", "tpu.runtime.tensorcore.dutycycle.percent"]
        }
        try await fake.start()
        let log = CapturedLog()
        let client = Self.client(fake.address, log: log)
        client.activate()
        defer { client.stop() }
        #expect(await eventually { client.polls(fake.address) >= 2 })
        #expect(fake.calls("hlo.queue.size.gauge") == 0 && fake.calls("tpu.runtime.hbm.utilization.percent") == 0)
        #expect(client.reports.first?.snapshot?.hloQueueSize.isEmpty == true)
        #expect(client.reports.first?.snapshot?.hbmTotalBytes.count == 4)
        client.stop()
        await fake.stop()

        // An older libtpu: no listing at all, and no HLO metrics (NOT_FOUND) — asked once on the connection, then not.
        let old = FakeLibTPU()
        old.set {
            $0.metrics = tpuWorkload(devices: 4, step: 0, hlo: false, hbmUtilization: false)
            $0.unimplementedListing = true
        }
        try await old.start()
        let oldClient = Self.client(old.address, log: log)
        oldClient.activate()
        defer { oldClient.stop() }
        #expect(await eventually { oldClient.polls(old.address) >= 3 })
        #expect(old.calls("hlo.queue.size.gauge") == 1 && old.calls("tpu.runtime.hbm.utilization.percent") == 1)
        #expect(oldClient.reports.first?.state == .answering)
        #expect(oldClient.reports.first?.snapshot?.dutyCyclePercent.count == 4)
        #expect(log.count("does not serve some runtime metrics") == 2)
        oldClient.stop()
        await old.stop()
    }

    @Test func noWorkloadIsAStateNotAFailureAndTheServerMayComeAndGo() async throws {
        let port = try freePort()
        let log = CapturedLog()
        let client = Self.client("127.0.0.1:\(port)", interval: 0.1, log: log)
        client.activate()
        defer { client.stop() }
        let idle = await eventually { client.reports.first?.state == .noWorkload("connection refused") }
        #expect(idle, "state: \(String(describing: client.reports.first?.state))")
        #expect(client.reports.first?.snapshot == nil)
        // Retries (with backoff) do not log again.
        try await Task.sleep(for: .milliseconds(800))
        #expect(log.count("no TPU workload answers") == 1)
        #expect(log.all.filter { $0.level == .warning }.isEmpty)

        // A workload starts on that port: values appear.
        let fake = FakeLibTPU()
        fake.set { $0.metrics = tpuWorkload(devices: 4, step: 1) }
        try await fake.start(port: port)
        #expect(await eventually { client.reports.first?.snapshot?.hbmUsedBytes.count == 4 })
        #expect(client.reports.first?.state == .answering)

        // It ends: no workload again; the last values go once older than the staleness bound (3 × 0.1 s).
        await fake.stop()
        #expect(await eventually { client.reports.first?.state == .noWorkload("connection refused") })
        #expect(await eventually { client.reports.first?.snapshot == nil })
        #expect(log.count("no TPU workload answers") == 2)
        #expect(log.count("dropping TPU runtime values") == 1)
        // And comes back.
        try await fake.start(port: port)
        #expect(await eventually { client.reports.first?.state == .answering && client.reports.first?.snapshot != nil })
        client.stop()
        await fake.stop()
    }

    @Test(arguments: ["garbage", "hang", "internal"])
    func badServersFailWithAReasonAndRecover(kind: String) async throws {
        let fake = FakeLibTPU()
        fake.set { $0.metrics = tpuWorkload(devices: 2, step: 0) }
        try await fake.start()
        let log = CapturedLog()
        // A long staleness bound: the last good values stay served while it fails.
        let client = TPURuntimeClient(configuration: .init(addresses: [fake.address], refreshInterval: 0.1, callTimeout: 0.3, staleAfter: 30),
                                      logger: log.logger(level: .debug))
        client.activate()
        defer { client.stop() }
        #expect(await eventually { client.reports.first?.state == .answering })
        fake.set {
            switch kind {
            case "garbage": $0.behaviour = .garbage
            case "hang": $0.behaviour = .hang(seconds: 2)
            default: $0.behaviour = .fail(.internalError)
            }
        }
        let failed = await eventually {
            if case .failing = client.reports.first?.state { return true }
            return false
        }
        #expect(failed, "state \(String(describing: client.reports.first?.state)); log \(log.all)")
        guard case .failing(let reason)? = client.reports.first?.state else { return }
        switch kind {
        case "garbage": #expect(reason.contains("did not decode"), "\(reason)")
        case "hang": #expect(reason.contains("deadline"), "\(reason)")
        default: #expect(reason.contains("internalError"), "\(reason)")
        }
        #expect(client.reports.first?.snapshot?.hbmUsedBytes.count == 2)
        try await Task.sleep(for: .milliseconds(600))
        #expect(log.all.filter { $0.level == .warning }.count == 1, "\(log.all)")
        fake.set { $0.behaviour = .answer }
        #expect(await eventually(timeout: 15) { client.reports.first?.state == .answering })
        client.stop()
        await fake.stop()
    }

    @Test func targetsFollowTheProvider() async throws {
        let a = FakeLibTPU(), b = FakeLibTPU()
        a.set { $0.metrics = tpuWorkload(devices: 1, step: 0) }
        b.set { $0.metrics = tpuWorkload(devices: 2, step: 0) }
        try await a.start()
        try await b.start()
        let targets = Mutex([TPURuntimeTarget(address: a.address, chips: ["0000:00:04.0"], owner: "ml/a")])
        let (aAddress, bAddress) = (a.address, b.address)
        let client = TPURuntimeClient(configuration: .init(targets: { targets.withLock { $0 } }, refreshInterval: 0.1, callTimeout: 0.5),
                                      logger: CapturedLog().logger(level: .debug))
        client.activate()
        defer { client.stop() }
        #expect(await eventually { client.reports.map(\.target.address) == [aAddress] && client.reports.first?.snapshot != nil })
        #expect(client.reports.first?.target.chips == ["0000:00:04.0"])
        // The pod watch sees a new TPU pod and the first one gone.
        targets.withLock { $0 = [TPURuntimeTarget(address: bAddress, owner: "ml/b")] }
        #expect(await eventually { client.reports.map(\.target.address) == [bAddress] && client.reports.first?.snapshot?.hbmUsedBytes.count == 2 })
        let aCalls = a.calls("tpu.runtime.hbm.memory.usage.bytes")
        try await Task.sleep(for: .milliseconds(400))
        #expect(a.calls("tpu.runtime.hbm.memory.usage.bytes") == aCalls)
        client.stop()
        await a.stop()
        await b.stop()
    }
}
