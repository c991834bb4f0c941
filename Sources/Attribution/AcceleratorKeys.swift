public import Accelerators

/// Every id by which something outside the exporter may name one accelerator: device plugins, DRA drivers, CDI
/// specs, ResourceSlices and DRM fdinfo each use a different one.
public struct AcceleratorKeys: Sendable, Equatable {
    /// The `accelerator` label (DESIGN.md: UUID for NVIDIA GPUs and MIG devices, `unique_id`/serial else PCI).
    public var accelerator: String
    /// Lookups by id stay within one vendor's devices unless the resource name is one of the extra ones.
    public var vendor: String
    public var model: String
    /// NVIDIA GPU or MIG UUID (`GPU-…`, `MIG-…`).
    public var uuid: String?
    /// MIG devices: the parent GPU's UUID. A MIG device shares its parent's PCI address, so PCI lookups skip it.
    public var parentUUID: String?
    /// Canonical PCI address (`0000:18:00.0`).
    public var pciAddress: String?
    /// The `serial` fact of `accelerator_info`, where the source has one.
    public var serial: String?
    /// DRM node names: `card1`, `renderD129` (Intel's device plugin names devices by card).
    public var cardNames: [String]
    /// Further ids a source knows for the device and a plugin may use (TPU chip index, Gaudi module id, AMD
    /// `unique_id`). Matched exactly, case-insensitively; never inferred.
    public var otherIDs: [String]
    /// NVIDIA device minor number (`/dev/nvidia<N>`, NVML `nvmlDeviceGetMinorNumber`): NVIDIA's DRA driver names
    /// full GPUs `gpu-<minor>`.
    public var minorNumber: Int?

    /// `pciAddress` is normalized (see ``PCIAddress/normalize(_:)``) and kept as given when it does not parse.
    public init(accelerator: String, vendor: String, model: String, uuid: String? = nil, parentUUID: String? = nil,
                pciAddress: String? = nil, serial: String? = nil, cardNames: [String] = [], otherIDs: [String] = [],
                minorNumber: Int? = nil) {
        self.minorNumber = minorNumber
        self.accelerator = accelerator
        self.vendor = vendor
        self.model = model
        self.uuid = uuid
        self.parentUUID = parentUUID
        self.pciAddress = pciAddress.flatMap(PCIAddress.normalize) ?? pciAddress
        self.serial = serial
        self.cardNames = cardNames
        self.otherIDs = otherIDs
    }

    /// Keys from a source's identity: NVIDIA's `accelerator` is the (MIG) UUID and `info` carries `parent`,
    /// `serial`, `pci_bus_id`; other vendors' `accelerator` is kept as an id too.
    public init(identity: DeviceIdentity, cardNames: [String] = [], otherIDs: [String] = [], minorNumber: Int? = nil) {
        var info: [String: String] = [:]
        for (k, v) in identity.info where info[k] == nil { info[k] = v }
        let isNVIDIAUUID = identity.accelerator.hasPrefix("GPU-") || identity.accelerator.hasPrefix("MIG-")
        self.init(accelerator: identity.accelerator, vendor: identity.vendor, model: identity.model,
                  uuid: isNVIDIAUUID ? identity.accelerator : nil, parentUUID: info["parent"],
                  pciAddress: identity.pciAddress ?? info["pci_bus_id"], serial: info["serial"],
                  cardNames: identity.aliases.cardNames + cardNames,
                  otherIDs: (info["card"].map { [$0] } ?? []) + identity.aliases.otherIDs + otherIDs,
                  minorNumber: minorNumber ?? identity.aliases.minorNumber ?? info["minor_number"].flatMap { Int($0) })
    }
}

/// PCI addresses as the kernel prints them (`0000:18:00.0`), whatever spelling a tool used.
public enum PCIAddress {
    /// `0000:18:00.0`, `00000000:18:00.0` (NVML), `18:00.0` (no domain), any case → `0000:18:00.0`; `nil` if not
    /// an address. Also accepts `-` for the separators (`0000-18-00-0`), the spelling DNS-label names use.
    public static func normalize(_ text: String) -> String? {
        var s = Substring(text)
        if s.hasPrefix("pci-") || s.hasPrefix("PCI-") { s = s.dropFirst(4) }
        let parts = s.split(omittingEmptySubsequences: false, whereSeparator: { $0 == ":" || $0 == "." || $0 == "-" })
        let fields: [Substring]
        switch parts.count {
        case 4: fields = Array(parts)
        case 3: fields = ["0"] + parts
        default: return nil
        }
        let limits = [8, 2, 2, 1]
        var values: [UInt32] = []
        for (field, limit) in zip(fields, limits) {
            guard !field.isEmpty, field.count <= limit, let v = UInt32(field, radix: 16) else { return nil }
            values.append(v)
        }
        guard values[2] < 32, values[3] < 8 else { return nil }
        // A plain decimal in three parts (e.g. "1-2-3") is not an address: real ones have two-digit bus and slot.
        guard fields[1].count == 2, fields[2].count == 2 else { return nil }
        return hex(values[0], width: 4) + ":" + hex(values[1], width: 2) + ":" + hex(values[2], width: 2) + "." + hex(values[3], width: 1)
    }

    static func hex(_ v: UInt32, width: Int) -> String {
        let digits = String(v, radix: 16)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }
}

/// Looks accelerators up by any of their ids, one vendor at a time.
struct DeviceIndex {
    let devices: [AcceleratorKeys]
    private var byKey: [String: [Int]] = [:]

    init(_ devices: [AcceleratorKeys]) {
        self.devices = devices
        for (i, d) in devices.enumerated() {
            var keys = [d.accelerator, d.uuid, d.serial].compactMap { $0 } + d.cardNames + d.otherIDs
            // MIG devices share the parent's PCI function: the address names the parent GPU only.
            if let pci = d.pciAddress, d.parentUUID == nil { keys.append(pci) }
            for key in Set(keys.map { $0.lowercased() }) where !key.isEmpty { byKey[key, default: []].append(i) }
        }
    }

    /// The one device `id` names among `vendor`'s (any vendor when `nil`); `nil` when none or ambiguous.
    func lookup(_ id: String, vendor: String?) -> Int? {
        let key = PCIAddress.normalize(id) ?? id.lowercased()
        let hits = (byKey[key] ?? []).filter { vendor == nil || devices[$0].vendor == vendor }
        return hits.count == 1 ? hits[0] : nil
    }

    /// The device whose PCI function is `pci` (never a MIG child).
    func lookupPCI(_ pci: String) -> Int? {
        guard let key = PCIAddress.normalize(pci) else { return nil }
        let hits = (byKey[key] ?? []).filter { devices[$0].pciAddress == key && devices[$0].parentUUID == nil }
        return hits.count == 1 ? hits[0] : nil
    }

    /// Ids embedded in a longer name (`k8s.gpu.nvidia.com/device=GPU-…`, `gpu-0000-18-00-0`): NVIDIA UUIDs and PCI
    /// addresses, the two spellings that are unique by construction. Returns the one device they name, if any.
    func lookupEmbedded(_ name: String, vendor: String?) -> Int? {
        if let i = lookup(name, vendor: vendor) { return i }
        var found: Set<Int> = []
        for uuid in Self.embeddedUUIDs(name) {
            if let i = lookup(uuid, vendor: vendor) { found.insert(i) }
        }
        if found.isEmpty {
            for pci in Self.embeddedPCIAddresses(name) {
                if let i = lookupPCI(pci), vendor == nil || devices[i].vendor == vendor { found.insert(i) }
            }
        }
        return found.count == 1 ? found.first : nil
    }

    /// `GPU-<uuid>` / `MIG-<uuid>` substrings (8-4-4-4-12 hex after the prefix).
    static func embeddedUUIDs(_ s: String) -> [String] {
        let chars = Array(s)
        var out: [String] = []
        var i = 0
        while i + 4 <= chars.count {
            let prefix = String(chars[i..<i + 4])
            if prefix == "GPU-" || prefix == "MIG-" || prefix == "gpu-" || prefix == "mig-" {
                let start = i + 4
                let end = start + 36
                if end <= chars.count, isUUID(chars[start..<end]) {
                    out.append(prefix.uppercased() + String(chars[start..<end]))
                    i = end
                    continue
                }
            }
            i += 1
        }
        return out
    }

    /// PCI addresses written with `:`/`.` or `-` separators inside a longer name.
    static func embeddedPCIAddresses(_ s: String) -> [String] {
        let tokens = s.split(whereSeparator: { !($0.isHexDigit || $0 == ":" || $0 == "." || $0 == "-") })
        var out: [String] = []
        for raw in tokens {
            var token = raw
            while let f = token.first, f == "-" || f == "." || f == ":" { token = token.dropFirst() }
            while let l = token.last, l == "-" || l == "." || l == ":" { token = token.dropLast() }
            let parts = token.split(separator: "-", omittingEmptySubsequences: false)
            if let pci = PCIAddress.normalize(String(token)) { out.append(pci); continue }
            // `0000-18-00-0-0x56c0`: try every window of four dash-separated parts.
            if parts.count > 4 {
                for start in 0...(parts.count - 4) {
                    if let pci = PCIAddress.normalize(parts[start..<start + 4].joined(separator: "-")), parts[start].count == 4 {
                        out.append(pci)
                    }
                }
            }
        }
        return out
    }

    static func isUUID(_ c: ArraySlice<Character>) -> Bool {
        guard c.count == 36 else { return false }
        for (offset, ch) in c.enumerated() {
            if [8, 13, 18, 23].contains(offset) { if ch != "-" { return false } } else if !ch.isHexDigit { return false }
        }
        return true
    }
}
