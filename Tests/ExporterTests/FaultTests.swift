import DeviceSimulation
import AccelMetricsTesting
import Foundation
import Testing

/// Files changed, corrupted and removed while the real exporter runs under umockdev.
@Suite("faults while running", .serialized, .enabled(if: ExporterProcess.umockdevAvailable), .tags(.endToEnd), .endToEndEnabled)
struct FaultTests {
    static let card1 = "sys/devices/pci0000:00/0000:00:01.1/0000:05:00.0"
    static let card9 = "sys/devices/pci0000:00/0000:00:01.2/0000:15:00.0"
    static let id1 = "accelerator=\"4a2b000000001000\",vendor=\"amd\",model=\"MI300X\""
    static let id9 = "accelerator=\"4a2b000000001001\",vendor=\"amd\",model=\"MI300X\""

    func start() throws -> ExporterProcess {
        try ExporterProcess(tree: FixtureNodes.mi300x8(), arguments: ["--collect.interval", "200ms", "--discovery.interval", "1s"])
    }

    @Test func changedValuesShowUpWithinATick() throws {
        let exporter = try start()
        defer { exporter.stop() }
        try TestbedWriter.writeAtomically(exporter.testbedPath(Self.card1 + "/gpu_busy_percent"), Array("77\n".utf8))
        try TestbedWriter.writeAtomically(exporter.testbedPath(Self.card1 + "/hwmon/hwmon2/power1_input"), Array("612000000\n".utf8))
        // Two sources (amdgpu sysfs, hwmon through libsensors) read these concurrently within a tick: one tick may see
        // the first write and not the second, so wait for both rather than take the first tick that has one.
        let text = try exporter.waitForMetrics {
            value($0, "accelerator_utilization_ratio{\(Self.id1)}") == 0.77 && value($0, "accelerator_power_watts{\(Self.id1)}") == 612
        }
        #expect(value(text, "accelerator_utilization_ratio{\(Self.id1)}") == 0.77)
        #expect(value(text, "accelerator_power_watts{\(Self.id1)}") == 612)
    }

    @Test func corruptedFilesDropOnlyThatValue() throws {
        let exporter = try start()
        defer { exporter.stop() }
        try TestbedWriter.writeAtomically(exporter.testbedPath(Self.card1 + "/gpu_busy_percent"), Array("\u{1}garbage\n".utf8))
        try TestbedWriter.writeAtomically(exporter.testbedPath(Self.card1 + "/mem_info_vram_used"), Array("".utf8))
        try TestbedWriter.writeAtomically(exporter.testbedPath(Self.card1 + "/gpu_metrics"), [0x78, 0x00, 0x01])
        let text = try exporter.waitForMetrics { value($0, "accelerator_utilization_ratio{\(Self.id1)}") == nil }
        #expect(value(text, "accelerator_memory_used_bytes{\(Self.id1),memory=\"vram\"}") == nil)
        #expect(value(text, "accelerator_up{\(Self.id1)}") == 1)
        #expect(value(text, "accelerator_memory_total_bytes{\(Self.id1),memory=\"vram\"}") == 206_141_652_992)
        #expect(value(text, "accelerator_utilization_ratio{\(Self.id9)}") != nil)
        #expect(value(text, "accel_exporter_collector_success{collector=\"amdgpu\"}") == 1)
        #expect(exporter.log.contains("gpu_busy_percent"))
    }

    @Test func aCardThatStopsAnsweringGoesDownAndComesBack() throws {
        let exporter = try start()
        defer { exporter.stop() }
        // Every attribute read now fails (EISDIR stands in for EIO from a card that fell off the bus).
        let files = ["gpu_busy_percent", "mem_busy_percent", "mem_info_vram_total", "mem_info_vram_used", "mem_info_vis_vram_total",
                     "mem_info_vis_vram_used", "mem_info_gtt_total", "mem_info_gtt_used", "pp_dpm_sclk", "pp_dpm_mclk", "current_link_width"]
        let saved = try files.map { try Data(contentsOf: URL(fileURLWithPath: exporter.testbedPath(Self.card9 + "/" + $0))) }
        for f in files {
            let path = exporter.testbedPath(Self.card9 + "/" + f)
            try FileManager.default.removeItem(atPath: path)
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        }
        let down = try exporter.waitForMetrics { value($0, "accelerator_up{\(Self.id9)}") == 0 }
        #expect(value(down, "accelerator_utilization_ratio{\(Self.id9)}") == nil)
        #expect(value(down, "accelerator_temperature_celsius{\(Self.id9)") == nil)  // hwmon overlay not applied to a down card
        #expect(value(down, "accelerator_up{\(Self.id1)}") == 1)
        #expect(try exporter.get("/readyz").status == 200)

        for (f, data) in zip(files, saved) {
            let path = exporter.testbedPath(Self.card9 + "/" + f)
            try FileManager.default.removeItem(atPath: path)
            try data.write(to: URL(fileURLWithPath: path))
        }
        let back = try exporter.waitForMetrics { value($0, "accelerator_up{\(Self.id9)}") == 1 }
        #expect(value(back, "accelerator_utilization_ratio{\(Self.id9)}") != nil)
    }

    @Test func aRemovedCardLeavesAndAnAddedCardAppears() throws {
        let exporter = try start()
        defer { exporter.stop() }
        try FileManager.default.removeItem(atPath: exporter.testbedPath(Self.card9))
        let gone = try exporter.waitForMetrics { !$0.contains(Self.id9) }
        #expect(gone.contains(Self.id1))

        var added = AMDCardFixture(card: 65, pciAddress: "0000:a5:00.0", rootPort: "0000:00:09.1")
        added.uniqueID = "00000000000000ad"
        added.busyPercent = 12
        added.hwmon = HwmonFixture(index: 40, name: "amdgpu", attributes: ["temp1_input": "44000", "temp1_label": "edge"])
        try FixtureTree(devices: added.devices()).materialize(at: exporter.testbed + "/sys")
        let id = "accelerator=\"00000000000000ad\",vendor=\"amd\""
        let appeared = try exporter.waitForMetrics {
            value($0, "accelerator_utilization_ratio{\(id)") == 0.12 && value($0, "accelerator_temperature_celsius{\(id)") == 44
        }
        #expect(value(appeared, "accelerator_up{\(id)") == 1)
    }
}
