import Exposition

/// The schema as JSON, for tools outside Swift: `docs/metric-schema.json` is this text (a test keeps it
/// current), and `scripts/generate-dashboards.py` takes every family name from it.
extension Families {
    /// `{"families": {"<key>": {"name", "type", "help", "unit", "group", "labels", "sample_names", "query_name"}}}`,
    /// keyed and sorted by name, one family a line.
    public static func json() -> String {
        var lines: [String] = []
        for family in all.sorted(by: { $0.name < $1.name }) {
            let fields = [
                "\"name\": \(quoted(family.name))",
                "\"type\": \(quoted(family.kind.rawValue))",
                "\"help\": \(quoted(family.help))",
                "\"unit\": \(family.unit.map(quoted) ?? "null")",
                "\"group\": \(quoted(family.group.rawValue))",
                "\"labels\": [\(family.labels.map(quoted).joined(separator: ", "))]",
                "\"sample_names\": [\(family.sampleNames.map(quoted).joined(separator: ", "))]",
                "\"query_name\": \(quoted(family.queryName))",
            ]
            lines.append("    \(quoted(family.name)): {\(fields.joined(separator: ", "))}")
        }
        return "{\n  \"identity_labels\": [\(SchemaLabel.deviceIdentity.map(quoted).joined(separator: ", "))],\n"
            + "  \"label_budget\": \(SchemaLabel.budget),\n"
            + "  \"families\": {\n" + lines.joined(separator: ",\n") + "\n  }\n}\n"
    }

    private static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
