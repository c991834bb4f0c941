import AccelMetricsTesting
import Exposition
import Foundation
import MetricSchema
import OTLPExport
import OTLPProto
import Testing

/// docs/opentelemetry.md's device-readings table and the exporter's mapping say the same thing, both ways.
@Suite struct SemanticConventionsTests {
    struct Row {
        var family: String
        var label: Label?
        var metric: String
        var unit: String
        var instrument: String
        var attributes: String
    }

    static var rows: [Row] {
        get throws {
            let text = try String(contentsOf: PackagePaths.file("docs/opentelemetry.md"), encoding: .utf8)
            guard let marker = text.range(of: "checked against the exporter's mapping") else { return [] }
            var out: [Row] = []
            for line in text[marker.upperBound...].split(separator: "\n").dropFirst(3) {
                guard line.hasPrefix("|") else { break }
                let cells = line.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
                guard cells.count >= 6, cells[1].hasPrefix("`") else { continue }
                let unquote = { (s: String) in s.trimmingCharacters(in: CharacterSet(charactersIn: "`")) }
                var family = unquote(cells[1])
                var label: Label?
                if let brace = family.firstIndex(of: "{") {
                    let inner = family[family.index(after: brace)..<family.index(before: family.endIndex)]
                    let parts = inner.split(separator: "=", maxSplits: 1)
                    label = Label(String(parts[0]), parts[1].trimmingCharacters(in: CharacterSet(charactersIn: "\"")))
                    family = String(family[..<brace])
                }
                out.append(Row(family: family, label: label, metric: unquote(cells[2]), unit: unquote(cells[3]), instrument: cells[4],
                               attributes: cells[5]))
            }
            return out
        }
    }

    static let gpu = [Label("accelerator", "GPU-1"), Label("vendor", "nvidia"), Label("model", "H100"), Label("pci_bus_id", "0000:05:00.0")]

    /// One family with one series of `definition`, labelled as a device or a model server.
    static func family(_ definition: FamilyDefinition, extra: Label?) -> MetricFamily {
        if definition.kind == .histogram {
            let labels = [Label("namespace", "ml"), Label("pod", "p"), Label("model_name", "m")]
            return definition.family([
                Sample(suffix: "_bucket", labels: labels + [Label("le", "1")], value: 1),
                Sample(suffix: "_bucket", labels: labels + [Label("le", "+Inf")], value: 2),
                Sample(suffix: "_sum", labels: labels, value: 1.5),
                Sample(suffix: "_count", labels: labels, value: 2),
            ])
        }
        var labels = gpu
        if let extra { labels.append(extra) }
        for name in definition.labels where !labels.contains(where: { $0.name == name }) { labels.append(Label(name, "x")) }
        return definition.family([Sample(labels: labels, value: 1)])
    }

    static func instrument(_ metric: Opentelemetry_Proto_Metrics_V1_Metric) -> String {
        switch metric.data {
        case .gauge: "gauge"
        case .sum(let s): s.isMonotonic ? "counter" : "updowncounter"
        case .histogram: "histogram"
        case nil: "none"
        }
    }

    @Test func everyDocumentedRowIsWhatTheExporterSends() throws {
        let rows = try Self.rows
        #expect(rows.count >= 14)
        for row in rows {
            let definition = try #require(Families.named(row.family), "\(row.family) is not a family")
            var builder = MetricsRequestBuilder(resource: [], scopeVersion: "1")
            let metrics = builder.build([Self.family(definition, extra: row.label)], timeUnixNano: 1).resourceMetrics[0].scopeMetrics[0].metrics
            let metric = try #require(metrics.first { $0.name == row.metric }, "\(row.family) \(String(describing: row.label)) is not sent as \(row.metric): \(metrics.map(\.name))")
            #expect(metric.unit == row.unit, "\(row.metric)")
            #expect(Self.instrument(metric) == row.instrument, "\(row.metric)")
            if let task = row.attributes.range(of: #"hw\.gpu\.task=[a-z]+"#, options: .regularExpression) {
                let want = String(row.attributes[task].dropFirst("hw.gpu.task=".count))
                let got = metric.gauge.dataPoints.first?.attributes.first { $0.key == "hw.gpu.task" }?.value.stringValue
                #expect(got == want, "\(row.family)")
            }
        }
    }

    @Test func everyConventionTheExporterSendsIsDocumented() throws {
        let documented = Set(try Self.rows.map(\.metric))
        let probes: [Label?] = [nil, Label("engine", "video_encode"), Label("engine", "video_decode"), Label("memory", "vram"), Label("memory", "hbm")]
        for definition in Families.all where definition.group != .process && definition.kind != .info {
            for probe in probes {
                var builder = MetricsRequestBuilder(resource: [], scopeVersion: "1")
                let request = builder.build([Self.family(definition, extra: probe)], timeUnixNano: 1)
                for metric in request.resourceMetrics[0].scopeMetrics[0].metrics {
                    let ours = ["accelerator.", "inference.", "hwmon.", "accel_exporter."].contains { metric.name.hasPrefix($0) }
                    #expect(ours || documented.contains(metric.name), "\(definition.name) → \(metric.name) is missing from docs/opentelemetry.md")
                }
            }
        }
    }
}
