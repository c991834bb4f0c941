import DeviceSimulation
@testable import Accelerators
import AccelMetricsTesting
import Logging
import Testing

/// Scripted answers for the INFO ioctls, keyed by control node path; records every node it was asked about.
final class FakeGaudiDriverInfo: GaudiDriverInfo {
    var readings: [String: GaudiDriverReading] = [:]
    var asked: [String] = []
    var forgotten: [String] = []

    func read(_ node: GaudiControlNode) -> GaudiDriverReading {
        asked.append(node.path)
        return readings[node.path] ?? GaudiDriverReading(problems: ["open \(node.path): No such file or directory"])
    }

    func forget(_ node: GaudiControlNode) { forgotten.append(node.path) }
}

@Suite("Gaudi utilization and DRAM through the INFO ioctl seam")
struct GaudiDriverInfoTests {
    static let gib: UInt64 = 1 << 30

    func source(_ dir: TemporaryDirectory, _ info: FakeGaudiDriverInfo) -> GaudiSource {
        GaudiSource(sysfs: FileRoot(dir.path), devfs: FileRoot("/dev"), driverInfo: info, nodeName: "gaudi-node",
                    discoveryInterval: 3600, logger: Logger(label: "test"))
    }

    @Test func eightGaudi2WithOneInReset() throws {
        let dir = TemporaryDirectory()
        try FixtureNodes.gaudi2x8().materialize(at: dir.path)
        let info = FakeGaudiDriverInfo()
        for index in 0..<8 {
            info.readings["/dev/accel/accel_controlD\(index)"] = GaudiDriverReading(
                utilizationPercent: UInt32(10 * index), dramTotalBytes: 94 * Self.gib, dramFreeBytes: UInt64(94 - 10 * index) * Self.gib)
        }
        let result = source(dir, info).sample(now: .now())
        // The control entries (accel_controlD*) are not devices of their own.
        #expect(result.devices.count == 8)
        #expect(result.devices.filter(\.up).count == 7)
        let first = try #require(result.devices.first { $0.identity.pciAddress == "0000:19:00.0" })
        #expect(first.identity.model == "Gaudi2")
        #expect(first.utilizationRatio == 0)
        #expect(first.memoryTotalBytes == ["hbm": Double(94 * Self.gib)])
        #expect(first.memoryUsedBytes == ["hbm": 0])
        #expect(first.clockHertz == ["soc": 1.4e9])
        #expect(first.powerLimitWatts == 600)
        let busy = try #require(result.devices.first { $0.identity.pciAddress == "0000:b4:00.0" })
        #expect(busy.utilizationRatio == 0.7)
        #expect(busy.memoryUsedBytes == ["hbm": Double(70 * Self.gib)])
        // The device in reset is down with no readings, and its control node is never queried.
        let resetting = try #require(result.devices.first { $0.identity.pciAddress == "0000:34:00.0" })
        #expect(!resetting.up)
        #expect(resetting.memoryUsedBytes.isEmpty && resetting.utilizationRatio == nil)
        #expect(!info.asked.contains("/dev/accel/accel_controlD3"))
        #expect(Set(info.asked) == Set((0..<8).filter { $0 != 3 }.map { "/dev/accel/accel_controlD\($0)" }))
    }

    @Test func failedOrImpossibleReadingsAreAbsent() throws {
        let dir = TemporaryDirectory()
        try FixtureNodes.gaudi2x8().materialize(at: dir.path)
        let info = FakeGaudiDriverInfo()
        // 0: no control node (no /dev mount); 1: utilization refused, DRAM fine; 2: far more free than there is;
        // 4: a percentage past 100; 5: a DRAM size of 0.
        info.readings["/dev/accel/accel_controlD1"] = GaudiDriverReading(
            dramTotalBytes: 94 * Self.gib, dramFreeBytes: 90 * Self.gib, problems: ["HL_INFO_DEVICE_UTILIZATION: Device or resource busy"])
        info.readings["/dev/accel/accel_controlD2"] = GaudiDriverReading(utilizationPercent: 5, dramTotalBytes: 10, dramFreeBytes: 100)
        // 6: idle, with the unrounded free figure a little above the page-rounded size.
        info.readings["/dev/accel/accel_controlD6"] = GaudiDriverReading(dramTotalBytes: 94 * Self.gib, dramFreeBytes: 94 * Self.gib + (16 << 20))
        info.readings["/dev/accel/accel_controlD4"] = GaudiDriverReading(utilizationPercent: 250, dramTotalBytes: 94 * Self.gib, dramFreeBytes: 0)
        info.readings["/dev/accel/accel_controlD5"] = GaudiDriverReading(utilizationPercent: 1, dramTotalBytes: 0, dramFreeBytes: 0)
        let result = source(dir, info).sample(now: .now())
        func device(_ index: Int) throws -> DeviceSample {
            let bus = [0x19, 0x1a, 0x33, 0x34, 0x9a, 0x9b, 0xb3, 0xb4][index]
            return try #require(result.devices.first { $0.identity.pciAddress == "0000:\(String(bus, radix: 16)):00.0" })
        }
        #expect(try device(0).up)
        #expect(try device(0).utilizationRatio == nil)
        #expect(try device(0).memoryTotalBytes.isEmpty)
        #expect(try device(1).utilizationRatio == nil)
        #expect(try device(1).memoryUsedBytes == ["hbm": Double(4 * Self.gib)])
        #expect(try device(2).utilizationRatio == 0.05)
        #expect(try device(2).memoryTotalBytes == ["hbm": 10])
        #expect(try device(2).memoryUsedBytes.isEmpty)
        #expect(try device(4).utilizationRatio == nil)
        #expect(try device(4).memoryUsedBytes == ["hbm": Double(94 * Self.gib)])
        #expect(try device(5).memoryTotalBytes.isEmpty)
        #expect(try device(6).memoryUsedBytes == ["hbm": 0])
    }

    @Test func legacyMiscDriverNodesAndForgetOnLeave() throws {
        let dir = TemporaryDirectory()
        let pci = "0000:19:00.0"
        let path = "/devices/pci0000:00/0000:00:01.0/\(pci)"
        try FixtureTree(devices: [
            FixtureDevice(path: path, properties: [("DRIVER", "habanalabs"), ("SUBSYSTEM", "pci")],
                          attributes: ["device_type": .text("GAUDI\n"), "status": .text("operational\n")]),
            FixtureDevice(path: path + "/habanalabs/hl2", properties: [("SUBSYSTEM", "habanalabs")], links: ["device": "../../../\(pci)"]),
            FixtureDevice(path: path + "/habanalabs/hl_controlD2", properties: [("SUBSYSTEM", "habanalabs")], links: ["device": "../../../\(pci)"]),
        ]).materialize(at: dir.path)
        let info = FakeGaudiDriverInfo()
        info.readings["/dev/hl_controlD2"] = GaudiDriverReading(utilizationPercent: 42)
        let gaudi = GaudiSource(sysfs: FileRoot(dir.path), driverInfo: info, nodeName: nil, discoveryInterval: 0.001, logger: Logger(label: "t"))
        let sample = try #require(gaudi.sample(now: MonotonicInstant(nanoseconds: 1)).devices.first)
        #expect(sample.utilizationRatio == 0.42)
        #expect(sample.identity.model == "Gaudi")
        #expect(info.asked == ["/dev/hl_controlD2"])
        dir.remove("devices")
        _ = gaudi.sample(now: MonotonicInstant(nanoseconds: 1_000_000_000))
        #expect(info.forgotten == ["/dev/hl_controlD2"])
    }

    @Test func infoRequestNumbersMatchTheUAPI() {
        // _IOWR('d', 0x40, 24 bytes) and _IOWR('H', 0x01, 24 bytes): dir 3 << 30 | size 24 << 16 | type << 8 | nr.
        #expect(HabanaControlDeviceInfo.requests.accel == 0xC018_6440)
        #expect(HabanaControlDeviceInfo.requests.legacy == 0xC018_4801)
    }

    @Test func theRealImplementationReportsAMissingNodeAndNeverThrows() {
        let info = HabanaControlDeviceInfo()
        let reading = info.read(GaudiControlNode(path: "/nonexistent/accel_controlD0", legacy: false))
        #expect(reading.utilizationPercent == nil && reading.dramTotalBytes == nil && reading.dramFreeBytes == nil)
        #expect(reading.problems.count == 1)
        #expect(reading.problems.first?.hasPrefix("open /nonexistent/accel_controlD0") == true)
        // A node that answers no INFO ioctl (a plain character device): every query fails, nothing is invented.
        let null = info.read(GaudiControlNode(path: "/dev/null", legacy: false))
        #expect(null.utilizationPercent == nil && null.dramTotalBytes == nil && null.dramFreeBytes == nil)
        #expect(null.problems.count == 3)
        info.forget(GaudiControlNode(path: "/dev/null", legacy: false))
    }
}
