import AccelMetricsTesting
import Exposition
import Foundation
import Testing

/// The real parsers scrapers use, run over a rendering of every kind. Skipped where they are not installed, so the
/// suite still passes on a bare toolchain image.
@Suite("Real linters and parsers", .tags(.endToEnd), .endToEndEnabled)
struct LinterTests {
    static let promtool = PackagePaths.executable("promtool")
    static let pythonParser: Bool = {
        guard let python = PackagePaths.executable("python3") else { return false }
        let check = try? run(python, ["-c", "import prometheus_client.openmetrics.parser"], stdin: [])
        return check?.status == 0
    }()

    @Test("promtool check metrics accepts the text rendering without a single lint", .enabled(if: promtool != nil))
    func promtoolCheckMetrics() throws {
        let promtool = try #require(Self.promtool)
        let result = try run(promtool, ["check", "metrics"], stdin: rendered(.text))
        #expect(result.status == 0)
        #expect(result.output == "", "promtool found problems")

        // Negative control: promtool really reads stdin and complains about a non-base unit without HELP.
        let control = try run(promtool, ["check", "metrics"], stdin: Array("bad_milliseconds 1\n".utf8))
        #expect(control.output.contains("bad_milliseconds"))
    }

    @Test(
        "prometheus_client's OpenMetrics parser reads every family, sample, HELP and label value back",
        .enabled(if: pythonParser)
    )
    func pythonOpenMetricsParser() throws {
        // Values are left out of the JSON on purpose: NaN and infinities are not JSON.
        let script = """
            import json, sys
            from prometheus_client.openmetrics.parser import text_string_to_metric_families
            families = list(text_string_to_metric_families(sys.stdin.read()))
            print(json.dumps([{"name": f.name, "type": f.type, "help": f.documentation,
                               "labels": [s.labels for s in f.samples]} for f in families]))
            """
        struct Parsed: Decodable, Equatable {
            var name: String
            var type: String
            var help: String
            var labels: [[String: String]]
        }
        let python = try #require(PackagePaths.executable("python3"))
        let bytes = rendered(.openMetrics)
        let result = try run(python, ["-c", script], stdin: bytes)
        try #require(result.status == 0, "\(result.output)")
        let parsed = try JSONDecoder().decode([Parsed].self, from: Data(result.output.utf8))

        let expected = richFamilies.sorted { $0.name < $1.name }
        #expect(parsed.map(\.name) == expected.map(\.name))
        #expect(parsed.map(\.help) == expected.map(\.help), "HELP escaping round trips")
        #expect(parsed.map(\.type) == ["info", "counter", "unknown", "gauge", "summary", "histogram", "gauge"])
        let sampleLines = String(decoding: bytes, as: UTF8.self).split(separator: "\n").filter { !$0.hasPrefix("#") }
        #expect(parsed.reduce(0) { $0 + $1.labels.count } == sampleLines.count)
        // Every label value survives escaping and unescaping.
        let sent = Set(richFamilies.flatMap { $0.samples.flatMap { $0.labels.map { "\($0.name)=\($0.value)" } } })
        let received = Set(parsed.flatMap { $0.labels.flatMap { $0.map { "\($0.key)=\($0.value)" } } })
        #expect(received == sent)

        // Negative control: the parser really is strict (a body without `# EOF` is rejected).
        let truncated = try run(python, ["-c", script], stdin: Array(bytes.dropLast("# EOF\n".utf8.count)))
        #expect(truncated.status != 0)
    }

    private func rendered(_ format: ExpositionFormat) -> [UInt8] {
        var buffer: [UInt8] = []
        ExpositionEncoder.encode(richFamilies, format: format, into: &buffer)
        return buffer
    }
}

/// A tool's exit status and its stdout and stderr merged, so "no output" means neither stream said anything.
private func run(_ executable: String, _ arguments: [String], stdin: [UInt8]) throws -> (status: Int32, output: String) {
    let (output, _, status) = try runProgram(executable, arguments, stdin: Data(stdin), mergingOutput: true)
    return (status, output)
}
