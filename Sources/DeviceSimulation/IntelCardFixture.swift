/// One Intel GPU as sysfs shows it under i915 or xe: the PCI device (with xe's `tileT/gtM/freq0/*` and
/// `tileT/physical_vram_size_bytes`), its `drm/cardN` entry (with i915's `gt/gtM/rps_*_freq_mhz`), and optionally
/// a hwmon chip. Any attribute can be overridden with garbage through `overrides`.
public struct IntelCardFixture: Sendable {
    public enum Driver: String, Sendable { case i915, xe }

    /// One GT: its tile (xe), actual and requested frequency in MHz.
    public struct GT: Sendable {
        public var number: Int
        public var tile: Int
        public var actualMHz: Int
        public var requestedMHz: Int
        public init(number: Int, tile: Int = 0, actualMHz: Int, requestedMHz: Int) {
            self.number = number
            self.tile = tile
            self.actualMHz = actualMHz
            self.requestedMHz = requestedMHz
        }
    }

    public var card: Int
    public var pciAddress: String
    /// The PCI bridge path above the card (`pci0000:00/0000:00:01.0`).
    public var parentPath: String
    public var driver: Driver
    public var deviceID: UInt32
    public var pciClass = "0x030000"
    public var gts: [GT] = []
    /// i915 only: no `gt/` directory, the card-level `gt_act_freq_mhz`/`gt_cur_freq_mhz` of older kernels.
    public var legacyFrequencyFiles = false
    /// xe only: each tile's VRAM, as `tileT/physical_vram_size_bytes` for each tile that has a GT, or with
    /// `vramInDmemCgroup` (newer kernels) only as the tile's line in the root cgroup's `dmem.capacity`.
    public var vramBytesPerTile: UInt64?
    public var vramInDmemCgroup = false
    public var hwmon: HwmonFixture?
    /// Attribute path relative to the PCI device (`tile0/gt0/freq0/act_freq`) or, prefixed `drm:`, to the card
    /// (`drm:gt/gt0/rps_act_freq_mhz`) → raw content replacing the generated one.
    public var overrides: [String: FixtureDevice.Value] = [:]

    public init(card: Int, pciAddress: String, parentPath: String, driver: Driver, deviceID: UInt32) {
        self.card = card
        self.pciAddress = pciAddress
        self.parentPath = parentPath
        self.driver = driver
        self.deviceID = deviceID
    }

    public var devicePath: String { "/devices/\(parentPath)/\(pciAddress)" }

    public func devices() -> [FixtureDevice] {
        var pci: [String: FixtureDevice.Value] = [
            "vendor": .text("0x8086\n"),
            "device": .text("0x" + hex(deviceID) + "\n"),
            "class": .text(pciClass + "\n"),
        ]
        var drm: [String: FixtureDevice.Value] = ["dev": .text("226:\(card)\n")]
        switch driver {
        case .i915:
            if legacyFrequencyFiles, let gt = gts.first {
                drm["gt_act_freq_mhz"] = .text("\(gt.actualMHz)\n")
                drm["gt_cur_freq_mhz"] = .text("\(gt.requestedMHz)\n")
            } else {
                for gt in gts {
                    drm["gt/gt\(gt.number)/rps_act_freq_mhz"] = .text("\(gt.actualMHz)\n")
                    drm["gt/gt\(gt.number)/rps_cur_freq_mhz"] = .text("\(gt.requestedMHz)\n")
                    drm["gt/gt\(gt.number)/rps_RP0_freq_mhz"] = .text("2400\n")
                }
            }
        case .xe:
            for gt in gts {
                let dir = "tile\(gt.tile)/gt\(gt.number)/freq0"
                pci["\(dir)/act_freq"] = .text("\(gt.actualMHz)\n")
                pci["\(dir)/cur_freq"] = .text("\(gt.requestedMHz)\n")
                pci["\(dir)/rp0_freq"] = .text("1600\n")
            }
            if let vramBytesPerTile, !vramInDmemCgroup {
                for tile in Set(gts.map(\.tile)) { pci["tile\(tile)/physical_vram_size_bytes"] = .text("\(vramBytesPerTile)\n") }
            }
        }
        for (name, value) in overrides {
            if name.hasPrefix("drm:") { drm[String(name.dropFirst(4))] = value } else { pci[name] = value }
        }
        var out = [
            FixtureDevice(
                path: devicePath,
                properties: [("DRIVER", driver.rawValue), ("PCI_CLASS", String(pciClass.dropFirst(2)).uppercased()),
                             ("PCI_ID", "8086:" + hex(deviceID).uppercased()), ("PCI_SLOT_NAME", pciAddress), ("SUBSYSTEM", "pci")],
                attributes: pci,
                links: ["driver": "../../../../bus/pci/drivers/\(driver.rawValue)"]
            ),
        ]
        out += FixtureDevice.drmNodes(devicePath: devicePath, pciAddress: pciAddress, card: card, cardAttributes: drm)
        if let hwmon { out.append(hwmon.device(parentPath: devicePath, pciAddress: pciAddress)) }
        return out
    }

    /// The card's lines in the root cgroup's `dmem.capacity` (`drm/<PCI address>/vram<tile> <bytes>`), as xe
    /// registers each tile's VRAM manager on kernels with the dmem controller; empty unless `vramInDmemCgroup`.
    public var dmemCapacityLines: String {
        guard driver == .xe, vramInDmemCgroup, let vramBytesPerTile else { return "" }
        return Set(gts.map(\.tile)).sorted().map { "drm/\(pciAddress)/vram\($0) \(vramBytesPerTile)\n" }.joined()
    }

    func hex(_ v: UInt32) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: max(0, 4 - s.count)) + s
    }
}
