import DeviceSimulation
@testable import Accelerators
import AccelMetricsTesting
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
        #expect(DRMCard.parseLinkSpeed(text) == expected)
    }

    @Test(arguments: [("card0", true), ("card57", true), ("card0-DP-1", false), ("renderD128", false), ("card", false), ("cardX", false)])
    func cardEntries(name: String, isCard: Bool) {
        #expect(DRMCard.isCardEntry(name) == isCard)
    }

    /// Issue 17: MI325X and MI355X are named by their PCI ids, on the gpu_metrics revisions their kernels write
    /// (v1_8, and the attribute-encoded v1_9), with XGMI per link, PCIe bandwidth and every activity.
    @Test(arguments: [("mi325x-8", "MI325X", 8), ("mi355x-8", "MI355X", 9)] as [(String, String, UInt8)])
    func newerInstinctNodes(node: String, model: String, content: UInt8) throws {
        let dir = TemporaryDirectory()
        try FixtureNodes.tree(named: node)!.materialize(at: dir.path)
        let devices = source(dir).sample(now: MonotonicInstant(nanoseconds: 1_000_000_000)).devices
        #expect(devices.count == 8)
        #expect(devices.allSatisfy { $0.identity.model == model })
        let card = try #require(devices.first { $0.identity.pciAddress == "0000:15:00.0" })
        #expect(card.interconnectBytes.count == 16)
        #expect(card.interconnectBytes[.init(link: "xgmi7", direction: "rx")] == Double((1 << 30) * 8))
        #expect(card.pcieBandwidthBytesPerSecond["total"] != nil || card.pcieBandwidthBytesPerSecond["rx"] != nil)
        #expect(card.engineUtilizationRatio["video"] == 0.01)
        #expect(card.engineUtilizationRatio["jpeg"] == 0.02)
        #expect(card.engineUtilizationRatio["gfx"] != nil && card.engineUtilizationRatio["memory_controller"] != nil)
        #expect(card.energyJoules != nil)
    }

    /// XGMI rates come from two samples of the firmware's byte counters: none on the first, the counter's growth
    /// over the interval after, none for a link whose counter went backwards.
    @Test func xgmiRatesFromTwoSamples() throws {
        let dir = TemporaryDirectory()
        try FixtureNodes.instinct8(.mi355x, time: 0).materialize(at: dir.path)
        let amd = source(dir)
        let first = amd.sample(now: MonotonicInstant(nanoseconds: 10_000_000_000)).devices
        #expect(first.allSatisfy { $0.interconnectBytesPerSecond.isEmpty })
        // Two seconds on: every read counter grew by 2e9 bytes, every write counter by 1e9 (fixture: 1e9 and 5e8 B/s).
        try FixtureNodes.instinct8(.mi355x, time: 2).materialize(at: dir.path)
        let second = amd.sample(now: MonotonicInstant(nanoseconds: 12_000_000_000)).devices
        let card = try #require(second.first)
        #expect(card.interconnectBytesPerSecond.count == 16)
        for link in 0..<8 {
            let rx = try #require(card.interconnectBytesPerSecond[.init(link: "xgmi\(link)", direction: "rx")])
            let tx = try #require(card.interconnectBytesPerSecond[.init(link: "xgmi\(link)", direction: "tx")])
            // The firmware counts KB: within a KB per second of the truth.
            #expect(abs(rx - 1e9) <= 1024 && abs(tx - 5e8) <= 1024, "xgmi\(link): \(rx) \(tx)")
        }
        // Back to time 0 (a driver reload restarts the counters): no rate for that interval.
        try FixtureNodes.instinct8(.mi355x, time: 0).materialize(at: dir.path)
        let third = amd.sample(now: MonotonicInstant(nanoseconds: 13_000_000_000)).devices
        #expect(third.allSatisfy { $0.interconnectBytesPerSecond.isEmpty })
    }

    /// A firmware PCIe figure the link cannot carry (the unit of `pcie_bandwidth_inst` is unverified) is absent.
    @Test func pcieBandwidthBeyondTheLinkIsAbsent() throws {
        let dir = TemporaryDirectory()
        var card = AMDCardFixture(card: 1, pciAddress: "0000:05:00.0", rootPort: "0000:00:01.1")
        card.linkSpeed = "16.0 GT/s PCIe"
        card.linkWidth = 16
        var m = GPUMetrics(formatRevision: 1, contentRevision: 8)
        m.pcieBandwidthBytesPerSecond = 12_000e9  // 12000 "GB/s": Mb/s read as GB/s
        card.gpuMetrics = m
        try FixtureTree(devices: card.devices()).materialize(at: dir.path)
        let sample = try #require(source(dir).sample(now: .now()).devices.first)
        #expect(sample.pcieBandwidthBytesPerSecond.isEmpty)
        // 16 GT/s × 16 lanes × 2 directions / 8 = 64 GB/s.
        #expect(AMDGPUSource.pcieCapacityBytesPerSecond(speed: 16e9, width: 16) == 64e9)
        m.pcieBandwidthBytesPerSecond = 60e9
        card.gpuMetrics = m
        try FixtureTree(devices: card.devices()).materialize(at: dir.path)
        #expect(source(dir).sample(now: .now()).devices.first?.pcieBandwidthBytesPerSecond == ["total": 60e9])
    }

    @Test func vcnAndJPEGActivityAreVideoAndJPEGEngines() {
        var m = GPUMetrics(formatRevision: 1, contentRevision: 8)
        m.mediaActivityRatio = 0.25
        m.jpegActivityRatio = 1.5  // the firmware overshoots: clamped
        var sample = DeviceSample(identity: DeviceIdentity(accelerator: "a", vendor: "amd", model: "MI300X", pciAddress: nil, info: []))
        AMDGPUSource.fill(&sample, from: m)
        #expect(sample.engineUtilizationRatio == ["video": 0.25, "jpeg": 1])
    }
}

extension TemporaryDirectory {
    static func mkdir(_ path: String) throws {
        guard Glibc.mkdir(path, 0o755) == 0 else { throw TestbedWriter.WriteError(path: path, errno: errno) }
    }
}
