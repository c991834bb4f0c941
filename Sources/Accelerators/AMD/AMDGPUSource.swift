public import Logging

/// Samples every amdgpu card under `class/drm/card*`, whatever its number.
///
/// Reads the driver's sysfs attributes (utilization, memory, DPM clocks, PCIe link) and the `gpu_metrics` blob,
/// which fills what the attributes lack (temperatures, socket power, energy, activities, throttle state). The hwmon
/// source overlays its libsensors readings afterwards (DESIGN.md precedence: hwmon > sysfs attribute > gpu_metrics).
public final class AMDGPUSource: AcceleratorSource {
    /// The `collector` label and the `--collector.amdgpu` flag.
    public let name = "amdgpu"
    private let sysfs: FileRoot
    private let logger: Logger
    private let problems: ProblemLog
    private let nodeName: String?
    private let discoveryInterval: Double
    private var cards: [Card] = []
    private var schedule: DiscoverySchedule
    /// Each card's XGMI byte counters at its last sample, for the per-link rates.
    private var lastInterconnect: [String: (at: MonotonicInstant, bytes: [DeviceSample.InterconnectKey: Double])] = [:]
    /// `pcie_bw`, read off the sampler (nil: not read).
    private let pcieBandwidth: PCIeBandwidthReader?
    private let pcieBandwidthInterval: Double

    struct Card {
        /// `cardN` as found under class/drm, for log lines and file paths.
        var entry: String
        var identity: DeviceIdentity
    }

    /// `pcieBandwidthInterval`: seconds between rounds of `pcie_bw` reads (each blocks a second per card in the
    /// driver, on a queue of its own); nil leaves the file alone.
    public init(sysfs: FileRoot, nodeName: String?, discoveryInterval: Double = 10, pcieBandwidthInterval: Double? = 15, logger: Logger) {
        self.sysfs = sysfs
        self.pcieBandwidth = pcieBandwidthInterval.map { PCIeBandwidthReader(sysfs: sysfs, interval: $0) }
        self.pcieBandwidthInterval = pcieBandwidthInterval ?? 0
        self.nodeName = nodeName
        self.discoveryInterval = discoveryInterval
        self.schedule = DiscoverySchedule(interval: discoveryInterval)
        self.logger = logger
        self.problems = ProblemLog(logger: logger)
    }

    /// Rediscovers when due, then reads every card's sysfs attributes and `gpu_metrics`; a failed discovery
    /// reports every known card down with the collector's error.
    public func sample(now: MonotonicInstant) -> SourceResult {
        defer { problems.endTick() }
        if let error = schedule.runIfDue(now, discover) {
            problems.report("discovery", "amdgpu discovery failed: \(error)")
            return SourceResult(devices: cards.map { DeviceSample(identity: $0.identity, up: false) }, error: "\(error)")
        }
        var devices: [DeviceSample] = []
        devices.reserveCapacity(cards.count)
        for card in cards {
            var sample = read(card)
            interconnectRates(card.entry, now: now, into: &sample)
            // A card that stopped answering may have left: look again next tick rather than in ten seconds.
            if !sample.up { schedule.requestSoon() }
            devices.append(sample)
        }
        return SourceResult(devices: devices)
    }

    // MARK: Discovery

    private func discover() throws(ReadError) {
        let entries = try sysfs.list("class/drm")
        var found: [Card] = []
        var seenPCI: Set<String> = []
        // Numeric order (card9 before card17), so devices list in the order the driver numbered them.
        let cardEntries = entries.filter(DRMCard.isCardEntry).sorted { (Int($0.dropFirst(4)) ?? .max, $0) < (Int($1.dropFirst(4)) ?? .max, $1) }
        for entry in cardEntries {
            let base = "class/drm/\(entry)/device"
            guard let uevent = try? sysfs.readString("\(base)/uevent") else { continue }
            let fields = DRMCard.parseUevent(uevent)
            guard fields["DRIVER"] == "amdgpu" else { continue }
            let pci = (try? sysfs.readLink(base)).map { DRMCard.lastComponent($0) } ?? fields["PCI_SLOT_NAME"] ?? entry
            guard seenPCI.insert(pci).inserted else { continue }
            // Keep a known card's identity: a flaky FRU read must not change its `accelerator` label.
            if let known = cards.first(where: { $0.identity.pciAddress == pci && $0.entry == entry }) {
                found.append(known)
                continue
            }
            var identity = identity(base: base, pci: pci, fields: fields)
            // The DRM nodes of the card (`card1`, `renderD128`) and its `unique_id`: ids a device plugin may use.
            identity.aliases.cardNames = [entry] + ((try? sysfs.list("\(base)/drm")) ?? []).filter { $0.hasPrefix("renderD") }.sorted()
            if let uniqueID = try? sysfs.readString("\(base)/unique_id"), !uniqueID.isEmpty, identity.accelerator != uniqueID {
                identity.aliases.otherIDs = [uniqueID]
            }
            found.append(Card(entry: entry, identity: identity))
        }
        let before = Set(cards.map(\.identity.accelerator))
        let after = Set(found.map(\.identity.accelerator))
        for gone in before.subtracting(after).sorted() { logger.info("accelerator left discovery", metadata: ["accelerator": "\(gone)"]) }
        for new in after.subtracting(before).sorted() { logger.info("accelerator discovered", metadata: ["accelerator": "\(new)", "collector": "amdgpu"]) }
        cards = found
        lastInterconnect = lastInterconnect.filter { entry in found.contains { $0.entry == entry.key } }
        pcieBandwidth?.setCards(found.map(\.entry))
    }

    /// Bytes per second over each XGMI link since the card's previous sample, from the firmware's accumulators. None
    /// on a card's first sample, for a link whose counter went backwards (a driver reload or reset starts it again)
    /// and when no time passed.
    private func interconnectRates(_ entry: String, now: MonotonicInstant, into sample: inout DeviceSample) {
        guard sample.up, !sample.interconnectBytes.isEmpty else {
            lastInterconnect[entry] = nil
            return
        }
        if let last = lastInterconnect[entry] {
            let seconds = now.seconds(since: last.at)
            if seconds > 0 {
                for (key, bytes) in sample.interconnectBytes {
                    guard let before = last.bytes[key], bytes >= before else { continue }
                    sample.interconnectBytesPerSecond[key] = (bytes - before) / seconds
                }
            }
        }
        lastInterconnect[entry] = (now, sample.interconnectBytes)
    }

    /// `card0`, `card57` — but not connector entries such as `card0-DP-1` or render nodes.
    private func identity(base: String, pci: String, fields: [String: String]) -> DeviceIdentity {
        func attribute(_ name: String) -> String? {
            guard let value = try? sysfs.readString("\(base)/\(name)"), !value.isEmpty else { return nil }
            return value
        }
        let uniqueID = attribute("unique_id").flatMap { id in id.allSatisfy({ $0 == "0" }) ? nil : id }
        let serial = attribute("serial_number")
        let deviceID = attribute("device").flatMap { UInt32($0.hasPrefix("0x") ? String($0.dropFirst(2)) : $0, radix: 16) }
        let productName = attribute("product_name")
        let model = deviceID.flatMap { AMDModels.name(deviceID: $0) } ?? productName
            ?? deviceID.map { "AMD GPU 0x" + String($0, radix: 16) } ?? "AMD GPU"
        var info: [(String, String)] = [("driver", "amdgpu")]
        if let node = nodeName { info.append(("node", node)) }
        if let vbios = attribute("vbios_version") { info.append(("vbios", vbios)) }
        if let serial { info.append(("serial", serial)) }
        return DeviceIdentity(
            accelerator: uniqueID ?? serial ?? pci,
            vendor: "amd",
            model: model,
            pciAddress: pci,
            info: info
        )
    }

    // MARK: Sampling

    private func read(_ card: Card) -> DeviceSample {
        let base = "class/drm/\(card.entry)/device"
        let tag = "\(card.entry) (\(card.identity.accelerator))"
        var sample = DeviceSample(identity: card.identity)
        do {
            _ = try sysfs.readBytes("\(base)/uevent", limit: 4096)
        } catch {
            problems.report("\(card.entry)/uevent", "accelerator \(tag) stopped answering: \(error)")
            sample.up = false
            return sample
        }

        // A card that fell off the bus keeps its sysfs directory but fails every read: count them.
        var answered = 0
        var failedIO = 0
        func note(_ error: ReadError) {
            switch error.code {
            case .io: failedIO += 1
            case .parse: answered += 1  // garbage is still an answer
            case .notFound: break       // attributes this card never had say nothing either way
            }
        }

        func value(_ file: String, divisor: Double = 1, range: ClosedRange<Double>? = nil) -> Double? {
            do {
                let raw = Double(try sysfs.readInteger("\(base)/\(file)"))
                answered += 1
                if let range, !range.contains(raw) {
                    problems.report("\(card.entry)/\(file)", "\(tag): \(file) out of range: \(raw)")
                    return nil
                }
                // Divided, not multiplied by 0.01: 82 / 100 is 0.82, 82 × 0.01 is 0.8200000000000001.
                return raw / divisor
            } catch {
                note(error)
                // A missing attribute is normal (APUs, older kernels); anything else is worth one log line.
                if error.code != .notFound { problems.report("\(card.entry)/\(file)", "\(tag): \(error)") }
                return nil
            }
        }

        sample.utilizationRatio = value("gpu_busy_percent", divisor: 100, range: 0...100)
        if let busy = value("mem_busy_percent", divisor: 100, range: 0...100) {
            sample.engineUtilizationRatio["memory_controller"] = busy
        }
        let maxBytes = 1e15  // 1 PB: anything larger is garbage, not memory.
        for (kind, prefix) in [("vram", "mem_info_vram"), ("vis_vram", "mem_info_vis_vram"), ("gtt", "mem_info_gtt")] {
            let total = value("\(prefix)_total", range: 0...maxBytes)
            let used = value("\(prefix)_used", range: 0...maxBytes)
            if let total { sample.memoryTotalBytes[kind] = total }
            if let used, total.map({ used <= $0 }) ?? true { sample.memoryUsedBytes[kind] = used }
        }
        for (clock, file) in [("graphics", "pp_dpm_sclk"), ("memory", "pp_dpm_mclk"), ("soc", "pp_dpm_socclk"), ("fabric", "pp_dpm_fclk")] {
            do {
                let text = try sysfs.readString("\(base)/\(file)")
                answered += 1
                if let hz = Self.currentDPMFrequency(text) {
                    sample.clockHertz[clock] = hz
                } else {
                    problems.report("\(card.entry)/\(file)", "\(tag): \(file) has no current level: \"\(text.prefix(60))\"")
                }
            } catch {
                note(error)
                if error.code != .notFound { problems.report("\(card.entry)/\(file)", "\(tag): \(error)") }
            }
        }
        if failedIO > 0 && answered == 0 {
            problems.report("\(card.entry)/answering", "accelerator \(tag) stopped answering: every read failed")
            sample.clearReadings()
            sample.up = false
            return sample
        }
        if let text = try? sysfs.readString("\(base)/current_link_speed") {
            if let speed = DRMCard.parseLinkSpeed(text) { sample.pcieLinkSpeedTransfersPerSecond = speed }
        }
        if let width = value("current_link_width", range: 1...64) { sample.pcieLinkWidth = width }
        // Per direction from `pcie_bw` while its last round is recent (a round takes a second per card); the
        // firmware's sum in gpu_metrics fills in otherwise.
        let maxAge = 2 * pcieBandwidthInterval + 2 * Double(cards.count)
        if let reading = pcieBandwidth?.latest(card.entry, now: .now(), maxAge: maxAge) {
            sample.pcieBandwidthBytesPerSecond = ["rx": reading.receivedBytesPerSecond, "tx": reading.sentBytesPerSecond]
        }

        readGPUMetrics(base: base, entry: card.entry, tag: tag, into: &sample)
        if let total = sample.pcieBandwidthBytesPerSecond["total"] {
            let capacity = Self.pcieCapacityBytesPerSecond(speed: sample.pcieLinkSpeedTransfersPerSecond, width: sample.pcieLinkWidth)
            if total > capacity {
                // `pcie_bandwidth_inst` is GB/s by the headers and v1_9's unit tag, Mb/s by amd-smi's documentation
                // (UNVERIFIED on hardware): a figure the link cannot carry means the unit is not GB/s here.
                problems.report("\(card.entry)/pcie_bandwidth_inst",
                                "\(tag): gpu_metrics pcie_bandwidth_inst \(total / 1e9) GB/s exceeds the link's \(capacity / 1e9) GB/s; left absent (its unit is unverified)")
                sample.pcieBandwidthBytesPerSecond["total"] = nil
            }
        }
        return sample
    }

    /// The most a PCIe link moves in both directions together, in bytes per second: per-lane rate × lanes × 2 / 8
    /// (before encoding overhead, so an upper bound). An unknown speed or width counts as PCIe 6.0 ×16.
    static func pcieCapacityBytesPerSecond(speed: Double?, width: Double?) -> Double {
        let lanes = width.map { min(max($0, 1), 32) } ?? 16
        let rate = speed.map { min(max($0, 2.5e9), 64e9) } ?? 64e9
        return rate * lanes * 2 / 8
    }

    private func readGPUMetrics(base: String, entry: String, tag: String, into sample: inout DeviceSample) {
        let bytes: [UInt8]
        do {
            bytes = try sysfs.readBytes("\(base)/gpu_metrics", limit: 8192)
        } catch {
            // EPERM on a runtime-suspended device, ENOENT on cards without the blob: absent values, not a failure.
            if error.code != .notFound { problems.report("\(entry)/gpu_metrics", "\(tag): \(error)", level: .info) }
            return
        }
        let metrics: GPUMetrics
        do {
            metrics = try GPUMetrics.parse(bytes)
        } catch {
            problems.report("\(entry)/gpu_metrics", "\(tag): gpu_metrics: \(error)")
            return
        }
        Self.fill(&sample, from: metrics)
    }

    /// Fills only what the sysfs attributes left empty.
    static func fill(_ sample: inout DeviceSample, from m: GPUMetrics) {
        func set(_ dict: inout [String: Double], _ key: String, _ value: Double?) {
            if dict[key] == nil, let value { dict[key] = value }
        }
        if sample.utilizationRatio == nil { sample.utilizationRatio = m.gfxActivityRatio.map(clampRatio) }
        set(&sample.engineUtilizationRatio, "gfx", m.gfxActivityRatio.map(clampRatio))
        set(&sample.engineUtilizationRatio, "memory_controller", m.memoryActivityRatio.map(clampRatio))
        // UVD/VCN both decode and encode (the kernel's `average_mm_activity` is "UVD or VCN"): `video`, as for
        // Intel's video engines; the JPEG decoders apart, as AMD's own exporter publishes them.
        set(&sample.engineUtilizationRatio, "video", m.mediaActivityRatio.map(clampRatio))
        set(&sample.engineUtilizationRatio, "jpeg", m.jpegActivityRatio.map(clampRatio))
        set(&sample.temperatureCelsius, "edge", m.temperatureEdgeCelsius)
        set(&sample.temperatureCelsius, "junction", m.temperatureHotspotCelsius)
        set(&sample.temperatureCelsius, "memory", m.temperatureMemoryCelsius)
        for (i, t) in m.temperatureHBMCelsius.enumerated() { set(&sample.temperatureCelsius, "hbm\(i)", t) }
        if sample.powerWatts == nil { sample.powerWatts = m.socketPowerWatts }
        if sample.energyJoules == nil { sample.energyJoules = m.energyJoules }
        set(&sample.clockHertz, "graphics", m.gfxClockHertz)
        set(&sample.clockHertz, "memory", m.memoryClockHertz)
        set(&sample.clockHertz, "soc", m.socClockHertz)
        set(&sample.clockHertz, "video", m.videoClockHertz)
        set(&sample.fanSpeedRPM, "fan1", m.fanSpeedRPM)
        set(&sample.voltageVolts, "soc", m.voltageSoCVolts)
        set(&sample.voltageVolts, "gfx", m.voltageGfxVolts)
        set(&sample.voltageVolts, "memory", m.voltageMemoryVolts)
        if sample.pcieLinkWidth == nil { sample.pcieLinkWidth = m.pcieLinkWidth }
        if sample.pcieLinkSpeedTransfersPerSecond == nil { sample.pcieLinkSpeedTransfersPerSecond = m.pcieLinkSpeedTransfersPerSecond }
        // The firmware gives the sum of both directions; `pcie_bw` (when read) gives them apart.
        if sample.pcieBandwidthBytesPerSecond.isEmpty, let total = m.pcieBandwidthBytesPerSecond {
            sample.pcieBandwidthBytesPerSecond["total"] = total
        }
        if let status = m.throttleStatus {
            for (bit, reason) in AMDThrottle.independentBits {
                sample.throttleActive[reason] = (status & (1 << bit)) != 0 ? 1 : 0
            }
        }
        for (i, bytes) in (m.xgmiReadBytes ?? []).enumerated() {
            if let bytes { sample.interconnectBytes[.init(link: "xgmi\(i)", direction: "rx")] = bytes }
        }
        for (i, bytes) in (m.xgmiWriteBytes ?? []).enumerated() {
            if let bytes { sample.interconnectBytes[.init(link: "xgmi\(i)", direction: "tx")] = bytes }
        }
    }

    static func clampRatio(_ r: Double) -> Double { min(1, max(0, r)) }

    /// The frequency of the level marked `*` in a `pp_dpm_*` file (`1: 2100Mhz *`), in Hz.
    static func currentDPMFrequency(_ text: String) -> Double? {
        for line in text.split(separator: "\n") where line.contains("*") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let rest = line[line.index(after: colon)...].trimmingPrefix(while: { $0 == " " })
            let digits = rest.prefix(while: { $0.isNumber || $0 == "." })
            guard let number = Double(digits), number.isFinite, number >= 0 else { return nil }
            let unit = rest.dropFirst(digits.count).lowercased()
            if unit.hasPrefix("mhz") { return number * 1e6 }
            if unit.hasPrefix("ghz") { return number * 1e9 }
            if unit.hasPrefix("khz") { return number * 1e3 }
            return nil
        }
        return nil
    }

    /// `16.0 GT/s PCIe`, `8 GT/s`, `2.5 GT/s` → transfers per second; `Unknown` → nil.
}

extension Substring {
    fileprivate func trimmingPrefix(while predicate: (Character) -> Bool) -> Substring {
        var s = self
        while let c = s.first, predicate(c) { s = s.dropFirst() }
        return s
    }
}

/// amdgpu's ASIC-independent throttle bits (`indep_throttle_status`; kernel `amdgpu_smu.h`, `SMU_THROTTLER_*_BIT`):
/// power 0–7, current 16–23, temperature 32–47, other 56–57. Only bits every ASIC shares get a reason label.
enum AMDThrottle {
    static let independentBits: [(UInt64, String)] = [
        (0, "power_ppt0"), (1, "power_ppt1"), (2, "power_ppt2"), (3, "power_ppt3"),
        (4, "power_spl"), (5, "power_fppt"), (6, "power_sppt"),
        (16, "current_tdc_gfx"), (17, "current_tdc_soc"), (18, "current_tdc_mem"), (23, "current_apcc"),
        (32, "thermal_gpu"), (33, "thermal_core"), (34, "thermal_memory"), (35, "thermal_edge"),
        (36, "thermal_hotspot"), (37, "thermal_soc"), (38, "thermal_vr_gfx"), (39, "thermal_vr_soc"),
        (40, "thermal_vr_mem0"), (41, "thermal_vr_mem1"),
        (56, "ppm"), (57, "fit"),
    ]
}
