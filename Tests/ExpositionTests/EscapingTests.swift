import Exposition
import Testing

@Suite("Escaping")
struct EscapingTests {
    @Test(
        "label values escape backslash, double quote and newline in both formats",
        arguments: [
            ("plain", "plain"), ("", ""), ("back\\slash", "back\\\\slash"), ("quo\"te", "quo\\\"te"),
            ("new\nline", "new\\nline"), ("\\\"\n", "\\\\\\\"\\n"), ("already \\n escaped", "already \\\\n escaped"),
            ("tab\tand\rcarriage", "tab\tand\rcarriage"), ("GPU 0 — Größe ✓", "GPU 0 — Größe ✓"),
            ("trailing\\", "trailing\\\\"),
        ]
    )
    func labelValue(_ raw: String, escaped: String) {
        for format in ExpositionFormat.allCases {
            #expect(sampleLine(labels: [Label("l", raw)], value: 1, format) == "probe{l=\"\(escaped)\"} 1")
        }
    }

    @Test(
        "HELP escapes backslash and newline; only OpenMetrics also escapes double quotes",
        arguments: [
            ("Plain help.", "Plain help.", "Plain help."),
            ("", "", ""),
            ("a\\b", "a\\\\b", "a\\\\b"),
            ("two\nlines", "two\\nlines", "two\\nlines"),
            ("say \"hi\"", "say \"hi\"", "say \\\"hi\\\""),
            ("all \\ \" \n", "all \\\\ \" \\n", "all \\\\ \\\" \\n"),
        ]
    )
    func help(_ raw: String, text: String, openMetrics: String) {
        let family = MetricFamily(name: "probe", help: raw, kind: .gauge)
        #expect(render([family], .text) == "# HELP probe \(text)\n# TYPE probe gauge\n")
        #expect(render([family], .openMetrics) == "# HELP probe \(openMetrics)\n# TYPE probe gauge\n# EOF\n")
    }

    @Test("labels keep their given order inside a sample")
    func labelOrderIsPreserved() {
        let labels = [Label("z", "1"), Label("a", "2"), Label("m", "3")]
        #expect(sampleLine(labels: labels, value: 1, .text) == "probe{z=\"1\",a=\"2\",m=\"3\"} 1")
    }
}
