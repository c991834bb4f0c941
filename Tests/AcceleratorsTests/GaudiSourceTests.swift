import DeviceSimulation
@testable import Accelerators
import AccelMetricsTesting
import Logging
import Testing

/// A Gaudi node laid out as the habanalabs driver does: the PCI device with its attributes, and an `accel` class
/// entry per device.
func gaudiNode(count: Int, statuses: [Int: String] = [:], garbage: Set<Int> = [], deviceTypes: [Int: String] = [:],
               pciDevice: String? = nil) -> FixtureTree {
    var devices: [FixtureDevice] = []
    for index in 0..<count {
        let pci = "0000:\(String(index + 0x19, radix: 16)):00.0"
        let pciPath = "/devices/pci0000:00/0000:00:0\(index % 8).0/\(pci)"
        let bad = garbage.contains(index)
        devices.append(FixtureDevice(
            path: pciPath,
            properties: [("DRIVER", "habanalabs"), ("PCI_SLOT_NAME", pci), ("SUBSYSTEM", "pci")],
            attributes: [
                "device_type": .text((deviceTypes[index] ?? "GAUDI2") + "\n"), "status": .text((statuses[index] ?? "operational") + "\n"),
                "clk_cur_freq_mhz": .text(bad ? "lots\n" : "1600\n"), "clk_max_freq_mhz": .text("1800\n"),
                "max_power": .text(bad ? "-5\n" : "600000\n"), "hard_reset_cnt": .text("\(index)\n"),
                "soft_reset_cnt": .text("2\n"), "module_id": .text("\(index)\n"), "pci_addr": .text(pci + "\n"),
            ].merging(pciDevice.map { ["device": .text($0 + "\n")] } ?? [:]) { $1 }))
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
    }

    /// Issue 17: a variant is not a new model. Every `device_type` the upstream and out-of-tree drivers print names
    /// its generation's product.
    @Test("device_type strings name their product", arguments: [
        ("GAUDI", "Gaudi"), ("GAUDI SEC", "Gaudi"), ("GAUDI HL2000M", "Gaudi"), ("GAUDI HL2000M SEC", "Gaudi"),
        ("GAUDI2", "Gaudi2"), ("GAUDI2B", "Gaudi2"), ("GAUDI2C", "Gaudi2"), ("GAUDI2D", "Gaudi2"), ("GAUDI2E", "Gaudi2"),
        ("GAUDI2 HL-288", "Gaudi2"), ("GAUDI2D HL-288", "Gaudi2"), ("GAUDI2B Simulator", "Gaudi2"),
        ("GAUDI3", "Gaudi3"), ("GAUDI3D", "Gaudi3"), ("GAUDI3E", "Gaudi3"), ("GAUDI3 HL-338", "Gaudi3"),
        ("GAUDI3E HL-338", "Gaudi3"), ("GAUDI3 FPGA", "Gaudi3"), ("GOYA", "Goya"), ("gaudi2c", "Gaudi2"),
    ])
    func deviceTypesNameTheirProduct(deviceType: String, model: String) {
        #expect(GaudiSource.modelName(deviceType) == model)
    }

    @Test func variantsAreTheirProductOnANode() throws {
        let dir = TemporaryDirectory()
        try gaudiNode(count: 4, deviceTypes: [0: "GAUDI2B", 1: "GAUDI2C", 2: "GAUDI2D", 3: ""], pciDevice: "0x1020").materialize(at: dir.path)
        let models = source(dir).sample(now: .now()).devices.map(\.identity.model)
        // Device 3's device_type is empty: its PCI id names it.
        #expect(models == ["Gaudi2", "Gaudi2", "Gaudi2", "Gaudi2"])
        let gaudi3 = TemporaryDirectory()
        try gaudiNode(count: 1, deviceTypes: [0: "NEWCHIP"], pciDevice: "0x1060").materialize(at: gaudi3.path)
        #expect(source(gaudi3).sample(now: .now()).devices.map(\.identity.model) == ["Gaudi3"])
    }

    @Test func unknownDeviceTypesFallBack() {
        #expect(GaudiSource.modelName("HL-325") == nil)
        #expect(GaudiSource.modelName("GAUDI2XY") == nil)
        #expect(GaudiSource.modelName("") == nil)
        #expect(GaudiSource.modelName(deviceID: 0x1020) == "Gaudi2")
        #expect(GaudiSource.modelName(deviceID: 0x1060) == "Gaudi3")
        #expect(GaudiSource.modelName(deviceID: 0x1063) == "Gaudi3")
        #expect(GaudiSource.modelName(deviceID: 0xFFFF) == nil)
    }
}
