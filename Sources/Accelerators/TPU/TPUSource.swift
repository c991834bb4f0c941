public import Logging

/// Samples every Google TPU chip on the PCI bus (`bus/pci/devices/*` with vendor 0x1ae0 and a TPU device id).
///
/// sysfs gives the chip's identity, its device node, whether it is still there, and its PCIe link — with or without a
/// workload, so chips are always listed. Utilization, HBM and the HLO queue exist only inside a running workload's
/// libtpu: they come from its runtime-metrics service through `TPURuntimeReadings` (polled on the client's own
/// loop, never here), mapped from libtpu's device ordinals to chips, and are absent while no workload answers.
public final class TPUSource: AcceleratorSource {
    /// The `collector` label and the `--collector.tpu` flag.
    public let name = "tpu"
    private let sysfs: FileRoot
    private let logger: Logger
    private let problems: ProblemLog
    /// Problems seen only while discovering (a Google device with an unreadable id): cleared only by a discovery
    /// that no longer sees them, not by every tick in between.
    private let discoveryProblems: ProblemLog
    private let nodeName: String?
    private let discoveryInterval: Double
    private let runtime: (any TPURuntimeReadings)?
    private var chips: [Chip] = []
    private var schedule: DiscoverySchedule
    /// Google devices that are not TPUs (gVNIC), said once at debug level.
    private var skippedLogged: Set<String> = []

    struct Chip {
        /// The PCI address: its entry under `bus/pci/devices`.
        var pci: String
        var identity: DeviceIdentity
        var generation: TPUGeneration
    }

    /// - Parameter runtime: libtpu's runtime metrics; nil: chips only (`--tpu.runtime-metrics-address=""`).
    public init(sysfs: FileRoot, nodeName: String?, discoveryInterval: Double = 10, runtime: (any TPURuntimeReadings)? = nil,
                logger: Logger) {
        self.sysfs = sysfs
        self.nodeName = nodeName
        self.discoveryInterval = discoveryInterval
        self.schedule = DiscoverySchedule(interval: discoveryInterval)
        self.runtime = runtime
        self.logger = logger
        self.problems = ProblemLog(logger: logger)
        self.discoveryProblems = ProblemLog(logger: logger)
    }

    /// Rediscovers when due, then reads each chip's sysfs and, where a workload answers, its latest libtpu
    /// runtime values (never waiting on the network); a failed discovery reports every known chip down.
    public func sample(now: MonotonicInstant) -> SourceResult {
        defer { problems.endTick() }
        if let error = schedule.runIfDue(now, discover) {
            problems.report("discovery", "TPU discovery failed: \(error)")
            return SourceResult(devices: chips.map { DeviceSample(identity: $0.identity, up: false) }, error: "\(error)")
        }
        guard !chips.isEmpty else { return SourceResult() }
        var runtimeValues: [String: ChipRuntime] = [:]
        if let runtime {
            runtime.activate()
            runtimeValues = combine(runtime.reports)
        }
        var devices: [DeviceSample] = []
        devices.reserveCapacity(chips.count)
        for chip in chips {
            var sample = read(chip)
            if !sample.up {
                // A chip that stopped answering may have left: look again next tick.
                schedule.requestSoon()
            } else if let values = runtimeValues[chip.pci] {
                values.apply(to: &sample, devicesPerChip: chip.generation.devicesPerChip)
            }
            devices.append(sample)
        }
        return SourceResult(devices: devices)
    }

    // MARK: Discovery

    private func discover() throws(ReadError) {
        let entries: [String]
        do {
            entries = try sysfs.list("bus/pci/devices")
        } catch where error.code == .notFound {
            // No PCI bus in this sysfs (a container without it, a fixture without PCI devices): no TPUs, no failure.
            entries = []
        }
        var found: [Chip] = []
        for entry in entries {
            let base = "bus/pci/devices/\(entry)"
            guard let vendorText = try? sysfs.readString("\(base)/vendor"),
                  TPUGeneration.parseHexID(vendorText) == TPUGeneration.pciVendor
            else { continue }
            guard let deviceText = try? sysfs.readString("\(base)/device"), let deviceID = TPUGeneration.parseHexID(deviceText) else {
                discoveryProblems.report("\(entry)/device", "Google PCI device \(entry) has an unreadable device id; not listed")
                continue
            }
            let subsystem = (try? sysfs.readString("\(base)/subsystem_device")).flatMap(TPUGeneration.parseHexID)
            guard let generation = TPUGeneration.from(deviceID: deviceID, subsystemDeviceID: subsystem) else {
                if skippedLogged.insert(entry).inserted {
                    logger.debug("Google PCI device is not a TPU; skipped", metadata: ["pci": "\(entry)", "device": "\(deviceText)"])
                }
                continue
            }
            found.append(Chip(pci: entry, identity: DeviceIdentity(accelerator: entry, vendor: "google", model: generation.model,
                                                                    pciAddress: entry), generation: generation))
        }
        discoveryProblems.endTick()
        // Chip index = position in PCI address order (what libtpu's device ordinals are mapped by; `list` sorts).
        // Re-derived at every discovery: a chip that left shifts the ones after it, as it shifts libtpu's ordinals.
        for i in found.indices { found[i].identity = identity(found[i], index: i) }
        let before = Set(chips.map(\.identity.accelerator))
        let after = Set(found.map(\.identity.accelerator))
        for gone in before.subtracting(after).sorted() { logger.info("accelerator left discovery", metadata: ["accelerator": "\(gone)"]) }
        for new in after.subtracting(before).sorted() { logger.info("accelerator discovered", metadata: ["accelerator": "\(new)", "collector": "tpu"]) }
        chips = found
    }

    private func identity(_ chip: Chip, index: Int) -> DeviceIdentity {
        let base = "bus/pci/devices/\(chip.pci)"
        let driver = (try? sysfs.readLink("\(base)/driver")).map(DRMCard.lastComponent)
        var info: [(String, String)] = []
        if let driver { info.append(("driver", driver)) }
        if let node = nodeName { info.append(("node", node)) }
        info.append(("chip_index", "\(index)"))
        let node = deviceNode(base: base, generation: chip.generation, driver: driver)
        if let node { info.append(("device_node", node)) }
        var identity = DeviceIdentity(accelerator: chip.pci, vendor: "google", model: chip.generation.model, pciAddress: chip.pci, info: info)
        // Ids a TPU device plugin or a log may use: the chip index and the node [UNVERIFIED which one the plugin uses].
        identity.aliases.otherIDs = ["\(index)"] + (node.map { [$0] } ?? [])
        if let node, chip.generation.node == .accel { identity.aliases.cardNames = [String(node.dropFirst("/dev/".count))] }
        return identity
    }

    /// The chip's device node, from sysfs evidence only (never guessed from its index):
    /// - vfio generations bound to `vfio-pci`: `/dev/vfio/<iommu group>` (the kernel's VFIO layout);
    /// - accel generations: an `accel/accel<N>` child of the PCI device, or a `class/accel/accel<N>` entry whose
    ///   `device` link names this chip **[UNVERIFIED: where the TPU driver registers its node]**.
    private func deviceNode(base: String, generation: TPUGeneration, driver: String?) -> String? {
        switch generation.node {
        case .vfio:
            guard driver == "vfio-pci", let group = (try? sysfs.readLink("\(base)/iommu_group")).map(DRMCard.lastComponent),
                  !group.isEmpty, group.allSatisfy({ $0.isASCII && $0.isNumber })
            else { return nil }
            return "/dev/vfio/\(group)"
        case .accel:
            if let child = ((try? sysfs.list("\(base)/accel")) ?? []).first(where: Self.isAccelEntry) {
                return "/dev/\(child)"
            }
            let pci = DRMCard.lastComponent(base)
            for entry in ((try? sysfs.list("class/accel")) ?? []).filter(Self.isAccelEntry) {
                if let link = try? sysfs.readLink("class/accel/\(entry)/device"), DRMCard.lastComponent(link) == pci {
                    return "/dev/\(entry)"
                }
            }
            return nil
        }
    }

    /// `accel0`, `accel12` (not `accel_controlD0`).
    static func isAccelEntry(_ name: String) -> Bool {
        name.hasPrefix("accel") && name.count > 5 && name.dropFirst(5).allSatisfy { $0.isASCII && $0.isNumber }
    }

    // MARK: Reading

    private func read(_ chip: Chip) -> DeviceSample {
        var sample = DeviceSample(identity: chip.identity)
        let base = "bus/pci/devices/\(chip.pci)"
        // There is no status attribute: a chip is up while its PCI function is there and still reads as Google's.
        do {
            let vendor = try sysfs.readString("\(base)/vendor")
            guard TPUGeneration.parseHexID(vendor) == TPUGeneration.pciVendor else {
                problems.report("\(chip.pci)/vendor", "accelerator \(chip.pci) reads vendor \(vendor), not Google's")
                sample.up = false
                return sample
            }
        } catch {
            problems.report("\(chip.pci)/vendor", "accelerator \(chip.pci) stopped answering: \(error)")
            sample.up = false
            return sample
        }
        if let text = try? sysfs.readString("\(base)/current_link_speed"), let speed = DRMCard.parseLinkSpeed(text) {
            sample.pcieLinkSpeedTransfersPerSecond = speed
        }
        if let text = try? sysfs.readString("\(base)/current_link_width"), let width = Double(text), (1...64).contains(width) {
            sample.pcieLinkWidth = width
        }
        return sample
    }

    // MARK: Runtime metrics → chips

    /// One chip's runtime values, per core (libtpu device) where libtpu reports per device.
    struct ChipRuntime {
        var used: [Int: Double] = [:]
        var total: [Int: Double] = [:]
        var queue: [Int: Double] = [:]
        var execution: [Int: DeviceHistogram] = [:]
        /// Per chip (one value) or per core (then averaged).
        var dutyCycle: [Int: Double] = [:]
        var hbmUtilization: [Int: Double] = [:]

        /// A chip's values; a per-core value is used only when every core of the chip reported it (a partial sum
        /// would understate the chip).
        func apply(to sample: inout DeviceSample, devicesPerChip n: Int) {
            func complete<T>(_ values: [Int: T]) -> [T]? {
                let all = (0..<n).compactMap { values[$0] }
                return all.count == n ? all : nil
            }
            if let used = complete(used) { sample.memoryUsedBytes["hbm"] = used.reduce(0, +) }
            if let total = complete(total) { sample.memoryTotalBytes["hbm"] = total.reduce(0, +) }
            if let queue = complete(queue) { sample.hloQueueSize = queue.reduce(0, +) }
            if let histograms = complete(execution) {
                sample.hloExecutionSeconds = histograms.dropFirst().reduce(histograms.first) { merged, next in merged?.adding(next) }
            }
            // -1: one value for the whole chip; else one per core, averaged.
            func ratio(_ values: [Int: Double]) -> Double? {
                if let chip = values[-1] { return min(1, chip / 100) }
                guard let cores = complete(values) else { return nil }
                return min(1, cores.reduce(0, +) / Double(n) / 100)
            }
            sample.utilizationRatio = ratio(dutyCycle)
            sample.hbmUtilizationRatio = ratio(hbmUtilization)
        }
    }

    /// Maps every fresh report's device ordinals to this node's chips, keyed by PCI address. A chip named by two
    /// targets keeps the first one's values; ordinals beyond the target's chips are dropped (both logged once).
    private func combine(_ reports: [TPURuntimeReport]) -> [String: ChipRuntime] {
        var out: [String: ChipRuntime] = [:]
        var claimedBy: [String: String] = [:]
        for report in reports {
            guard let snapshot = report.snapshot else { continue }
            let target = report.target
            var targetChips: [Chip] = []
            if let named = target.chips {
                for pci in named {
                    if let chip = chips.first(where: { $0.pci == pci }) {
                        targetChips.append(chip)
                    } else {
                        problems.report("runtime/\(target.address)/chip/\(pci)",
                                        "runtime target \(target) names chip \(pci), which is not a TPU chip of this node", level: .info)
                    }
                }
            } else {
                targetChips = chips
            }
            let mapped = Self.map(snapshot, onto: targetChips.map { ($0.pci, $0.generation.devicesPerChip) })
            for problem in mapped.problems {
                problems.report("runtime/\(target.address)/\(problem.key)", "runtime target \(target): \(problem.message)", level: .info)
            }
            for (pci, values) in mapped.chips.sorted(by: { $0.key < $1.key }) {
                if let first = claimedBy[pci] {
                    problems.report("runtime/\(target.address)/claim/\(pci)",
                                    "chip \(pci) is reported by runtime targets \(first) and \(target); keeping \(first)", level: .info)
                    continue
                }
                claimedBy[pci] = target.description
                out[pci] = values
            }
        }
        return out
    }

    struct Mapped {
        var chips: [String: ChipRuntime] = [:]
        var problems: [(key: String, message: String)] = []
    }

    /// One snapshot onto the chips its libtpu sees (`(pci, devices per chip)` in ordinal order).
    ///
    /// Device ordinals run chip by chip: chip k's cores are the ordinals after those of chips 0..<k. Duty cycle and
    /// HBM utilization are per chip (reference) — unless, on a two-core generation, libtpu gave more values than
    /// there are chips, which can only be one per core **[UNVERIFIED which libtpu versions do that]**.
    static func map(_ snapshot: TPURuntimeSnapshot, onto chips: [(pci: String, devicesPerChip: Int)]) -> Mapped {
        var out = Mapped()
        var ordinals: [Int: (pci: String, core: Int)] = [:]
        var next = 0
        for chip in chips {
            for core in 0..<chip.devicesPerChip { ordinals[next + core] = (chip.pci, core) }
            next += chip.devicesPerChip
        }
        let deviceCount = next
        var unknown: Set<Int> = []
        func place<T>(_ values: [Int: T], _ keyPath: WritableKeyPath<ChipRuntime, [Int: T]>) {
            for (ordinal, value) in values {
                guard let (pci, core) = ordinals[ordinal] else {
                    unknown.insert(ordinal)
                    continue
                }
                out.chips[pci, default: ChipRuntime()][keyPath: keyPath][core] = value
            }
        }
        place(snapshot.hbmUsedBytes, \.used)
        place(snapshot.hbmTotalBytes, \.total)
        place(snapshot.hloQueueSize, \.queue)
        place(snapshot.hloExecutionSeconds, \.execution)

        func placePerChip(_ values: [Int: Double], _ keyPath: WritableKeyPath<ChipRuntime, [Int: Double]>, _ metric: String) {
            guard !values.isEmpty else { return }
            let twoCore = chips.contains { $0.devicesPerChip > 1 }
            let perCore = twoCore && (values.count > chips.count || values.keys.contains { $0 >= chips.count })
            if perCore {
                place(values, keyPath)
                return
            }
            for (index, value) in values {
                guard chips.indices.contains(index) else {
                    out.problems.append(("\(metric)/\(index)", "\(metric) for chip \(index), but it sees \(chips.count) chips; dropped"))
                    continue
                }
                // -1 marks a per-chip value (not a core's).
                out.chips[chips[index].pci, default: ChipRuntime()][keyPath: keyPath][-1] = value
            }
        }
        placePerChip(snapshot.dutyCyclePercent, \.dutyCycle, "duty cycle")
        placePerChip(snapshot.hbmUtilizationPercent, \.hbmUtilization, "HBM utilization")
        if !unknown.isEmpty {
            let shown = unknown.sorted().prefix(4).map(String.init).joined(separator: ",")
            out.problems.append(("ordinals", "device ordinals \(shown) are beyond the \(deviceCount) devices of its \(chips.count) chips; dropped"))
        }
        return out
    }
}
