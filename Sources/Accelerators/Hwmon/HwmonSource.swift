internal import CSensors
import Exposition
public import Logging
import Synchronization
import MetricSchema
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// hwmon through libsensors — the only hwmon code path.
///
/// libsensors reads `/sys` itself (umockdev fakes it in tests and the demo) and applies `sensors3.conf` labels,
/// `ignore` and `compute` lines, which is why it is used instead of reading `hwmon*/` files directly. Chips whose
/// PCI device is a display controller or processing accelerator become overlays joined to that accelerator by PCI
/// address; with `includeAllChips` the node's other chips are exported as `hwmon_*` families.
public final class HwmonSource: AcceleratorSource {
    /// The `collector` label and the `--collector.hwmon` flag.
    public let name = "hwmon"
    private let configPath: String?
    private let includeAllChips: Bool
    private let discoveryInterval: Double
    private let logger: Logger
    private let problems: ProblemLog
    private var initialized = false
    private var lastInit: MonotonicInstant?
    /// Power derived from energy counters, for accelerator chips without a power input (i915, xe).
    private var energyPower = EnergyPower()

    /// libsensors keeps process-global state: one user at a time.
    private static let libraryLock = Mutex(())

    /// `configPath`: a `sensors3.conf` to load instead of libsensors' default; `includeAllChips` also exports the
    /// node's other chips as `hwmon_*` families. Nothing is read until the first ``sample(now:)``.
    public init(configPath: String?, includeAllChips: Bool, discoveryInterval: Double = 10, logger: Logger) {
        self.configPath = configPath
        self.includeAllChips = includeAllChips
        self.discoveryInterval = discoveryInterval
        self.logger = logger
        self.problems = ProblemLog(logger: logger)
    }

    deinit {
        if initialized { Self.libraryLock.withLock { _ in sensors_cleanup() } }
    }

    /// Re-initializes libsensors every `discoveryInterval` (finding chips that came or went), then reads every
    /// chip under a process-wide lock: accelerator chips as overlays, the rest as `hwmon_*` families when asked for.
    public func sample(now: MonotonicInstant) -> SourceResult {
        defer { problems.endTick() }
        return Self.libraryLock.withLock { _ in
            // Re-initialising re-scans /sys/class/hwmon: chips that appear later are found, vanished ones dropped.
            if !initialized || lastInit.map({ now.seconds(since: $0) >= discoveryInterval }) ?? true {
                if initialized { sensors_cleanup(); initialized = false }
                if let error = initialize() {
                    problems.report("init", error, level: .error)
                    return SourceResult(error: error)
                }
                initialized = true
                lastInit = now
            }
            return readChips()
        }
    }

    private func initialize() -> String? {
        var file: UnsafeMutablePointer<FILE>?
        if let configPath {
            file = fopen(configPath, "r")
            if file == nil { return "cannot open sensors config \(configPath): \(String(cString: strerror(errno)))" }
        }
        defer { if let file { fclose(file) } }
        // libsensors prints configuration errors to stderr and may carry on with part of the file; collect them
        // instead, and refuse a configuration with any error rather than export half-configured sensors.
        Self.parseErrors = []
        CSensors_setParseErrorHandler { message, file, line in
            let text = message.map { String(cString: $0) } ?? "syntax error"
            let where_ = file.map { String(cString: $0) } ?? "config"
            HwmonSource.parseErrors.append("\(where_):\(line): \(text)")
        }
        let rc = sensors_init(file)
        let suffix = configPath.map { " (config \($0))" } ?? ""
        if rc != 0 {
            let details = Self.parseErrors.isEmpty ? "" : ": " + Self.parseErrors.joined(separator: "; ")
            return "sensors_init failed: \(String(cString: sensors_strerror(rc)))\(details)\(suffix)"
        }
        if !Self.parseErrors.isEmpty {
            sensors_cleanup()
            return "sensors_init failed: \(Self.parseErrors.joined(separator: "; "))\(suffix)"
        }
        return nil
    }

    /// Filled by the parse-error callback during `sensors_init`. Only touched under `libraryLock`.
    nonisolated(unsafe) static var parseErrors: [String] = []

    private func readChips() -> SourceResult {
        var result = SourceResult()
        var node = NodeChipFamilies()
        var chipNumber: Int32 = 0
        var seenChips: Set<String> = []
        defer { energyPower.keep(only: seenChips) }
        while let chip = sensors_get_detected_chips(nil, &chipNumber) {
            let chipName = Self.chipName(chip)
            let path = chip.pointee.path.map { String(cString: $0) } ?? ""
            let pci = chip.pointee.bus.type == Int16(SENSORS_BUS_TYPE_PCI) ? Self.pciAddress(chip.pointee.addr) : nil
            var readings = readFeatures(chip, chipName: chipName)
            if let pci, Self.isAcceleratorChip(path: path) {
                var overlay = result.overlays[pci] ?? DeviceSample(identity: DeviceIdentity(accelerator: pci, vendor: "", model: ""))
                if !readings.power.contains(where: { $0.1 != nil }), let joules = readings.energy.first?.1 {
                    readings.derivedPowerWatts = energyPower.watts(chip: path, joules: joules, at: .now())
                }
                seenChips.insert(path)
                readings.apply(to: &overlay)
                result.overlays[pci] = overlay
            } else if includeAllChips {
                node.add(chip: chipName, readings)
            }
        }
        if includeAllChips { result.families = node.families() }
        return result
    }

    private func readFeatures(_ chip: UnsafePointer<sensors_chip_name>, chipName: String) -> ChipReadings {
        var readings = ChipReadings()
        var featureNumber: Int32 = 0
        while let feature = sensors_get_features(chip, &featureNumber) {
            let label: String = {
                guard let raw = sensors_get_label(chip, feature) else {
                    return feature.pointee.name.map { String(cString: $0) } ?? "unknown"
                }
                defer { free(raw) }
                return String(cString: raw)
            }()
            func value(_ type: sensors_subfeature_type) -> Double? {
                guard let sub = sensors_get_subfeature(chip, feature, type) else { return nil }
                var v = 0.0
                let rc = sensors_get_value(chip, sub.pointee.number, &v)
                if rc < 0 {
                    // ENODATA from a disabled channel is normal; say it once, not every tick.
                    problems.report("\(chipName)/\(label)", "hwmon \(chipName) \(label): \(String(cString: sensors_strerror(rc)))", level: .debug)
                    return nil
                }
                return v.isFinite ? v : nil
            }
            switch feature.pointee.type {
            case SENSORS_FEATURE_TEMP:
                if let v = value(SENSORS_SUBFEATURE_TEMP_INPUT), (-273.15...1000).contains(v) { readings.temperatures.append((label, v)) }
            case SENSORS_FEATURE_POWER:
                let power = value(SENSORS_SUBFEATURE_POWER_AVERAGE) ?? value(SENSORS_SUBFEATURE_POWER_INPUT)
                // The cap (amdgpu power1_cap), else the sustained limit (i915/xe power1_max; 0 there means none).
                let limit = value(SENSORS_SUBFEATURE_POWER_CAP) ?? value(SENSORS_SUBFEATURE_POWER_MAX)
                readings.power.append((label, power.flatMap { (0...100_000).contains($0) ? $0 : nil }, limit.flatMap { (0...100_000).contains($0) ? $0 : nil }))
            case SENSORS_FEATURE_ENERGY:
                if let v = value(SENSORS_SUBFEATURE_ENERGY_INPUT), v >= 0 { readings.energy.append((label, v)) }
            case SENSORS_FEATURE_FAN:
                if let v = value(SENSORS_SUBFEATURE_FAN_INPUT), v >= 0 { readings.fans.append((label, v)) }
            case SENSORS_FEATURE_IN:
                if let v = value(SENSORS_SUBFEATURE_IN_INPUT) { readings.voltages.append((label, v)) }
            case SENSORS_FEATURE_CURR:
                if let v = value(SENSORS_SUBFEATURE_CURR_INPUT) { readings.currents.append((label, v)) }
            default:
                break
            }
        }
        return readings
    }

    static func chipName(_ chip: UnsafePointer<sensors_chip_name>) -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        let n = sensors_snprintf_chip_name(&buffer, buffer.count, chip)
        guard n > 0 else { return "unknown" }
        return String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// libsensors' PCI `addr` is (domain << 16) + (bus << 8) + (slot << 3) + function.
    static func pciAddress(_ addr: Int32) -> String {
        let a = UInt32(bitPattern: addr)
        return hex(a >> 16, 4) + ":" + hex((a >> 8) & 0xFF, 2) + ":" + hex((a >> 3) & 0x1F, 2) + "." + String(a & 0x7)
    }

    private static func hex(_ v: UInt32, _ width: Int) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: max(0, width - s.count)) + s
    }

    /// PCI class 0x03xxxx (display) or 0x12xxxx (processing accelerator): the chip belongs to an accelerator.
    static func isAcceleratorChip(path: String) -> Bool {
        let fd = open(path + "/device/class", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 32)
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, 31) }
        guard n > 0 else { return false }
        let text = String(decoding: buffer[0..<n], as: UTF8.self).trimmingWhitespace().lowercased()
        return text.hasPrefix("0x03") || text.hasPrefix("0x12")
    }

    /// `mem` → `memory`, spaces and punctuation → `_`, lower case: sensor labels become stable label values.
    static func sensorLabel(_ label: String) -> String {
        let lowered = label.lowercased()
        var out = ""
        for scalar in lowered.unicodeScalars {
            if (scalar >= "a" && scalar <= "z") || (scalar >= "0" && scalar <= "9") || scalar == "_" {
                out.unicodeScalars.append(scalar)
            } else if !out.hasSuffix("_") {
                out.append("_")
            }
        }
        while out.hasSuffix("_") { out.removeLast() }
        // amdgpu `mem`, xe `vram`: the memory temperature; xe `pkg`: the package.
        if out == "mem" || out == "vram" { return "memory" }
        if out == "pkg" { return "package" }
        return out.isEmpty ? "unknown" : out
    }
}

/// One chip's readings in base units, as libsensors returned them (after sensors3.conf compute lines).
struct ChipReadings {
    var temperatures: [(String, Double)] = []
    /// (label, average-else-input watts, cap watts)
    var power: [(String, Double?, Double?)] = []
    var energy: [(String, Double)] = []
    var fans: [(String, Double)] = []
    var voltages: [(String, Double)] = []
    var currents: [(String, Double)] = []
    /// Watts from the first energy counter's delta, for chips with no power reading at all (`EnergyPower`).
    var derivedPowerWatts: Double?

    /// hwmon takes precedence over gpu_metrics: its values replace the owner's for the same key.
    func apply(to sample: inout DeviceSample) {
        for (label, v) in temperatures { sample.temperatureCelsius[HwmonSource.sensorLabel(label)] = v }
        // The first power channel is the board/socket power; later ones (PPT limits on new kernels, xe's package
        // channel) are not the card's draw.
        if let first = power.first(where: { $0.1 != nil || $0.2 != nil }) {
            if let watts = first.1 { sample.powerWatts = watts }
            if let cap = first.2, cap > 0 { sample.powerLimitWatts = cap }
        }
        if !power.contains(where: { $0.1 != nil }), let watts = derivedPowerWatts { sample.powerWatts = watts }
        if let joules = energy.first?.1 { sample.energyJoules = joules }
        for (label, rpm) in fans { sample.fanSpeedRPM[HwmonSource.sensorLabel(label)] = rpm }
        for (label, v) in voltages { sample.voltageVolts[HwmonSource.sensorLabel(label)] = v }
    }
}

/// Average power between two readings of a cumulative energy counter (hwmon `energy*_input`), per chip.
///
/// i915 and xe publish no power input, only energy (µJ, J after libsensors): power is ΔJ / Δt. The first reading
/// of a chip, a counter that went backwards (driver reload, wrap) and readings closer than 1 ms give no value that
/// tick — never a negative or infinite one.
struct EnergyPower {
    private var last: [String: (joules: Double, at: MonotonicInstant)] = [:]

    mutating func watts(chip: String, joules: Double, at now: MonotonicInstant) -> Double? {
        defer { last[chip] = (joules, now) }
        guard let previous = last[chip], joules >= previous.joules, now > previous.at else { return nil }
        let seconds = now.seconds(since: previous.at)
        guard seconds >= 0.001 else { return nil }
        let watts = (joules - previous.joules) / seconds
        return watts.isFinite && watts <= 100_000 ? watts : nil
    }

    /// Forgets chips that were not seen (removed, or no longer an accelerator's).
    mutating func keep(only chips: Set<String>) {
        for chip in last.keys where !chips.contains(chip) { last[chip] = nil }
    }
}

/// `hwmon_*` families for the node's non-accelerator chips (`--collector.hwmon.all`).
struct NodeChipFamilies {
    var temperature = Families.Hwmon.temperature.family()
    var power = Families.Hwmon.power.family()
    var energy = Families.Hwmon.energy.family()
    var fan = Families.Hwmon.fan.family()
    var voltage = Families.Hwmon.voltage.family()
    var current = Families.Hwmon.current.family()

    mutating func add(chip: String, _ r: ChipReadings) {
        func labels(_ sensor: String) -> [Label] { [Label("chip", chip), Label("sensor", HwmonSource.sensorLabel(sensor))] }
        for (s, v) in r.temperatures { temperature.samples.append(Sample(labels: labels(s), value: v)) }
        for (s, v, _) in r.power { if let v { power.samples.append(Sample(labels: labels(s), value: v)) } }
        for (s, v) in r.energy { energy.samples.append(Sample(labels: labels(s), value: v)) }
        for (s, v) in r.fans { fan.samples.append(Sample(labels: labels(s), value: v)) }
        for (s, v) in r.voltages { voltage.samples.append(Sample(labels: labels(s), value: v)) }
        for (s, v) in r.currents { current.samples.append(Sample(labels: labels(s), value: v)) }
    }

    func families() -> [MetricFamily] {
        [temperature, power, energy, fan, voltage, current].filter { !$0.samples.isEmpty }
    }
}
