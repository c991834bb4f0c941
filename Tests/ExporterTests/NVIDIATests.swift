import AccelMetricsTesting
import Foundation
import Testing

/// The real binary loading the fake NVML (Sources/FakeNVML) through the same dlopen path as libnvidia-ml.so.1,
/// with the machine read from a description file (Tests/Fixtures/nvml) that tests edit while the exporter runs.
@Suite("NVIDIA collector through the fake NVML", .serialized, .tags(.endToEnd), .endToEndEnabled)
struct NVIDIATests {
    static let machines = ["h100x8", "a100-mig", "consumer"]

    /// What a machine's /metrics has once every value is in: GPM and link rates pair two ticks, so the golden
    /// waits for them where the machine has them.
    static func settled(_ name: String) -> @Sendable (String) -> Bool {
        switch name {
        case "h100x8": { $0.contains("accelerator_sm_active_ratio{") && $0.contains("accelerator_interconnect_bandwidth_bytes_per_second{") }
        case "a100-mig": { $0.contains("accelerator_interconnect_bandwidth_bytes_per_second{") }
        default: { $0.contains("accelerator_up{") }
        }
    }
    static var fakeLibrary: String { PackagePaths.product("libFakeNVML.so") }
    static var oldDriverLibrary: String { PackagePaths.product("libFakeNVMLOld.so") }

    /// A private copy of a described machine, so a test can edit it.
    final class Machine {
        let url: URL
        init(_ name: String) throws {
            let source = PackagePaths.file("Tests/Fixtures/nvml/\(name).nvml")
            url = FileManager.default.temporaryDirectory.appendingPathComponent("nvml-\(UUID().uuidString).nvml")
            try String(contentsOf: source, encoding: .utf8).write(to: url, atomically: false, encoding: .utf8)
        }
        deinit { try? FileManager.default.removeItem(at: url) }

        var text: String { (try? String(contentsOf: url, encoding: .utf8)) ?? "" }

        /// Replaces the description the way an operator's tool would: a new file renamed over the old one.
        func replace(with text: String) throws {
            let temp = url.appendingPathExtension("new")
            try text.write(to: temp, atomically: false, encoding: .utf8)
            guard rename(temp.path, url.path) == 0 else { throw HarnessError("rename failed") }
        }

        /// Appends `line` to GPU block `index` (0-based): before the next `device` line, or at the end. (Events
        /// queue in file order, so a later `xid` line is a later event.)
        func addToDevice(_ index: Int, _ line: String) throws {
            var lines = text.components(separatedBy: "\n")
            let starts = lines.indices.filter { lines[$0].trimmingCharacters(in: .whitespaces) == "device" }
            guard index < starts.count else { throw HarnessError("no device \(index) in description") }
            var end = index + 1 < starts.count ? starts[index + 1] : lines.count
            while end > starts[index] + 1, lines[end - 1].trimmingCharacters(in: .whitespaces).isEmpty { end -= 1 }
            lines.insert(line, at: end)
            try replace(with: lines.joined(separator: "\n"))
        }
    }

    static func exporter(_ machine: Machine?, library: String = fakeLibrary, arguments: [String] = [],
                         environment: [String: String] = [:]) throws -> ExporterProcess {
        // No machine: a path that does not exist (the runner's own FAKE_NVML_CONFIG, set by the in-process NVML
        // tests, must not leak into the child).
        let env = environment.merging(["FAKE_NVML_CONFIG": machine?.url.path ?? "/nonexistent/machine.nvml"]) { $1 }
        return try ExporterProcess(tree: nil,
                                   arguments: ["--no-collector.amdgpu", "--no-collector.hwmon", "--nvml.library", library,
                                               "--collect.interval", "200ms", "--discovery.interval", "1s"] + arguments,
                                   environment: env)
    }

    /// `uuid` of GPU block `index` in a description.
    static func uuid(_ machine: Machine, _ index: Int) -> String {
        var seen = -1
        var inDevice = false
        for line in machine.text.split(separator: "\n") {
            let t = line.trimmingCharacters(in: .whitespaces)
            if t == "device" { seen += 1; inDevice = true; continue }
            if t == "mig" { inDevice = false; continue }
            if inDevice, seen == index, t.hasPrefix("uuid ") { return String(t.dropFirst(5)) }
        }
        return "missing"
    }

    @Test("golden /metrics, promtool and the OpenMetrics parser for each described machine", arguments: machines)
    func golden(machine name: String) throws {
        let machine = try Machine(name)
        let exporter = try Self.exporter(machine)
        defer { exporter.stop() }
        let text = try exporter.waitForMetrics(Self.settled(name))
        #expect(text.contains("accel_exporter_collector_success{collector=\"nvidia\"} 1"))
        let devices = deviceFamilies(text)
        try expectMatchesGolden(devices, "Tests/Fixtures/golden/nvml-\(name).prom", what: "golden mismatch for \(name)")

        let (out, err, status) = try runProgramCapturingBytes(EndToEndTests.promtool, ["check", "metrics"], stdin: Data(text.utf8))
        #expect(status == 0, "promtool: \(String(decoding: out, as: UTF8.self)) \(err)")
        let om = try exporter.get("/metrics", headers: ["Accept": "application/openmetrics-text;version=1.0.0"])
        let script = PackagePaths.file("scripts/check-openmetrics.py").path
        let (_, omErr, omStatus) = try runProgramCapturingBytes("/usr/bin/env", ["python3", script], stdin: om.body)
        #expect(omStatus == 0, "OpenMetrics parser: \(omErr)")
        // NVML's "not available" sentinels never become numbers.
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let v = Double(line.split(separator: " ").last!) ?? 0
            #expect(v < 9e18, "sentinel exported: \(line)")
        }
    }

    @Test("every described GPU is keyed by its UUID and carries its identity")
    func identity() throws {
        let machine = try Machine("h100x8")
        let exporter = try Self.exporter(machine)
        defer { exporter.stop() }
        let text = try exporter.waitForMetrics { $0.contains("accelerator_up{") }
        for index in 0..<8 {
            let uuid = Self.uuid(machine, index)
            #expect(uuid.hasPrefix("GPU-"))
            #expect(value(text, "accelerator_up{accelerator=\"\(uuid)\",vendor=\"nvidia\",model=\"H100 80GB HBM3\"}") == 1)
        }
        #expect(text.contains("accelerator_driver_info{vendor=\"nvidia\",version=\"550.54.15\",cuda_version=\"12.4\",node=\"test-node\"} 1"))
    }

    @Test("XID critical errors become counters per GPU and XID, and a log line each")
    func xidCounters() throws {
        let machine = try Machine("h100x8")
        let exporter = try Self.exporter(machine)
        defer { exporter.stop() }
        let uuid = Self.uuid(machine, 3)
        let base = "accelerator_xid_errors_total{accelerator=\"\(uuid)\",vendor=\"nvidia\",model=\"H100 80GB HBM3\""
        _ = try exporter.waitForMetrics { $0.contains("accelerator_up{") }
        #expect(value(try exporter.get("/metrics").text, base + ",xid=\"79\"}") == nil)
        try machine.addToDevice(3, "xid 79")
        _ = try exporter.waitForMetrics { value($0, base + ",xid=\"79\"}") == 1 }
        try machine.addToDevice(3, "xid 79")
        try machine.addToDevice(3, "xid 48")
        let text = try exporter.waitForMetrics { value($0, base + ",xid=\"79\"}") == 2 && value($0, base + ",xid=\"48\"}") == 1 }
        // Only that GPU counts them.
        #expect(text.split(separator: "\n").filter { $0.hasPrefix("accelerator_xid_errors_total{") }.count == 2)
        #expect(exporter.log.components(separatedBy: "msg=\"XID critical error\"").count - 1 == 3)
        let xidLines = exporter.log.split(separator: "\n").filter { $0.contains("msg=\"XID critical error\"") }
        #expect(xidLines.allSatisfy { $0.contains("accelerator=\(uuid) ") && $0.contains("level=error") })
        #expect(xidLines.last?.contains("xid=48") == true)
    }

    @Test("a GPU that falls off the bus goes down, its readings vanish, and they return when it answers again")
    func lostGPU() throws {
        let machine = try Machine("falls-off-bus")
        let healthy = machine.text
        let exporter = try Self.exporter(machine)
        defer { exporter.stop() }
        let lost = Self.uuid(machine, 2), other = Self.uuid(machine, 1)
        let labels = { (uuid: String) in "{accelerator=\"\(uuid)\",vendor=\"nvidia\",model=\"H100 80GB HBM3\"}" }
        _ = try exporter.waitForMetrics { value($0, "accelerator_up" + labels(lost)) == 1 }

        try machine.addToDevice(2, "fail * GPU_IS_LOST")
        let down = try exporter.waitForMetrics { value($0, "accelerator_up" + labels(lost)) == 0 }
        #expect(value(down, "accelerator_power_watts" + labels(lost)) == nil)
        #expect(!down.contains("accelerator_memory_used_bytes{accelerator=\"\(lost)\""))
        #expect(value(down, "accelerator_up" + labels(other)) == 1)
        #expect(value(down, "accelerator_power_watts" + labels(other)) != nil)
        #expect(down.contains("accelerator_info{accelerator=\"\(lost)\""), "the lost GPU keeps its info series")
        #expect(down.contains("accel_exporter_collector_success{collector=\"nvidia\"} 1"))

        try machine.replace(with: healthy)
        let back = try exporter.waitForMetrics { value($0, "accelerator_up" + labels(lost)) == 1 }
        #expect(value(back, "accelerator_power_watts" + labels(lost)) != nil)
        #expect(exporter.log.contains("msg=\"accelerator lost\""))
        #expect(exporter.log.contains("msg=\"accelerator answers again\""))
        #expect(exporter.log.components(separatedBy: "msg=\"accelerator lost\"").count - 1 == 1, "logged once, not per tick")
    }

    @Test("no NVML library: the collector says so once and the exporter serves on")
    func missingLibrary() throws {
        // The default name, absent from this machine's loader path: not an NVIDIA node, not a failure.
        let absent = try ExporterProcess(tree: nil, arguments: ["--no-collector.amdgpu", "--no-collector.hwmon",
                                                                "--collect.interval", "100ms", "--discovery.interval", "200ms"],
                                         environment: ["LD_LIBRARY_PATH": "/nonexistent"])
        defer { absent.stop() }
        try absent.waitForTicks(10)
        let text = try absent.get("/metrics").text
        #expect(text.contains("accel_exporter_collector_success{collector=\"nvidia\"} 1"))
        #expect(!text.contains("accelerator_up{"))
        #expect(absent.log.components(separatedBy: "NVIDIA collector unavailable").count - 1 == 1)
        #expect(try absent.get("/readyz").status == 200)

        // An explicit path that cannot be loaded is a fault: `_success 0`, with the reason in the log.
        let broken = try Self.exporter(nil, library: "/nonexistent/libnvidia-ml.so.1")
        defer { broken.stop() }
        let brokenText = try broken.waitForMetrics { $0.contains("collector=\"nvidia\"} 0") }
        #expect(brokenText.contains("accel_exporter_collector_success{collector=\"nvidia\"} 0"))
        #expect(broken.log.contains("cannot load /nonexistent/libnvidia-ml.so.1: cannot open shared object file"))

        // A library but no driver (the fake without a machine answers DRIVER_NOT_LOADED).
        let noDriver = try Self.exporter(nil)
        defer { noDriver.stop() }
        _ = try noDriver.waitForMetrics { $0.contains("collector=\"nvidia\"} 0") }
        #expect(noDriver.log.contains("DRIVER_NOT_LOADED"))
    }

    @Test("Hopper: GPM saturation, pipes and NVLink rates per GPU beside utilization; A100: NVLink counters and rates, no GPM")
    func gpmAndNVLink() throws {
        let h100 = try Machine("h100x8")
        let exporter = try Self.exporter(h100)
        defer { exporter.stop() }
        let text = try exporter.waitForMetrics(Self.settled("h100x8"))
        let gpu = "{accelerator=\"\(Self.uuid(h100, 0))\",vendor=\"nvidia\",model=\"H100 80GB HBM3\""
        #expect(value(text, "accelerator_sm_active_ratio\(gpu)}") == 0.88)
        #expect(value(text, "accelerator_sm_occupancy_ratio\(gpu)}") == 0.44)
        #expect(value(text, "accelerator_memory_bandwidth_utilization_ratio\(gpu)}") == 0.49)
        #expect(value(text, "accelerator_pipe_active_ratio\(gpu),pipe=\"tensor\"}") == 0.58)
        #expect(value(text, "accelerator_pipe_active_ratio\(gpu),pipe=\"tensor_hmma\"}") == 0.53)
        #expect(value(text, "accelerator_engine_utilization_ratio\(gpu),engine=\"gfx\"}") == 0.98)
        #expect(value(text, "accelerator_utilization_ratio\(gpu)}") == 0.98)
        #expect(value(text, "accelerator_interconnect_bandwidth_bytes_per_second\(gpu),link=\"0\",direction=\"tx\"}") == 7840.0 * 1_048_576)
        #expect(value(text, "accelerator_interconnect_bytes_total\(gpu),link=\"17\",direction=\"rx\"}") == 7340686321.0 * 1024)
        #expect(value(text, "accelerator_errors_total\(gpu),type=\"nvlink_down\"}") == 0)
        let rates = text.split(separator: "\n").filter { $0.hasPrefix("accelerator_interconnect_bandwidth_bytes_per_second{") }
        #expect(rates.count == 8 * 18 * 2)
        #expect(exporter.log.components(separatedBy: "msg=\"GPM supported").count - 1 == 8)

        let a100 = try Machine("a100-mig")
        let old = try Self.exporter(a100)
        defer { old.stop() }
        let a100Text = try old.waitForMetrics(Self.settled("a100-mig"))
        #expect(!a100Text.contains("accelerator_sm_active_ratio{"), "no GPM before Hopper")
        let a100GPU = "{accelerator=\"\(Self.uuid(a100, 1))\",vendor=\"nvidia\",model=\"A100-SXM4-40GB\""
        #expect(value(a100Text, "accelerator_interconnect_bytes_total\(a100GPU),link=\"0\",direction=\"tx\"}") == 104857600789.0 * 1024)
        #expect(value(a100Text, "accelerator_interconnect_bandwidth_bytes_per_second\(a100GPU),link=\"0\",direction=\"tx\"}") == 0)
        #expect(!a100Text.contains("\(a100GPU),link=\"11\""), "an inactive link is not read")
        #expect(value(a100Text, "accelerator_errors_total\(a100GPU),type=\"nvlink_replay\"}") == 14)
        // Within the 8-label budget: the identity labels, link and direction.
        for line in (text + a100Text).split(separator: "\n") where line.hasPrefix("accelerator_interconnect") || line.hasPrefix("accelerator_pipe") {
            #expect(line.split(separator: "=").count - 1 <= 8, "\(line)")
        }
    }

    @Test("a GPM sample that fails (a profiler attached) drops only that GPU's GPM values, logged once, until it clears")
    func gpmSampleFails() throws {
        let machine = try Machine("h100x8")
        let healthy = machine.text
        let exporter = try Self.exporter(machine)
        defer { exporter.stop() }
        let sm = { (index: Int) in "accelerator_sm_active_ratio{accelerator=\"\(Self.uuid(machine, index))\"," }
        _ = try exporter.waitForMetrics { $0.contains(sm(1)) }
        try machine.addToDevice(1, "fail nvmlGpmSampleGet IN_USE")
        let failing = try exporter.waitForMetrics { !$0.contains(sm(1)) }
        #expect(failing.contains(sm(0)) && failing.contains(sm(2)))
        #expect(failing.contains("accelerator_power_watts{accelerator=\"\(Self.uuid(machine, 1))\""))
        #expect(failing.contains("accel_exporter_collector_success{collector=\"nvidia\"} 1"))
        // Several ticks later it is still logged once.
        _ = try exporter.waitForMetrics { _ in exporter.log.contains("GPM sample failed") }
        try exporter.waitForTicks(5)
        #expect(exporter.log.components(separatedBy: "GPM sample failed on \(Self.uuid(machine, 1))").count - 1 == 1)
        try machine.replace(with: healthy)
        _ = try exporter.waitForMetrics { $0.contains(sm(1)) }
        #expect(exporter.log.contains("problem=\(Self.uuid(machine, 1))/gpm"))
        #expect(exporter.log.contains("msg=recovered"))
    }

    @Test("an old driver's library: versioned names probed, missing entry points tolerated")
    func oldDriver() throws {
        let machine = try Machine("a100-mig")
        let exporter = try Self.exporter(machine, library: Self.oldDriverLibrary)
        defer { exporter.stop() }
        let text = try exporter.waitForMetrics { $0.contains("accelerator_up{") }
        #expect(text.contains("accel_exporter_collector_success{collector=\"nvidia\"} 1"))
        let gpu = Self.uuid(machine, 1)
        let labels = "{accelerator=\"\(gpu)\",vendor=\"nvidia\",model=\"A100-SXM4-40GB\""
        #expect(value(text, "accelerator_memory_total_bytes\(labels),memory=\"vram\"}") == 42949672960)
        // ECC through nvmlDeviceGetTotalEccErrors (no nvmlDeviceGetFieldValues); no energy entry point.
        #expect(value(text, "accelerator_errors_total\(labels),type=\"ecc_corrected\"}") != nil)
        #expect(!text.contains("accelerator_energy_joules_total\(labels)"))
        // No GPM entry points: no saturation families, and nothing fails for it.
        #expect(!text.contains("accelerator_sm_active_ratio{"))
        #expect(exporter.log.contains("nvmlGpmSampleGet"))
        // Throttle reasons through the older ...ThrottleReasons name.
        #expect(value(text, "accelerator_throttle_active\(labels),reason=\"gpu_idle\"}") != nil)
        // No MIG entry points: no MIG devices, and the log names what is missing.
        #expect(!text.contains("accelerator=\"MIG-"))
        #expect(exporter.log.contains("missing="))
        #expect(exporter.log.contains("nvmlDeviceGetMigMode"))
    }

    @Test("MIG devices are accelerators of their own with parent and instance ids on accelerator_info")
    func mig() throws {
        let machine = try Machine("a100-mig")
        let exporter = try Self.exporter(machine)
        defer { exporter.stop() }
        let text = try exporter.waitForMetrics { $0.contains("accelerator=\"MIG-") }
        let parent = Self.uuid(machine, 0)
        let infos = text.split(separator: "\n").filter { $0.hasPrefix("accelerator_info{accelerator=\"MIG-") }
        #expect(infos.count == 4)
        for info in infos {
            #expect(info.contains("parent=\"\(parent)\""))
            #expect(info.contains("gpu_instance_id=\""))
            #expect(info.contains("compute_instance_id=\""))
            #expect(info.contains("mig_profile=\""))
            // Label budget: at most 8 labels.
            #expect(info.split(separator: "=").count - 1 <= 8, "\(info)")
        }
        #expect(text.contains("mig_profile=\"3g.20gb\""))
        #expect(text.contains("mig_profile=\"1g.5gb\""))
        // The MIG-enabled parent has no single utilization figure; the other GPU does.
        #expect(!text.contains("accelerator_utilization_ratio{accelerator=\"\(parent)\""))
        #expect(text.contains("accelerator_utilization_ratio{accelerator=\"\(Self.uuid(machine, 1))\""))
    }

    @Test("the binary never links NVML")
    func notLinked() throws {
        let (out, _, status) = try runProgramCapturingBytes("/usr/bin/objdump", ["-p", PackagePaths.product("accel-exporter")])
        #expect(status == 0)
        let needed = String(decoding: out, as: UTF8.self).split(separator: "\n").filter { $0.contains("NEEDED") }
        #expect(!needed.isEmpty)
        #expect(!needed.contains { $0.contains("nvidia") }, "\(needed)")
    }
}
