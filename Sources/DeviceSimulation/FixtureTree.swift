/// A fake `/sys` described as devices with attributes: rendered as an umockdev device file for `umockdev-run -d`,
/// or written straight into a running testbed (`$UMOCKDEV_DIR`) to move readings while the exporter runs.
public struct FixtureTree: Sendable, Equatable {
    public var devices: [FixtureDevice] = []
    /// Files outside any device, by path relative to `/sys` (`fs/cgroup/dmem.capacity`) → text. umockdev's device
    /// description cannot carry them: the end-to-end harness writes them into the testbed before the exporter starts.
    public var files: [String: String] = [:]

    public init(devices: [FixtureDevice] = [], files: [String: String] = [:]) {
        self.devices = devices
        self.files = files
    }

    /// umockdev-record's text format: `P:` path, `E:` uevent property, `A:` text attribute (escaped, ends in
    /// `\n` as the kernel's do), `H:` binary attribute in hex, `L:` symlink. Parents come before children.
    public func umockdevDescription() -> String {
        var out = ""
        for device in devices.sorted(by: { $0.path < $1.path }) {
            out += "P: \(device.path)\n"
            if let node = device.node { out += "N: \(node)\n" }
            for (k, v) in device.properties { out += "E: \(k)=\(v)\n" }
            for (name, value) in device.attributes.sorted(by: { $0.key < $1.key }) {
                switch value {
                case .text(let s): out += "A: \(name)=\(Self.escape(s))\n"
                case .binary(let bytes): out += "H: \(name)=\(Self.hex(bytes))\n"
                }
            }
            for (name, target) in device.links.sorted(by: { $0.key < $1.key }) { out += "L: \(name)=\(target)\n" }
            out += "\n"
        }
        return out
    }

    /// Every attribute as (path relative to the testbed root, bytes), for rewriting a live testbed.
    public func attributeFiles() -> [(path: String, bytes: [UInt8])] {
        var files: [(String, [UInt8])] = self.files.sorted { $0.key < $1.key }.map { ("sys/" + $0.key, Array($0.value.utf8)) }
        for device in devices {
            for (name, value) in device.attributes {
                switch value {
                case .text(let s): files.append(("sys" + device.path + "/" + name, Array(s.utf8)))
                case .binary(let b): files.append(("sys" + device.path + "/" + name, b))
                }
            }
        }
        return files
    }

    static func escape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "\n": out += "\\n"
            case "\\": out += "\\\\"
            default: out.append(c)
            }
        }
        return out
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789ABCDEF")
        var out = ""
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xF)])
        }
        return out
    }
}

public struct FixtureDevice: Sendable, Equatable {
    public enum Value: Sendable, Equatable {
        case text(String)
        case binary([UInt8])
    }

    /// Under /sys, e.g. `/devices/pci0000:00/0000:00:01.0/0000:03:00.0`.
    public var path: String
    public var properties: [(String, String)]
    public var attributes: [String: Value]
    public var links: [String: String]
    /// A `/dev` entry umockdev creates for the device (`accel/accel_controlD0`; umockdev makes it a PTY): only for
    /// nodes a source opens.
    public var node: String?

    public init(path: String, properties: [(String, String)] = [], attributes: [String: Value] = [:], links: [String: String] = [:],
                node: String? = nil) {
        self.path = path
        self.properties = properties
        self.attributes = attributes
        self.links = links
        self.node = node
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.path == b.path && a.attributes == b.attributes && a.links == b.links && a.node == b.node
            && a.properties.map { $0.0 + "=" + $0.1 } == b.properties.map { $0.0 + "=" + $0.1 }
    }
}

extension FixtureDevice {
    /// A GPU's two DRM nodes under its PCI device, as the kernel lays them out: `drm/card<N>` (with
    /// `cardAttributes`, `dev` at least) and `drm/renderD<128+N>`, each linking back to the PCI function.
    public static func drmNodes(devicePath: String, pciAddress: String, card: Int,
                                cardAttributes: [String: Value]? = nil) -> [FixtureDevice] {
        [
            FixtureDevice(
                path: devicePath + "/drm/card\(card)",
                properties: [("DEVNAME", "dri/card\(card)"), ("SUBSYSTEM", "drm")],
                attributes: cardAttributes ?? ["dev": .text("226:\(card)\n")],
                links: ["device": "../../../\(pciAddress)"]
            ),
            FixtureDevice(
                path: devicePath + "/drm/renderD\(128 + card)",
                properties: [("DEVNAME", "dri/renderD\(128 + card)"), ("SUBSYSTEM", "drm")],
                attributes: ["dev": .text("226:\(128 + card)\n")],
                links: ["device": "../../../\(pciAddress)"]
            ),
        ]
    }
}
