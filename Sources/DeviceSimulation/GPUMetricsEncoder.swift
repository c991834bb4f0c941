public import Accelerators

/// Writes `gpu_metrics` blobs the way the kernel does, for fixtures, the simulator and benchmarks.
///
/// The blob starts as all-ones (as `smu_cmn_init_soft_gpu_metrics` memsets it), gets the header, then every
/// non-nil field of the value. `nil` therefore reads back as "not available". Fields the chosen layout does not
/// carry are dropped: `temperatureEdgeCelsius` in v1_4+, `energyJoules` in v1_1..v1_3 (whose unit the parser does
/// not trust), `throttleStatus` where there is no `indep_throttle_status`, and so on. Per-instance arrays get the
/// value in their first slot (media activity in `vcn_activity[0]` or `xcp_stats[0].vcn_busy[0]`).
///
/// Its byte offsets are a second transcription of the gcc `offsetof` output, independent of the parser's table:
/// a slip in either shows up as a failed round trip.
public enum GPUMetricsEncoder {
    /// The (format, content) revisions `encode` writes; v1_6 is the partitioned (1664-byte) layout.
    public static let supportedRevisions: [(format: UInt8, content: UInt8)] = [
        (1, 1), (1, 2), (1, 3), (1, 4), (1, 5), (1, 6), (1, 7), (1, 8), (1, 9), (2, 4),
    ]

    /// A blob of the layout `m.formatRevision`/`m.contentRevision` name. Traps on a revision it cannot write or a
    /// value that does not fit its field (or would read back as the sentinel): both are mistakes in the caller.
    public static func encode(_ m: GPUMetrics) -> [UInt8] {
        switch (m.formatRevision, m.contentRevision) {
        case (1, 1): return legacyV1(m, content: 1, size: 96)
        case (1, 2): return legacyV1(m, content: 2, size: 104)
        case (1, 3): return legacyV1(m, content: 3, size: 120)
        case (1, 4): return mi300(m, content: 4, .v14)
        case (1, 5): return mi300(m, content: 5, .v15)
        case (1, 6): return mi300(m, content: 6, .v16)
        case (1, 7): return mi300(m, content: 7, .v17)
        case (1, 8): return mi300(m, content: 8, .v18)
        case (1, 9): return attributes(m)
        case (2, 4): return apuV24(m)
        default:
            preconditionFailure(
                "GPUMetricsEncoder: gpu_metrics v\(m.formatRevision)_\(m.contentRevision) is not supported"
            )
        }
    }

    // MARK: Layouts

    private static func legacyV1(_ m: GPUMetrics, content: UInt8, size: Int) -> [UInt8] {
        var w = Writer(format: 1, content: content, size: size)
        w.u16(4, m.temperatureEdgeCelsius, scale: 1)
        w.u16(6, m.temperatureHotspotCelsius, scale: 1)
        w.u16(8, m.temperatureMemoryCelsius, scale: 1)
        w.u16(16, m.gfxActivityRatio, scale: 100)
        w.u16(18, m.memoryActivityRatio, scale: 100)
        w.u16(20, m.mediaActivityRatio, scale: 100)
        w.u16(22, m.socketPowerWatts, scale: 1)
        w.u16(54, m.gfxClockHertz, scale: 1e-6)
        w.u16(56, m.socClockHertz, scale: 1e-6)
        w.u16(58, m.memoryClockHertz, scale: 1e-6)
        w.u16(60, m.videoClockHertz, scale: 1e-6)
        w.u32(68, m.asicThrottleStatus)
        w.u16(72, m.fanSpeedRPM, scale: 1)
        w.u16(74, m.pcieLinkWidth, scale: 1)
        w.u16(76, m.pcieLinkSpeedTransfersPerSecond, scale: 1e-8)
        precondition(m.temperatureHBMCelsius.count <= 4, "GPUMetricsEncoder: at most 4 HBM temperatures")
        for (i, t) in m.temperatureHBMCelsius.enumerated() { w.u16(88 + 2 * i, t, scale: 1) }
        if content >= 2 { w.u64(96, m.firmwareTimestamp) }
        if content >= 3 {
            w.u16(104, m.voltageSoCVolts, scale: 1000)
            w.u16(106, m.voltageGfxVolts, scale: 1000)
            w.u16(108, m.voltageMemoryVolts, scale: 1000)
            w.u64(112, m.throttleStatus)
        }
        return w.bytes
    }

    private struct MI300 {
        var size: Int
        var vcnActivity: Int?
        var energy: Int
        var throttle: Int?
        var pcieWidth: Int
        var xgmiRead: Int
        var xgmiWrite: Int
        /// `pcie_bandwidth_inst`, counted field by field in each struct (not derived from the XGMI offset as the
        /// decoder does, so the two cross-check).
        var pcieBandwidthInst: Int
        var firmwareTimestamp: Int
        var gfxclk: Int
        var socclk: Int
        var vclk0: Int
        var uclk: Int
        /// Offset of `xcp_stats[0].vcn_busy[0]`.
        var xcpVcnBusy: Int?
        /// `jpeg_activity[0]` (v1_5, first v1_6).
        var jpegActivity: Int? = nil
        /// From `xcp_stats[0].jpeg_busy[0]` (right after `gfx_busy_inst[8]`, u32, at 32) to `vcn_busy[0]`.
        var xcpJPEGBusyToVCNBusy = 64

        // From gcc offsetof on gpu_metrics_v1_4 … v1_8 (x86-64).
        static let v14 = MI300(size: 288, vcnActivity: 16, energy: 24, throttle: 40, pcieWidth: 48, xgmiRead: 104,
                               xgmiWrite: 168, pcieBandwidthInst: 72, firmwareTimestamp: 232, gfxclk: 240, socclk: 256, vclk0: 264, uclk: 280,
                               xcpVcnBusy: nil)
        static let v15 = MI300(size: 360, vcnActivity: 16, energy: 88, throttle: 104, pcieWidth: 112, xgmiRead: 176,
                               xgmiWrite: 240, pcieBandwidthInst: 136, firmwareTimestamp: 304, gfxclk: 312, socclk: 328, vclk0: 336, uclk: 352,
                               xcpVcnBusy: nil, jpegActivity: 24)
        static let v16 = MI300(size: 1664, vcnActivity: nil, energy: 16, throttle: nil, pcieWidth: 60, xgmiRead: 128,
                               xgmiWrite: 192, pcieBandwidthInst: 88, firmwareTimestamp: 256, gfxclk: 264, socclk: 280, vclk0: 288, uclk: 304,
                               xcpVcnBusy: 312 + 96)
        static let v17 = MI300(size: 2208, vcnActivity: nil, energy: 24, throttle: nil, pcieWidth: 68, xgmiRead: 136,
                               xgmiWrite: 200, pcieBandwidthInst: 96, firmwareTimestamp: 288, gfxclk: 296, socclk: 312, vclk0: 320, uclk: 336,
                               xcpVcnBusy: 344 + 96)
        static let v18 = MI300(size: 3872, vcnActivity: nil, energy: 24, throttle: nil, pcieWidth: 68, xgmiRead: 136,
                               xgmiWrite: 200, pcieBandwidthInst: 96, firmwareTimestamp: 288, gfxclk: 296, socclk: 312, vclk0: 320, uclk: 336,
                               xcpVcnBusy: 344 + 112, xcpJPEGBusyToVCNBusy: 80)
    }

    private static func mi300(_ m: GPUMetrics, content: UInt8, _ l: MI300) -> [UInt8] {
        var w = Writer(format: 1, content: content, size: l.size)
        w.u16(4, m.temperatureHotspotCelsius, scale: 1)
        w.u16(6, m.temperatureMemoryCelsius, scale: 1)
        w.u16(10, m.socketPowerWatts, scale: 1)
        w.u16(12, m.gfxActivityRatio, scale: 100)
        w.u16(14, m.memoryActivityRatio, scale: 100)
        if let offset = l.vcnActivity ?? l.xcpVcnBusy { w.u16(offset, m.mediaActivityRatio, scale: 100) }
        if let offset = l.jpegActivity ?? l.xcpVcnBusy.map({ $0 - l.xcpJPEGBusyToVCNBusy }) {
            w.u16(offset, m.jpegActivityRatio, scale: 100)
        } else {
            precondition(m.jpegActivityRatio == nil || content < 5, "GPUMetricsEncoder: no JPEG activity slot")
        }
        w.u64(l.energy, m.energyJoules.map { integer($0 * 65536, max: UInt64.max - 1, "energyJoules") })
        if let offset = l.throttle { w.u32(offset, m.asicThrottleStatus) }
        w.u16(l.pcieWidth, m.pcieLinkWidth, scale: 1)
        w.u16(l.pcieWidth + 2, m.pcieLinkSpeedTransfersPerSecond, scale: 1e-8)
        w.u64(l.pcieBandwidthInst, m.pcieBandwidthBytesPerSecond.map { integer($0 / 1e9, max: UInt64.max - 1, "pcieBandwidthBytesPerSecond") })
        xgmi(&w, l.xgmiRead, m.xgmiReadBytes, "xgmiReadBytes")
        xgmi(&w, l.xgmiWrite, m.xgmiWriteBytes, "xgmiWriteBytes")
        w.u64(l.firmwareTimestamp, m.firmwareTimestamp)
        w.u16(l.gfxclk, m.gfxClockHertz, scale: 1e-6)
        w.u16(l.socclk, m.socClockHertz, scale: 1e-6)
        w.u16(l.vclk0, m.videoClockHertz, scale: 1e-6)
        w.u16(l.uclk, m.memoryClockHertz, scale: 1e-6)
        return w.bytes
    }

    private static func xgmi(_ w: inout Writer, _ offset: Int, _ links: [Double?]?, _ name: String) {
        guard let links else { return }
        precondition(links.count <= 8, "GPUMetricsEncoder: at most 8 XGMI links in \(name)")
        for (i, bytes) in links.enumerated() {
            w.u64(offset + 8 * i, bytes.map { integer($0 / 1024, max: UInt64.max - 1, name) })
        }
    }

    /// gpu_metrics v1_9 as SMUv13.0.6 fills it: every attribute of its field list, in order, each a u64 encoding
    /// (`unit << 24 | type << 20 | id << 10 | count`) then `count` packed values, after the header and
    /// `attr_count`. Transcribed from the patch's `SMU_13_0_6_METRICS_FIELDS`, independently of the parser's table.
    private static func attributes(_ m: GPUMetrics) -> [UInt8] {
        // (id, unit, type, count): type 2 = U16, 4 = U32, 6 = U64; units as `enum amdgpu_metrics_attr_unit`.
        let fields: [(id: UInt64, unit: UInt64, type: UInt64, count: Int)] = [
            (0, 2, 2, 1), (1, 2, 2, 1), (2, 2, 2, 1), (3, 3, 2, 1), (4, 10, 2, 1), (5, 10, 2, 1), (6, 8, 6, 1),
            (7, 0, 6, 1), (8, 4, 6, 1), (9, 0, 4, 1), (10, 0, 4, 1), (11, 0, 4, 1), (12, 0, 4, 1), (13, 0, 4, 1),
            (14, 0, 4, 1), (15, 0, 4, 1), (16, 0, 2, 1), (17, 7, 2, 1), (18, 0, 2, 1), (19, 6, 2, 1), (20, 10, 4, 1),
            (21, 10, 4, 1), (22, 10, 6, 1), (23, 8, 6, 1), (24, 0, 6, 1), (25, 0, 6, 1), (26, 0, 6, 1), (27, 0, 4, 1),
            (28, 0, 4, 1), (29, 9, 6, 8), (30, 9, 6, 8), (31, 0, 2, 8), (32, 5, 6, 1), (33, 1, 2, 8), (34, 1, 2, 4),
            (35, 1, 2, 4), (36, 1, 2, 4), (37, 1, 2, 1), (39, 0, 4, 1), (40, 10, 4, 8), (41, 10, 2, 40), (42, 10, 2, 4),
            (43, 10, 6, 8), (44, 0, 6, 8), (45, 0, 6, 8), (46, 0, 6, 8), (47, 0, 6, 8),
        ]
        let widths: [UInt64: Int] = [2: 2, 4: 4, 6: 8]
        let size = 8 + fields.reduce(0) { $0 + 8 + widths[$1.type]! * $1.count }
        var w = Writer(format: 1, content: 9, size: size)
        w.put(4, Int32(fields.count))
        func u16(_ v: Double?, _ scale: Double) -> UInt64? { v.map { integer($0 * scale, max: UInt64(UInt16.max - 1), "v1_9 u16") } }
        func u64(_ v: Double?, _ scale: Double) -> UInt64? { v.map { integer($0 * scale, max: UInt64.max - 1, "v1_9 u64") } }
        var values: [UInt64: [UInt64?]] = [
            0: [u16(m.temperatureHotspotCelsius, 1)], 1: [u16(m.temperatureMemoryCelsius, 1)],
            3: [u16(m.socketPowerWatts, 1)], 4: [u16(m.gfxActivityRatio, 100)], 5: [u16(m.memoryActivityRatio, 100)],
            7: [u64(m.energyJoules, 65536)], 16: [u16(m.pcieLinkWidth, 1)],
            17: [u16(m.pcieLinkSpeedTransfersPerSecond, 1e-8)], 23: [u64(m.pcieBandwidthBytesPerSecond, 1e-9)],
            32: [m.firmwareTimestamp], 33: [u16(m.gfxClockHertz, 1e-6)], 34: [u16(m.socClockHertz, 1e-6)],
            35: [u16(m.videoClockHertz, 1e-6)], 37: [u16(m.memoryClockHertz, 1e-6)],
            41: [u16(m.jpegActivityRatio, 100)], 42: [u16(m.mediaActivityRatio, 100)],
        ]
        if let read = m.xgmiReadBytes { values[29] = read.map { u64($0, 1.0 / 1024) } }
        if let write = m.xgmiWriteBytes { values[30] = write.map { u64($0, 1.0 / 1024) } }
        var offset = 8
        for f in fields {
            w.put(offset, f.unit << 24 | f.type << 20 | f.id << 10 | UInt64(f.count))
            offset += 8
            let width = widths[f.type]!
            for (i, value) in (values[f.id] ?? []).prefix(f.count).enumerated() {
                guard let value else { continue }
                switch width {
                case 2: w.put(offset + 2 * i, UInt16(value))
                case 4: w.put(offset + 4 * i, UInt32(value))
                default: w.u64(offset + 8 * i, value)
                }
            }
            offset += width * f.count
        }
        return w.bytes
    }

    /// gpu_metrics_v2_4 (sizeof 168): centi-°C temperatures, centi-% activities, mW power.
    private static func apuV24(_ m: GPUMetrics) -> [UInt8] {
        var w = Writer(format: 2, content: 4, size: 168)
        w.u16(4, m.temperatureEdgeCelsius, scale: 100)
        w.u16(6, m.temperatureHotspotCelsius, scale: 100)
        w.u16(28, m.gfxActivityRatio, scale: 10000)
        w.u16(30, m.mediaActivityRatio, scale: 10000)
        w.u16(40, m.socketPowerWatts, scale: 1000)
        w.u16(76, m.gfxClockHertz, scale: 1e-6)
        w.u16(78, m.socClockHertz, scale: 1e-6)
        w.u16(80, m.memoryClockHertz, scale: 1e-6)
        w.u16(84, m.videoClockHertz, scale: 1e-6)
        w.u32(108, m.asicThrottleStatus)
        w.u64(120, m.throttleStatus)
        w.u16(154, m.voltageSoCVolts, scale: 1000)
        w.u16(156, m.voltageGfxVolts, scale: 1000)
        return w.bytes
    }

    // MARK: Writing

    private static func integer(_ value: Double, max: UInt64, _ what: String) -> UInt64 {
        let rounded = value.rounded()
        precondition(
            rounded.isFinite && rounded >= 0 && rounded <= Double(max),
            "GPUMetricsEncoder: \(what) \(value) does not fit its field"
        )
        return UInt64(rounded)
    }

    private struct Writer {
        var bytes: [UInt8]

        init(format: UInt8, content: UInt8, size: Int) {
            bytes = [UInt8](repeating: 0xFF, count: size)
            put(0, UInt16(size))
            bytes[2] = format
            bytes[3] = content
        }

        mutating func put<T: FixedWidthInteger>(_ offset: Int, _ value: T) {
            withUnsafeBytes(of: value.littleEndian) { raw in
                for (i, b) in raw.enumerated() { bytes[offset + i] = b }
            }
        }

        /// `value * scale`, rounded, into a u16; 0xFFFF is the sentinel and so not a value.
        mutating func u16(_ offset: Int, _ value: Double?, scale: Double) {
            guard let value else { return }
            let raw = GPUMetricsEncoder.integer(value * scale, max: UInt64(UInt16.max - 1), "value at offset \(offset)")
            put(offset, UInt16(raw))
        }

        mutating func u32(_ offset: Int, _ value: UInt32?) {
            guard let value else { return }
            precondition(value != .max, "GPUMetricsEncoder: 0xFFFFFFFF at offset \(offset) reads back as not available")
            put(offset, value)
        }

        mutating func u64(_ offset: Int, _ value: UInt64?) {
            guard let value else { return }
            precondition(value != .max, "GPUMetricsEncoder: all-ones at offset \(offset) reads back as not available")
            put(offset, value)
        }
    }
}
