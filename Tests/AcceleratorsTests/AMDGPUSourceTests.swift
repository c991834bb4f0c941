import AcceleratorTestSupport
@testable import Accelerators
import Logging
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("amdgpu source on materialized sysfs trees")
struct AMDGPUSourceTests {
    let logger = Logger(label: "test")

    func source(_ dir: TemporaryDirectory, discovery: Double = 10) -> AMDGPUSource {
        AMDGPUSource(sysfs: FileRoot(dir.path), nodeName: "node-a", discoveryInterval: discovery, logger: logger)
    }

    @Test func findsEverySparseCardAndSkipsConnectorsAndRenderNodes() throws {
        let dir = TemporaryDirectory()
        try FixtureNodes.mi300x8().materialize(at: dir.path)
        let result = source(dir).sample(now: .now())
        #expect(result.error == nil)
        #expect(result.devices.count == 8)
        #expect(result.devices.allSatisfy { $0.up && $0.identity.vendor == "amd" && $0.identity.model == "MI300X" })
        let first = try #require(result.devices.first { $0.identity.pciAddress == "0000:05:00.0" })
        #expect(first.identity.accelerator == "4a2b000000001000")
        #expect(first.identity.info.contains { $0 == ("node", "node-a") })
        #expect(first.identity.info.contains { $0 == ("serial", "6922510010") })
        // The DRM node names a device plugin may use, kept for attribution (not rendered).
        #expect(first.identity.aliases.cardNames.count == 2)
        #expect(first.identity.aliases.cardNames.first?.hasPrefix("card") == true)
        #expect(first.identity.aliases.cardNames.last?.hasPrefix("renderD") == true)
    }

    @Test func readsAttributesInBaseUnits() throws {
        let dir = TemporaryDirectory()
        var card = AMDCardFixture(card: 4, pciAddress: "0000:03:00.0", rootPort: "0000:00:01.1")
        card.busyPercent = 42
        card.memBusyPercent = 7
        card.vramTotal = 1000
        card.vramUsed = 250
        card.sclkLevels = [500, 1800, 2100]
        card.sclkCurrent = 1
        card.linkSpeed = "16.0 GT/s PCIe"
        card.linkWidth = 8
        try FixtureTree(devices: card.devices()).materialize(at: dir.path)
        let d = try #require(source(dir).sample(now: .now()).devices.first)
        #expect(d.identity.accelerator == "0000:03:00.0")  // no unique_id, no serial: PCI address
        #expect(d.utilizationRatio == 0.42)
        #expect(d.engineUtilizationRatio["memory_controller"] == 0.07)
        #expect(d.memoryTotalBytes["vram"] == 1000)
        #expect(d.memoryUsedBytes["vram"] == 250)
        #expect(d.clockHertz["graphics"] == 1.8e9)
        #expect(d.clockHertz["memory"] == 900e6)
        #expect(d.pcieLinkSpeedTransfersPerSecond == 16e9)
        #expect(d.pcieLinkWidth == 8)
        #expect(d.temperatureCelsius.isEmpty)  // no gpu_metrics, no hwmon
    }

    @Test func garbageGivesAbsentValuesNeverWrongNumbers() throws {
        let dir = TemporaryDirectory()
        try FixtureNodes.garbage().materialize(at: dir.path)
        let devices = source(dir).sample(now: .now()).devices
        #expect(devices.count == 2)
        let bad = try #require(devices.first { $0.identity.pciAddress == "0000:03:00.0" })
        #expect(bad.up)
        #expect(bad.utilizationRatio == nil)
        #expect(bad.engineUtilizationRatio.isEmpty)
        #expect(bad.memoryUsedBytes.isEmpty)
        #expect(bad.memoryTotalBytes.isEmpty)
        #expect(bad.clockHertz.isEmpty)
        #expect(bad.pcieLinkSpeedTransfersPerSecond == nil)
        #expect(bad.pcieLinkWidth == nil)
        #expect(bad.temperatureCelsius.isEmpty)
        let good = try #require(devices.first { $0.identity.pciAddress == "0000:23:00.0" })
        #expect(good.utilizationRatio == 0.33)
        #expect(good.temperatureCelsius == ["edge": 51, "junction": 63, "memory": 58])
        #expect(good.powerWatts == 211)
    }

    @Test func unreadableFileIsAnAbsentValueAndTheCardStaysUp() throws {
        let dir = TemporaryDirectory()
        let tree = FixtureNodes.noMetrics()
        try tree.materialize(at: dir.path)
        let card = AMDCardFixture(card: 3, pciAddress: "0000:0b:00.0", rootPort: "0000:00:03.1")
        // A directory where a file should be: read() fails with EISDIR, an I/O error like EIO.
        dir.remove(String(card.devicePath.dropFirst()) + "/gpu_busy_percent")
        try TemporaryDirectory.mkdir(dir.path + card.devicePath + "/gpu_busy_percent")
        let d = try #require(source(dir).sample(now: .now()).devices.first)
        #expect(d.up)
        #expect(d.utilizationRatio == nil)
        #expect(d.memoryUsedBytes["vram"] == 1_073_741_824)
    }

    @Test func vanishedCardGoesDownThenLeavesAndANewCardAppears() throws {
        let dir = TemporaryDirectory()
        try FixtureNodes.mi300x8().materialize(at: dir.path)
        let src = source(dir, discovery: 3600)
        let t0 = MonotonicInstant.now()
        #expect(src.sample(now: t0).devices.count == 8)

        // Card 9 falls off the bus: its device directory disappears.
        let lost = "0000:15:00.0"
        dir.remove("devices/pci0000:00/0000:00:01.2/\(lost)")
        let second = src.sample(now: t0.adding(seconds: 1)).devices
        #expect(second.count == 8)
        let down = try #require(second.first { $0.identity.pciAddress == lost })
        #expect(!down.up)
        #expect(down.utilizationRatio == nil)
        #expect(second.filter(\.up).count == 7)

        // A tick with a down card triggers rediscovery at once: the card leaves, and a newly added one appears.
        var added = AMDCardFixture(card: 65, pciAddress: "0000:a5:00.0", rootPort: "0000:00:09.1")
        added.busyPercent = 5
        try FixtureTree(devices: added.devices()).materialize(at: dir.path)
        let third = src.sample(now: t0.adding(seconds: 2)).devices
        #expect(third.count == 8)
        #expect(!third.contains { $0.identity.pciAddress == lost })
        #expect(third.contains { $0.identity.pciAddress == "0000:a5:00.0" && $0.utilizationRatio == 0.05 })
    }

    @Test func missingDRMClassIsASourceErrorNotACrash() {
        let dir = TemporaryDirectory()
        let result = source(dir).sample(now: .now())
        #expect(result.error != nil)
        #expect(result.devices.isEmpty)
    }

    @Test(arguments: [
        ("0: 500Mhz\n1: 1000Mhz *\n2: 2100Mhz\n", 1e9 as Double?),
        ("S: 19Mhz *\n0: 500Mhz\n", 19e6),
        ("0: 96MHz *\n", 96e6),
        ("0: 500Mhz\n1: 1000Mhz\n", nil),
        ("garbage", nil),
        ("0: -5Mhz *", nil),
        ("", nil),
    ])
    func dpmCurrentLevel(text: String, expected: Double?) {
        #expect(AMDGPUSource.currentDPMFrequency(text) == expected)
    }

    @Test(arguments: [
        ("16.0 GT/s PCIe", 16e9 as Double?), ("8 GT/s", 8e9), ("2.5 GT/s PCIe", 2.5e9), ("Unknown", nil), ("", nil), ("-1 GT/s", nil),
    ])
    func linkSpeed(text: String, expected: Double?) {
        #expect(AMDGPUSource.parseLinkSpeed(text) == expected)
    }

    @Test(arguments: [("card0", true), ("card57", true), ("card0-DP-1", false), ("renderD128", false), ("card", false), ("cardX", false)])
    func cardEntries(name: String, isCard: Bool) {
        #expect(AMDGPUSource.isCardEntry(name) == isCard)
    }
}

extension TemporaryDirectory {
    static func mkdir(_ path: String) throws {
        guard Glibc.mkdir(path, 0o755) == 0 else { throw TestbedWriter.WriteError(path: path, errno: errno) }
    }
}
