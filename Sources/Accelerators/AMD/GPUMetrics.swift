/// amdgpu's `gpu_metrics` sysfs blob, decoded into vendor-neutral base units.
///
/// The blob is a C struct the power-management firmware layer fills (kernel
/// `drivers/gpu/drm/amd/include/kgd_pp_interface.h`, `struct gpu_metrics_vX_Y`). Its header names the layout
/// (`format_revision`, `content_revision`) and its size; every field the ASIC does not populate is all-ones
/// (`smu_cmn_init_soft_gpu_metrics` memsets the struct to 0xFF first), and those become `nil` here, never numbers.
///
/// Units (sources in brackets; anything not confirmed by the kernel is marked UNVERIFIED):
/// - temperatures °C in v1_x ["Temperature (Celsius)" in v1_4+; v1_1–v1_3 producers copy the firmware value that
///   their hwmon path multiplies by `SMU_TEMPERATURE_UNITS_PER_CENTIGRADES`, e.g. navi10, sienna_cichlid and
///   smu_v13_0_0 `get_smu_metrics_data`]; centi-°C in v2_4 ["unit: centi-Celsius"].
/// - activities: percent in v1_x [read by `gpu_busy_percent` unchanged]; centi-percent in v2_4 ["unit: centi"].
/// - socket power: W in v1_x ["Power (Watts)" in v1_4+; v1_1–v1_3 hwmon does `AverageSocketPower << 8`, i.e. W in
///   8.8 fixed point]; mW in v2_4 ["unit: mW"].
/// - energy_accumulator: 15.259 µJ = 2^-16 J per count in v1_4..v1_8 ["Energy (15.259uJ (2^-16) units)" in the
///   header and smu_v13_0_6_ppt.c]. In v1_1..v1_3 the unit depends on the ASIC that fills it: aldebaran (MI200)
///   copies a firmware counter documented "15.259uJ resolution" (smu13_driver_if_aldebaran.h), but arcturus, navi1x,
///   sienna_cichlid and smu_v13_0_0/7 copy a plain `uint32_t EnergyAccumulator` with no unit anywhere in the kernel,
///   and newer smu_v13_0_7 / smu_v14_0_2 firmware reports `UINT_MAX` (0xFFFFFFFF, not the u64 all-ones). The blob
///   does not say which ASIC wrote it, so energy is left `nil` for v1_1..v1_3 rather than exported in a guessed unit.
/// - clocks MHz; voltages mV; PCIe link speed 0.1 GT/s; PCIe width in lanes.
/// - fan speed RPM: v1_1–v1_3 copy `CurrFanSpeed`, which `*_get_fan_speed_rpm` also returns for hwmon `fan1_input`.
/// - XGMI read/write accumulators in KB, converted with 1 KB = 1024 bytes (UNVERIFIED: the header says "KiloBytes"
///   without saying which).
/// - `firmware_timestamp` is kept raw, in the firmware's 10 ns ticks ["PMFW attached timestamp (10ns resolution)"].
///
/// Byte offsets come from the kernel struct definitions, never from a hand-made table:
/// - v1_1..v1_5, the first v1_6 and v2_4: torvalds/linux `kgd_pp_interface.h` (tree 00dedab0).
/// - v1_7, v1_8, `amdgpu_xcp_metrics_v1_1`/`_v1_2`: the amd-gfx patches that added them ("drm/amd/pm: Add
///   gpu_metrics_v1_7", "… v1_8", 2025). `_v1_2` ends with `gfx_below_host_limit_total_acc[8]`, which the kernel's
///   smu_v13_0_6/_12 code fills: 440 bytes per partition (not 376, as one third-party table has it).
/// - the partitioned v1_6 and `amdgpu_xcp_metrics`: rocm_smi_lib `rocm_smi_gpu_metrics.h` and a mechanical
///   conversion of a current `kgd_pp_interface.h`, which agree (UNVERIFIED against a kernel tree copy itself).
/// - v1_9 has no fixed offsets: see `decodeAttributes`.
/// Each was then compiled with gcc on x86-64 (natural alignment, no packing) in a throwaway C file printing
/// `offsetof`/`sizeof` for every field used below; each layout's `size` is that `sizeof`.
/// Tests/AcceleratorsTests/GPUMetricsTests.swift places values at these literal offsets byte by byte, and its
/// fixtures were written by a C program through the struct members themselves.
///
/// content_revision 6 names two layouts: the first v1_6 (384 bytes: per-engine VCN/JPEG activity and
/// throttle_status) was later rewritten in place (1664 bytes: those moved into per-partition `xcp_stats`). The
/// header's `structure_size` tells them apart.
public struct GPUMetrics: Sendable, Equatable {
    /// The header's `format_revision`: 1 for the discrete-GPU layouts, 2 for the APU layout (v2_4).
    public var formatRevision: UInt8
    /// The header's `content_revision`: with ``formatRevision``, the layout (`v1_3` is 1, 3).
    public var contentRevision: UInt8

    /// `temperature_edge` (v1_1–v1_3); on APUs (v2_4) `temperature_gfx`, as the kernel's hwmon path maps it.
    public var temperatureEdgeCelsius: Double?
    /// Junction (hotspot) temperature; on APUs (v2_4) the SoC temperature, as the kernel's hwmon path maps it.
    public var temperatureHotspotCelsius: Double?
    /// `temperature_mem`.
    public var temperatureMemoryCelsius: Double?
    /// Per HBM stack, available ones only (`temperature_hbm[4]` of v1_1–v1_3).
    public var temperatureHBMCelsius: [Double]

    /// 0...1 (firmware percent / 100); not clamped, the firmware occasionally overshoots.
    public var gfxActivityRatio: Double?
    /// Memory controller (UMC) activity.
    public var memoryActivityRatio: Double?
    /// Video (UVD/VCN, which decode and encode) activity: `average_mm_activity`, or the mean over the VCN instances
    /// that report.
    public var mediaActivityRatio: Double?
    /// JPEG decoder activity: the mean over the JPEG engines that report (`jpeg_activity[]` in v1_5 and the first
    /// v1_6, the partitions' `jpeg_busy[]` from the partitioned v1_6 on, `JPEG_BUSY` in v1_9).
    public var jpegActivityRatio: Double?

    /// `average_socket_power` (v1_1–v1_3, v2_4) or `curr_socket_power` (v1_4+).
    public var socketPowerWatts: Double?
    /// Energy since driver load, where the counter's unit is known (v1_4+; see the type's documentation).
    public var energyJoules: Double?

    /// Current GFX clock; for per-XCD arrays (v1_4+) the first instance that reports.
    public var gfxClockHertz: Double?
    /// `current_uclk` (memory clock).
    public var memoryClockHertz: Double?
    /// `current_socclk`; where it is an array (v1_4 on), the first instance that reports.
    public var socClockHertz: Double?
    /// VCLK0 (video core clock).
    public var videoClockHertz: Double?
    /// `current_fan_speed` (v1_1–v1_3 only).
    public var fanSpeedRPM: Double?
    /// `pcie_link_width`, in lanes.
    public var pcieLinkWidth: Double?
    /// `pcie_link_speed` is in 0.1 GT/s.
    public var pcieLinkSpeedTransfersPerSecond: Double?
    /// `pcie_bandwidth_inst` (v1_4+), both directions together, in bytes per second. The headers say GB/s and
    /// v1_9 tags the value with its GB/s unit, so it is taken as 10^9 B/s **[UNVERIFIED on hardware: amd-smi and
    /// AMD's device-metrics-exporter document their copy of the same number as Mb/s]**; the amdgpu source drops a
    /// figure the PCIe link could not carry.
    public var pcieBandwidthBytesPerSecond: Double?

    /// The ASIC-independent throttler bits (`indep_throttle_status`, kernel `SMU_THROTTLER_*_BIT`), present in v1_3
    /// and v2_4. Layouts that only carry the ASIC-specific word leave this nil: see `asicThrottleStatus`.
    public var throttleStatus: UInt64?
    /// The ASIC-specific `throttle_status` word; its bit meanings differ per ASIC, so it is kept apart.
    public var asicThrottleStatus: UInt32?

    /// `voltage_soc` (v1_3) or `average_soc_voltage` (v2_4), from mV.
    public var voltageSoCVolts: Double?
    /// `voltage_gfx` (v1_3) or `average_gfx_voltage` (v2_4), from mV.
    public var voltageGfxVolts: Double?
    /// `voltage_mem` (v1_3 only), from mV.
    public var voltageMemoryVolts: Double?

    /// Bytes read / written per XGMI link (index = link), from the firmware's KB accumulators (v1_4+); a link that
    /// does not report is `nil` so the remaining indices keep their meaning. `nil` for layouts without XGMI counters.
    public var xgmiReadBytes: [Double?]?
    /// As ``xgmiReadBytes``, for writes.
    public var xgmiWriteBytes: [Double?]?

    /// Firmware timestamp in 10 ns ticks, raw.
    public var firmwareTimestamp: UInt64?

    /// A value with only the revisions set: every reading absent.
    public init(formatRevision: UInt8, contentRevision: UInt8) {
        self.formatRevision = formatRevision
        self.contentRevision = contentRevision
        self.temperatureHBMCelsius = []
    }

    /// Decodes a `gpu_metrics` blob. A blob longer than its layout is fine (trailing bytes are ignored); a shorter
    /// one, an unknown revision or a header size too small for the named layout throws.
    public static func parse(_ bytes: some Collection<UInt8>) throws(GPUMetricsError) -> GPUMetrics {
        let reader = GPUMetricsBytes(Array(bytes))
        guard reader.count >= 4 else {
            throw GPUMetricsError(.truncated, "\(reader.count) bytes, shorter than the 4-byte header")
        }
        let structureSize = Int(reader.u16(0))
        let format = reader.u8(2)
        let content = reader.u8(3)
        let layout = try Layout.select(format: format, content: content, structureSize: structureSize)
        guard reader.count >= structureSize else {
            throw GPUMetricsError(
                .truncated,
                "gpu_metrics v\(format)_\(content): header says \(structureSize) bytes, blob has \(reader.count)"
            )
        }
        var m = GPUMetrics(formatRevision: format, contentRevision: content)
        switch layout.kind {
        case .legacyV1(let l): decode(l, reader, into: &m)
        case .mi300(let l): decode(l, reader, into: &m)
        case .apuV24: decodeV24(reader, into: &m)
        case .attributes: try decodeAttributes(reader, structureSize: structureSize, into: &m)
        }
        return m
    }
}

/// Why a `gpu_metrics` blob could not be decoded.
public struct GPUMetricsError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A small closed set today; a struct so that adding a code is not a source break.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        /// The blob is shorter than its header, or than the size its header declares.
        public static let truncated = Code("truncated")
        /// The (format, content) revision is unknown, or known but deliberately not decoded (v1_0, v2_0–v2_3, v3_0).
        public static let unsupportedRevision = Code("unsupportedRevision")
        /// The header's `structure_size` is smaller than the layout its revision names.
        public static let sizeMismatch = Code("sizeMismatch")
        /// The code's name, as `truncated`.
        public var description: String { name }
    }

    /// The kind of failure.
    public var code: Code
    /// The revision and sizes involved, for the log.
    public var message: String

    /// Thrown by ``GPUMetrics/parse(_:)``.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// `CODE: MESSAGE`.
    public var description: String { "\(code): \(message)" }
}

// MARK: - Layouts (offsets verified with gcc, see the type's documentation)

extension GPUMetrics {
    /// v1_1..v1_3 (MI100, MI200, Navi): one value per clock domain, `temperature_hbm[4]`.
    struct LegacyV1Layout {
        var hasFirmwareTimestamp: Bool  // v1_2+
        var hasVoltagesAndIndependentThrottle: Bool  // v1_3
    }

    /// v1_4..v1_8 (MI300 class): per-instance clock arrays, XGMI counters, energy in 2^-16 J.
    struct MI300Layout {
        /// `vcn_activity[4]` (v1_4, v1_5, first v1_6); later layouts have per-partition `vcn_busy` instead.
        var vcnActivity: Int?
        /// `jpeg_activity[32]` (v1_5, first v1_6); later layouts have per-partition `jpeg_busy` instead.
        var jpegActivity: Int? = nil
        var energyAccumulator: Int
        /// ASIC-specific u32 (v1_4, v1_5, first v1_6).
        var throttleStatus: Int?
        var pcieLinkWidth: Int
        var pcieLinkSpeed: Int
        var xgmiReadDataAcc: Int
        var xgmiWriteDataAcc: Int
        /// `pcie_bandwidth_inst` (u64): 32 bytes before the XGMI accumulators in v1_4, 40 from v1_5 on, which adds
        /// the two u32 NAK counters in between (checked against the v1_4 and v1_5 structs).
        var pcieBandwidthInst: Int { xgmiReadDataAcc - (hasNAKCounters ? 40 : 32) }
        var hasNAKCounters = true
        var firmwareTimestamp: Int
        var currentGfxclk: Int
        var currentSocclk: Int
        var currentVclk0: Int
        var currentUclk: Int
        /// `xcp_stats[8]`: array offset, element size (`sizeof` of the amdgpu_xcp_metrics variant), the offset of
        /// `vcn_busy` in an element, and of `jpeg_busy` with its length (it follows `gfx_busy_inst[8]`, u32).
        var xcpStats: (offset: Int, stride: Int, vcnBusy: Int, jpegBusy: Int, jpegCount: Int)?
    }

    struct Layout {
        enum Kind {
            case legacyV1(LegacyV1Layout)
            case mi300(MI300Layout)
            case apuV24
            /// v1_9: a sequence of self-describing attributes (no fixed offsets).
            case attributes
        }
        var format: UInt8
        var content: UInt8
        /// gcc `sizeof` of the kernel struct: the minimum `structure_size` accepted.
        var size: Int
        var kind: Kind
    }

    // Shared by all v1_4+ layouts: header 0, temperature_hotspot 4, temperature_mem 6, temperature_vrsoc 8,
    // curr_socket_power 10, average_gfx_activity 12, average_umc_activity 14.
    static let layouts: [Layout] = [
        // gpu_metrics_v1_1: sizeof 96.
        Layout(format: 1, content: 1, size: 96, kind: .legacyV1(.init(
            hasFirmwareTimestamp: false, hasVoltagesAndIndependentThrottle: false))),
        // gpu_metrics_v1_2: sizeof 104 (adds firmware_timestamp at 96).
        Layout(format: 1, content: 2, size: 104, kind: .legacyV1(.init(
            hasFirmwareTimestamp: true, hasVoltagesAndIndependentThrottle: false))),
        // gpu_metrics_v1_3: sizeof 120 (adds voltage_soc/gfx/mem 104/106/108, indep_throttle_status 112).
        Layout(format: 1, content: 3, size: 120, kind: .legacyV1(.init(
            hasFirmwareTimestamp: true, hasVoltagesAndIndependentThrottle: true))),
        // gpu_metrics_v1_4: sizeof 288.
        Layout(format: 1, content: 4, size: 288, kind: .mi300(.init(
            vcnActivity: 16, energyAccumulator: 24, throttleStatus: 40, pcieLinkWidth: 48, pcieLinkSpeed: 50,
            xgmiReadDataAcc: 104, xgmiWriteDataAcc: 168, hasNAKCounters: false, firmwareTimestamp: 232,
            currentGfxclk: 240, currentSocclk: 256, currentVclk0: 264, currentUclk: 280, xcpStats: nil))),
        // gpu_metrics_v1_5: sizeof 360 (jpeg_activity[32] at 24 pushes energy to 88).
        Layout(format: 1, content: 5, size: 360, kind: .mi300(.init(
            vcnActivity: 16, jpegActivity: 24, energyAccumulator: 88, throttleStatus: 104, pcieLinkWidth: 112, pcieLinkSpeed: 114,
            xgmiReadDataAcc: 176, xgmiWriteDataAcc: 240, firmwareTimestamp: 304,
            currentGfxclk: 312, currentSocclk: 328, currentVclk0: 336, currentUclk: 352, xcpStats: nil))),
        // gpu_metrics_v1_6 as first merged: sizeof 384.
        Layout(format: 1, content: 6, size: 384, kind: .mi300(.init(
            vcnActivity: 16, jpegActivity: 24, energyAccumulator: 88, throttleStatus: 128, pcieLinkWidth: 136, pcieLinkSpeed: 138,
            xgmiReadDataAcc: 200, xgmiWriteDataAcc: 264, firmwareTimestamp: 328,
            currentGfxclk: 336, currentSocclk: 352, currentVclk0: 360, currentUclk: 376, xcpStats: nil))),
        // gpu_metrics_v1_6 rewritten with partitions: sizeof 1664; num_partition 306,
        // xcp_stats[8] of amdgpu_xcp_metrics (sizeof 168, vcn_busy at 96) at 312.
        Layout(format: 1, content: 6, size: 1664, kind: .mi300(.init(
            vcnActivity: nil, energyAccumulator: 16, throttleStatus: nil, pcieLinkWidth: 60, pcieLinkSpeed: 62,
            xgmiReadDataAcc: 128, xgmiWriteDataAcc: 192, firmwareTimestamp: 256,
            currentGfxclk: 264, currentSocclk: 280, currentVclk0: 288, currentUclk: 304,
            xcpStats: (offset: 312, stride: 168, vcnBusy: 96, jpegBusy: 32, jpegCount: 32)))),
        // gpu_metrics_v1_7: sizeof 2208; mem_max_bandwidth 16, xgmi_link_status 264, num_partition 338,
        // xcp_stats[8] of amdgpu_xcp_metrics_v1_1 (sizeof 232, vcn_busy at 96) at 344.
        Layout(format: 1, content: 7, size: 2208, kind: .mi300(.init(
            vcnActivity: nil, energyAccumulator: 24, throttleStatus: nil, pcieLinkWidth: 68, pcieLinkSpeed: 70,
            xgmiReadDataAcc: 136, xgmiWriteDataAcc: 200, firmwareTimestamp: 288,
            currentGfxclk: 296, currentSocclk: 312, currentVclk0: 320, currentUclk: 336,
            xcpStats: (offset: 344, stride: 232, vcnBusy: 96, jpegBusy: 32, jpegCount: 32)))),
        // gpu_metrics_v1_8: sizeof 3872; as v1_7 up to num_partition, then xcp_stats[8] of amdgpu_xcp_metrics_v1_2
        // (sizeof 440: jpeg_busy[40] moves vcn_busy to 112) at 344.
        Layout(format: 1, content: 8, size: 3872, kind: .mi300(.init(
            vcnActivity: nil, energyAccumulator: 24, throttleStatus: nil, pcieLinkWidth: 68, pcieLinkSpeed: 70,
            xgmiReadDataAcc: 136, xgmiWriteDataAcc: 200, firmwareTimestamp: 288,
            currentGfxclk: 296, currentSocclk: 312, currentVclk0: 320, currentUclk: 336,
            xcpStats: (offset: 344, stride: 440, vcnBusy: 112, jpegBusy: 32, jpegCount: 40)))),
        // gpu_metrics_v2_4 (APU, e.g. Van Gogh): sizeof 168.
        Layout(format: 2, content: 4, size: 168, kind: .apuV24),
        // gpu_metrics v1_9: header and attr_count (8 bytes), then attributes; the size is the producer's.
        Layout(format: 1, content: 9, size: 8, kind: .attributes),
    ]
}

extension GPUMetrics.Layout {
    /// The layout for a header. An exact size match wins (that is how the two v1_6 layouts differ); otherwise
    /// the declared size must cover the largest candidate (a newer kernel may append fields).
    static func select(format: UInt8, content: UInt8, structureSize: Int) throws(GPUMetricsError) -> Self {
        let candidates = GPUMetrics.layouts.filter { $0.format == format && $0.content == content }
        guard let largest = candidates.max(by: { $0.size < $1.size }) else {
            throw GPUMetricsError(.unsupportedRevision, unsupportedReason(format: format, content: content))
        }
        if let exact = candidates.first(where: { $0.size == structureSize }) { return exact }
        guard structureSize >= largest.size else {
            let sizes = candidates.map { String($0.size) }.joined(separator: " or ")
            throw GPUMetricsError(
                .sizeMismatch,
                "gpu_metrics v\(format)_\(content): header structure_size \(structureSize), layout needs \(sizes)"
            )
        }
        return largest
    }

    static func unsupportedReason(format: UInt8, content: UInt8) -> String {
        let name = "gpu_metrics v\(format)_\(content)"
        switch (format, content) {
        case (1, 0), (2, 0):
            return "\(name) is not naturally aligned and is not decoded"
        case (2, 1), (2, 2), (2, 3):
            return "\(name) is not decoded: its temperature, power and activity units depend on the ASIC "
                + "(the header documents them from v2_4 on)"
        case (3, _):
            return "\(name) (APU) is not decoded"
        case (1, 10...):
            return "\(name) is not decoded (newer than the attribute-encoded v1_9)"
        default:
            return "unknown \(name)"
        }
    }
}

// MARK: - Decoding

extension GPUMetrics {
    /// gpu_metrics_v1_1..v1_3 (identical up to 96): temperature_edge 4, temperature_hotspot 6, temperature_mem 8,
    /// average_gfx/umc/mm_activity 16/18/20, average_socket_power 22, energy_accumulator 24 (u64),
    /// current_gfxclk/socclk/uclk/vclk0 54/56/58/60, throttle_status 68 (u32), current_fan_speed 72,
    /// pcie_link_width 74, pcie_link_speed 76, temperature_hbm[4] 88; v1_2+: firmware_timestamp 96 (u64);
    /// v1_3: voltage_soc/gfx/mem 104/106/108, indep_throttle_status 112 (u64).
    private static func decode(_ l: LegacyV1Layout, _ r: GPUMetricsBytes, into m: inout GPUMetrics) {
        m.temperatureEdgeCelsius = r.u16Value(4)
        m.temperatureHotspotCelsius = r.u16Value(6)
        m.temperatureMemoryCelsius = r.u16Value(8)
        m.gfxActivityRatio = r.u16Value(16).map { $0 / 100 }
        m.memoryActivityRatio = r.u16Value(18).map { $0 / 100 }
        m.mediaActivityRatio = r.u16Value(20).map { $0 / 100 }
        m.socketPowerWatts = r.u16Value(22)
        // energy_accumulator (u64 at 24): unit unknown for part of the ASICs writing v1_1..v1_3, left nil.
        m.gfxClockHertz = r.u16Value(54).map { $0 * 1e6 }
        m.socClockHertz = r.u16Value(56).map { $0 * 1e6 }
        m.memoryClockHertz = r.u16Value(58).map { $0 * 1e6 }
        m.videoClockHertz = r.u16Value(60).map { $0 * 1e6 }
        m.asicThrottleStatus = r.u32Available(68)
        m.fanSpeedRPM = r.u16Value(72)
        m.pcieLinkWidth = r.u16Value(74)
        m.pcieLinkSpeedTransfersPerSecond = r.u16Value(76).map { $0 * 1e8 }
        m.temperatureHBMCelsius = (0..<4).compactMap { r.u16Value(88 + 2 * $0) }
        if l.hasFirmwareTimestamp {
            m.firmwareTimestamp = r.u64Available(96)
        }
        if l.hasVoltagesAndIndependentThrottle {
            m.voltageSoCVolts = r.u16Value(104).map { $0 / 1000 }
            m.voltageGfxVolts = r.u16Value(106).map { $0 / 1000 }
            m.voltageMemoryVolts = r.u16Value(108).map { $0 / 1000 }
            m.throttleStatus = r.u64Available(112)
        }
    }

    private static func decode(_ l: MI300Layout, _ r: GPUMetricsBytes, into m: inout GPUMetrics) {
        m.temperatureHotspotCelsius = r.u16Value(4)
        m.temperatureMemoryCelsius = r.u16Value(6)
        m.socketPowerWatts = r.u16Value(10)
        m.gfxActivityRatio = r.u16Value(12).map { $0 / 100 }
        m.memoryActivityRatio = r.u16Value(14).map { $0 / 100 }

        var vcn: [Double] = []
        if let offset = l.vcnActivity {
            vcn = (0..<4).compactMap { r.u16Value(offset + 2 * $0) }
        } else if let xcp = l.xcpStats {
            // Unpopulated partitions stay all-ones, so every reporting VCN of every partition counts once.
            for partition in 0..<8 {
                let base = xcp.offset + partition * xcp.stride + xcp.vcnBusy
                vcn += (0..<4).compactMap { r.u16Value(base + 2 * $0) }
            }
        }
        if !vcn.isEmpty { m.mediaActivityRatio = vcn.reduce(0, +) / Double(vcn.count) / 100 }
        var jpeg: [Double] = []
        if let offset = l.jpegActivity {
            jpeg = (0..<32).compactMap { r.u16Value(offset + 2 * $0) }
        } else if let xcp = l.xcpStats {
            for partition in 0..<8 {
                let base = xcp.offset + partition * xcp.stride + xcp.jpegBusy
                jpeg += (0..<xcp.jpegCount).compactMap { r.u16Value(base + 2 * $0) }
            }
        }
        if !jpeg.isEmpty { m.jpegActivityRatio = jpeg.reduce(0, +) / Double(jpeg.count) / 100 }

        m.energyJoules = r.u64Available(l.energyAccumulator).map { Double($0) / 65536 }
        if let offset = l.throttleStatus { m.asicThrottleStatus = r.u32Available(offset) }
        m.pcieLinkWidth = r.u16Value(l.pcieLinkWidth)
        m.pcieLinkSpeedTransfersPerSecond = r.u16Value(l.pcieLinkSpeed).map { $0 * 1e8 }

        let read = (0..<8).map { r.u64Available(l.xgmiReadDataAcc + 8 * $0).map { Double($0) * 1024 } }
        let write = (0..<8).map { r.u64Available(l.xgmiWriteDataAcc + 8 * $0).map { Double($0) * 1024 } }
        m.pcieBandwidthBytesPerSecond = r.u64Available(l.pcieBandwidthInst).map { Double($0) * 1e9 }
        m.xgmiReadBytes = read.contains { $0 != nil } ? read : nil
        m.xgmiWriteBytes = write.contains { $0 != nil } ? write : nil

        m.firmwareTimestamp = r.u64Available(l.firmwareTimestamp)
        m.gfxClockHertz = firstAvailable(r, l.currentGfxclk, count: 8).map { $0 * 1e6 }
        m.socClockHertz = firstAvailable(r, l.currentSocclk, count: 4).map { $0 * 1e6 }
        m.videoClockHertz = firstAvailable(r, l.currentVclk0, count: 4).map { $0 * 1e6 }
        m.memoryClockHertz = r.u16Value(l.currentUclk).map { $0 * 1e6 }
    }

    /// gpu_metrics_v2_4: temperature_gfx 4, temperature_soc 6 (centi-°C), average_gfx_activity 28,
    /// average_mm_activity 30 (centi-%), average_socket_power 40 (mW), current_gfxclk 76, current_socclk 78,
    /// current_uclk 80, current_vclk 84 (MHz), throttle_status 108 (u32), indep_throttle_status 120 (u64),
    /// average_soc_voltage 154, average_gfx_voltage 156 (mV). Edge = gfx and hotspot = SoC, as the APU hwmon path
    /// maps them. `fan_pwm` is not an RPM and is not read.
    private static func decodeV24(_ r: GPUMetricsBytes, into m: inout GPUMetrics) {
        m.temperatureEdgeCelsius = r.u16Value(4).map { $0 / 100 }
        m.temperatureHotspotCelsius = r.u16Value(6).map { $0 / 100 }
        m.gfxActivityRatio = r.u16Value(28).map { $0 / 10000 }
        m.mediaActivityRatio = r.u16Value(30).map { $0 / 10000 }
        m.socketPowerWatts = r.u16Value(40).map { $0 / 1000 }
        m.gfxClockHertz = r.u16Value(76).map { $0 * 1e6 }
        m.socClockHertz = r.u16Value(78).map { $0 * 1e6 }
        m.memoryClockHertz = r.u16Value(80).map { $0 * 1e6 }
        m.videoClockHertz = r.u16Value(84).map { $0 * 1e6 }
        m.asicThrottleStatus = r.u32Available(108)
        m.throttleStatus = r.u64Available(120)
        m.voltageSoCVolts = r.u16Value(154).map { $0 / 1000 }
        m.voltageGfxVolts = r.u16Value(156).map { $0 / 1000 }
    }

    /// gpu_metrics v1_9 (SMUv13.0.6 and 13.0.12: MI300 class and MI350 class on kernels with the attribute format):
    /// header, `int attr_count`, then `attr_count` packed attributes, each a u64 encoding followed by its values.
    /// The encoding is `unit << 24 | type << 20 | id << 10 | count` (kernel `AMDGPU_METRICS_ENC_ATTR`); the type
    /// gives the value width (u8/s8, u16/s16, u32/s32, u64/s64), all-ones is "not available" as in every layout, and
    /// the unit says what the number means, so a value is converted by the unit it carries, never by a guess:
    /// ids, types and units from the amd-gfx series "drm/amd/pm: Add gpu metrics 1.9" / "Use gpu metrics 1.9 for
    /// SMUv13.0.6" (Sept 2025; the u64 encoding word of its v4 helper macros, `struct __packed`)
    /// **[UNVERIFIED against a released kernel and hardware]**. An attribute whose unit is not
    /// the kind its id needs is dropped; an unknown id is skipped (its size is in its encoding); an attribute that
    /// runs past `structure_size`, or a count beyond the blob, fails the blob as truncated.
    private static func decodeAttributes(_ r: GPUMetricsBytes, structureSize: Int, into m: inout GPUMetrics) throws(GPUMetricsError) {
        let declared = Int(Int32(bitPattern: r.load(4, as: UInt32.self)))
        guard declared >= 0, declared <= 4096 else {
            throw GPUMetricsError(.truncated, "gpu_metrics v1_9: attr_count \(declared)")
        }
        var attributes: [Int: MetricsAttribute] = [:]
        var offset = 8
        for index in 0..<declared {
            guard offset + 8 <= structureSize else {
                throw GPUMetricsError(.truncated, "gpu_metrics v1_9: attribute \(index) of \(declared) starts past \(structureSize) bytes")
            }
            let encoding = r.load(offset, as: UInt64.self)
            let unit = Int((encoding >> 24) & 0xFF), type = Int((encoding >> 20) & 0xF)
            let id = Int((encoding >> 10) & 0x3FF), count = Int(encoding & 0x3FF)
            guard type < MetricsAttribute.widths.count else {
                throw GPUMetricsError(.truncated, "gpu_metrics v1_9: attribute \(index) has unknown type \(type)")
            }
            let width = MetricsAttribute.widths[type]
            let end = offset + 8 + width * count
            guard end <= structureSize else {
                throw GPUMetricsError(.truncated, "gpu_metrics v1_9: attribute \(index) (id \(id)) ends at \(end), past \(structureSize) bytes")
            }
            let values: [UInt64?] = (0..<count).map { i in
                let at = offset + 8 + width * i
                let raw: UInt64 = switch width {
                case 1: UInt64(r.u8(at))
                case 2: UInt64(r.load(at, as: UInt16.self))
                case 4: UInt64(r.load(at, as: UInt32.self))
                default: r.load(at, as: UInt64.self)
                }
                let allOnes: UInt64 = width == 8 ? .max : (1 << (8 * width)) - 1
                return raw == allOnes ? nil : raw
            }
            // The first occurrence of an id counts (the kernel writes each once).
            if attributes[id] == nil { attributes[id] = MetricsAttribute(unit: unit, signed: type % 2 == 1, width: width, values: values) }
            offset = end
        }

        typealias A = MetricsAttribute
        func scalar(_ id: Int, _ kind: A.Kind) -> Double? { attributes[id]?.values(as: kind).first ?? nil }
        func array(_ id: Int, _ kind: A.Kind) -> [Double?] { attributes[id]?.values(as: kind) ?? [] }
        func mean(_ values: [Double?]) -> Double? {
            let present = values.compactMap { $0 }
            return present.isEmpty ? nil : present.reduce(0, +) / Double(present.count)
        }

        m.temperatureHotspotCelsius = scalar(A.temperatureHotspot, .celsius)
        m.temperatureMemoryCelsius = scalar(A.temperatureMemory, .celsius)
        m.socketPowerWatts = scalar(A.currentSocketPower, .watts)
        m.gfxActivityRatio = scalar(A.averageGfxActivity, .ratio)
        m.memoryActivityRatio = scalar(A.averageUMCActivity, .ratio)
        // The energy counter's encoding carries no unit; the producers fill it in 15.259 µJ (2^-16 J), as for
        // v1_4..v1_8 ("Energy counter reported in 15.259uJ (2^-16) units", smu_v13_0_6/12_ppt.c).
        m.energyJoules = scalar(A.energyAccumulator, .count).map { $0 / 65536 }
        m.pcieLinkWidth = scalar(A.pcieLinkWidth, .count)
        m.pcieLinkSpeedTransfersPerSecond = scalar(A.pcieLinkSpeed, .transfersPerSecond)
        m.pcieBandwidthBytesPerSecond = scalar(A.pcieBandwidthInst, .bytesPerSecond)
        let read = array(A.xgmiReadDataAcc, .bytes), write = array(A.xgmiWriteDataAcc, .bytes)
        m.xgmiReadBytes = read.contains { $0 != nil } ? read : nil
        m.xgmiWriteBytes = write.contains { $0 != nil } ? write : nil
        if let raw = attributes[A.firmwareTimestamp], raw.unit == A.unitTime10ns, let ticks = raw.values.first ?? nil {
            m.firmwareTimestamp = ticks
        }
        m.gfxClockHertz = array(A.currentGfxclk, .hertz).lazy.compactMap { $0 }.first
        m.socClockHertz = array(A.currentSocclk, .hertz).lazy.compactMap { $0 }.first
        m.videoClockHertz = array(A.currentVclk0, .hertz).lazy.compactMap { $0 }.first
        m.memoryClockHertz = scalar(A.currentUclk, .hertz)
        m.mediaActivityRatio = mean(array(A.vcnBusy, .ratio))
        m.jpegActivityRatio = mean(array(A.jpegBusy, .ratio))
    }

    private static func firstAvailable(_ r: GPUMetricsBytes, _ offset: Int, count: Int) -> Double? {
        for i in 0..<count {
            if let v = r.u16Value(offset + 2 * i) { return v }
        }
        return nil
    }
}

/// One v1_9 attribute: its unit code and raw values (nil: all-ones, not available).
struct MetricsAttribute {
    var unit: Int
    var signed: Bool
    /// Bytes per value.
    var width: Int
    var values: [UInt64?]

    /// Value widths by type code: U8, S8, U16, S16, U32, S32, U64, S64 (`enum amdgpu_metrics_attr_type`).
    static let widths = [1, 1, 2, 2, 4, 4, 8, 8]

    // `enum amdgpu_metrics_attr_id` (only the ids read here).
    static let temperatureHotspot = 0, temperatureMemory = 1, currentSocketPower = 3, averageGfxActivity = 4
    static let averageUMCActivity = 5, energyAccumulator = 7, pcieLinkWidth = 16, pcieLinkSpeed = 17
    static let pcieBandwidthInst = 23, xgmiReadDataAcc = 29, xgmiWriteDataAcc = 30, firmwareTimestamp = 32
    static let currentGfxclk = 33, currentSocclk = 34, currentVclk0 = 35, currentUclk = 37
    static let jpegBusy = 41, vcnBusy = 42

    // `enum amdgpu_metrics_attr_unit`: NONE 0, CLOCK_1 (MHz) 1, TEMP_1 (°C) 2, POWER_1 (W) 3, TIME_1 (ns) 4,
    // TIME_2 (10 ns) 5, SPEED_1 (GT/s) 6, SPEED_2 (0.1 GT/s) 7, BW_1 (GB/s) 8, DATA_1 (KB) 9, PERCENT 10.
    static let unitTime10ns = 5

    /// What a reading must be; each accepts only the units that measure it, and converts to base units.
    enum Kind {
        case count, hertz, celsius, watts, transfersPerSecond, bytesPerSecond, bytes, ratio

        func scale(unit: Int) -> Double? {
            switch (self, unit) {
            case (.count, 0): return 1
            case (.hertz, 1): return 1e6
            case (.celsius, 2): return 1
            case (.watts, 3): return 1
            case (.transfersPerSecond, 6): return 1e9
            case (.transfersPerSecond, 7): return 1e8
            case (.bytesPerSecond, 8): return 1e9
            // "KB": taken as 1024 bytes, as for the v1_4..v1_8 accumulators (UNVERIFIED which).
            case (.bytes, 9): return 1024
            case (.ratio, 10): return 0.01
            default: return nil
            }
        }
    }

    /// The values in base units; empty when the unit does not measure `kind`. Signed values are sign-extended.
    func values(as kind: Kind) -> [Double?] {
        guard let scale = kind.scale(unit: unit) else { return [] }
        let shift = UInt64(64 - 8 * width)
        return values.map { raw in
            raw.map { raw in
                let value = signed ? Double(Int64(bitPattern: raw << shift) >> Int64(shift)) : Double(raw)
                // A fractional scale (percent's 0.01) divides by its reciprocal, so 82 % is exactly 0.82.
                return scale < 1 ? value / (1 / scale).rounded() : value * scale
            }
        }
    }
}

/// Little-endian unaligned loads. Every read is bounds-checked and an out-of-range read looks like the
/// "not available" sentinel, so a layout mistake can cost a value but never crash a scrape.
private struct GPUMetricsBytes {
    let bytes: [UInt8]
    init(_ bytes: [UInt8]) { self.bytes = bytes }
    var count: Int { bytes.count }

    func u8(_ offset: Int) -> UInt8 {
        guard offset >= 0, offset < bytes.count else { return .max }
        return bytes[offset]
    }

    func load<T: FixedWidthInteger>(_ offset: Int, as type: T.Type) -> T {
        guard offset >= 0, offset <= bytes.count - MemoryLayout<T>.size else { return .max }
        return bytes.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: T.self)) }
    }

    func u16(_ offset: Int) -> UInt16 { load(offset, as: UInt16.self) }

    /// A u16 reading as a Double, nil for 0xFFFF.
    func u16Value(_ offset: Int) -> Double? {
        let v = load(offset, as: UInt16.self)
        return v == .max ? nil : Double(v)
    }

    func u32Available(_ offset: Int) -> UInt32? {
        let v = load(offset, as: UInt32.self)
        return v == .max ? nil : v
    }

    func u64Available(_ offset: Int) -> UInt64? {
        let v = load(offset, as: UInt64.self)
        return v == .max ? nil : v
    }
}
