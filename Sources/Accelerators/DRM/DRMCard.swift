/// What the sysfs sources (AMD, Intel, Gaudi, TPU) share about a device directory: which `class/drm` entries are
/// cards, a `uevent` file's fields, a symlink's target name, and the PCIe link speed.
enum DRMCard {
    /// `card0`, `card57`: a DRM card, not a connector (`card0-DP-1`) or a render node.
    static func isCardEntry(_ name: String) -> Bool {
        guard name.hasPrefix("card"), name.count > 4 else { return false }
        return name.dropFirst(4).allSatisfy { $0.isASCII && $0.isNumber }
    }

    /// `KEY=value` lines of a `uevent` file.
    static func parseUevent(_ text: String) -> [String: String] {
        var fields: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            fields[String(line[..<eq])] = String(line[line.index(after: eq)...])
        }
        return fields
    }

    /// The last path component: a symlink target's name (`../../0000:05:00.0` → `0000:05:00.0`).
    static func lastComponent(_ path: String) -> String {
        path.split(separator: "/").last.map(String.init) ?? path
    }

    /// `current_link_speed` (`16.0 GT/s PCIe`) in transfers per second per lane; nil for anything else.
    static func parseLinkSpeed(_ text: String) -> Double? {
        let parts = text.split(separator: " ")
        guard parts.count >= 2, parts[1].hasPrefix("GT/s"), let gt = Double(parts[0]), gt > 0, gt < 1000 else { return nil }
        return gt * 1e9
    }
}
