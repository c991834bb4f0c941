public import Logging

/// Samples every Intel GPU driven by i915 or xe under `class/drm/card*`, whatever its number.
///
/// sysfs gives identity and the per-GT frequencies (reference §3); the hwmon source overlays power, energy, the
/// power limit and temperatures through libsensors (joined by PCI address). Neither driver puts engine busyness or
/// VRAM use in sysfs, so both come from DRM fdinfo (reference §4) summed over every client of the card: engine
/// time (i915 `drm-engine-<class>` ns, xe `drm-cycles-<class>` / `drm-total-cycles-<class>`) as deltas between two
/// samples, and the clients' resident device-local memory. That sum is only true when the exporter sees every
/// process on the node (hostPID or the host's /proc, and ptrace-read access): otherwise those values stay absent,
/// never a partial sum shown as the device's figure.
public final class IntelGPUSource: AcceleratorSource {
    /// The `collector` label and the `--collector.intel` flag.
    public let name = "intel"
    private let sysfs: FileRoot
    private let procfs: FileRoot
    private let logger: Logger
    private let problems: ProblemLog
    private let nodeName: String?
    private let discoveryInterval: Double
    private var cards: [Card] = []
    private var schedule: DiscoverySchedule
    private var tracker = DRMUsageTracker()
    private var lastScanAt: MonotonicInstant?

    enum Driver: String, Sendable {
        case i915, xe
    }

    struct Card {
        /// `cardN` as found under class/drm.
        var entry: String
        var driver: Driver
        var identity: DeviceIdentity
    }

    /// `procfs` is where the DRM fdinfo of every process is read (`--path.procfs`); `nodeName` goes into
    /// `accelerator_info`'s `node` label.
    public init(sysfs: FileRoot, procfs: FileRoot, nodeName: String?, discoveryInterval: Double = 10, logger: Logger) {
        self.sysfs = sysfs
        self.procfs = procfs
        self.nodeName = nodeName
        self.discoveryInterval = discoveryInterval
        self.schedule = DiscoverySchedule(interval: discoveryInterval)
        self.logger = logger
        self.problems = ProblemLog(logger: logger)
    }

    /// Rediscovers when due, then reads each card's GT frequencies from sysfs and the engine and memory use
    /// of all DRM clients from fdinfo; a failed discovery reports every known card down with the collector's error.
    public func sample(now: MonotonicInstant) -> SourceResult {
        defer { problems.endTick() }
        if let error = schedule.runIfDue(now, discover) {
            problems.report("discovery", "intel discovery failed: \(error)")
            return SourceResult(devices: cards.map { DeviceSample(identity: $0.identity, up: false) }, error: "\(error)")
        }
        guard !cards.isEmpty else { return SourceResult() }
        // The fdinfo scan first, so its instant is as close to `now` as every other tick's.
        let usage = clientUsage(now: now)
        var devices: [DeviceSample] = []
        devices.reserveCapacity(cards.count)
        for card in cards {
            let sample = read(card, usage: usage)
            if !sample.up { schedule.requestSoon() }
            devices.append(sample)
        }
        return SourceResult(devices: devices)
    }

    // MARK: Discovery

    private func discover() throws(ReadError) {
        let entries: [String]
        do {
            entries = try sysfs.list("class/drm")
        } catch {
            // No DRM class at all (a node with only accel devices): nothing to find, not a failure.
            guard error.code == .notFound else { throw error }
            entries = []
        }
        var found: [Card] = []
        var seenPCI: Set<String> = []
        let cardEntries = entries.filter(DRMCard.isCardEntry)
            .sorted { (Int($0.dropFirst(4)) ?? .max, $0) < (Int($1.dropFirst(4)) ?? .max, $1) }
        for entry in cardEntries {
            let base = "class/drm/\(entry)/device"
            guard let driver = driver(base: base) else { continue }
            let pci = (try? sysfs.readLink(base)).map(DRMCard.lastComponent) ?? entry
            guard seenPCI.insert(pci).inserted else { continue }
            if let known = cards.first(where: { $0.identity.pciAddress == pci && $0.entry == entry }) {
                found.append(known)
                continue
            }
            var identity = identity(entry: entry, base: base, pci: pci, driver: driver)
            // Intel's device plugin names devices by DRM node (`card1`); the render node rides along.
            identity.aliases.cardNames = [entry] + ((try? sysfs.list("\(base)/drm")) ?? []).filter { $0.hasPrefix("renderD") }.sorted()
            found.append(Card(entry: entry, driver: driver, identity: identity))
        }
        let before = Set(cards.map(\.identity.accelerator))
        let after = Set(found.map(\.identity.accelerator))
        for gone in before.subtracting(after).sorted() { logger.info("accelerator left discovery", metadata: ["accelerator": "\(gone)"]) }
        for new in after.subtracting(before).sorted() { logger.info("accelerator discovered", metadata: ["accelerator": "\(new)", "collector": "intel"]) }
        cards = found
    }

    /// The card's driver from its `device/driver` link (`…/drivers/i915`), else `DRIVER=` in `device/uevent`.
    private func driver(base: String) -> Driver? {
        if let link = try? sysfs.readLink("\(base)/driver"), let d = Driver(rawValue: DRMCard.lastComponent(link)) {
            return d
        }
        guard let uevent = try? sysfs.readString("\(base)/uevent") else { return nil }
        return DRMCard.parseUevent(uevent)["DRIVER"].flatMap(Driver.init(rawValue:))
    }

    private func identity(entry: String, base: String, pci: String, driver: Driver) -> DeviceIdentity {
        let deviceID = (try? sysfs.readString("\(base)/device")).flatMap { text in
            UInt32(text.hasPrefix("0x") ? String(text.dropFirst(2)) : text, radix: 16)
        }
        let model = deviceID.flatMap(IntelModels.name(deviceID:))
            ?? deviceID.map { "Intel GPU 0x" + String($0, radix: 16) } ?? "Intel GPU"
        var info: [(String, String)] = [("driver", driver.rawValue), ("card", entry)]
        if let node = nodeName { info.append(("node", node)) }
        // Neither driver exposes a serial or unique id in sysfs: the PCI address names the card.
        return DeviceIdentity(accelerator: pci, vendor: "intel", model: model, pciAddress: pci, info: info)
    }

    // MARK: Sampling

    private func read(_ card: Card, usage: ClientUsage?) -> DeviceSample {
        let root = "class/drm/\(card.entry)"
        let base = "\(root)/device"
        let tag = "\(card.entry) (\(card.identity.accelerator))"
        var sample = DeviceSample(identity: card.identity)
        do {
            _ = try sysfs.readBytes("\(base)/uevent", limit: 4096)
        } catch {
            problems.report("\(card.entry)/uevent", "accelerator \(tag) stopped answering: \(error)")
            sample.up = false
            return sample
        }

        var answered = 0
        var failedIO = 0
        func megahertz(_ file: String) -> Double? {
            do {
                let raw = Double(try sysfs.readInteger(file))
                answered += 1
                // 0 is real (a GT in RC6 runs no clock); anything past 100 GHz is garbage.
                guard (0...100_000).contains(raw) else {
                    problems.report(file, "\(tag): \(file) out of range: \(raw)")
                    return nil
                }
                return raw * 1e6
            } catch {
                switch error.code {
                case .io: failedIO += 1
                case .parse: answered += 1
                case .notFound: break
                }
                if error.code != .notFound { problems.report(file, "\(tag): \(error)") }
                return nil
            }
        }
        for gt in gtDirectories(card) {
            let files = card.driver == .xe
                ? (actual: "\(gt.path)/freq0/act_freq", requested: "\(gt.path)/freq0/cur_freq")
                : gt.path == root
                    ? (actual: "\(root)/gt_act_freq_mhz", requested: "\(root)/gt_cur_freq_mhz")
                    : (actual: "\(gt.path)/rps_act_freq_mhz", requested: "\(gt.path)/rps_cur_freq_mhz")
            if let hz = megahertz(files.actual) { sample.gtClockHertz[.init(clock: "graphics", gt: gt.name)] = hz }
            if let hz = megahertz(files.requested) { sample.gtClockHertz[.init(clock: "graphics_requested", gt: gt.name)] = hz }
        }
        if failedIO > 0 && answered == 0 {
            problems.report("\(card.entry)/answering", "accelerator \(tag) stopped answering: every read failed")
            sample.clearReadings()
            sample.up = false
            return sample
        }
        if card.driver == .xe, let total = xeVRAMBytes(base: base, pci: card.identity.pciAddress, tag: tag) {
            sample.memoryTotalBytes["vram"] = total
        }
        if let usage, let pci = card.identity.pciAddress {
            let device = usage.devices[pci]
            if usage.hasInterval {
                var gfxOrCompute = 0.0
                for (engine, ratio) in device?.engines ?? [:] {
                    let clamped = min(1, max(0, ratio))
                    sample.engineUtilizationRatio[engine] = clamped
                    if engine == "gfx" || engine == "compute" { gfxOrCompute = max(gfxOrCompute, clamped) }
                }
                // No client on the card (or none on gfx/compute) means those engines ran nothing: 0, not unknown.
                sample.utilizationRatio = gfxOrCompute
            }
            if let bytes = device?.deviceMemoryBytes {
                sample.memoryUsedBytes["vram"] = bytes
            } else if sample.memoryTotalBytes["vram"] != nil {
                sample.memoryUsedBytes["vram"] = 0
            }
        }
        return sample
    }

    /// `(name, path)` of each GT: i915 `cardN/gt/gtM` (else the card itself, for the legacy `gt_*_freq_mhz`
    /// files); xe `cardN/device/tileT/gtM` (GT numbers are unique across tiles).
    private func gtDirectories(_ card: Card) -> [(name: String, path: String)] {
        let root = "class/drm/\(card.entry)"
        func gts(_ directory: String) -> [String] {
            ((try? sysfs.list(directory)) ?? []).filter { $0.hasPrefix("gt") && $0.count > 2 && $0.dropFirst(2).allSatisfy(\.isNumber) }
                .sorted { (Int($0.dropFirst(2)) ?? .max) < (Int($1.dropFirst(2)) ?? .max) }
        }
        switch card.driver {
        case .i915:
            let found = gts("\(root)/gt").map { (name: $0, path: "\(root)/gt/\($0)") }
            return found.isEmpty ? [(name: "gt0", path: root)] : found
        case .xe:
            var out: [(name: String, path: String)] = []
            for tile in Self.tiles(sysfs, "\(root)/device") {
                out += gts("\(root)/device/\(tile)").map { (name: $0, path: "\(root)/device/\(tile)/\($0)") }
            }
            return out
        }
    }

    static func tiles(_ sysfs: FileRoot, _ device: String) -> [String] {
        ((try? sysfs.list(device)) ?? []).filter { $0.hasPrefix("tile") && $0.count > 4 && $0.dropFirst(4).allSatisfy(\.isNumber) }
            .sorted { (Int($0.dropFirst(4)) ?? .max) < (Int($1.dropFirst(4)) ?? .max) }
    }

    /// The xe card's VRAM size, from whichever place this kernel publishes it in:
    /// 1. `device/tileT/physical_vram_size_bytes`, summed over tiles (the kernels that have it; igt and Level Zero's
    ///    sysman read it there): the physical size, reserved pages included. **[UNVERIFIED]** not in our reference;
    ///    torvalds' tree no longer has it in `xe_tile_sysfs.c`.
    /// 2. Newer kernels register each VRAM manager with the dmem cgroup controller (6.14+, `CONFIG_CGROUP_DMEM`):
    ///    the root cgroup's `dmem.capacity` lists `drm/<PCI address>/vram<N> <bytes>` per tile (kernel
    ///    `drmm_cgroup_register_region`, `dmem_cgroup_region_capacity_show`), the VRAM manager's usable size. Read
    ///    as `<sysfs>/fs/cgroup/dmem.capacity`: the cgroup2 root must be mounted there (the host's `/sys` with its
    ///    submounts; a container's own cgroup namespace does not show the file).
    /// Kernels with neither give the size only through `DRM_IOCTL_XE_DEVICE_QUERY` (`DRM_XE_DEVICE_QUERY_MEM_REGIONS`,
    /// `total_size` of the VRAM regions) on the render node, which this source does not issue: absent there.
    /// Any tile missing or garbled: absent, never a partial sum.
    private func xeVRAMBytes(base: String, pci: String?, tag: String) -> Double? {
        let tiles = Self.tiles(sysfs, base)
        if !tiles.isEmpty, tiles.allSatisfy({ sysfs.exists("\(base)/\($0)/physical_vram_size_bytes") }) {
            var total = 0.0
            for tile in tiles {
                guard let bytes = try? sysfs.readInteger("\(base)/\(tile)/physical_vram_size_bytes"), bytes > 0, bytes < 1 << 50 else {
                    problems.report("\(base)/physical_vram_size_bytes", "\(tag): \(tile)/physical_vram_size_bytes unreadable or out of range")
                    return nil
                }
                total += Double(bytes)
            }
            return total
        }
        guard let pci, let text = try? sysfs.readString(Self.dmemCapacityPath) else { return nil }
        switch Self.dmemVRAMBytes(text, pci: pci) {
        case .some(.some(let bytes)): return bytes
        case .some(.none):
            problems.report("\(base)/dmem.capacity", "\(tag): dmem.capacity lists this card's VRAM with a garbled size")
            return nil
        case .none: return nil
        }
    }

    /// The root cgroup's dmem capacities, relative to the sysfs root.
    static let dmemCapacityPath = "fs/cgroup/dmem.capacity"

    /// The sum of the card's `drm/<pci>/vram<N>` regions in a `dmem.capacity` text: nil when the card has none there,
    /// `.some(nil)` when one of its lines is garbled (a partial sum is not the card's size).
    static func dmemVRAMBytes(_ text: String, pci: String) -> Double?? {
        let prefix = "drm/\(pci)/vram"
        var total = 0.0
        var found = false
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard let name = fields.first, name.hasPrefix(prefix), name.dropFirst(prefix.count).allSatisfy(\.isNumber),
                  !name.dropFirst(prefix.count).isEmpty
            else { continue }
            found = true
            guard fields.count == 2, let bytes = UInt64(fields[1]), bytes > 0, bytes < 1 << 50 else { return .some(nil) }
            total += Double(bytes)
        }
        return found ? .some(total) : nil
    }

    // MARK: DRM fdinfo

    /// Per-card sums over the i915/xe clients of one fdinfo scan.
    struct ClientUsage {
        struct Device {
            /// Busy ratio per engine class in DESIGN.md's vocabulary, summed over clients (may exceed 1 before
            /// clamping when clients overlap on a class with several engines).
            var engines: [String: Double] = [:]
            var deviceMemoryBytes: Double?
        }
        var devices: [String: Device] = [:]
        /// False on the first scan: no interval, so no engine ratios yet.
        var hasInterval: Bool
    }

    private func clientUsage(now: MonotonicInstant) -> ClientUsage? {
        // The sum over clients is the device's figure only when every process on the node is visible. In the
        // host's PID namespace PID 2 is kthreadd; a container's own namespace has no kernel threads.
        guard Self.showsHostProcesses(procfs) else {
            problems.report("fdinfo/namespace",
                            "engine utilization and VRAM use come from DRM fdinfo, but \(procfs.path) does not show the host's processes (no kthreadd at PID 2): run with hostPID or the host's /proc (--path.procfs) and CAP_SYS_PTRACE (deploy/attribution/processes); leaving them absent",
                            level: .info)
            lastScanAt = nil
            return nil
        }
        return usage(from: DRMFdinfoScanner(procfs: procfs).scan(at: now), now: now)
    }

    /// One scan's i915/xe clients summed per card (internal for tests, which stage scans the kernel would refuse).
    func usage(from scan: DRMScan, now: MonotonicInstant) -> ClientUsage? {
        var intel = DRMScan(at: now)
        for (key, stats) in scan.clients where Driver(rawValue: key.driver) != nil {
            intel.clients[key] = stats
            intel.pids[key] = scan.pids[key]
        }
        let usages = tracker.update(intel)
        let hasInterval = lastScanAt.map { now > $0 } ?? false
        lastScanAt = now
        if !scan.deniedPIDs.isEmpty {
            let shown = scan.deniedPIDs.prefix(5).map(String.init).joined(separator: ",")
            problems.report("fdinfo/denied",
                            "the kernel refused the fdinfo of \(scan.deniedPIDs.count) processes (PIDs \(shown)…): without ptrace-read access (CAP_SYS_PTRACE) their GPU use is unknown; engine utilization and VRAM use left absent")
            return nil
        }
        var result = ClientUsage(hasInterval: hasInterval)
        for usage in usages {
            guard let driver = Driver(rawValue: usage.key.driver), !usage.key.pdev.isEmpty else { continue }
            var device = result.devices[usage.key.pdev] ?? .init()
            for (engine, ratio) in usage.engineUtilization {
                device.engines[Self.engineName(engine, driver: driver), default: 0] += ratio
            }
            if let bytes = usage.deviceMemoryBytes { device.deviceMemoryBytes = (device.deviceMemoryBytes ?? 0) + bytes }
            result.devices[usage.key.pdev] = device
        }
        return result
    }

    static func showsHostProcesses(_ procfs: FileRoot) -> Bool {
        guard let comm = try? procfs.readString("2/comm") else { return false }
        return comm == "kthreadd"
    }

    /// fdinfo engine classes in DESIGN.md's `engine` vocabulary. i915: render, copy, video, video-enhance, compute;
    /// xe: rcs, bcs, vcs, vecs, ccs. Intel's video engines both decode and encode: `video`, not `video_decode`.
    static func engineName(_ raw: String, driver: Driver) -> String {
        switch raw {
        case "render", "rcs": return "gfx"
        case "compute", "ccs": return "compute"
        case "copy", "bcs": return "copy"
        case "video", "vcs": return "video"
        case "video-enhance", "vecs": return "video_enhance"
        default:
            // A class a newer kernel adds: keep it, spelled as a label value.
            return String(raw.map { $0.isLetter || $0.isNumber ? Character($0.lowercased()) : "_" })
        }
    }
}

/// Model names for Intel GPU PCI device ids, so `model` reads `Arc B580` rather than a hex id.
///
/// Which ids exist and which family each belongs to: the kernel's `include/drm/intel/pciids.h` (the lists i915 and
/// xe probe). The product names: the pci.ids database (pciutils/pciids, 2026-08). An id the database names only by
/// codename (`Battlemage G21 [Intel Graphics]`, `Lunar Lake [Intel Graphics]`) gets that codename, never a guessed
/// product; an id the database gives several products for gets them all (`Arc 130V/140V`). Unknown ids fall back
/// to `Intel GPU 0x…`.
enum IntelModels {
    static func name(deviceID: UInt32) -> String? { table[deviceID] }

    private static let table: [UInt32: String] = {
        var t: [UInt32: String] = [
            // Alchemist (DG2) and Arctic Sound-M (ATS-M): i915, or xe where forced.
            0x56A0: "Arc A770", 0x56A1: "Arc A750", 0x56A2: "Arc A580", 0x56A5: "Arc A380", 0x56A6: "Arc A310",
            0x56C0: "Data Center GPU Flex 170", 0x56C1: "Data Center GPU Flex 140", 0x56C2: "Data Center GPU Flex 170V",
            // Ponte Vecchio (PVC): xe.
            0x0B69: "Data Center GPU Max 1450", 0x0B6E: "Data Center GPU Max 1100C",
            0x0BD4: "Data Center GPU Max 1550VG", 0x0BD5: "Data Center GPU Max 1550", 0x0BD6: "Data Center GPU Max 1550",
            0x0BD7: "Data Center GPU Max 1350", 0x0BD8: "Data Center GPU Max 1350",
            0x0BD9: "Data Center GPU Max 1100", 0x0BDA: "Data Center GPU Max 1100", 0x0BDB: "Data Center GPU Max 1100",
            // Battlemage (BMG), xe's discrete GPUs: G21 and G31 dies.
            0xE20B: "Arc B580", 0xE20C: "Arc B570", 0xE211: "Arc Pro B60", 0xE212: "Arc Pro B50",
            0xE222: "Arc Pro B65", 0xE223: "Arc Pro B70",
            // Lunar Lake and Panther Lake integrated GPUs (xe).
            0x64A0: "Arc 130V/140V",
            0xB080: "Arc B390", 0xB081: "Arc B370", 0xB082: "Arc B390", 0xB083: "Arc B370",
            0xB084: "Arc Pro B390", 0xB085: "Arc Pro B370", 0xB086: "Arc Pro B390", 0xB087: "Arc Pro B370",
            // Arrow Lake-H with Arc Pro graphics.
            0x7D51: "Arc Pro 130T/140T",
        ]
        // Ids pci.ids names only by die or platform.
        for id: UInt32 in [0xE202, 0xE209, 0xE20D, 0xE210, 0xE215, 0xE216] { t[id] = "Battlemage G21" }
        for id: UInt32 in [0xE220, 0xE221] { t[id] = "Battlemage G31" }
        for id: UInt32 in [0x6420, 0x64B0] { t[id] = "Lunar Lake" }
        for id: UInt32 in [0xB08F, 0xB090, 0xB0A0, 0xB0B0] { t[id] = "Panther Lake" }
        for id: UInt32 in [0xFD80, 0xFD81] { t[id] = "Wildcat Lake" }
        for id: UInt32 in [0x7D40, 0x7D45, 0x7D55, 0x7D60, 0x7DD5] { t[id] = "Meteor Lake" }
        for id: UInt32 in [0x7D41, 0x7D67, 0x7DD1, 0xB640] { t[id] = "Arrow Lake" }
        return t
    }()
}
