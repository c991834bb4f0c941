import DeviceSimulation
@testable import Accelerators
import AccelMetricsTesting
import Logging
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("Intel (i915, xe) source on materialized sysfs and procfs trees")
struct IntelGPUSourceTests {
    /// A materialized node: sysfs under `sys`, procfs under `proc`.
    final class Node {
        let dir = TemporaryDirectory()
        var sysfs: FileRoot { FileRoot(dir.path + "/sys") }
        var procfs: FileRoot { FileRoot(dir.path + "/proc") }

        init(_ tree: FixtureTree, proc: ProcFixture? = nil) throws {
            try tree.materialize(at: dir.path + "/sys")
            try (proc ?? ProcFixture(processes: [])).write(at: dir.path + "/proc")
        }

        func source(discovery: Double = 10) -> IntelGPUSource {
            IntelGPUSource(sysfs: sysfs, procfs: procfs, nodeName: "node-i", discoveryInterval: discovery, logger: Logger(label: "test"))
        }
    }

    static let t0 = MonotonicInstant(nanoseconds: 5_000_000_000)
    static let t1 = MonotonicInstant(nanoseconds: 6_000_000_000)

    static func device(_ result: SourceResult, _ pci: String) throws -> DeviceSample {
        try #require(result.devices.first { $0.identity.pciAddress == pci })
    }

    @Test func discoversI915CardsByDriverWithIdentityAndPerGTClocks() throws {
        let node = try Node(FixtureNodes.arcA770())
        let result = node.source().sample(now: Self.t0)
        #expect(result.error == nil)
        #expect(result.devices.map(\.identity.accelerator) == ["0000:00:02.0", "0000:03:00.0"])
        let arc = try Self.device(result, "0000:03:00.0")
        #expect(arc.up)
        #expect(arc.identity.vendor == "intel")
        #expect(arc.identity.model == "Arc A770")
        #expect(arc.identity.info.contains { $0 == ("driver", "i915") })
        #expect(arc.identity.info.contains { $0 == ("card", "card1") })
        #expect(arc.identity.aliases.cardNames == ["card1", "renderD129"])
        #expect(arc.identity.info.contains { $0 == ("node", "node-i") })
        #expect(arc.gtClockHertz == [.init(clock: "graphics", gt: "gt0"): 2.1e9, .init(clock: "graphics_requested", gt: "gt0"): 2.4e9])
        #expect(arc.clockHertz.isEmpty)
        let igpu = try Self.device(result, "0000:00:02.0")
        #expect(igpu.identity.model == "Intel GPU 0xa780")
        // A GT in RC6 runs no clock: 0 Hz is a reading, not a missing value.
        #expect(igpu.gtClockHertz[.init(clock: "graphics", gt: "gt0")] == 0)
    }

    @Test func discoversXeCardsWithTilesGTsAndVRAMSize() throws {
        let node = try Node(FixtureNodes.max1550())
        let result = node.source().sample(now: Self.t0)
        #expect(result.devices.count == 2)
        let card = try Self.device(result, "0000:29:00.0")
        #expect(card.identity.model == "Data Center GPU Max 1550")
        #expect(card.identity.info.contains { $0 == ("driver", "xe") })
        #expect(card.gtClockHertz == [
            .init(clock: "graphics", gt: "gt0"): 1.6e9, .init(clock: "graphics", gt: "gt1"): 1.55e9,
            .init(clock: "graphics_requested", gt: "gt0"): 1.6e9, .init(clock: "graphics_requested", gt: "gt1"): 1.6e9,
        ])
        #expect(card.memoryTotalBytes == ["vram": 2 * 68_719_476_736])
    }

    @Test func legacyI915FrequencyFiles() throws {
        var card = IntelCardFixture(card: 0, pciAddress: "0000:00:02.0", parentPath: "pci0000:00", driver: .i915, deviceID: 0x3E92)
        card.gts = [.init(number: 0, actualMHz: 350, requestedMHz: 350)]
        card.legacyFrequencyFiles = true
        let node = try Node(FixtureTree(devices: card.devices()))
        let sample = try Self.device(node.source().sample(now: Self.t0), "0000:00:02.0")
        #expect(sample.gtClockHertz == [.init(clock: "graphics", gt: "gt0"): 3.5e8, .init(clock: "graphics_requested", gt: "gt0"): 3.5e8])
    }

    @Test func i915EngineUtilizationAndVRAMFromFdinfoDeltas() throws {
        let node = try Node(FixtureNodes.arcA770(), proc: FixtureNodes.arcA770Procfs(step: 0))
        let source = node.source()
        // The first sample has no interval: no engine values, but memory needs none.
        let first = source.sample(now: Self.t0)
        let arc0 = try Self.device(first, "0000:03:00.0")
        #expect(arc0.utilizationRatio == nil)
        #expect(arc0.engineUtilizationRatio.isEmpty)
        #expect(arc0.memoryUsedBytes == ["vram": Double((2048 + 512 + 1024) << 20)])

        try FixtureNodes.arcA770Procfs(step: 1).write(at: node.dir.path + "/proc")
        let second = source.sample(now: Self.t1)
        let arc = try Self.device(second, "0000:03:00.0")
        #expect(arc.engineUtilizationRatio == ["gfx": 0.75, "copy": 0.1, "compute": 0.5, "video": 0.5, "video_enhance": 0])
        #expect(arc.utilizationRatio == 0.75)
        #expect(arc.memoryUsedBytes == ["vram": Double((3072 + 512 + 256) << 20)])
        let igpu = try Self.device(second, "0000:00:02.0")
        #expect(igpu.engineUtilizationRatio == ["gfx": 0.2])
        #expect(igpu.utilizationRatio == 0.2)
        // Only system memory on the iGPU: no VRAM figure at all.
        #expect(igpu.memoryUsedBytes.isEmpty)
    }

    @Test func xeEngineUtilizationFromCycles() throws {
        let node = try Node(FixtureNodes.max1550(), proc: FixtureNodes.max1550Procfs(step: 0))
        let source = node.source()
        _ = source.sample(now: Self.t0)
        try FixtureNodes.max1550Procfs(step: 1).write(at: node.dir.path + "/proc")
        let result = source.sample(now: Self.t1)
        let card0 = try Self.device(result, "0000:29:00.0")
        #expect(card0.engineUtilizationRatio == ["compute": 0.75, "copy": 0.2])
        #expect(card0.utilizationRatio == 0.75)
        #expect(card0.memoryUsedBytes == ["vram": Double(8 << 30)])
        let card1 = try Self.device(result, "0000:9a:00.0")
        #expect(card1.engineUtilizationRatio == ["compute": 0.1])
        #expect(card1.utilizationRatio == 0.1)
        #expect(card1.memoryUsedBytes == ["vram": Double(1 << 30)])
    }

    @Test func aCardWithoutClientsIsIdleNotUnknown() throws {
        let node = try Node(FixtureNodes.max1550(), proc: ProcFixture(processes: []))
        let source = node.source()
        _ = source.sample(now: Self.t0)
        let card = try Self.device(source.sample(now: Self.t1), "0000:29:00.0")
        #expect(card.utilizationRatio == 0)
        #expect(card.engineUtilizationRatio.isEmpty)
        #expect(card.memoryUsedBytes == ["vram": 0])
    }

    @Test func aProcfsWithoutTheHostsProcessesLeavesUtilizationAndMemoryAbsent() throws {
        var proc = FixtureNodes.arcA770Procfs(step: 0)
        proc.hostNamespace = false
        let node = try Node(FixtureNodes.arcA770(), proc: proc)
        let source = node.source()
        _ = source.sample(now: Self.t0)
        var next = FixtureNodes.arcA770Procfs(step: 1)
        next.hostNamespace = false
        try next.write(at: node.dir.path + "/proc")
        let arc = try Self.device(source.sample(now: Self.t1), "0000:03:00.0")
        #expect(arc.up)
        #expect(arc.utilizationRatio == nil)
        #expect(arc.engineUtilizationRatio.isEmpty)
        #expect(arc.memoryUsedBytes.isEmpty)
        #expect(!arc.gtClockHertz.isEmpty)
    }

    @Test func deniedFdinfoMakesTheSumIncompleteSoItIsNotReported() throws {
        // Root reads any fdinfo here, so the denial is staged on the scan the source would have made.
        var scan = DRMScan(at: Self.t1)
        scan.deniedPIDs = [4242]
        #expect(DRMFdinfoScanner.isDenial(ReadError(path: "/proc/1/fdinfo", errno: EACCES)))
        #expect(DRMFdinfoScanner.isDenial(ReadError(path: "/proc/1/fdinfo/3", errno: EPERM)))
        #expect(!DRMFdinfoScanner.isDenial(ReadError(path: "/proc/1/fdinfo", errno: ENOENT)))
        let node = try Node(FixtureNodes.arcA770(), proc: FixtureNodes.arcA770Procfs(step: 0))
        let source = node.source()
        _ = source.sample(now: Self.t0)
        #expect(source.usage(from: scan, now: Self.t1) == nil)
    }

    @Test func garbageFilesAreAbsentValuesAndGarbageFdinfoIsSkipped() throws {
        var card = IntelCardFixture(card: 1, pciAddress: "0000:03:00.0", parentPath: "pci0000:00/0000:00:01.0", driver: .i915, deviceID: 0x56A0)
        card.gts = [.init(number: 0, actualMHz: 2100, requestedMHz: 2400), .init(number: 1, actualMHz: 900, requestedMHz: 900)]
        card.overrides = [
            "drm:gt/gt0/rps_act_freq_mhz": .text("abc\n"), "drm:gt/gt0/rps_cur_freq_mhz": .text("-5\n"),
            "drm:gt/gt1/rps_act_freq_mhz": .text("99999999999\n"), "device": .text("0xzz\n"),
        ]
        let garbage = ProcFixture(processes: [
            .init(pid: 3001, comm: "junk", fdinfo: [
                3: "drm-driver:\ti915\ndrm-pdev:\tnot-an-address\ndrm-engine-render:\tlots ns\n",
                4: "drm-driver:\ti915\ndrm-client-id:\t5\ndrm-pdev:\t0000:03:00.0\ndrm-engine-render:\t-3 ns\ndrm-total-local0:\t12 PiB\n\u{0}\u{1}garbage\n",
                5: String(repeating: "x", count: 20000),
            ]),
        ])
        let node = try Node(FixtureTree(devices: card.devices()), proc: garbage)
        let source = node.source()
        _ = source.sample(now: Self.t0)
        let sample = try Self.device(source.sample(now: Self.t1), "0000:03:00.0")
        #expect(sample.up)
        #expect(sample.identity.model == "Intel GPU")
        #expect(sample.gtClockHertz == [.init(clock: "graphics_requested", gt: "gt1"): 9e8])
        #expect(sample.utilizationRatio == 0)
        #expect(sample.memoryUsedBytes.isEmpty)
    }

    @Test func aCardVanishingMidSampleGoesDownThenLeaves() throws {
        let node = try Node(FixtureNodes.arcA770(), proc: FixtureNodes.arcA770Procfs(step: 0))
        let source = node.source(discovery: 3600)
        #expect(source.sample(now: Self.t0).devices.count == 2)
        // The A770 falls off the bus: its PCI directory goes, the class link dangles.
        node.dir.remove("sys/devices/pci0000:00/0000:00:01.0/0000:03:00.0")
        let during = source.sample(now: Self.t1)
        #expect(during.error == nil)
        #expect(try Self.device(during, "0000:03:00.0").up == false)
        #expect(try Self.device(during, "0000:00:02.0").up)
        // Rediscovery runs at once after a device went down: the card is gone, the other stays.
        let after = source.sample(now: MonotonicInstant(nanoseconds: 7_000_000_000))
        #expect(after.devices.map(\.identity.accelerator) == ["0000:00:02.0"])
    }

    @Test func exitedProcessesAndVanishingFdinfoDoNotBreakTheScan() throws {
        let node = try Node(FixtureNodes.arcA770(), proc: FixtureNodes.arcA770Procfs(step: 0))
        let source = node.source()
        _ = source.sample(now: Self.t0)
        // Every client exits; one process stays with no fds left, and one leaves only a dangling fd link.
        try ProcFixture(processes: [.init(pid: 3001, comm: "game"), .init(pid: 3002, comm: "ffmpeg")]).write(at: node.dir.path + "/proc")
        mkdir(node.dir.path + "/proc/3002/fd", 0o755)
        _ = symlink("/dev/dri/renderD129", node.dir.path + "/proc/3002/fd/4")
        let arc = try Self.device(source.sample(now: Self.t1), "0000:03:00.0")
        #expect(arc.utilizationRatio == 0)
        #expect(arc.engineUtilizationRatio.isEmpty)
    }

    @Test func noDRMClassIsAnEmptyNodeNotAFailure() throws {
        let node = try Node(FixtureTree(devices: []))
        let result = node.source().sample(now: Self.t0)
        #expect(result.error == nil)
        #expect(result.devices.isEmpty)
    }

    /// Issue 17: a Battlemage card on a kernel without `tileT/physical_vram_size_bytes` — named, with its VRAM size
    /// from the root cgroup's `dmem.capacity` (its own lines only).
    @Test func battlemageOnANewerKernelIsNamedAndSizedFromDmem() throws {
        let node = try Node(FixtureNodes.bmgB580())
        let result = node.source().sample(now: Self.t0)
        let b580 = try Self.device(result, "0000:03:00.0")
        #expect(b580.identity.model == "Arc B580")
        #expect(b580.memoryTotalBytes == ["vram": 12_717_129_728])
        let igpu = try Self.device(result, "0000:00:02.0")
        #expect(igpu.identity.model == "Arrow Lake")
        #expect(igpu.memoryTotalBytes.isEmpty)
    }

    /// Both layouts on one card: the tiles' files win (physical size); without them, dmem; a garbled dmem line
    /// for the card leaves the size absent rather than a partial sum.
    @Test func xeVRAMSizeFromEitherPlace() throws {
        var card = IntelCardFixture(card: 0, pciAddress: "0000:03:00.0", parentPath: "pci0000:00/0000:00:01.0", driver: .xe, deviceID: 0xE20C)
        card.gts = [.init(number: 0, tile: 0, actualMHz: 2000, requestedMHz: 2000)]
        card.vramBytesPerTile = 10_000_000_000
        let both = try Node(FixtureTree(devices: card.devices(), files: ["fs/cgroup/dmem.capacity": "drm/0000:03:00.0/vram0 9000000000\n"]))
        #expect(try Self.device(both.source().sample(now: Self.t0), "0000:03:00.0").memoryTotalBytes == ["vram": 10_000_000_000])
        card.vramInDmemCgroup = true
        let dmem = try Node(FixtureTree(devices: card.devices(), files: ["fs/cgroup/dmem.capacity": card.dmemCapacityLines]))
        let sample = try Self.device(dmem.source().sample(now: Self.t0), "0000:03:00.0")
        #expect(sample.identity.model == "Arc B570")
        #expect(sample.memoryTotalBytes == ["vram": 10_000_000_000])
        let neither = try Node(FixtureTree(devices: card.devices()))
        #expect(try Self.device(neither.source().sample(now: Self.t0), "0000:03:00.0").memoryTotalBytes.isEmpty)
    }

    @Test func dmemCapacityParsing() {
        let text = "drm/0000:03:00.0/vram0 8589934592\ndrm/0000:03:00.0/vram1 8589934592\ndrm/0000:03:00.0/mapped 123\n"
            + "drm/0000:13:00.0/vram0 5\n"
        #expect(IntelGPUSource.dmemVRAMBytes(text, pci: "0000:03:00.0") == .some(17_179_869_184))
        #expect(IntelGPUSource.dmemVRAMBytes(text, pci: "0000:13:00.0") == .some(5))
        #expect(IntelGPUSource.dmemVRAMBytes(text, pci: "0000:23:00.0") == .none)
        #expect(IntelGPUSource.dmemVRAMBytes("drm/0000:03:00.0/vram0 lots\n", pci: "0000:03:00.0") == .some(nil))
        #expect(IntelGPUSource.dmemVRAMBytes("drm/0000:03:00.0/vram0 0\n", pci: "0000:03:00.0") == .some(nil))
        #expect(IntelGPUSource.dmemVRAMBytes("drm/0000:03:00.0/vram0\n", pci: "0000:03:00.0") == .some(nil))
        // A region of another name that merely starts alike is not VRAM.
        #expect(IntelGPUSource.dmemVRAMBytes("drm/0000:03:00.0/vramX 9\n", pci: "0000:03:00.0") == .none)
        #expect(IntelGPUSource.dmemVRAMBytes("", pci: "0000:03:00.0") == .none)
    }

    /// Issue 17: xe's discrete GPUs (Battlemage) and the integrated parts xe drives are named.
    @Test(arguments: [
        (0xE20B, "Arc B580"), (0xE20C, "Arc B570"), (0xE211, "Arc Pro B60"), (0xE212, "Arc Pro B50"),
        (0xE202, "Battlemage G21"), (0xE220, "Battlemage G31"), (0xE223, "Arc Pro B70"),
        (0x64A0, "Arc 130V/140V"), (0x6420, "Lunar Lake"), (0xB080, "Arc B390"), (0xB0A0, "Panther Lake"),
        (0xFD80, "Wildcat Lake"), (0x7D55, "Meteor Lake"), (0x7D51, "Arc Pro 130T/140T"), (0x56A0, "Arc A770"),
        (0x0BD5, "Data Center GPU Max 1550"), (0x0BDA, "Data Center GPU Max 1100"),
    ] as [(UInt32, String)])
    func intelModelNames(id: UInt32, name: String) {
        #expect(IntelModels.name(deviceID: id) == name)
    }

    @Test(arguments: [("render", "gfx"), ("rcs", "gfx"), ("compute", "compute"), ("ccs", "compute"), ("copy", "copy"), ("bcs", "copy"),
                      ("video", "video"), ("vcs", "video"), ("video-enhance", "video_enhance"), ("vecs", "video_enhance"), ("gsc-X", "gsc_x")])
    func engineClassVocabulary(raw: String, expected: String) {
        #expect(IntelGPUSource.engineName(raw, driver: .i915) == expected)
    }
}
