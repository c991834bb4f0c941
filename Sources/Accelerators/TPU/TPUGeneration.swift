/// Google TPU generations as PCI ids name them (reference §6).
///
/// One PCI function is one chip. libtpu numbers *devices*: one per chip, except v2, v3 and 7x, which it shows as
/// two devices (TensorCores) per chip, so their runtime values are per core and are combined per chip here.
public struct TPUGeneration: Sendable, Equatable, Hashable {
    /// The `model` label: `TPU v5e`, `TPU7x`.
    public var model: String
    /// Runtime-metrics devices per PCI chip.
    public var devicesPerChip: Int
    /// Which device node the chip has: `/dev/accel<N>` (v2–v4, the TPU driver) or `/dev/vfio/<group>` (v5e on,
    /// bound to vfio-pci).
    public var node: NodeKind

    /// `accel`: `/dev/accel<N>`; `vfio`: `/dev/vfio/<group>`.
    public enum NodeKind: Sendable, Equatable, Hashable { case accel, vfio }

    /// Google's PCI vendor id. Not every device with it is a TPU: GCE's gVNIC network card (0x0042) has it too.
    public static let pciVendor: UInt32 = 0x1ae0

    /// The generation for a Google PCI device, or nil when the device id is not a TPU's.
    ///
    /// v2 and v3 share device 0x0027 and differ by subsystem device: 0x004e v2, 0x004f v3 (the reference lists them
    /// in that order; Google's tpu-info reads them the same way). An unknown subsystem is still one of the two.
    public static func from(deviceID: UInt32, subsystemDeviceID: UInt32?) -> TPUGeneration? {
        switch deviceID {
        case 0x0027:
            switch subsystemDeviceID {
            case 0x004e: return TPUGeneration(model: "TPU v2", devicesPerChip: 2, node: .accel)
            case 0x004f: return TPUGeneration(model: "TPU v3", devicesPerChip: 2, node: .accel)
            default: return TPUGeneration(model: "TPU v2/v3", devicesPerChip: 2, node: .accel)
            }
        case 0x005e: return TPUGeneration(model: "TPU v4", devicesPerChip: 1, node: .accel)
        case 0x0063: return TPUGeneration(model: "TPU v5e", devicesPerChip: 1, node: .vfio)
        case 0x0062: return TPUGeneration(model: "TPU v5p", devicesPerChip: 1, node: .vfio)
        case 0x006f: return TPUGeneration(model: "TPU v6e", devicesPerChip: 1, node: .vfio)
        case 0x0076: return TPUGeneration(model: "TPU7x", devicesPerChip: 2, node: .vfio)
        default: return nil
        }
    }

    /// `0x1ae0` (sysfs spelling), `1ae0` → the number; anything else nil.
    static func parseHexID(_ text: String) -> UInt32? {
        let digits = text.hasPrefix("0x") || text.hasPrefix("0X") ? String(text.dropFirst(2)) : text
        guard !digits.isEmpty, digits.count <= 8 else { return nil }
        return UInt32(digits, radix: 16)
    }
}
