import Accelerators
@testable import Attribution
import Testing

@Suite struct FdinfoParsingTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var path: String
        var driver: String
        var pdev: String?
        var clientID: UInt64?
        var deviceMemory: UInt64?
        var engines: [String: UInt64]
        var testDescription: String { path }
    }

    static let cases: [Case] = [
        Case(path: "1001/fdinfo/5", driver: "amdgpu", pdev: "0000:03:00.0", clientID: 42, deviceMemory: 1 << 30,
             engines: ["gfx": 1_500_000_000, "compute": 2_500_000_000, "dma": 5_000_000, "dec": 0, "enc": 0, "jpeg": 0]),
        // Older amdgpu: only the deprecated drm-memory-<region> (an alias of drm-resident-).
        Case(path: "1005/fdinfo/6", driver: "amdgpu", pdev: "0000:03:00.0", clientID: 43, deviceMemory: 512 << 20,
             engines: ["gfx": 0, "compute": 700_000_000]),
        Case(path: "1002/fdinfo/8", driver: "i915", pdev: "0000:4d:00.0", clientID: 7, deviceMemory: 2048 << 20,
             engines: ["render": 25_662_044_495, "copy": 0, "video": 0, "video-enhance": 0, "compute": 0]),
        Case(path: "1003/fdinfo/11", driver: "xe", pdev: "0000:8c:00.0", clientID: 3, deviceMemory: 23992 << 10, engines: [:]),
        Case(path: "1004/fdinfo/3", driver: "habanalabs", pdev: "0000:19:00.0", clientID: 11, deviceMemory: 32 << 30, engines: [:]),
    ]

    @Test(arguments: cases)
    func fixture(_ c: Case) throws {
        let text = try fixtureProcfs().readString(c.path)
        let stats = try #require(DRMFdinfoParser.parse(text))
        #expect(stats.driver == c.driver)
        #expect(stats.pdev == c.pdev)
        #expect(stats.clientID == c.clientID)
        let memory = stats.deviceMemoryBytes
        #expect(memory == c.deviceMemory)
        #expect(stats.engineNanoseconds == c.engines)
    }

    @Test func iEngineCapacityAndXeCycles() throws {
        let i915 = try #require(DRMFdinfoParser.parse(try fixtureProcfs().readString("1002/fdinfo/8")))
        #expect(i915.engineCapacity == ["video": 2, "compute": 4])
        let xe = try #require(DRMFdinfoParser.parse(try fixtureProcfs().readString("1003/fdinfo/11")))
        #expect(xe.cycles["rcs"] == 28_257_900)
        #expect(xe.totalCycles["rcs"] == 7_655_183_225)
        #expect(xe.engineCapacity == ["vcs": 2, "vecs": 2, "ccs": 4])
        let vram = xe.memory["vram0"]
        #expect(vram?.shared == 16 << 20)
        #expect(vram?.total == 23992 << 10)
        // `drm-total-cycles-` is not a memory region called "cycles-rcs".
        #expect(xe.memory["cycles-rcs"] == nil)
    }

    @Test(arguments: ["1001/fdinfo/0", "1001/fdinfo/3", "812/fdinfo/0"])
    func notDRM(path: String) throws {
        let text = try fixtureProcfs().readString(path)
        let stats = DRMFdinfoParser.parse(text)
        #expect(stats == nil)
    }

    @Test func garbageLinesAndBadValuesAreSkippedOneByOne() throws {
        let text = """
        pos:\t0
        this line has no colon
        :\tempty key
        drm-driver:\tamdgpu
        drm-pdev:\tnot-a-pci-address
        drm-client-id:\tminus-one
        drm-engine-gfx:\t12x ns
        drm-engine-compute:\t100 ns
        drm-engine-dma:\t100 us
        drm-engine-capacity-compute:\t0
        drm-resident-vram:\t4 TiB
        drm-total-vram:\t3 KiB
        drm-resident-gtt:\t18446744073709551615 MiB
        drm-resident-cpu:
        drm-
        \u{0}\u{1}binary
        """
        let stats = try #require(DRMFdinfoParser.parse(text))
        #expect(stats.driver == "amdgpu")
        #expect(stats.pdev == nil)
        #expect(stats.clientID == nil)
        #expect(stats.engineNanoseconds == ["compute": 100])
        #expect(stats.engineCapacity.isEmpty)
        let vram = stats.memory["vram"]
        #expect(vram?.resident == nil)
        #expect(vram?.total == 3072)
        #expect(stats.memory["gtt"] == nil)
        // Resident unknown, total known: device memory falls back to total.
        #expect(stats.deviceMemoryBytes == 3072)
    }

    @Test(arguments: [
        ("drm-driver:\ti915\n", true),
        ("drm-driver:\t\n", false),
        ("drm-pdev:\t0000:03:00.0\ndrm-engine-gfx:\t1 ns\n", false),
        ("", false),
    ])
    func driverIsMandatory(text: String, isDRM: Bool) {
        let stats = DRMFdinfoParser.parse(text)
        #expect((stats != nil) == isDRM)
    }
}

@Suite struct FdinfoScanTests {
    @Test func scanDedupesClientsAcrossFdsAndProcesses() {
        let scan = DRMFdinfoScanner(procfs: fixtureProcfs()).scan(at: MonotonicInstant(nanoseconds: 1))
        let keys = scan.clients.keys.sorted()
        let summary = keys.map { "\($0.driver)/\($0.pdev)/\($0.clientID ?? 0)" }
        #expect(summary == ["amdgpu/0000:03:00.0/42", "amdgpu/0000:03:00.0/43", "habanalabs/0000:19:00.0/11",
                            "i915/0000:4d:00.0/7", "xe/0000:8c:00.0/3"])
        // Client 42 is open in 1001 (fds 5 and 9) and in 1005 (fd 4): one client, two PIDs.
        let client42 = keys.first { $0.clientID == 42 }!
        #expect(scan.pids[client42] == [1001, 1005])
    }

    @Test func scanCanBeLimitedToPIDs() {
        let scan = DRMFdinfoScanner(procfs: fixtureProcfs()).scan(pids: [1002, 812, 31337], at: MonotonicInstant(nanoseconds: 1))
        let drivers = scan.clients.keys.map(\.driver)
        #expect(drivers == ["i915"])
    }

    @Test func fdLinksDecideBeforeFdinfoIsRead() {
        let proc = TemporaryProcfs()
        let amd = "drm-driver:\tamdgpu\ndrm-pdev:\t0000:03:00.0\ndrm-client-id:\t1\n"
        let accel = "drm-driver:\thabanalabs\ndrm-pdev:\t0000:19:00.0\ndrm-client-id:\t2\n"
        let noLink = "drm-driver:\ti915\ndrm-pdev:\t0000:00:02.0\ndrm-client-id:\t3\n"
        // fd 4 claims to be DRM but the link says it is a regular file: the link wins (and saves the read).
        proc.write("50/fdinfo/3", amd); proc.link("50/fd/3", to: "/dev/dri/renderD128")
        proc.write("50/fdinfo/4", amd.replacingClientID(9)); proc.link("50/fd/4", to: "/var/log/app.log")
        proc.write("50/fdinfo/5", accel); proc.link("50/fd/5", to: "/dev/accel/accel0")
        proc.write("50/fdinfo/6", noLink)
        proc.write("not-a-pid/fdinfo/3", amd)
        let scan = DRMFdinfoScanner(procfs: proc.root).scan(at: MonotonicInstant(nanoseconds: 0))
        let ids = scan.clients.keys.compactMap(\.clientID).sorted()
        #expect(ids == [1, 2, 3])
    }

    @Test func clientsWithoutIDAreKeptPerFd() throws {
        var scan = DRMScan(at: MonotonicInstant(nanoseconds: 0))
        let stats = try #require(DRMFdinfoParser.parse("drm-driver:\tv3d\ndrm-engine-render:\t10 ns\n"))
        scan.add(stats, pid: 10, fd: 3)
        scan.add(stats, pid: 10, fd: 4)
        scan.add(stats, pid: 11, fd: 3)
        #expect(scan.clients.count == 3)
    }
}

@Suite struct DRMUtilizationTests {
    static func client(_ text: String) -> DRMClientStats {
        DRMFdinfoParser.parse("drm-driver:\tamdgpu\ndrm-pdev:\t0000:03:00.0\n" + text)!
    }

    static func scan(_ ns: UInt64, _ clients: [(String, Int32)]) -> DRMScan {
        var s = DRMScan(at: MonotonicInstant(nanoseconds: ns))
        for (text, pid) in clients { s.add(client(text), pid: pid, fd: 5) }
        return s
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var before: String
        var after: String
        var engine: String
        var expected: Double?
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "engine ns over wall ns", before: "drm-client-id:\t1\ndrm-engine-gfx:\t1000000000 ns\n",
             after: "drm-client-id:\t1\ndrm-engine-gfx:\t1250000000 ns\n", engine: "gfx", expected: 0.25),
        Case(name: "capacity divides", before: "drm-client-id:\t1\ndrm-engine-compute:\t0 ns\ndrm-engine-capacity-compute:\t4\n",
             after: "drm-client-id:\t1\ndrm-engine-compute:\t2000000000 ns\ndrm-engine-capacity-compute:\t4\n", engine: "compute", expected: 0.5),
        Case(name: "xe cycles ratio", before: "drm-client-id:\t1\ndrm-cycles-rcs:\t1000\ndrm-total-cycles-rcs:\t10000\n",
             after: "drm-client-id:\t1\ndrm-cycles-rcs:\t4000\ndrm-total-cycles-rcs:\t20000\n", engine: "rcs", expected: 0.3),
        Case(name: "xe cycles with capacity", before: "drm-client-id:\t1\ndrm-cycles-ccs:\t0\ndrm-total-cycles-ccs:\t0\ndrm-engine-capacity-ccs:\t4\n",
             after: "drm-client-id:\t1\ndrm-cycles-ccs:\t20000\ndrm-total-cycles-ccs:\t10000\ndrm-engine-capacity-ccs:\t4\n", engine: "ccs", expected: 0.5),
        Case(name: "clamped to 1", before: "drm-client-id:\t1\ndrm-engine-gfx:\t0 ns\n",
             after: "drm-client-id:\t1\ndrm-engine-gfx:\t9000000000 ns\n", engine: "gfx", expected: 1),
        Case(name: "counter went backwards: the larger value stays, 0", before: "drm-client-id:\t1\ndrm-engine-gfx:\t5000000000 ns\n",
             after: "drm-client-id:\t1\ndrm-engine-gfx:\t1000 ns\n", engine: "gfx", expected: 0),
        Case(name: "cycles went backwards: 0", before: "drm-client-id:\t1\ndrm-cycles-rcs:\t500\ndrm-total-cycles-rcs:\t1000\n",
             after: "drm-client-id:\t1\ndrm-cycles-rcs:\t100\ndrm-total-cycles-rcs:\t2000\n", engine: "rcs", expected: 0),
        Case(name: "total cycles did not move: no ratio", before: "drm-client-id:\t1\ndrm-cycles-rcs:\t1\ndrm-total-cycles-rcs:\t5\n",
             after: "drm-client-id:\t1\ndrm-cycles-rcs:\t2\ndrm-total-cycles-rcs:\t5\n", engine: "rcs", expected: nil),
        Case(name: "engine appears only in the second scan", before: "drm-client-id:\t1\n",
             after: "drm-client-id:\t1\ndrm-engine-gfx:\t5 ns\n", engine: "gfx", expected: nil),
    ]

    @Test(arguments: cases)
    func delta(_ c: Case) {
        var tracker = DRMUsageTracker()
        _ = tracker.update(Self.scan(1_000_000_000, [(c.before, 100)]))
        let usage = tracker.update(Self.scan(2_000_000_000, [(c.after, 100)]))
        #expect(usage.count == 1)
        let ratio = usage.first?.engineUtilization[c.engine]
        let matches = switch (ratio, c.expected) {
        case (nil, nil): true
        case (let r?, let e?): abs(r - e) < 1e-9
        default: false
        }
        #expect(matches, "ratio \(String(describing: ratio)), expected \(String(describing: c.expected))")
    }

    @Test func aRestartedClientStartsWithoutARatioAndNeverGoesNegative() {
        var tracker = DRMUsageTracker()
        let first = tracker.update(Self.scan(0, [("drm-client-id:\t1\ndrm-engine-gfx:\t900000000 ns\n", 100)]))
        let firstRatio = first.first?.utilization
        #expect(firstRatio == nil)   // no interval yet
        // The process restarted: a new client id, counters from zero. The old client is gone.
        let second = tracker.update(Self.scan(1_000_000_000, [("drm-client-id:\t2\ndrm-engine-gfx:\t1000 ns\n", 100)]))
        let ids = second.map(\.key.clientID)
        #expect(ids == [2])
        let secondRatio = second.first?.utilization
        #expect(secondRatio == nil)
        let third = tracker.update(Self.scan(2_000_000_000, [("drm-client-id:\t2\ndrm-engine-gfx:\t100001000 ns\n", 100)]))
        let thirdRatio = third.first?.utilization ?? -1
        #expect(abs(thirdRatio - 0.1) < 1e-9)
    }

    @Test func aCounterThatCatchesUpIsNotCountedTwice() {
        var tracker = DRMUsageTracker()
        _ = tracker.update(Self.scan(0, [("drm-client-id:\t1\ndrm-engine-gfx:\t1000000000 ns\n", 100)]))
        // Reads 0.6 s lower for one scan (allowed by the spec), then catches up to 1.2 s two seconds in.
        let dip = tracker.update(Self.scan(1_000_000_000, [("drm-client-id:\t1\ndrm-engine-gfx:\t400000000 ns\n", 100)]))
        let dipRatio = dip.first?.engineUtilization["gfx"]
        #expect(dipRatio == 0)
        let caughtUp = tracker.update(Self.scan(2_000_000_000, [("drm-client-id:\t1\ndrm-engine-gfx:\t1200000000 ns\n", 100)]))
        let ratio = caughtUp.first?.engineUtilization["gfx"] ?? -1
        // From the high-water mark (1.0 s), not from the dip (0.4 s): 0.2, not 0.8.
        #expect(abs(ratio - 0.2) < 1e-9)
    }

    @Test func mainUtilizationPrefersComputeEngines() {
        var u = DRMClientUsage(key: DRMClientKey(driver: "amdgpu", pdev: "", clientID: 1), pids: [],
                               engineUtilization: ["gfx": 0.2, "compute": 0.6, "dma": 0.9], deviceMemoryBytes: nil)
        let main = u.utilization
        #expect(main == 0.6)
        u.engineUtilization = ["dec": 0.3, "enc": 0.1]
        let fallback = u.utilization
        #expect(fallback == 0.3)
        u.engineUtilization = [:]
        let none = u.utilization
        #expect(none == nil)
    }
}

extension String {
    func replacingClientID(_ id: Int) -> String {
        split(separator: "\n").map { $0.hasPrefix("drm-client-id:") ? "drm-client-id:\t\(id)" : String($0) }.joined(separator: "\n") + "\n"
    }
}

@Suite struct ParserRobustnessTests {
    /// Deterministic garbage (xorshift) built from the characters the formats use: the parsers must not trap and
    /// whatever they return must be well-formed.
    @Test(arguments: [1, 2, 3, 4])
    func garbageNeverTraps(seed: UInt64) {
        var state = seed &* 0x9E37_79B9_7F4A_7C15
        func next() -> UInt64 {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return state
        }
        let alphabet = Array("0123456789abcdefABCDEF:-_./ \t\npodkubepods.slicescopecri-containerd-drm-engine-capacity-total-cycles-resident-KiBMiB ns)(")
        for _ in 0..<2000 {
            let length = Int(next() % 160)
            let text = String((0..<length).map { _ in alphabet[Int(next() % UInt64(alphabet.count))] })
            if let pod = CgroupParser.pod(fromCgroupFile: text) {
                let uid = pod.podUID
                #expect(uid.count == 36)
            }
            if let stats = DRMFdinfoParser.parse(text) {
                let driver = stats.driver
                #expect(!driver.isEmpty)
            }
            _ = ProcessPodResolver.startTime(statLine: Array(text.utf8))
            _ = PCIAddress.normalize(text)
            _ = DeviceIndex.embeddedPCIAddresses(text)
            _ = DeviceIndex.embeddedUUIDs(text)
        }
    }
}
