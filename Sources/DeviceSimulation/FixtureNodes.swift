import Accelerators
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The checked-in test nodes and the demo node, built from one description each so tests, benchmarks and the
/// demo exercise the same trees.
public enum FixtureNodes {
    public static let names = ["mi300x-8", "mi325x-8", "mi355x-8", "apu", "no-metrics", "garbage"]

    public static func tree(named name: String, time: Double = 0) -> FixtureTree? {
        switch name {
        case "mi300x-8": return mi300x8(time: time)
        case "mi325x-8": return instinct8(.mi325x, time: time)
        case "mi355x-8": return instinct8(.mi355x, time: time)
        case "apu": return apu()
        case "no-metrics": return noMetrics()
        case "garbage": return garbage()
        default: return nil
        }
    }

    /// An Instinct generation as a fixture node shows it: PCI id, FRU name, HBM size, power cap, and the
    /// `gpu_metrics` revision its kernel writes.
    public struct Instinct: Sendable {
        var deviceID: UInt32
        var productName: String
        var vbios: String
        var vramTotal: UInt64
        var powerCapWatts: Int
        var metricsContent: UInt8
        /// Whether the cards have `pcie_bw` (cards 0–3 only, as on the MI300X node).
        var pcieBW: Bool
        var uniqueBase: UInt64
        var serialPrefix: String

        /// MI300X (1002:74a1, smu_v13_0_6) with the partitioned v1_6 layout of 6.10-era kernels.
        public static let mi300x = Instinct(deviceID: 0x74A1, productName: "AMD Instinct MI300X OAM", vbios: "113-M3000100-102",
                                     vramTotal: 206_141_652_992, powerCapWatts: 750, metricsContent: 6, pcieBW: true,
                                     uniqueBase: 0x4A2B_0000_0000_1000, serialPrefix: "692251001")
        /// MI325X (1002:74a5): the same SMU (13.0.6) as MI300X, here on a kernel writing v1_8.
        public static let mi325x = Instinct(deviceID: 0x74A5, productName: "AMD Instinct MI325X OAM", vbios: "113-M3250101-100",
                                     vramTotal: 274_877_906_944, powerCapWatts: 1000, metricsContent: 8, pcieBW: true,
                                     uniqueBase: 0x5C3D_0000_0000_2000, serialPrefix: "712350002")
        /// MI355X (1002:75a3, smu_v13_0_12, which wrote v1_7, then v1_8, then the attribute-encoded v1_9): here v1_9.
        /// No `pcie_bw` file **[UNVERIFIED whether amdgpu offers it on this ASIC]**: PCIe traffic only as the
        /// firmware's sum.
        public static let mi355x = Instinct(deviceID: 0x75A3, productName: "AMD Instinct MI355X OAM", vbios: "113-M3550100-101",
                                     vramTotal: 309_237_645_312, powerCapWatts: 1400, metricsContent: 9, pcieBW: false,
                                     uniqueBase: 0x6E4F_0000_0000_3000, serialPrefix: "812550003")
    }

    /// Eight MI300X-class cards with sparse card numbers (1, 9, …, 57) as on real 8-GPU nodes, each with
    /// gpu_metrics and an amdgpu hwmon chip, plus an NVMe drive's hwmon chip that is not an accelerator.
    /// `time` (seconds) moves the readings: the demo rewrites the testbed from it every second.
    public static func mi300x8(time: Double = 0) -> FixtureTree { instinct8(.mi300x, time: time) }

    /// Eight cards of one Instinct generation laid out as `mi300x8`. From v1_5 on the blob carries JPEG activity
    /// too, and every layout XGMI per link and the firmware's PCIe bandwidth.
    public static func instinct8(_ gpu: Instinct, time: Double = 0) -> FixtureTree {
        var tree = FixtureTree()
        for i in 0..<8 {
            let bus = [0x05, 0x15, 0x65, 0x75, 0x85, 0x95, 0xE5, 0xF5][i]
            let pci = "0000:" + hex2(bus) + ":00.0"
            // Each card follows its own slow wave so the demo's graphs move and differ.
            let wave = 0.5 + 0.45 * sin(time / 20 + Double(i) * 0.8)
            let busy = Int((wave * 100).rounded())
            var card = AMDCardFixture(card: 1 + 8 * i, pciAddress: pci, rootPort: "0000:00:0\(i / 2 + 1).\(i % 2 + 1)")
            card.deviceID = gpu.deviceID
            card.uniqueID = hex16(gpu.uniqueBase + UInt64(i))
            card.productName = gpu.productName
            card.serial = gpu.serialPrefix + "\(i)"
            card.vbios = gpu.vbios
            card.busyPercent = busy
            card.memBusyPercent = busy / 3
            card.vramTotal = gpu.vramTotal
            card.vramUsed = UInt64(Double(card.vramTotal) * (0.1 + 0.8 * wave)) / 4096 * 4096
            card.visVramTotal = card.vramTotal
            card.visVramUsed = card.vramUsed
            card.gttTotal = 1_082_002_391_040
            card.gttUsed = 12_582_912
            card.sclkLevels = [500, 1300, 2100]
            card.sclkCurrent = busy > 60 ? 2 : (busy > 10 ? 1 : 0)
            card.mclkLevels = [900, 1300]
            card.mclkCurrent = 1
            let power = 140 + 560 * wave
            var m = GPUMetrics(formatRevision: 1, contentRevision: gpu.metricsContent)
            m.temperatureHotspotCelsius = 40 + 45 * wave
            m.temperatureMemoryCelsius = 38 + 30 * wave
            m.gfxActivityRatio = wave
            m.memoryActivityRatio = Double(busy / 3) / 100
            if gpu.metricsContent >= 5 {
                m.mediaActivityRatio = Double(i) / 100
                m.jpegActivityRatio = Double(2 * i) / 100
            }
            m.socketPowerWatts = power.rounded()
            // Energy grows with time as power integrates; a fixed base keeps the counter large like a real one.
            m.energyJoules = (1_000_000 + Double(i) * 1000 + time * 400).rounded()
            m.gfxClockHertz = Double(card.sclkLevels[card.sclkCurrent]) * 1e6
            m.memoryClockHertz = 1300e6
            m.socClockHertz = 1143e6
            m.pcieLinkWidth = 16
            m.pcieLinkSpeedTransfersPerSecond = 32e9
            // pcie_bandwidth_inst, both directions, whole GB/s as the firmware reports it.
            m.pcieBandwidthBytesPerSecond = (1 + 20 * wave).rounded() * 1e9
            // Cards 0-3 also have pcie_bw (per direction, which wins over the firmware's sum); 4-7 only the sum.
            if i < 4 && gpu.pcieBW { card.pcieBW = (received: UInt64(1_000_000 * (i + 1)), sent: UInt64(500_000 * (i + 1)), mps: 256) }
            m.throttleStatus = busy > 90 ? 1 : 0
            m.xgmiReadBytes = (0..<8).map { Double((1 << 30) * ($0 + 1)) + (time * 1e9).rounded() }
            m.xgmiWriteBytes = (0..<8).map { Double((1 << 29) * ($0 + 1)) + (time * 5e8).rounded() }
            card.gpuMetrics = m
            // MI300X's hwmon: junction and memory temperatures and instantaneous power; no edge sensor, no fan.
            card.hwmon = HwmonFixture(index: 2 + i, name: "amdgpu", attributes: [
                "temp2_input": "\(Int((40 + 45 * wave) * 1000))", "temp2_label": "junction",
                "temp3_input": "\(Int((38 + 30 * wave) * 1000))", "temp3_label": "mem",
                "power1_input": "\(Int(power.rounded()) * 1_000_000)", "power1_cap": "\(gpu.powerCapWatts * 1_000_000)",
                "power1_cap_max": "\(gpu.powerCapWatts * 1_000_000)", "power1_cap_min": "0",
                "in0_input": "\(Int(700 + 200 * wave))", "in0_label": "vddgfx",
            ])
            tree.devices += card.devices()
        }
        tree.devices += nvme()
        return tree
    }

    /// A Phoenix APU (Radeon 780M): card0 with an eDP connector, GTT-heavy memory, a hwmon chip with average power
    /// and two voltages, and no gpu_metrics file.
    public static func apu() -> FixtureTree {
        var card = AMDCardFixture(card: 0, pciAddress: "0000:c4:00.0", rootPort: "0000:00:08.1")
        card.deviceID = 0x15BF
        card.pciClass = "0x030000"
        card.busyPercent = 7
        card.memBusyPercent = 0
        card.vramTotal = 536_870_912
        card.vramUsed = 301_989_888
        card.visVramTotal = 536_870_912
        card.visVramUsed = 301_989_888
        card.gttTotal = 16_372_637_696
        card.gttUsed = 87_654_400
        card.sclkLevels = [800, 2700]
        card.sclkCurrent = 0
        card.mclkLevels = [400, 2800]
        card.mclkCurrent = 1
        card.linkSpeed = "Unknown"
        card.linkWidth = 0
        card.connectors = ["eDP-1", "DP-1"]
        card.omit = ["power_dpm_force_performance_level"]
        card.hwmon = HwmonFixture(index: 4, name: "amdgpu", attributes: [
            "temp1_input": "41000", "temp1_label": "edge",
            "power1_average": "9142000", "power1_input": "9876000",
            "in0_input": "1004", "in0_label": "vddgfx", "in1_input": "958", "in1_label": "vddnb",
        ])
        var tree = FixtureTree(devices: card.devices())
        tree.devices += k10temp()
        return tree
    }

    /// An older card with neither gpu_metrics nor a hwmon chip, and no unique_id: it is named by PCI address.
    public static func noMetrics() -> FixtureTree {
        var card = AMDCardFixture(card: 3, pciAddress: "0000:0b:00.0", rootPort: "0000:00:03.1")
        card.deviceID = 0x73BF
        card.pciClass = "0x030000"
        card.busyPercent = 100
        card.memBusyPercent = 55
        card.vramTotal = 17_163_091_968
        card.vramUsed = 1_073_741_824
        card.gttTotal = 33_554_432_000
        card.gttUsed = 0
        card.sclkLevels = [500, 2660]
        card.sclkCurrent = 1
        card.linkSpeed = "16.0 GT/s PCIe"
        card.linkWidth = 16
        return FixtureTree(devices: card.devices())
    }

    /// Two cards: one whose every file is garbage (each value must be absent, never a wrong number) and one
    /// healthy card beside it that must be unaffected.
    public static func garbage() -> FixtureTree {
        var bad = AMDCardFixture(card: 1, pciAddress: "0000:03:00.0", rootPort: "0000:00:01.1")
        bad.uniqueID = "0000000000000bad"
        bad.overrides = [
            "gpu_busy_percent": .text("abc\n"),
            "mem_busy_percent": .text("250\n"),
            "mem_info_vram_total": .text("\n"),
            "mem_info_vram_used": .text("-5\n"),
            "mem_info_gtt_total": .text("99999999999999999999999\n"),
            "mem_info_gtt_used": .text("12 34\n"),
            "pp_dpm_sclk": .text("garbage\n"),
            "pp_dpm_mclk": .text("0: 100Mhz\n1: 200Mhz\n"),
            "current_link_speed": .text("Unknown\n"),
            "current_link_width": .text("255\n"),
            "gpu_metrics": .binary([0x78, 0x00, 0x01, 0x06, 0x00, 0x00]),
        ]
        bad.hwmon = HwmonFixture(index: 1, name: "amdgpu", attributes: [
            "temp1_input": "xyz", "temp1_label": "edge", "power1_average": "", "temp2_input": "1000000000", "temp2_label": "junction",
        ])
        var good = AMDCardFixture(card: 2, pciAddress: "0000:23:00.0", rootPort: "0000:00:02.1")
        good.uniqueID = "0000000000000a0d"
        good.busyPercent = 33
        good.memBusyPercent = 5
        good.vramTotal = 68_702_699_520
        good.vramUsed = 4_294_967_296
        good.gttTotal = 1_000_000_000
        good.gttUsed = 1_000
        good.sclkCurrent = 1
        var m = GPUMetrics(formatRevision: 1, contentRevision: 3)
        m.temperatureEdgeCelsius = 51
        m.temperatureHotspotCelsius = 63
        m.temperatureMemoryCelsius = 58
        m.socketPowerWatts = 211
        m.gfxActivityRatio = 0.33
        good.gpuMetrics = m
        return FixtureTree(devices: bad.devices() + good.devices())
    }

    /// An NVMe drive's hwmon chip: not an accelerator, exported only with `--collector.hwmon.all`.
    static func nvme() -> [FixtureDevice] {
        let path = "/devices/pci0000:00/0000:00:1d.0/0000:3d:00.0"
        return [
            FixtureDevice(path: path, properties: [("DRIVER", "nvme"), ("PCI_SLOT_NAME", "0000:3d:00.0"), ("SUBSYSTEM", "pci")],
                          attributes: ["class": .text("0x010802\n"), "vendor": .text("0x144d\n")]),
            HwmonFixture(index: 0, name: "nvme", attributes: ["temp1_input": "36850", "temp1_label": "Composite"])
                .device(parentPath: path, pciAddress: "0000:3d:00.0"),
        ]
    }

    /// The CPU's temperature chip on an APU node.
    static func k10temp() -> [FixtureDevice] {
        let path = "/devices/pci0000:00/0000:00:18.3"
        return [
            FixtureDevice(path: path, properties: [("DRIVER", "k10temp"), ("PCI_SLOT_NAME", "0000:00:18.3"), ("SUBSYSTEM", "pci")],
                          attributes: ["class": .text("0x060000\n"), "vendor": .text("0x1022\n")]),
            HwmonFixture(index: 3, name: "k10temp", attributes: ["temp1_input": "48250", "temp1_label": "Tctl"])
                .device(parentPath: path, pciAddress: "0000:00:18.3"),
        ]
    }

    static func hex2(_ v: Int) -> String {
        let s = String(v, radix: 16)
        return s.count < 2 ? "0" + s : s
    }

    static func hex16(_ v: UInt64) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: max(0, 16 - s.count)) + s
    }
}
