/// One DRM client as one `/proc/PID/fdinfo/FD` shows it (kernel `Documentation/gpu/drm-usage-stats.rst`).
///
/// Lives in Accelerators (not Attribution) because two users need it: the Intel GPU source sums clients into
/// device-level engine utilization, and attribution splits the same clients by pod.
public struct DRMClientStats: Sendable, Equatable {
    /// `drm-driver` (`amdgpu`, `i915`, `xe`, `habanalabs`…).
    public var driver: String
    /// Canonical PCI address from `drm-pdev`; `nil` when the driver does not print it.
    public var pdev: String?
    /// `drm-client-id`: unique per open of the device; nil when the driver does not print it.
    public var clientID: UInt64?
    /// `drm-engine-<e>: <n> ns`: cumulative busy time.
    public var engineNanoseconds: [String: UInt64] = [:]
    /// `drm-engine-capacity-<e>`: identical engines behind one key; 1 when absent.
    public var engineCapacity: [String: UInt64] = [:]
    /// `drm-cycles-<e>` / `drm-total-cycles-<e>` (xe): busy and elapsed GPU cycles.
    public var cycles: [String: UInt64] = [:]
    /// `drm-total-cycles-<e>` (xe): elapsed cycles, the denominator for ``cycles``.
    public var totalCycles: [String: UInt64] = [:]
    /// Bytes by region (`vram`, `gtt`, `vram0`, `local0`, `system0`, …).
    public var memory: [String: RegionMemory] = [:]

    /// Counters and memory start empty; the parser fills them line by line.
    public init(driver: String, pdev: String? = nil, clientID: UInt64? = nil) {
        self.driver = driver
        self.pdev = pdev
        self.clientID = clientID
    }

    /// `drm-<kind>-<region>` byte counts of one memory region; nil where the driver prints none.
    public struct RegionMemory: Sendable, Equatable {
        /// `drm-total-<region>`: every buffer the client requested in the region, shared and private.
        public var total: UInt64?
        /// `drm-shared-<region>`: buffers shared with another file.
        public var shared: UInt64?
        /// Also what the deprecated `drm-memory-<region>` means.
        public var resident: UInt64?
        /// `drm-purgeable-<region>`.
        public var purgeable: UInt64?
        /// `drm-active-<region>`: buffers active on one or more engines.
        public var active: UInt64?
        /// Every count absent.
        public init() {}
    }

    /// Device memory the client holds: resident (else total) bytes of the device-local regions — `vram*` (amdgpu,
    /// xe), `local*` (i915) — or of every region for drivers whose memory is all device memory (habanalabs).
    public var deviceMemoryBytes: UInt64? {
        let deviceLocal = memory.keys.filter { $0.hasPrefix("vram") || $0.hasPrefix("local") }
        let regions = driver == "habanalabs" ? Array(memory.keys) : deviceLocal
        var sum: UInt64?
        for r in regions {
            guard let m = memory[r], let v = m.resident ?? m.total else { continue }
            sum = (sum ?? 0) &+ v
        }
        return sum
    }
}

/// Parses fdinfo text. Not a DRM fd (no `drm-driver:`) → `nil`. Unknown keys, garbage lines and unparsable values
/// are skipped one by one; they never invalidate the rest.
public enum DRMFdinfoParser {
    /// The client one fdinfo file describes; nil when it is not a DRM fd.
    public static func parse(_ text: String) -> DRMClientStats? {
        var stats = DRMClientStats(driver: "")
        var sawDriver = false
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let key = line[..<colon]
            guard key.hasPrefix("drm-") else { continue }
            let value = line[line.index(after: colon)...].split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard let first = value.first else { continue }
            let unit = value.count > 1 ? value[1] : nil
            let name = key.dropFirst(4)
            switch name {
            case "driver":
                stats.driver = String(first)
                sawDriver = true
            case "pdev":
                stats.pdev = DRMPCIAddress.normalize(String(first))
            case "client-id":
                stats.clientID = UInt64(first)
            default:
                if let e = name.dropPrefix("engine-capacity-") {
                    if let v = UInt64(first), v > 0 { stats.engineCapacity[e] = v }
                } else if let e = name.dropPrefix("engine-") {
                    if let v = UInt64(first), unit == nil || unit == "ns" { stats.engineNanoseconds[e] = v }
                } else if let e = name.dropPrefix("total-cycles-") {
                    if let v = UInt64(first) { stats.totalCycles[e] = v }
                } else if let e = name.dropPrefix("cycles-") {
                    if let v = UInt64(first) { stats.cycles[e] = v }
                } else if let (kind, region) = memoryKey(name), let bytes = bytes(first, unit) {
                    var m = stats.memory[region] ?? .init()
                    switch kind {
                    case "total": m.total = bytes
                    case "shared": m.shared = bytes
                    case "resident", "memory": m.resident = m.resident ?? bytes
                    case "purgeable": m.purgeable = bytes
                    default: m.active = bytes
                    }
                    stats.memory[region] = m
                }
            }
        }
        return sawDriver && !stats.driver.isEmpty ? stats : nil
    }

    /// `total-<region>` etc.; `memory-<region>` is the deprecated alias of `resident-`. `maxfreq-` is not memory.
    static func memoryKey(_ name: Substring) -> (String, String)? {
        for kind in ["total", "shared", "resident", "purgeable", "active", "memory"] {
            if let region = name.dropPrefix(kind + "-"), !region.isEmpty { return (kind, region) }
        }
        return nil
    }

    /// `<n>` bytes, `<n> KiB`, `<n> MiB` (and `GiB`, which no driver prints yet). Any other unit: unknown, `nil`.
    static func bytes(_ number: Substring, _ unit: Substring?) -> UInt64? {
        guard let n = UInt64(number) else { return nil }
        let scale: UInt64
        switch unit {
        case nil: scale = 1
        case "KiB"?: scale = 1 << 10
        case "MiB"?: scale = 1 << 20
        case "GiB"?: scale = 1 << 30
        default: return nil
        }
        let (v, overflow) = n.multipliedReportingOverflow(by: scale)
        return overflow ? nil : v
    }
}

/// `drm-pdev` as the kernel prints PCI addresses (`0000:18:00.0`): lower case, four-digit domain, `nil` for
/// anything that is not an address. The same spelling rules as Attribution's `PCIAddress.normalize`, restated here
/// because the parser moved below Attribution (Attribution's tests cover both through the parser).
enum DRMPCIAddress {
    static func normalize(_ text: String) -> String? {
        let parts = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == ":" || $0 == "." })
        let fields: [Substring]
        switch parts.count {
        case 4: fields = Array(parts)
        case 3: fields = ["0"] + parts
        default: return nil
        }
        guard fields[1].count == 2, fields[2].count == 2 else { return nil }
        var values: [UInt32] = []
        for (field, limit) in zip(fields, [8, 2, 2, 1]) {
            guard !field.isEmpty, field.count <= limit, let v = UInt32(field, radix: 16) else { return nil }
            values.append(v)
        }
        guard values[2] < 32, values[3] < 8 else { return nil }
        func hex(_ v: UInt32, _ width: Int) -> String {
            let d = String(v, radix: 16)
            return d.count >= width ? d : String(repeating: "0", count: width - d.count) + d
        }
        return hex(values[0], 4) + ":" + hex(values[1], 2) + ":" + hex(values[2], 2) + "." + hex(values[3], 1)
    }
}

extension Substring {
    func dropPrefix(_ prefix: String) -> String? {
        hasPrefix(prefix) ? String(dropFirst(prefix.count)) : nil
    }
}
