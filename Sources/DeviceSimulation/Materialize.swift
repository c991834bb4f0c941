#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension FixtureTree {
    /// Writes the tree as a plain directory laid out like `/sys` (devices, `uevent`, attributes, symlinks and
    /// `class/<subsystem>/<name>` links), for in-process tests of the sysfs sources through `--path.sysfs`.
    /// umockdev builds the same layout for the end-to-end tests; libsensors needs umockdev, this does not.
    public func materialize(at root: String) throws {
        try Self.mkdirs(root + "/class")
        for device in devices.sorted(by: { $0.path < $1.path }) {
            let dir = root + device.path
            try Self.mkdirs(dir)
            var uevent = ""
            for (k, v) in device.properties { uevent += "\(k)=\(v)\n" }
            try TestbedWriter.writeAtomically(dir + "/uevent", Array(uevent.utf8))
            for (name, value) in device.attributes {
                // Nested attributes (`gt/gt0/rps_act_freq_mhz`, `tile0/gt0/freq0/act_freq`) need their directories.
                if let slash = name.lastIndex(of: "/") { try Self.mkdirs(dir + "/" + name[..<slash]) }
                switch value {
                case .text(let s): try TestbedWriter.writeAtomically(dir + "/" + name, Array(s.utf8))
                case .binary(let b): try TestbedWriter.writeAtomically(dir + "/" + name, b)
                }
            }
            for (name, target) in device.links {
                unlink(dir + "/" + name)
                guard symlink(target, dir + "/" + name) == 0 else { throw TestbedWriter.WriteError(path: dir + "/" + name, errno: errno) }
            }
            if device.properties.contains(where: { $0.0 == "SUBSYSTEM" && $0.1 == "pci" }) {
                // `bus/pci/devices/<address>`, as the kernel and umockdev lay out bus devices (the TPU source lists it).
                let name = device.path.split(separator: "/").last.map(String.init) ?? ""
                try Self.mkdirs(root + "/bus/pci/devices")
                let target = "../../.." + device.path
                unlink(root + "/bus/pci/devices/\(name)")
                guard symlink(target, root + "/bus/pci/devices/\(name)") == 0 else {
                    throw TestbedWriter.WriteError(path: root + "/bus/pci/devices/\(name)", errno: errno)
                }
            }
            if let subsystem = device.properties.first(where: { $0.0 == "SUBSYSTEM" })?.1, subsystem != "pci" {
                let name = device.path.split(separator: "/").last.map(String.init) ?? ""
                try Self.mkdirs(root + "/class/" + subsystem)
                let depth = 2  // class/<subsystem>/
                let target = String(repeating: "../", count: depth) + String(device.path.dropFirst())
                unlink(root + "/class/\(subsystem)/\(name)")
                guard symlink(target, root + "/class/\(subsystem)/\(name)") == 0 else {
                    throw TestbedWriter.WriteError(path: root + "/class/\(subsystem)/\(name)", errno: errno)
                }
            }
        }
        for (path, text) in files {
            if let slash = path.lastIndex(of: "/") { try Self.mkdirs(root + "/" + path[..<slash]) }
            try TestbedWriter.writeAtomically(root + "/" + path, Array(text.utf8))
        }
    }

    static func mkdirs(_ path: String) throws {
        var current = ""
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            current += "/" + part
            if mkdir(current, 0o755) != 0 && errno != EEXIST {
                throw TestbedWriter.WriteError(path: current, errno: errno)
            }
        }
    }
}
