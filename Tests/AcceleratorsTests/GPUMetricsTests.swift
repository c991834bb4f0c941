import DeviceSimulation
import Accelerators
import AccelMetricsTesting
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The parser against three independent sources of truth: the encoder (round trips), blobs built here byte by byte at
/// the offsets gcc printed for the kernel structs, and fixtures a C program wrote through the struct members
/// (Tests/Fixtures/gpu_metrics/*.bin, described next to `fixtureV1_3` below). A wrong offset shared by the parser and
/// the encoder still fails the last two.
@Suite struct GPUMetricsTests {
    struct Revision: CustomTestStringConvertible, Sendable {
        var format: UInt8
        var content: UInt8
        var size: Int
        var testDescription: String { "v\(format)_\(content)" }
    }

    /// Every layout the encoder writes, with gcc's sizeof.
    static let revisions: [Revision] = [
        .init(format: 1, content: 1, size: 96), .init(format: 1, content: 2, size: 104),
        .init(format: 1, content: 3, size: 120), .init(format: 1, content: 4, size: 288),
        .init(format: 1, content: 5, size: 360), .init(format: 1, content: 6, size: 1664),
        .init(format: 1, content: 7, size: 2208), .init(format: 1, content: 8, size: 3872),
        .init(format: 2, content: 4, size: 168),
        // v1_9 has no C struct: the size of SMUv13.0.6's attribute list (47 attributes).
        .init(format: 1, content: 9, size: 1150),
    ]

    /// A value using every field the revision's layout carries, with values each layout can hold exactly.
    static func sample(_ r: Revision) -> GPUMetrics {
        var m = GPUMetrics(formatRevision: r.format, contentRevision: r.content)
        switch (r.format, r.content) {
        case (1, 1...3):
            m.temperatureEdgeCelsius = 45
            m.temperatureHotspotCelsius = 62
            m.temperatureMemoryCelsius = 58
            m.temperatureHBMCelsius = [51, 52, 54]
            m.gfxActivityRatio = 0.73
            m.memoryActivityRatio = 0.21
            m.mediaActivityRatio = 0.05
            m.socketPowerWatts = 245
            m.gfxClockHertz = 1700e6
            m.socClockHertz = 1000e6
            m.memoryClockHertz = 1600e6
            m.videoClockHertz = 1200e6
            m.asicThrottleStatus = 5
            m.fanSpeedRPM = 1850
            m.pcieLinkWidth = 16
            m.pcieLinkSpeedTransfersPerSecond = 16e9
            if r.content >= 2 { m.firmwareTimestamp = 987_654_321 }
            if r.content >= 3 {
                m.voltageSoCVolts = 0.85
                m.voltageGfxVolts = 0.9
                m.voltageMemoryVolts = 1.2
                m.throttleStatus = 1 << 32 | 1
            }
        case (1, 4...9):
            m.temperatureHotspotCelsius = 70
            m.temperatureMemoryCelsius = 66
            m.socketPowerWatts = 550
            m.gfxActivityRatio = 0.88
            m.memoryActivityRatio = 0.34
            m.mediaActivityRatio = 0.1
            if r.content >= 5 { m.jpegActivityRatio = 0.25 }
            m.pcieBandwidthBytesPerSecond = 12e9
            m.energyJoules = 1000.5
            if r.content <= 5 { m.asicThrottleStatus = 3 }
            m.pcieLinkWidth = 16
            m.pcieLinkSpeedTransfersPerSecond = 32e9
            m.xgmiReadBytes = [1_024_000, nil, 3_072_000, nil, nil, nil, nil, 8_192_000]
            m.xgmiWriteBytes = [nil, 2_048_000, nil, nil, nil, nil, nil, nil]
            m.firmwareTimestamp = 555_555
            m.gfxClockHertz = 2100e6
            m.socClockHertz = 1200e6
            m.videoClockHertz = 1100e6
            m.memoryClockHertz = 1300e6
        case (2, 4):
            m.temperatureEdgeCelsius = 45.12
            m.temperatureHotspotCelsius = 50
            m.gfxActivityRatio = 0.4567
            m.mediaActivityRatio = 0.1234
            m.socketPowerWatts = 15.25
            m.gfxClockHertz = 1600e6
            m.socClockHertz = 800e6
            m.memoryClockHertz = 3200e6
            m.videoClockHertz = 900e6
            m.asicThrottleStatus = 0x10
            m.throttleStatus = 1 << 4
            m.voltageSoCVolts = 0.95
            m.voltageGfxVolts = 1.05
        default:
            Issue.record("no sample for \(r.testDescription)")
        }
        return m
    }

    // MARK: Round trips

    @Test(arguments: revisions)
    func roundTripWithValues(_ r: Revision) throws {
        let m = Self.sample(r)
        let blob = GPUMetricsEncoder.encode(m)
        #expect(blob.count == r.size)
        #expect(blob[0] == UInt8(r.size & 0xFF) && blob[1] == UInt8(r.size >> 8))
        #expect(blob[2] == r.format && blob[3] == r.content)
        let parsed = try GPUMetrics.parse(blob)
        #expect(parsed == m)
        #expect(GPUMetricsEncoder.encode(parsed) == blob)
    }

    @Test(arguments: revisions)
    func roundTripAllNil(_ r: Revision) throws {
        let m = GPUMetrics(formatRevision: r.format, contentRevision: r.content)
        let blob = GPUMetricsEncoder.encode(m)
        #expect(blob.count == r.size)
        // v1_9 carries its attribute count and encodings; every value is still all-ones.
        if r.content != 9 { #expect(blob.dropFirst(4).allSatisfy { $0 == 0xFF }) }
        #expect(try GPUMetrics.parse(blob) == m)
    }

    @Test(arguments: revisions)
    func longerBlobIsFineAndSlicesWork(_ r: Revision) throws {
        let blob = GPUMetricsEncoder.encode(Self.sample(r))
        let padded = [0xAA, 0xBB] + blob + [UInt8](repeating: 0x42, count: 100)
        #expect(try GPUMetrics.parse(padded[2...]) == Self.sample(r))
    }

    // MARK: Errors

    @Test(arguments: revisions)
    func truncatedBlobs(_ r: Revision) {
        let blob = GPUMetricsEncoder.encode(Self.sample(r))
        for cut in [blob.count - 1, blob.count / 2, 8, 4] {
            #expect(throws: GPUMetricsError.self) { try GPUMetrics.parse(blob.prefix(cut)) }
            do {
                _ = try GPUMetrics.parse(blob.prefix(cut))
            } catch {
                #expect(error.code == .truncated, "\(r.testDescription) cut at \(cut): \(error)")
            }
        }
    }

    @Test func tooShortForHeader() {
        for bytes in [[], [0x78], [0x78, 0x00, 0x01]] as [[UInt8]] {
            #expect(throws: GPUMetricsError(.truncated, "\(bytes.count) bytes, shorter than the 4-byte header")) {
                try GPUMetrics.parse(bytes)
            }
        }
    }

    @Test(arguments: [(1, 0), (1, 10), (1, 42), (2, 0), (2, 1), (2, 2), (2, 3), (3, 0), (0, 0), (255, 255)]
        as [(UInt8, UInt8)])
    func unsupportedRevision(_ format: UInt8, _ content: UInt8) {
        var blob = [UInt8](repeating: 0xFF, count: 4096)
        blob[0] = 0x00
        blob[1] = 0x01  // structure_size 256
        blob[2] = format
        blob[3] = content
        do {
            _ = try GPUMetrics.parse(blob)
            Issue.record("v\(format)_\(content) parsed")
        } catch {
            #expect(error.code == .unsupportedRevision)
            #expect(error.description.contains("v\(format)_\(content)"))
        }
    }

    @Test func headerSizeTooSmallForLayout() {
        let cases: [(UInt8, UInt8, Int)] = [
            (1, 3, 100), (1, 4, 200), (1, 6, 1000), (1, 6, 383), (1, 8, 3360), (2, 4, 152),
        ]
        for (format, content, declared) in cases {
            var blob = [UInt8](repeating: 0xFF, count: 4096)
            putU16(&blob, 0, UInt16(declared))
            blob[2] = format
            blob[3] = content
            do {
                _ = try GPUMetrics.parse(blob)
                Issue.record("v\(format)_\(content) with structure_size \(declared) parsed")
            } catch {
                #expect(error.code == .sizeMismatch, "\(error)")
            }
        }
    }

    /// A newer kernel may append fields: a larger structure_size decodes with the known prefix.
    @Test func headerSizeLargerThanLayout() throws {
        var blob = GPUMetricsEncoder.encode(Self.sample(Self.revisions[2])) + [UInt8](repeating: 0xFF, count: 8)
        putU16(&blob, 0, 128)
        #expect(try GPUMetrics.parse(blob) == Self.sample(Self.revisions[2]))
    }

    // MARK: Sentinels

    @Test func sentinelsAreNeverNumbers() throws {
        // v1_3 with the u16, u32 and u64 sentinels in place and real values beside them.
        var b = blob(size: 120, format: 1, content: 3)
        putU16(&b, 4, 0xFFFF)  // temperature_edge
        putU16(&b, 6, 0xFFFE)  // temperature_hotspot: one below the sentinel is a value
        putU16(&b, 88, 0xFFFF)  // temperature_hbm[0]
        putU16(&b, 90, 40)  // temperature_hbm[1]
        putU32(&b, 68, 0xFFFF_FFFF)  // throttle_status
        putU64(&b, 96, .max)  // firmware_timestamp
        putU64(&b, 112, 0)  // indep_throttle_status: zero is a value
        putU64(&b, 24, 123)  // energy_accumulator: unit unknown in v1_3, never exported
        let m = try GPUMetrics.parse(b)
        #expect(m.temperatureEdgeCelsius == nil)
        #expect(m.temperatureHotspotCelsius == 65534)
        #expect(m.temperatureHBMCelsius == [40])
        #expect(m.asicThrottleStatus == nil)
        #expect(m.firmwareTimestamp == nil)
        #expect(m.throttleStatus == 0)
        #expect(m.energyJoules == nil)

        // v1_8: energy and every XGMI link all-ones, every VCN of every partition 0xFFFF.
        let m8 = try GPUMetrics.parse(blob(size: 3872, format: 1, content: 8))
        #expect(m8 == GPUMetrics(formatRevision: 1, contentRevision: 8))
        #expect(m8.xgmiReadBytes == nil && m8.mediaActivityRatio == nil && m8.energyJoules == nil)
    }

    // MARK: Byte-level layouts (offsets from gcc offsetof on the kernel structs, written here by hand)

    @Test func handBuiltV1_3() throws {
        var b = blob(size: 120, format: 1, content: 3)
        putU16(&b, 4, 45)  // temperature_edge
        putU16(&b, 6, 62)  // temperature_hotspot
        putU16(&b, 8, 58)  // temperature_mem
        putU16(&b, 16, 73)  // average_gfx_activity
        putU16(&b, 18, 21)  // average_umc_activity
        putU16(&b, 20, 5)  // average_mm_activity
        putU16(&b, 22, 245)  // average_socket_power
        putU16(&b, 54, 1700)  // current_gfxclk
        putU16(&b, 56, 1000)  // current_socclk
        putU16(&b, 58, 1600)  // current_uclk
        putU16(&b, 60, 1200)  // current_vclk0
        putU32(&b, 68, 5)  // throttle_status
        putU16(&b, 72, 1850)  // current_fan_speed
        putU16(&b, 74, 16)  // pcie_link_width
        putU16(&b, 76, 160)  // pcie_link_speed, 0.1 GT/s
        putU16(&b, 88, 51)  // temperature_hbm[0]
        putU16(&b, 90, 52)
        putU16(&b, 94, 54)  // temperature_hbm[3]
        putU64(&b, 96, 987_654_321)  // firmware_timestamp
        putU16(&b, 104, 850)  // voltage_soc
        putU16(&b, 106, 900)  // voltage_gfx
        putU16(&b, 108, 1200)  // voltage_mem
        putU64(&b, 112, 1 << 32 | 1)  // indep_throttle_status
        #expect(try GPUMetrics.parse(b) == Self.fixtureV1_3)
    }

    @Test func handBuiltV1_6Partitioned() throws {
        var b = blob(size: 1664, format: 1, content: 6)
        putU16(&b, 4, 70)  // temperature_hotspot
        putU16(&b, 6, 66)  // temperature_mem
        putU16(&b, 8, 55)  // temperature_vrsoc (not exported)
        putU16(&b, 10, 550)  // curr_socket_power
        putU16(&b, 12, 88)  // average_gfx_activity
        putU16(&b, 14, 34)  // average_umc_activity
        putU64(&b, 16, 65536 * 1000 + 32768)  // energy_accumulator, 2^-16 J
        putU16(&b, 60, 16)  // pcie_link_width
        putU16(&b, 62, 320)  // pcie_link_speed
        for i in 0..<8 where i != 3 {
            putU64(&b, 128 + 8 * i, 1000 * UInt64(i + 1))  // xgmi_read_data_acc[i], KB
            putU64(&b, 192 + 8 * i, 2000 * UInt64(i + 1))  // xgmi_write_data_acc[i]
        }
        putU64(&b, 256, 555_555)  // firmware_timestamp
        for i in 1..<8 { putU16(&b, 264 + 2 * i, 2100) }  // current_gfxclk[1...], [0] unavailable
        putU16(&b, 280, 1200)  // current_socclk[0]
        putU16(&b, 288, 1100)  // current_vclk0[0]
        putU16(&b, 304, 1300)  // current_uclk
        putU16(&b, 306, 2)  // num_partition
        // xcp_stats at 312, elements of 168 bytes, vcn_busy at +96.
        putU16(&b, 312 + 96, 10)
        putU16(&b, 312 + 96 + 2, 20)
        putU16(&b, 312 + 168 + 96, 30)
        putU16(&b, 312 + 168 + 32, 99)  // xcp_stats[1].jpeg_busy[0]
        putU16(&b, 312 + 32 + 62, 49)  // xcp_stats[0].jpeg_busy[31]
        var expected = Self.fixtureV1_6
        expected.jpegActivityRatio = 0.74
        #expect(try GPUMetrics.parse(b) == expected)
    }

    /// The first v1_6 (384 bytes) has per-engine VCN activity and throttle_status, and no partitions.
    @Test func handBuiltV1_6First() throws {
        var b = blob(size: 384, format: 1, content: 6)
        putU16(&b, 4, 71)  // temperature_hotspot
        putU16(&b, 10, 600)  // curr_socket_power
        putU16(&b, 12, 50)  // average_gfx_activity
        putU16(&b, 16, 20)  // vcn_activity[0]
        putU16(&b, 20, 40)  // vcn_activity[2]
        putU16(&b, 24, 77)  // jpeg_activity[0]
        putU16(&b, 86, 33)  // jpeg_activity[31]
        putU64(&b, 88, 65536 * 3)  // energy_accumulator
        putU32(&b, 128, 0x20)  // throttle_status
        putU16(&b, 136, 16)  // pcie_link_width
        putU16(&b, 138, 250)  // pcie_link_speed
        putU64(&b, 200, 7)  // xgmi_read_data_acc[0]
        putU64(&b, 328, 99)  // firmware_timestamp
        putU16(&b, 336, 2000)  // current_gfxclk[0]
        putU16(&b, 376, 1300)  // current_uclk
        var expected = GPUMetrics(formatRevision: 1, contentRevision: 6)
        expected.temperatureHotspotCelsius = 71
        expected.socketPowerWatts = 600
        expected.gfxActivityRatio = 0.5
        expected.mediaActivityRatio = 0.3
        expected.jpegActivityRatio = 0.55
        expected.energyJoules = 3
        expected.asicThrottleStatus = 0x20
        expected.pcieLinkWidth = 16
        expected.pcieLinkSpeedTransfersPerSecond = 25e9
        expected.xgmiReadBytes = [7168, nil, nil, nil, nil, nil, nil, nil]
        expected.firmwareTimestamp = 99
        expected.gfxClockHertz = 2000e6
        expected.memoryClockHertz = 1300e6
        #expect(try GPUMetrics.parse(b) == expected)
    }

    @Test func handBuiltV1_5() throws {
        var b = blob(size: 360, format: 1, content: 5)
        putU16(&b, 18, 30)  // vcn_activity[1]
        putU16(&b, 24 + 2 * 5, 60)  // jpeg_activity[5]
        putU64(&b, 88, 65536 / 2)  // energy_accumulator
        putU32(&b, 104, 9)  // throttle_status
        putU16(&b, 112, 8)  // pcie_link_width
        putU64(&b, 240 + 56, 1)  // xgmi_write_data_acc[7]
        putU64(&b, 304, 5)  // firmware_timestamp
        putU16(&b, 312 + 14, 1900)  // current_gfxclk[7]
        putU16(&b, 352, 1000)  // current_uclk
        var expected = GPUMetrics(formatRevision: 1, contentRevision: 5)
        expected.mediaActivityRatio = 0.3
        expected.jpegActivityRatio = 0.6
        expected.energyJoules = 0.5
        expected.asicThrottleStatus = 9
        expected.pcieLinkWidth = 8
        expected.xgmiWriteBytes = [nil, nil, nil, nil, nil, nil, nil, 1024]
        expected.firmwareTimestamp = 5
        expected.gfxClockHertz = 1900e6
        expected.memoryClockHertz = 1000e6
        #expect(try GPUMetrics.parse(b) == expected)
    }

    @Test func handBuiltV1_8() throws {
        var b = blob(size: 3872, format: 1, content: 8)
        putU64(&b, 16, 8000)  // mem_max_bandwidth (not exported)
        putU64(&b, 24, 65536 * 10)  // energy_accumulator
        putU16(&b, 68, 16)  // pcie_link_width
        putU16(&b, 70, 320)  // pcie_link_speed
        putU64(&b, 136, 5)  // xgmi_read_data_acc[0]
        putU16(&b, 264, 1)  // xgmi_link_status[0] (not exported)
        putU64(&b, 288, 777)  // firmware_timestamp
        putU16(&b, 296, 2400)  // current_gfxclk[0]
        putU16(&b, 336, 2000)  // current_uclk
        // xcp_stats at 344, elements of 440 bytes, vcn_busy at +112.
        putU16(&b, 344 + 112, 40)
        putU16(&b, 344 + 7 * 440 + 112 + 6, 80)  // xcp_stats[7].vcn_busy[3]
        putU16(&b, 344 + 440 + 32 + 2 * 39, 20)  // xcp_stats[1].jpeg_busy[39]
        putU32(&b, 3864, 2)  // pcie_lc_perf_other_end_recovery (not exported)
        var expected = GPUMetrics(formatRevision: 1, contentRevision: 8)
        expected.energyJoules = 10
        expected.pcieLinkWidth = 16
        expected.pcieLinkSpeedTransfersPerSecond = 32e9
        expected.xgmiReadBytes = [5120, nil, nil, nil, nil, nil, nil, nil]
        expected.firmwareTimestamp = 777
        expected.gfxClockHertz = 2400e6
        expected.memoryClockHertz = 2000e6
        expected.mediaActivityRatio = 0.6
        expected.jpegActivityRatio = 0.2
        #expect(try GPUMetrics.parse(b) == expected)
    }

    @Test func handBuiltV2_4() throws {
        var b = blob(size: 168, format: 2, content: 4)
        putU16(&b, 4, 4512)  // temperature_gfx, centi-°C
        putU16(&b, 6, 5000)  // temperature_soc
        putU16(&b, 28, 4567)  // average_gfx_activity, centi-%
        putU16(&b, 30, 1234)  // average_mm_activity
        putU16(&b, 40, 15250)  // average_socket_power, mW
        putU16(&b, 76, 1600)  // current_gfxclk
        putU16(&b, 78, 800)  // current_socclk
        putU16(&b, 80, 3200)  // current_uclk
        putU16(&b, 84, 900)  // current_vclk
        putU32(&b, 108, 0x10)  // throttle_status
        putU16(&b, 112, 100)  // fan_pwm (not an RPM, not exported)
        putU64(&b, 120, 1 << 4)  // indep_throttle_status
        putU16(&b, 154, 950)  // average_soc_voltage, mV
        putU16(&b, 156, 1050)  // average_gfx_voltage
        #expect(try GPUMetrics.parse(b) == Self.sample(Self.revisions[8]))
    }

    /// v1_9: attributes in any order, each `u64 unit << 24 | type << 20 | id << 10 | count` then packed values.
    /// Units come from the encoding: a link speed tagged GT/s (unit 6) reads ×1e9, a clock tagged MHz ×1e6.
    @Test func handBuiltV1_9() throws {
        var attributes: [UInt8] = []
        func attribute(id: UInt64, unit: UInt64, type: UInt64, _ values: [UInt64], width: Int) {
            var encoding = (unit << 24 | type << 20 | id << 10 | UInt64(values.count)).littleEndian
            withUnsafeBytes(of: &encoding) { attributes += $0 }
            for v in values { attributes += (0..<width).map { UInt8(truncatingIfNeeded: v >> (8 * UInt64($0))) } }
        }
        attribute(id: 23, unit: 8, type: 6, [14], width: 8)  // pcie_bandwidth_inst, GB/s
        attribute(id: 0, unit: 2, type: 2, [73], width: 2)  // temperature_hotspot, °C
        attribute(id: 60, unit: 0, type: 2, [1, 2, 3], width: 2)  // an id this parser does not know: skipped
        attribute(id: 29, unit: 9, type: 6, [4, .max, 6], width: 8)  // xgmi_read_data_acc, KB; link 1 unavailable
        attribute(id: 17, unit: 6, type: 2, [32], width: 2)  // pcie_link_speed tagged GT/s
        attribute(id: 4, unit: 10, type: 2, [0xFFFF], width: 2)  // average_gfx_activity unavailable
        attribute(id: 5, unit: 3, type: 2, [40], width: 2)  // average_umc_activity tagged watts: not a ratio, dropped
        attribute(id: 42, unit: 10, type: 2, [10, 0xFFFF, 30, 0xFFFF], width: 2)  // vcn_busy
        attribute(id: 41, unit: 10, type: 2, [50] + Array(repeating: 0xFFFF, count: 39), width: 2)  // jpeg_busy
        attribute(id: 33, unit: 1, type: 2, [0xFFFF, 2100], width: 2)  // current_gfxclk, MHz
        attribute(id: 7, unit: 0, type: 6, [65536 * 5], width: 8)  // energy_accumulator, 2^-16 J
        attribute(id: 3, unit: 3, type: 3, [UInt64(UInt16(bitPattern: -2))], width: 2)  // a signed (s16) power
        var b = blob(size: 8 + attributes.count, format: 1, content: 9)
        putU32(&b, 4, 12)  // attr_count
        b.replaceSubrange(8..., with: attributes)
        var expected = GPUMetrics(formatRevision: 1, contentRevision: 9)
        expected.pcieBandwidthBytesPerSecond = 14e9
        expected.temperatureHotspotCelsius = 73
        expected.xgmiReadBytes = [4096, nil, 6144]
        expected.pcieLinkSpeedTransfersPerSecond = 32e9
        expected.mediaActivityRatio = 0.2
        expected.jpegActivityRatio = 0.5
        expected.gfxClockHertz = 2100e6
        expected.energyJoules = 5
        expected.socketPowerWatts = -2
        #expect(try GPUMetrics.parse(b) == expected)

        // Counts and sizes that do not fit the declared structure fail the blob, never read past it.
        var short = b
        putU32(&short, 4, 13)
        #expect(throws: GPUMetricsError.self) { try GPUMetrics.parse(short) }
        var overrun = b
        putU16(&overrun, 0, UInt16(b.count - 1))
        #expect(throws: GPUMetricsError.self) { try GPUMetrics.parse(overrun) }
        var badType = blob(size: 16, format: 1, content: 9)
        putU32(&badType, 4, 1)
        putU64(&badType, 8, 9 << 20 | 1)
        #expect(throws: GPUMetricsError.self) { try GPUMetrics.parse(badType) }
        var negative = blob(size: 8, format: 1, content: 9)
        putU32(&negative, 4, 0xFFFF_FFFF)
        #expect(throws: GPUMetricsError.self) { try GPUMetrics.parse(negative) }
    }

    // MARK: Fixtures written by gcc through the kernel struct members
    //
    // Generated once by a throwaway C program (not kept) that declared the kernel structs, memset them to 0xFF as
    // smu_cmn_init_soft_gpu_metrics does, set the fields named below and fwrite'd sizeof(struct) bytes.

    /// v1_3.bin: temperature_edge 45, hotspot 62, mem 58, vrgfx 50, average_gfx/umc/mm_activity 73/21/5,
    /// average_socket_power 245, energy_accumulator 123456789, current_gfxclk/socclk/uclk/vclk0 1700/1000/1600/1200,
    /// throttle_status 5, current_fan_speed 1850, pcie 16 × 160, temperature_hbm {51, 52, -, 54},
    /// firmware_timestamp 987654321, voltage_soc/gfx/mem 850/900/1200, indep_throttle_status (1 << 32) | 1.
    static let fixtureV1_3: GPUMetrics = {
        var m = sample(revisions[2])
        m.temperatureHBMCelsius = [51, 52, 54]
        return m
    }()

    /// v1_6.bin (partitioned layout): hotspot 70, mem 66, vrsoc 55, curr_socket_power 550, activities 88/34,
    /// energy 1000.5 J, pcie 16 × 320, xgmi_read/write_data_acc[i] = 1000/2000 × (i + 1) KB except link 3,
    /// firmware_timestamp 555555, current_gfxclk[1...7] 2100 ([0] unavailable), socclk[0] 1200, vclk0[0] 1100,
    /// uclk 1300, num_partition 2, xcp_stats[0].vcn_busy {10, 20}, xcp_stats[1].vcn_busy {30},
    /// xcp_stats[1].jpeg_busy[0] 99 (it pins jpeg_busy at +32 in the 168-byte element) and
    /// xcp_stats[0].gfx_busy_inst[0] 77 (not exported).
    static let fixtureV1_6: GPUMetrics = {
        var m = GPUMetrics(formatRevision: 1, contentRevision: 6)
        m.temperatureHotspotCelsius = 70
        m.temperatureMemoryCelsius = 66
        m.socketPowerWatts = 550
        m.gfxActivityRatio = 0.88
        m.memoryActivityRatio = 0.34
        m.mediaActivityRatio = 0.2
        m.jpegActivityRatio = 0.99
        m.energyJoules = 1000.5
        m.pcieLinkWidth = 16
        m.pcieLinkSpeedTransfersPerSecond = 32e9
        m.xgmiReadBytes = kilobytes(per: 1000, skipping: 3)
        m.xgmiWriteBytes = kilobytes(per: 2000, skipping: 3)
        m.firmwareTimestamp = 555_555
        m.gfxClockHertz = 2100e6
        m.socClockHertz = 1200e6
        m.videoClockHertz = 1100e6
        m.memoryClockHertz = 1300e6
        return m
    }()

    /// v1_8.bin: hotspot 81, mem 77, curr_socket_power 1010, activities 95/60, mem_max_bandwidth 8000,
    /// energy 123456 J, pcie 16 × 320, xgmi_read_data_acc[0] 5 KB, xgmi_write_data_acc[7] 6 KB,
    /// firmware_timestamp 777, gfxclk[0] 2400, socclk[0] 1500, vclk0[0] 1400, uclk 2000, num_partition 8,
    /// xcp_stats[0].vcn_busy {40, -, 60}, xcp_stats[7].vcn_busy[3] 80, xcp_stats[7].jpeg_busy[39] 12 (the last JPEG
    /// slot of the last partition: it pins jpeg_busy[40] at +32 in the 440-byte element).
    static let fixtureV1_8: GPUMetrics = {
        var m = GPUMetrics(formatRevision: 1, contentRevision: 8)
        m.temperatureHotspotCelsius = 81
        m.temperatureMemoryCelsius = 77
        m.socketPowerWatts = 1010
        m.gfxActivityRatio = 0.95
        m.memoryActivityRatio = 0.6
        m.mediaActivityRatio = 0.6
        m.jpegActivityRatio = 0.12
        m.energyJoules = 123_456
        m.pcieLinkWidth = 16
        m.pcieLinkSpeedTransfersPerSecond = 32e9
        m.xgmiReadBytes = [5120, nil, nil, nil, nil, nil, nil, nil]
        m.xgmiWriteBytes = [nil, nil, nil, nil, nil, nil, nil, 6144]
        m.firmwareTimestamp = 777
        m.gfxClockHertz = 2400e6
        m.socClockHertz = 1500e6
        m.videoClockHertz = 1400e6
        m.memoryClockHertz = 2000e6
        return m
    }()

    /// `step × (link + 1)` KB per link, in bytes, with one link not reporting.
    static func kilobytes(per step: Int, skipping skipped: Int) -> [Double?] {
        (0..<8).map { (link: Int) -> Double? in
            link == skipped ? nil : Double(step * (link + 1) * 1024)
        }
    }

    @Test(arguments: [("v1_3.bin", 120), ("v1_6.bin", 1664), ("v1_8.bin", 3872)])
    func gccWrittenFixture(_ name: String, _ size: Int) throws {
        let bytes = try #require(Self.fixture(name))
        #expect(bytes.count == size)
        let expected = switch name {
        case "v1_3.bin": Self.fixtureV1_3
        case "v1_6.bin": Self.fixtureV1_6
        default: Self.fixtureV1_8
        }
        #expect(try GPUMetrics.parse(bytes) == expected)
    }

    /// The encoder against the same gcc-written bytes, field by field: where the fixture's fields are all ones the
    /// encoder writes, the encoding of the parsed value is the fixture itself.
    @Test func encoderMatchesGccFixtureV1_3() throws {
        var bytes = try #require(Self.fixture("v1_3.bin"))
        // Fields the value does not carry: temperature_vrgfx 10, energy_accumulator 24, system_clock_counter 32,
        // average_gfxclk_frequency 40, gfx/mem_activity_acc 80/84. With them reset, the blobs are equal.
        putU16(&bytes, 10, 0xFFFF)
        putU64(&bytes, 24, .max)
        putU64(&bytes, 32, .max)
        putU16(&bytes, 40, 0xFFFF)
        putU32(&bytes, 80, 0xFFFF_FFFF)
        putU32(&bytes, 84, 0xFFFF_FFFF)
        // The fixture leaves temperature_hbm[2] unavailable; the parsed value packs stacks, so rebuild it in place.
        var m = try GPUMetrics.parse(bytes)
        m.temperatureHBMCelsius = []
        var expected = GPUMetricsEncoder.encode(m)
        putU16(&expected, 88, 51)
        putU16(&expected, 90, 52)
        putU16(&expected, 94, 54)
        #expect(expected == bytes)
    }

    // MARK: Garbage never crashes

    @Test func randomAndMangledBlobsNeverCrash() {
        var rng = SeededRandom(seed: 0x6770_755F_6D65_7472)
        let valid = Self.revisions.map { GPUMetricsEncoder.encode(Self.sample($0)) }
        var parsed = 0
        var failed = 0
        for i in 0..<4000 {
            var bytes: [UInt8]
            switch i % 4 {
            case 0:  // pure noise, any length up to past a page
                bytes = (0..<Int(rng.next() % 4200)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            case 1:  // a valid blob cut anywhere
                let v = valid[Int(rng.next() % UInt64(valid.count))]
                bytes = Array(v.prefix(Int(rng.next() % UInt64(v.count + 1))))
            case 2:  // a valid blob with random bytes flipped, header included
                bytes = valid[Int(rng.next() % UInt64(valid.count))]
                for _ in 0..<(1 + rng.next() % 16) {
                    bytes[Int(rng.next() % UInt64(bytes.count))] ^= UInt8(truncatingIfNeeded: rng.next() | 1)
                }
            default:  // a plausible header (known revision, any size) over noise of any length
                let r = Self.revisions[Int(rng.next() % UInt64(Self.revisions.count))]
                bytes = (0..<Int(rng.next() % 4200)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                if bytes.count >= 4 {
                    putU16(&bytes, 0, UInt16(truncatingIfNeeded: rng.next() % 2 == 0 ? UInt64(r.size) : rng.next()))
                    bytes[2] = r.format
                    bytes[3] = r.content
                }
            }
            do {
                _ = try GPUMetrics.parse(bytes)
                parsed += 1
            } catch {
                failed += 1
                #expect([.truncated, .unsupportedRevision, .sizeMismatch].contains(error.code))
            }
        }
        #expect(parsed > 100 && failed > 100, "parsed \(parsed), failed \(failed)")
    }

    // MARK: Helpers

    /// All-ones blob with the header filled in, as the kernel starts one.
    func blob(size: Int, format: UInt8, content: UInt8) -> [UInt8] {
        var b = [UInt8](repeating: 0xFF, count: size)
        putU16(&b, 0, UInt16(size))
        b[2] = format
        b[3] = content
        return b
    }

    static func fixture(_ name: String) -> [UInt8]? {
        let path = PackagePaths.file("Tests/Fixtures/gpu_metrics/" + name).path
        guard let file = fopen(path, "rb") else { return nil }
        defer { fclose(file) }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
            if n == 0 { break }
            result += chunk[0..<n]
        }
        return result
    }
}

private func putU16(_ b: inout [UInt8], _ offset: Int, _ v: UInt16) {
    for i in 0..<2 { b[offset + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) }
}

private func putU32(_ b: inout [UInt8], _ offset: Int, _ v: UInt32) {
    for i in 0..<4 { b[offset + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) }
}

private func putU64(_ b: inout [UInt8], _ offset: Int, _ v: UInt64) {
    for i in 0..<8 { b[offset + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) }
}
