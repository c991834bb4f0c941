public import Logging

/// Samples every Intel Gaudi (habanalabs) device under `class/accel/accel*` (and the older `class/habanalabs/hl*`).
///
/// sysfs gives identity, state, clocks, the power limit and reset counts (reference §7). Utilization and DRAM use
/// are not in sysfs: they come from the driver's INFO ioctls on the device's control node (`GaudiDriverInfo`,
/// never the compute node), and stay absent when that node cannot be opened or queried.
/// Temperatures and power come from the hwmon source's libsensors overlay, joined by PCI address (the driver
/// registers its hwmon chip on the PCI device, named after the firmware's card name).
public final class GaudiSource: AcceleratorSource {
    /// The `collector` label and the `--collector.habana` flag.
    public let name = "habana"
    private let sysfs: FileRoot
    private let logger: Logger
    private let problems: ProblemLog
    private let nodeName: String?
    private let discoveryInterval: Double
    private let devfs: FileRoot
    private let driverInfo: any GaudiDriverInfo
    private var devices: [Device] = []
    private var schedule: DiscoverySchedule

    struct Device {
        /// `class/accel/accel0/device`.
        var base: String
        var identity: DeviceIdentity
        var control: GaudiControlNode
    }

    /// - Parameters:
    ///   - devfs: where the control nodes are (`/dev`).
    ///   - driverInfo: the INFO ioctls; nil: the real control devices under `devfs`.
    public init(sysfs: FileRoot, devfs: FileRoot = FileRoot("/dev"), driverInfo: (any GaudiDriverInfo)? = nil,
                nodeName: String?, discoveryInterval: Double = 10, logger: Logger) {
        self.sysfs = sysfs
        self.devfs = devfs
        self.driverInfo = driverInfo ?? HabanaControlDeviceInfo()
        self.nodeName = nodeName
        self.discoveryInterval = discoveryInterval
        self.schedule = DiscoverySchedule(interval: discoveryInterval)
        self.logger = logger
        self.problems = ProblemLog(logger: logger)
    }

    /// Rediscovers when due, then reads each device's sysfs attributes and its control node's INFO ioctls.
    public func sample(now: MonotonicInstant) -> SourceResult {
        defer { problems.endTick() }
        if schedule.isDue(now) {
            discover()
            schedule.discovered(at: now)
        }
        var out: [DeviceSample] = []
        for device in devices {
            let sample = read(device)
            if !sample.up { schedule.requestSoon() }
            out.append(sample)
        }
        return SourceResult(devices: out)
    }

    private func discover() {
        var found: [Device] = []
        var seen: Set<String> = []
        for (classDirectory, prefix) in [("class/accel", "accel"), ("class/habanalabs", "hl")] {
            guard let entries = try? sysfs.list(classDirectory) else { continue }
            let sorted = entries.filter { $0.hasPrefix(prefix) && $0.dropFirst(prefix.count).allSatisfy(\.isNumber) }
                .sorted { (Int($0.dropFirst(prefix.count)) ?? .max) < (Int($1.dropFirst(prefix.count)) ?? .max) }
            for entry in sorted {
                let base = "\(classDirectory)/\(entry)/device"
                guard let uevent = try? sysfs.readString("\(base)/uevent"),
                    DRMCard.parseUevent(uevent)["DRIVER"] == "habanalabs"
                else { continue }
                let pci = (try? sysfs.readLink(base)).map(DRMCard.lastComponent) ?? entry
                guard seen.insert(pci).inserted else { continue }
                // The control node shares the compute node's index: accel3 ↔ accel_controlD3, hl3 ↔ hl_controlD3
                // (the latter UNVERIFIED: the misc driver predates the reference).
                let index = entry.dropFirst(prefix.count)
                let control = prefix == "accel"
                    ? GaudiControlNode(path: devfs.resolve("accel/accel_controlD\(index)"), legacy: false)
                    : GaudiControlNode(path: devfs.resolve("hl_controlD\(index)"), legacy: true)
                if var known = devices.first(where: { $0.identity.pciAddress == pci }) {
                    if known.control != control { driverInfo.forget(known.control) }
                    known.control = control
                    found.append(known)
                    continue
                }
                var identity = identity(base: base, pci: pci)
                // The node names a plugin or a log may use for the device (`accel3`, `hl3`); never its module id alone,
                // a small number other vendors' ids could equal.
                identity.aliases.cardNames = [entry]
                found.append(Device(base: base, identity: identity, control: control))
            }
        }
        for old in devices where !found.contains(where: { $0.control == old.control }) { driverInfo.forget(old.control) }
        let before = Set(devices.map(\.identity.accelerator))
        let after = Set(found.map(\.identity.accelerator))
        for gone in before.subtracting(after).sorted() { logger.info("accelerator left discovery", metadata: ["accelerator": "\(gone)"]) }
        for new in after.subtracting(before).sorted() { logger.info("accelerator discovered", metadata: ["accelerator": "\(new)", "collector": "habana"]) }
        devices = found
    }

    private func identity(base: String, pci: String) -> DeviceIdentity {
        func attribute(_ name: String) -> String? {
            guard let value = try? sysfs.readString("\(base)/\(name)"), !value.isEmpty, value != "N/A" else { return nil }
            return value
        }
        // The product from `device_type`, else from the PCI device id, else `device_type` as given; a serial
        // attribute is UNVERIFIED (read when present).
        let deviceID = attribute("device").flatMap { UInt32($0.hasPrefix("0x") ? String($0.dropFirst(2)) : $0, radix: 16) }
        let deviceType = attribute("device_type")
        let model = deviceType.flatMap { Self.modelName($0) } ?? deviceID.flatMap { Self.modelName(deviceID: $0) } ?? deviceType ?? "Gaudi"
        let serial = attribute("serial_number")
        var info: [(String, String)] = [("driver", "habanalabs")]
        if let node = nodeName { info.append(("node", node)) }
        if let module = attribute("module_id") { info.append(("module_id", module)) }
        if let serial { info.append(("serial", serial)) }
        return DeviceIdentity(accelerator: serial ?? pci, vendor: "habana", model: model, pciAddress: pci, info: info)
    }

    /// The product a `device_type` string names: `GAUDI2` → `Gaudi2`, `GAUDI3` → `Gaudi3`, `GOYA` → `Goya`.
    ///
    /// The driver spells the ASIC, and variants of one product as products of their own: upstream `GAUDI SEC`,
    /// `GAUDI2B`, `GAUDI2C`, `GAUDI2D` (drivers/accel/habanalabs/common/sysfs.c), Intel's out-of-tree driver also
    /// `GAUDI2E`, `GAUDI3D`, `GAUDI3E`, a board after a space (`GAUDI3 HL-338`, `GAUDI HL2000M SEC`) and
    /// `… Simulator` / `… FPGA`. A variant is not a new model: the letters after the generation and everything after
    /// the first word are dropped. nil for anything that is not a Gaudi or Goya name (the caller falls back).
    static func modelName(_ deviceType: String) -> String? {
        let word = deviceType.split(separator: " ").first.map { $0.uppercased() } ?? ""
        if word == "GOYA" { return "Goya" }
        guard word.hasPrefix("GAUDI") else { return nil }
        let rest = word.dropFirst(5)
        let generation = rest.prefix { $0.isASCII && $0.isNumber }
        // After the generation only a variant letter may follow (GAUDI2B, GAUDI3E).
        guard rest.dropFirst(generation.count).allSatisfy({ $0.isASCII && $0.isLetter }), rest.dropFirst(generation.count).count <= 1
        else { return nil }
        return "Gaudi" + generation
    }

    /// The product of a habanalabs PCI device id (pci.ids, 2026-08): 0x1000 and 0x1010 (secured) Gaudi, 0x1020
    /// Gaudi2, 0x1060 and 0x1063 (PCIe add-in card) Gaudi3, 0x0001 Goya.
    static func modelName(deviceID: UInt32) -> String? {
        switch deviceID {
        case 0x0001: return "Goya"
        case 0x1000, 0x1010: return "Gaudi"
        case 0x1020: return "Gaudi2"
        case 0x1060, 0x1063: return "Gaudi3"
        default: return nil
        }
    }

    private func read(_ device: Device) -> DeviceSample {
        var sample = DeviceSample(identity: device.identity)
        let status: String
        do {
            status = try sysfs.readString("\(device.base)/status")
        } catch {
            problems.report("\(device.base)/status", "accelerator \(device.identity.accelerator) stopped answering: \(error)")
            sample.up = false
            return sample
        }
        // `operational`; anything else (`in reset`, `disabled`, `needs reset`, …) is a device not serving.
        guard status.lowercased() == "operational" else {
            problems.report("\(device.base)/state", "accelerator \(device.identity.accelerator) is \(status)")
            sample.up = false
            return sample
        }
        func number(_ name: String) -> Double? {
            guard let text = try? sysfs.readString("\(device.base)/\(name)"), let value = Double(text), value.isFinite, value >= 0
            else { return nil }
            return value
        }
        if let mhz = number("clk_cur_freq_mhz") { sample.clockHertz["soc"] = mhz * 1e6 }
        if let milliwatts = number("max_power"), milliwatts > 0 { sample.powerLimitWatts = milliwatts / 1000 }
        if let hard = number("hard_reset_cnt") { sample.errors["reset_hard"] = hard }
        if let soft = number("soft_reset_cnt") { sample.errors["reset_soft"] = soft }
        let reading = driverInfo.read(device.control)
        let tag = device.identity.accelerator
        for problem in Self.apply(reading, to: &sample) {
            // Once per device and kind while it lasts (ProblemLog): a missing /dev mount is not a per-tick warning.
            let kind = problem.prefix { $0 != ":" }
            problems.report("\(device.base)/\(kind)", "accelerator \(tag): \(problem)", level: .info)
        }
        return sample
    }

    /// Driver INFO readings into the sample; returns what to log (the reading's own problems and rejected values).
    @discardableResult
    static func apply(_ reading: GaudiDriverReading, to sample: inout DeviceSample) -> [String] {
        var problems = reading.problems
        if let percent = reading.utilizationPercent {
            if percent <= 100 {
                sample.utilizationRatio = Double(percent) / 100
            } else {
                problems.append("HL_INFO_DEVICE_UTILIZATION out of range: \(percent)")
            }
        }
        // 1 PB: anything larger is garbage, not memory.
        if let total = reading.dramTotalBytes, total > 0, total < 1 << 50 {
            sample.memoryTotalBytes["hbm"] = Double(total)
            if let free = reading.dramFreeBytes {
                if free <= total {
                    sample.memoryUsedBytes["hbm"] = Double(total - free)
                } else if free - total <= total / 8 {
                    // `dram_size` is rounded down to the DRAM page size and `dram_free_mem` is not, so an idle
                    // device can show a little more free than there is: nothing in use, to within a page.
                    sample.memoryUsedBytes["hbm"] = 0
                } else {
                    problems.append("HL_INFO_DRAM_USAGE free \(free) exceeds the DRAM size \(total)")
                }
            }
        }
        return problems
    }
}
