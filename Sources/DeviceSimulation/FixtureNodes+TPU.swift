/// Google TPU test nodes: PCI functions with vendor 0x1ae0 as reference §6 describes them, beside the VM's gVNIC
/// network card (vendor 0x1ae0 too, not a TPU). Runtime values come from a fake libtpu in the tests, not from here.
extension FixtureNodes {
    public static let tpuNames = ["tpu-v5e-8", "tpu-v4-4"]

    public static func tpuTree(named name: String) -> FixtureTree? {
        switch name {
        case "tpu-v5e-8": return tpuV5e8()
        case "tpu-v4-4": return tpuV4x4()
        case "tpu7x-2": return tpu7x2()
        default: return nil
        }
    }

    /// A TPU chip's PCI function.
    public struct TPUChipFixture: Sendable {
        public var pciAddress: String
        public var deviceID: UInt16
        public var subsystemDeviceID: UInt16 = 0
        /// `vfio-pci` for v5e and later; nil: no driver link (the v2–v4 TPU driver's name is not in the reference).
        public var driver: String?
        /// `iommu_group` link target's last component (vfio generations).
        public var iommuGroup: Int?
        /// An `accel/accel<N>` child device (v2–v4).
        public var accelIndex: Int?
        public var linkSpeed = "16.0 GT/s PCIe"
        public var linkWidth = 16

        public init(pciAddress: String, deviceID: UInt16) {
            self.pciAddress = pciAddress
            self.deviceID = deviceID
        }

        public var path: String { "/devices/pci0000:00/\(pciAddress)" }

        public func devices() -> [FixtureDevice] {
            var properties = [("PCI_CLASS", "120000"), ("PCI_ID", "1AE0:\(hex4(deviceID))"), ("PCI_SLOT_NAME", pciAddress), ("SUBSYSTEM", "pci")]
            if let driver { properties.insert(("DRIVER", driver), at: 0) }
            var links: [String: String] = [:]
            if let driver { links["driver"] = "../../../bus/pci/drivers/\(driver)" }
            if let iommuGroup { links["iommu_group"] = "../../../kernel/iommu_groups/\(iommuGroup)" }
            var out = [FixtureDevice(
                path: path, properties: properties,
                attributes: [
                    "vendor": .text("0x1ae0\n"), "device": .text("0x\(hex4(deviceID))\n"),
                    "subsystem_vendor": .text("0x1ae0\n"), "subsystem_device": .text("0x\(hex4(subsystemDeviceID))\n"),
                    "class": .text("0x120000\n"), "current_link_speed": .text(linkSpeed + "\n"),
                    "current_link_width": .text("\(linkWidth)\n"), "max_link_speed": .text(linkSpeed + "\n"),
                    "max_link_width": .text("\(linkWidth)\n"), "numa_node": .text("0\n"),
                ],
                links: links)]
            if let accelIndex {
                out.append(FixtureDevice(path: path + "/accel/accel\(accelIndex)",
                                         properties: [("DEVNAME", "accel\(accelIndex)"), ("SUBSYSTEM", "accel")],
                                         attributes: ["dev": .text("121:\(accelIndex)\n")], links: ["device": "../../../\(pciAddress)"]))
            }
            return out
        }
    }

    /// The VM's gVNIC network card: Google's vendor id, device 0x0042 — must not be taken for a TPU.
    static func gvnic(_ pciAddress: String) -> FixtureDevice {
        FixtureDevice(
            path: "/devices/pci0000:00/\(pciAddress)",
            properties: [("DRIVER", "gve"), ("PCI_CLASS", "20000"), ("PCI_ID", "1AE0:0042"), ("PCI_SLOT_NAME", pciAddress), ("SUBSYSTEM", "pci")],
            attributes: ["vendor": .text("0x1ae0\n"), "device": .text("0x0042\n"), "subsystem_device": .text("0x0058\n"),
                         "class": .text("0x020000\n")],
            links: ["driver": "../../../bus/pci/drivers/gve"])
    }

    /// An 8-chip TPU v5e host (as a ct5lp-hightpu-8t VM): chips 0000:00:04.0 … 0000:00:0b.0 bound to vfio-pci, in
    /// IOMMU groups 0…7 (`/dev/vfio/0…7`), beside the gVNIC at 0000:00:03.0.
    public static func tpuV5e8() -> FixtureTree {
        var devices = [gvnic("0000:00:03.0")]
        for i in 0..<8 {
            var chip = TPUChipFixture(pciAddress: "0000:00:" + hex2(4 + i) + ".0", deviceID: 0x0063)
            chip.driver = "vfio-pci"
            chip.iommuGroup = i
            chip.linkWidth = 8
            devices += chip.devices()
        }
        return FixtureTree(devices: devices)
    }

    /// A 4-chip TPU v4 host: chips with `/dev/accel0…3` (their `accel/accelN` child devices), no driver link.
    public static func tpuV4x4() -> FixtureTree {
        var devices = [gvnic("0000:00:03.0")]
        for i in 0..<4 {
            var chip = TPUChipFixture(pciAddress: "0000:00:" + hex2(5 + i) + ".0", deviceID: 0x005e)
            chip.accelIndex = i
            chip.linkSpeed = "8.0 GT/s PCIe"
            devices += chip.devices()
        }
        return FixtureTree(devices: devices)
    }

    /// Two TPU7x chips (two libtpu devices each) bound to vfio-pci, for the per-core → per-chip combination.
    public static func tpu7x2() -> FixtureTree {
        var devices: [FixtureDevice] = []
        for i in 0..<2 {
            var chip = TPUChipFixture(pciAddress: "0000:00:" + hex2(4 + i) + ".0", deviceID: 0x0076)
            chip.driver = "vfio-pci"
            chip.iommuGroup = 10 + i
            devices += chip.devices()
        }
        return FixtureTree(devices: devices)
    }
}

func hex4(_ value: UInt16) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
}
