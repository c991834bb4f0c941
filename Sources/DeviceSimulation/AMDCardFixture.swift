public import Accelerators

/// One amdgpu card as sysfs shows it: the PCI device with amdgpu's attributes, its `drm/cardN` entry and,
/// optionally, its hwmon chip. Any attribute can be overridden with garbage through `overrides`.
public struct AMDCardFixture: Sendable {
    public var card: Int
    public var pciAddress: String
    /// The root port the card hangs off (`0000:00:01.1`), so several cards get distinct sysfs paths.
    public var rootPort: String
    public var deviceID: UInt32 = 0x74A1
    public var pciClass = "0x038000"
    public var uniqueID: String?
    public var productName: String?
    public var serial: String?
    public var vbios: String?
    public var busyPercent = 0
    public var memBusyPercent = 0
    public var vramTotal: UInt64 = 0
    public var vramUsed: UInt64 = 0
    public var visVramTotal: UInt64?
    public var visVramUsed: UInt64?
    public var gttTotal: UInt64 = 0
    public var gttUsed: UInt64 = 0
    /// DPM levels in MHz and the current index.
    public var sclkLevels: [Int] = [500, 1000, 2100]
    public var sclkCurrent = 0
    public var mclkLevels: [Int] = [900, 1300]
    public var mclkCurrent = 0
    public var linkSpeed = "32.0 GT/s PCIe"
    public var linkWidth = 16
    public var gpuMetrics: GPUMetrics?
    /// `pcie_bw`: packets received and sent in the driver's one-second window, and the maximum payload size.
    public var pcieBW: (received: UInt64, sent: UInt64, mps: Int)?
    public var hwmon: HwmonFixture?
    /// Extra DRM entries under the card (connectors such as `card0-DP-1`) that discovery must skip.
    public var connectors: [String] = []
    /// Attribute name → raw content replacing the generated one (garbage tests).
    public var overrides: [String: FixtureDevice.Value] = [:]
    /// Attributes to leave out entirely.
    public var omit: Set<String> = []

    public init(card: Int, pciAddress: String, rootPort: String) {
        self.card = card
        self.pciAddress = pciAddress
        self.rootPort = rootPort
    }

    public var devicePath: String {
        let domain = pciAddress.prefix(4)
        return "/devices/pci\(domain):00/\(rootPort)/\(pciAddress)"
    }

    public func devices() -> [FixtureDevice] {
        var attrs: [String: FixtureDevice.Value] = [
            "vendor": .text("0x1002\n"),
            "device": .text("0x" + hex(deviceID) + "\n"),
            "class": .text(pciClass + "\n"),
            "gpu_busy_percent": .text("\(busyPercent)\n"),
            "mem_busy_percent": .text("\(memBusyPercent)\n"),
            "mem_info_vram_total": .text("\(vramTotal)\n"),
            "mem_info_vram_used": .text("\(vramUsed)\n"),
            "mem_info_gtt_total": .text("\(gttTotal)\n"),
            "mem_info_gtt_used": .text("\(gttUsed)\n"),
            "pp_dpm_sclk": .text(Self.dpm(sclkLevels, sclkCurrent)),
            "pp_dpm_mclk": .text(Self.dpm(mclkLevels, mclkCurrent)),
            "current_link_speed": .text(linkSpeed + "\n"),
            "current_link_width": .text("\(linkWidth)\n"),
            "power_dpm_force_performance_level": .text("auto\n"),
        ]
        if let bw = pcieBW { attrs["pcie_bw"] = .text("\(bw.received) \(bw.sent) \(bw.mps)\n") }
        if let visVramTotal { attrs["mem_info_vis_vram_total"] = .text("\(visVramTotal)\n") }
        if let visVramUsed { attrs["mem_info_vis_vram_used"] = .text("\(visVramUsed)\n") }
        if let uniqueID { attrs["unique_id"] = .text(uniqueID + "\n") }
        if let productName { attrs["product_name"] = .text(productName + "\n") }
        if let serial { attrs["serial_number"] = .text(serial + "\n") }
        if let vbios { attrs["vbios_version"] = .text(vbios + "\n") }
        if let gpuMetrics { attrs["gpu_metrics"] = .binary(GPUMetricsEncoder.encode(gpuMetrics)) }
        for name in omit { attrs[name] = nil }
        for (name, value) in overrides { attrs[name] = value }

        var out = [
            FixtureDevice(
                path: devicePath,
                properties: [("DRIVER", "amdgpu"), ("PCI_CLASS", String(pciClass.dropFirst(2)).uppercased()),
                             ("PCI_ID", "1002:" + hex(deviceID).uppercased()), ("PCI_SLOT_NAME", pciAddress), ("SUBSYSTEM", "pci")],
                attributes: attrs,
                links: ["driver": "../../../bus/pci/drivers/amdgpu"]
            ),
        ]
        out += FixtureDevice.drmNodes(devicePath: devicePath, pciAddress: pciAddress, card: card)
        for connector in connectors {
            out.append(FixtureDevice(
                path: devicePath + "/drm/card\(card)/card\(card)-\(connector)",
                properties: [("SUBSYSTEM", "drm")],
                attributes: ["status": .text("connected\n"), "enabled": .text("enabled\n")]
            ))
        }
        if let hwmon {
            out.append(hwmon.device(parentPath: devicePath, pciAddress: pciAddress))
        }
        return out
    }

    static func dpm(_ levels: [Int], _ current: Int) -> String {
        var s = ""
        for (i, mhz) in levels.enumerated() { s += "\(i): \(mhz)Mhz\(i == current ? " *" : "")\n" }
        return s
    }

    func hex(_ v: UInt32) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: max(0, 4 - s.count)) + s
    }
}

/// A hwmon chip in kernel units (m°C, µW, µJ, mV, RPM).
public struct HwmonFixture: Sendable {
    public var index: Int
    public var name: String
    public var attributes: [String: String]

    public init(index: Int, name: String, attributes: [String: String]) {
        self.index = index
        self.name = name
        self.attributes = attributes
    }

    func device(parentPath: String, pciAddress: String?) -> FixtureDevice {
        var attrs: [String: FixtureDevice.Value] = ["name": .text(name + "\n")]
        for (k, v) in attributes { attrs[k] = .text(v.hasSuffix("\n") ? v : v + "\n") }
        return FixtureDevice(
            path: parentPath + "/hwmon/hwmon\(index)",
            properties: [("SUBSYSTEM", "hwmon")],
            attributes: attrs,
            links: pciAddress.map { ["device": "../../../\($0)"] } ?? [:]
        )
    }
}
