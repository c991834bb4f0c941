public import Logging

/// Samples every Intel Gaudi (habanalabs) device under `class/accel/accel*` (and the older `class/habanalabs/hl*`).
///
/// sysfs gives identity, state, clocks, the power limit and reset counts (reference §7). Utilization and DRAM use
/// are not in sysfs: they come from the driver's INFO ioctls on the device's control node (`GaudiDriverInfo`,
/// never the compute node), and stay absent when that node cannot be opened or queried.
/// Temperatures and power come from the hwmon source's libsensors overlay, joined by PCI address (the driver
/// registers its hwmon chip on the PCI device, named after the firmware's card name).
public final class GaudiSource: AcceleratorSource {
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
                    AMDGPUSource.parseUevent(uevent)["DRIVER"] == "habanalabs"
                else { continue }
                let pci = (try? sysfs.readLink(base)).map(AMDGPUSource.lastComponent) ?? entry
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
        // `device_type` is e.g. GAUDI2 or GAUDI3; a serial attribute is UNVERIFIED (read when present).
        let model = attribute("device_type").map(Self.modelName) ?? "Gaudi"
        let serial = attribute("serial_number")
        var info: [(String, String)] = [("driver", "habanalabs")]
        if let node = nodeName { info.append(("node", node)) }
        if let module = attribute("module_id") { info.append(("module_id", module)) }
        if let serial { info.append(("serial", serial)) }
        return DeviceIdentity(accelerator: serial ?? pci, vendor: "habana", model: model, pciAddress: pci, info: info)
    }

    /// `GAUDI2` → `Gaudi2`, `GAUDI3` → `Gaudi3`; anything else as given.
    static func modelName(_ deviceType: String) -> String {
        let upper = deviceType.uppercased()
        guard upper.hasPrefix("GAUDI") else { return deviceType }
        return "Gaudi" + upper.dropFirst(5).lowercased()
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
