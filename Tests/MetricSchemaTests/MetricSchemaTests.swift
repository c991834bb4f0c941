import AccelMetricsTesting
import Exposition
import Foundation
import MetricSchema
import Testing

/// The schema is the one place that names families: the checked-in JSON is its current dump, no other source
/// module spells a family name, and every family fits the label budget.
@Suite struct MetricSchemaTests {
    static let packageRoot = PackagePaths.root

    @Test("docs/metric-schema.json is the schema's current dump")
    func jsonIsCurrent() throws {
        let current = try Self.json()
        try expectMatchesGolden(current, "docs/metric-schema.json", what: "docs/metric-schema.json is stale")
        // It is JSON a generator can read, with every family under its name.
        let parsed = try JSONSerialization.jsonObject(with: Data(current.utf8)) as? [String: Any]
        let families = parsed?["families"] as? [String: [String: Any]]
        #expect(families?.count == Families.all.count)
        #expect(families?["accelerator_errors"]?["query_name"] as? String == "accelerator_errors_total")
        #expect(parsed?["identity_labels"] as? [String] == ["accelerator", "vendor", "model", "pci_bus_id"])
    }

    /// The schema for tools outside Swift: every family by name, with its type, help, unit, group, labels, the
    /// names its samples carry and the name a query uses; keys sorted, so the file changes only with the schema.
    static func json() throws -> String {
        var families: [String: Any] = [:]
        for family in Families.all {
            families[family.name] = [
                "name": family.name, "type": family.kind.rawValue, "help": family.help, "unit": family.unit ?? NSNull(),
                "group": family.group.rawValue, "labels": family.labels, "sample_names": family.sampleNames, "query_name": family.queryName,
            ] as [String: Any]
        }
        let document: [String: Any] = [
            "identity_labels": SchemaLabel.deviceIdentity, "label_budget": SchemaLabel.budget, "families": families,
        ]
        let data = try JSONSerialization.data(withJSONObject: document, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    @Test("every family is defined once, with unique sample names, and found by any of its names")
    func unique() {
        var seen: Set<String> = []
        for family in Families.all {
            for name in Set([family.name] + family.sampleNames) {
                #expect(seen.insert(name).inserted, "\(name) defined twice")
            }
            #expect(Families.named(family.name) == family)
            for sample in family.sampleNames { #expect(Families.named(sample) == family) }
            #expect(!family.help.isEmpty)
        }
    }

    @Test("device and pod families carry the identity labels first and fit the 8-label budget")
    func labelBudget() {
        for family in Families.all where family.kind != .info {
            let extra = family.kind == .histogram ? 1 : 0  // `le`
            #expect(family.labels.count + extra <= SchemaLabel.budget, "\(family.name): \(family.labels)")
            if family.group == .device || family.group == .pod && family != Families.Pod.labels {
                #expect(Array(family.labels.prefix(4)) == SchemaLabel.deviceIdentity, "\(family.name)")
            }
        }
    }

    @Test("no source module outside MetricSchema spells a family name as a string literal")
    func namesLiveInTheSchema() throws {
        // An info family's own name (`accelerator`) is also a label name: its sample name stands for it.
        let names = Set(Families.all.flatMap { ($0.kind == .info ? [] : [$0.name]) + $0.sampleNames })
        let sources = Self.packageRoot.appendingPathComponent("Sources")
        var offenders: [String] = []
        let files = FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil)
        while let url = files?.nextObject() as? URL {
            guard url.pathExtension == "swift", !url.path.contains("/Sources/MetricSchema/") else { continue }
            let text = try String(contentsOf: url, encoding: .utf8)
            for literal in Self.stringLiterals(text) where names.contains(literal) {
                offenders.append("\(url.lastPathComponent): \"\(literal)\"")
            }
        }
        #expect(offenders.isEmpty, "family names spelled outside MetricSchema: \(offenders)")
    }

    @Test("the literal scanner finds what it must")
    func scannerFindsLiterals() {
        #expect(Self.stringLiterals(#"let a = "accelerator_up"; f("x\"y", "z")"#) == ["accelerator_up", #"x\"y"#, "z"])
    }

    /// The contents of the one-line `"…"` literals in Swift source (enough to find a family name).
    static func stringLiterals(_ text: String) -> [String] {
        var out: [String] = []
        var current: String?
        var escaped = false
        for character in text {
            if var literal = current {
                if escaped {
                    literal.append(character)
                    escaped = false
                    current = literal
                } else if character == "\\" {
                    literal.append(character)
                    escaped = true
                    current = literal
                } else if character == "\"" {
                    out.append(literal)
                    current = nil
                } else if character == "\n" {
                    current = nil
                } else {
                    literal.append(character)
                    current = literal
                }
            } else if character == "\"" {
                current = ""
            }
        }
        return out
    }
}
