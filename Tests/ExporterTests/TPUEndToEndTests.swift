import DeviceSimulation
import AccelMetricsTesting
import FakeRPCServers
import Foundation
import GRPCCore
import Testing

/// The real binary under umockdev on the TPU fixture nodes, with libtpu faked by an in-process gRPC server on
/// loopback: chips listed with and without a workload, runtime values through the render path (golden, promtool,
/// the strict OpenMetrics parser), a workload starting, changing and ending, and servers that misbehave.
@Suite("TPU nodes end to end (umockdev, fake libtpu)", .serialized, .enabled(if: ExporterProcess.umockdevAvailable), .tags(.endToEnd), .endToEndEnabled)
struct TPUEndToEndTests {
    static func start(_ node: String, runtime address: String) throws -> ExporterProcess {
        try ExporterProcess(tree: FixtureNodes.tpuTree(named: node)!,
                            arguments: ["--tpu.runtime-metrics-address", address, "--tpu.runtime-metrics-interval", "200ms",
                                        "--no-collector.nvidia"])
    }

    static let v5eChip3 = "accelerator=\"0000:00:07.0\",vendor=\"google\",model=\"TPU v5e\""
    static let v4Chip2 = "accelerator=\"0000:00:07.0\",vendor=\"google\",model=\"TPU v4\""

    /// Golden device families, promtool on the text format and the strict parser on OpenMetrics.
    static func checkExposition(_ exporter: ExporterProcess, text: String, golden name: String) throws {
        let devices = deviceFamilies(text)
        try expectMatchesGolden(devices, "Tests/Fixtures/golden/\(name).prom", what: "golden mismatch for \(name)")
        try exporter.expectBothFormatsLint()
    }

    @Test func v5eHostWithAWorkload() async throws {
        let fake = FakeLibTPU()
        fake.set { $0.metrics = tpuWorkload(devices: 8, step: 0) }
        try await fake.start()
        let exporter = try Self.start("tpu-v5e-8", runtime: fake.address)
        defer { exporter.stop() }
        let text = try exporter.waitForMetrics {
            $0.contains("accelerator_tpu_hlo_execution_seconds_count{accelerator=\"0000:00:0b.0\"")
        }
        try Self.checkExposition(exporter, text: text, golden: "tpu-v5e-8")
        // Chip 3 is libtpu's device 3 (PCI order): 4 GiB of 16 in use, 30 % duty cycle, HBM utilization 6 %,
        // queue 3, 4 observations under 64 µs plus 1 under 2048 µs, mean 500 µs.
        let gib = Double(1 << 30)
        #expect(value(text, "accelerator_memory_used_bytes{\(Self.v5eChip3),memory=\"hbm\"}") == 4 * gib)
        #expect(value(text, "accelerator_memory_total_bytes{\(Self.v5eChip3),memory=\"hbm\"}") == 16 * gib)
        #expect(value(text, "accelerator_utilization_ratio{\(Self.v5eChip3)}") == 0.3)
        #expect(value(text, "accelerator_tpu_hbm_utilization_ratio{\(Self.v5eChip3)}") == 0.06)
        #expect(value(text, "accelerator_tpu_hlo_queue_size{\(Self.v5eChip3)}") == 3)
        #expect(value(text, "accelerator_tpu_hlo_execution_seconds_bucket{\(Self.v5eChip3),le=\"3.2e-05\"}") == 0)
        #expect(value(text, "accelerator_tpu_hlo_execution_seconds_bucket{\(Self.v5eChip3),le=\"6.4e-05\"}") == 4)
        #expect(value(text, "accelerator_tpu_hlo_execution_seconds_bucket{\(Self.v5eChip3),le=\"0.002048\"}") == 5)
        #expect(value(text, "accelerator_tpu_hlo_execution_seconds_bucket{\(Self.v5eChip3),le=\"+Inf\"}") == 5)
        #expect(value(text, "accelerator_tpu_hlo_execution_seconds_sum{\(Self.v5eChip3)}") == 0.0025)
        // The gVNIC is no accelerator.
        #expect(!text.contains("0000:00:03.0"))
        #expect(text.contains("accel_exporter_collector_success{collector=\"tpu\"} 1"))
        #expect(text.contains("accel_exporter_collector_success{collector=\"tpu_runtime\"} 1"))
        #expect(text.contains("accel_exporter_tpu_runtime_up{address=\"\(fake.address)\"} 1"))
        await fake.stop()
    }

    @Test func v4HostListsItsChipsWithoutAWorkloadAndFollowsOneThatComesAndGoes() async throws {
        let port = try freePort()
        let address = "127.0.0.1:\(port)"
        let exporter = try Self.start("tpu-v4-4", runtime: address)
        defer { exporter.stop() }
        // No workload: chips listed, no runtime values, the runtime collector not failing — once it has tried.
        var text = try exporter.waitForMetrics { $0.contains("accel_exporter_tpu_runtime_up{address=\"\(address)\"} 0") }
        _ = await eventually(timeout: 10) { exporter.log.contains("no TPU workload answers") }
        #expect(exporter.log.contains("reason=\"connection refused\"") || exporter.log.contains("reason=connection refused"), "\(exporter.log.suffix(2000))")
        try await Task.sleep(for: .milliseconds(400))
        text = try exporter.get("/metrics").text
        try Self.checkExposition(exporter, text: text, golden: "tpu-v4-4")
        #expect(text.contains("accel_exporter_collector_success{collector=\"tpu_runtime\"} 1"))
        #expect(value(text, "accelerator_up{\(Self.v4Chip2)}") == 1)
        #expect(value(text, "accelerator_utilization_ratio{\(Self.v4Chip2)}") == nil)

        // A job starts (an older libtpu: no listing, no HLO metrics).
        let fake = FakeLibTPU()
        fake.set {
            $0.metrics = tpuWorkload(devices: 4, step: 0, hlo: false, hbmUtilization: false)
            $0.unimplementedListing = true
        }
        try await fake.start(port: port)
        text = try exporter.waitForMetrics { value($0, "accelerator_utilization_ratio{\(Self.v4Chip2)}") == 0.2 }
        #expect(value(text, "accelerator_memory_used_bytes{\(Self.v4Chip2),memory=\"hbm\"}") == 3 * Double(1 << 30))
        #expect(!text.contains("accelerator_tpu_hlo_queue_size"))
        #expect(text.contains("accel_exporter_tpu_runtime_up{address=\"\(address)\"} 1"))
        // Its values move.
        fake.set { $0.metrics = tpuWorkload(devices: 4, step: 1, hlo: false, hbmUtilization: false) }
        text = try exporter.waitForMetrics { value($0, "accelerator_utilization_ratio{\(Self.v4Chip2)}") == 0.25 }
        // It ends: values leave with it (within the staleness bound), chips stay, nothing fails.
        await fake.stop()
        text = try exporter.waitForMetrics(timeout: 5) { !$0.contains("accelerator_utilization_ratio{") }
        #expect(value(text, "accelerator_up{\(Self.v4Chip2)}") == 1)
        #expect(!text.contains("accelerator_memory_used_bytes{"))
        #expect(text.contains("accel_exporter_collector_success{collector=\"tpu_runtime\"} 1"))
        #expect(text.contains("accel_exporter_tpu_runtime_up{address=\"\(address)\"} 0"))
        // Once per change of state, not once per poll: idle at start, and idle again after the job.
        try await Task.sleep(for: .seconds(1))
        let idleLines = exporter.log.components(separatedBy: "\n").filter { $0.contains("no TPU workload answers") }
        #expect(idleLines.count == 2, "\(idleLines)")
    }

    @Test func misbehavingServersFailOnlyTheRuntimeCollector() async throws {
        let fake = FakeLibTPU()
        fake.set { $0.metrics = tpuWorkload(devices: 8, step: 0) }
        try await fake.start()
        let exporter = try Self.start("tpu-v5e-8", runtime: fake.address)
        defer { exporter.stop() }
        _ = try exporter.waitForMetrics { $0.contains("accel_exporter_tpu_runtime_up{address=\"\(fake.address)\"} 1") }
        for behaviour in [FakeLibTPU.Behaviour.garbage, .hang(seconds: 3), .fail(.internalError)] {
            fake.set { $0.behaviour = behaviour }
            let started = Date()
            let text = try exporter.waitForMetrics(timeout: 8) {
                $0.contains("accel_exporter_collector_success{collector=\"tpu_runtime\"} 0")
            }
            // Scrapes never wait on libtpu; the chips stay listed and up, the sysfs collector healthy.
            #expect(Date().timeIntervalSince(started) < 8)
            #expect(text.contains("accel_exporter_collector_success{collector=\"tpu\"} 1"))
            #expect(text.components(separatedBy: "\n").filter { $0.hasPrefix("accelerator_up{") && $0.hasSuffix(" 1") }.count == 8)
            fake.set { $0.behaviour = .answer }
            _ = try exporter.waitForMetrics(timeout: 20) {
                $0.contains("accel_exporter_collector_success{collector=\"tpu_runtime\"} 1")
                    && $0.contains("accel_exporter_tpu_runtime_up{address=\"\(fake.address)\"} 1")
            }
        }
        await fake.stop()
        // A peer that is not gRPC at all.
        let junk = try JunkServer()
        defer { junk.stop() }
        let other = try Self.start("tpu-v5e-8", runtime: "127.0.0.1:\(junk.port)")
        defer { other.stop() }
        let text = try other.waitForMetrics { $0.contains("accel_exporter_collector_success{collector=\"tpu_runtime\"} 0") }
        #expect(text.contains("accel_exporter_collector_success{collector=\"tpu\"} 1"))
        #expect(other.log.contains("TPU runtime metrics failing"))
    }

    @Test func badFlagsAreOneClearLine() throws {
        let (_, err, status) = try runProgramCapturingBytes(PackagePaths.product("accel-exporter"), ["--tpu.runtime-metrics-address", "localhost"])
        #expect(status != 0)
        #expect(err.contains("--tpu.runtime-metrics-address") && err.contains("host:port"), "\(err)")
        let (_, err2, status2) = try runProgramCapturingBytes(PackagePaths.product("accel-exporter"), ["--tpu.runtime-metrics-interval", "soon"])
        #expect(status2 != 0 && err2.contains("--tpu.runtime-metrics-interval"), "\(err2)")
    }
}

/// A TCP listener on loopback that answers every connection with an HTTP/1.1 error and closes it: a peer that is
/// not gRPC at all.
final class JunkServer: @unchecked Sendable {
    let port: Int
    private let listener: LoopbackListener
    private let thread: Thread

    init() throws {
        let listener = try LoopbackListener(backlog: 16)
        self.listener = listener
        port = listener.port
        let fd = listener.fd
        thread = Thread {
            while true {
                let client = accept(fd, nil, nil)
                if client < 0 { return }
                let reply = Array("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8)
                _ = reply.withUnsafeBytes { write(client, $0.baseAddress, $0.count) }
                close(client)
            }
        }
        thread.start()
    }

    func stop() { listener.close() }
}
