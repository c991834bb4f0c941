import AcceleratorTestSupport
@testable import Accelerators
import Logging
import Testing

/// A Gaudi node laid out as the habanalabs driver does: the PCI device with its attributes, and an `accel` class
/// entry per device.
func gaudiNode(count: Int, statuses: [Int: String] = [:], garbage: Set<Int> = []) -> FixtureTree {
    var devices: [FixtureDevice] = []
    for index in 0..<count {
        let pci = "0000:\(String(index + 0x19, radix: 16)):00.0"
        let pciPath = "/devices/pci0000:00/0000:00:0\(index % 8).0/\(pci)"
        let bad = garbage.contains(index)
        devices.append(FixtureDevice(
            path: pciPath,
            properties: [("DRIVER", "habanalabs"), ("PCI_SLOT_NAME", pci), ("SUBSYSTEM", "pci")],
            attributes: [
                "device_type": .text("GAUDI2\n"), "status": .text((statuses[index] ?? "operational") + "\n"),
                "clk_cur_freq_mhz": .text(bad ? "lots\n" : "1600\n"), "clk_max_freq_mhz": .text("1800\n"),
                "max_power": .text(bad ? "-5\n" : "600000\n"), "hard_reset_cnt": .text("\(index)\n"),
                "soft_reset_cnt": .text("2\n"), "module_id": .text("\(index)\n"), "pci_addr": .text(pci + "\n"),
            ]))
        devices.append(FixtureDevice(
            path: pciPath + "/accel/accel\(index)", properties: [("SUBSYSTEM", "accel")],
            links: ["device": "../../../\(pci)"]))
    }
    return FixtureTree(devices: devices)
}

@Suite("Gaudi (habanalabs) source on materialized sysfs trees")
struct GaudiSourceTests {
    func source(_ dir: TemporaryDirectory) -> GaudiSource {
        GaudiSource(sysfs: FileRoot(dir.path), nodeName: "gaudi-node", logger: Logger(label: "test"))
    }

    @Test func identityStateClocksLimitsAndResets() throws {
        let dir = TemporaryDirectory()
        try gaudiNode(count: 8, statuses: [3: "in reset", 5: "needs reset"]).materialize(at: dir.path)
        let result = source(dir).sample(now: .now())
        #expect(result.devices.count == 8)
        let first = try #require(result.devices.first { $0.identity.pciAddress == "0000:19:00.0" })
        #expect(first.identity.vendor == "habana")
        #expect(first.identity.model == "Gaudi2")
        #expect(first.identity.accelerator == "0000:19:00.0")  // no serial attribute: the PCI address
        #expect(first.identity.info.contains { $0 == ("node", "gaudi-node") })
        #expect(first.up)
        #expect(first.clockHertz == ["soc": 1.6e9])
        #expect(first.powerLimitWatts == 600)
        #expect(first.errors == ["reset_hard": 0, "reset_soft": 2])
        // Not operational: down, with no readings.
        let resetting = result.devices.filter { !$0.up }.map { $0.identity.pciAddress }
        #expect(resetting == ["0000:1c:00.0", "0000:1e:00.0"])
        #expect(result.devices.first { !$0.up }?.clockHertz.isEmpty == true)
    }

    @Test func garbageValuesAreAbsentNotNumbers() throws {
        let dir = TemporaryDirectory()
        try gaudiNode(count: 2, garbage: [1]).materialize(at: dir.path)
        let result = source(dir).sample(now: .now())
        let bad = try #require(result.devices.first { $0.identity.pciAddress == "0000:1a:00.0" })
        #expect(bad.up)
        #expect(bad.clockHertz.isEmpty)
        #expect(bad.powerLimitWatts == nil)
    }

    @Test func otherDriversAndEmptyNodes() throws {
        let dir = TemporaryDirectory()
        try FixtureTree(devices: []).materialize(at: dir.path)
        #expect(source(dir).sample(now: .now()).devices.isEmpty)
        #expect(GaudiSource.modelName("GAUDI3") == "Gaudi3")
        #expect(GaudiSource.modelName("HL-325") == "HL-325")
    }
}
