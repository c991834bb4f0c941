import AccelMetricsTesting
import Exposition
import Foundation
import Testing

// MARK: - Helpers

private func parseText(_ text: String) throws(ExpositionParseError) -> [MetricFamily] {
    try ExpositionParser.parse(text, format: .text)
}

private func parseOM(_ text: String) throws(ExpositionParseError) -> [MetricFamily] {
    try ExpositionParser.parse(text, format: .openMetrics)
}

/// The error a parse throws, or nil when it succeeds.
private func parseError(
    _ text: String, _ format: ExpositionFormat, limits: ExpositionParser.Limits = .default
) -> ExpositionParseError? {
    do {
        _ = try ExpositionParser.parse(text, format: format, limits: limits)
        return nil
    } catch {
        return error
    }
}

private func encoded(_ families: [MetricFamily], _ format: ExpositionFormat) -> [UInt8] {
    var buffer: [UInt8] = []
    ExpositionEncoder.encode(families, format: format, into: &buffer)
    return buffer
}

/// NaN-aware, order-insensitive comparison of two family lists (the encoder reorders families and samples).
private func sameFamilies(_ a: [MetricFamily], _ b: [MetricFamily]) -> Bool {
    guard a.count == b.count else { return false }
    for family in a {
        guard let other = b.first(where: { $0.name == family.name }) else { return false }
        guard family.help == other.help, family.kind == other.kind, family.unit == other.unit,
            family.samples.count == other.samples.count
        else { return false }
        var unmatched = other.samples
        for sample in family.samples {
            guard
                let index = unmatched.firstIndex(where: {
                    $0.suffix == sample.suffix && $0.labels == sample.labels
                        && $0.timestampMilliseconds == sample.timestampMilliseconds
                        && ($0.value == sample.value || ($0.value.isNaN && sample.value.isNaN))
                })
            else { return false }
            unmatched.remove(at: index)
        }
    }
    return true
}

/// What the text format can carry of `families`: no units, no `_created`, info as a gauge named `x_info`.
private func textView(_ families: [MetricFamily]) -> [MetricFamily] {
    families.map { family in
        var family = family
        family.unit = nil
        family.samples.removeAll { $0.suffix == "_created" }
        if family.kind == .info {
            family.kind = .gauge
            family.name += "_info"
        }
        return family
    }
}

private let fixturesDirectory = PackagePaths.file("Tests/Fixtures")

private func fixture(_ name: String) throws -> [UInt8] {
    Array(try Data(contentsOf: fixturesDirectory.appendingPathComponent("exposition/\(name)")))
}

private func family(_ families: [MetricFamily], _ name: String) -> MetricFamily? {
    families.first { $0.name == name }
}

/// Runs a tool (stdout and stderr merged); nil when it is not installed.
private func run(_ executable: String, _ arguments: [String], stdin: Data? = nil) throws -> (status: Int32, output: String)? {
    guard FileManager.default.isExecutableFile(atPath: executable) else { return nil }
    let (output, _, status) = try runProgram(executable, arguments, stdin: stdin ?? Data(), mergingOutput: true)
    return (status, output)
}

// MARK: - Constructs

@Suite("ExpositionParser: constructs")
struct ExpositionParserConstructTests {
    @Test func gaugeWithHelpAndLabels() throws {
        let families = try parseText(
            """
            # HELP temp_celsius Temperature.
            # TYPE temp_celsius gauge
            temp_celsius{gpu="0",sensor="edge"} 42.5
            temp_celsius{gpu="1",sensor="edge"} 43

            """)
        #expect(
            families == [
                MetricFamily(
                    name: "temp_celsius", help: "Temperature.", kind: .gauge,
                    samples: [
                        Sample(labels: [Label("gpu", "0"), Label("sensor", "edge")], value: 42.5),
                        Sample(labels: [Label("gpu", "1"), Label("sensor", "edge")], value: 43),
                    ])
            ])
    }

    @Test func helpEscapes() throws {
        let text = try parseText("# HELP a_metric back\\\\slash\\nnewline \\q kept\n# TYPE a_metric gauge\na_metric 1\n")
        #expect(text.first?.help == "back\\slash\nnewline \\q kept")
        let om = try parseOM("# HELP a_metric say \\\"hi\\\" \\\\ \\n\n# TYPE a_metric gauge\na_metric 1\n# EOF\n")
        #expect(om.first?.help == "say \"hi\" \\ \n")
        let empty = try parseText("# HELP a_metric\n# TYPE a_metric gauge\na_metric 1\n")
        #expect(empty.first?.help == "")
    }

    @Test func labelValueEscapes() throws {
        let families = try parseText(#"m{path="a\\b\"c\nd",empty=""} 1"# + "\n")
        #expect(families.first?.samples.first?.labels == [Label("path", "a\\b\"c\nd"), Label("empty", "")])
    }

    @Test func invalidLabelEscapeReportsLine() {
        let error = parseError("# TYPE m gauge\nm{a=\"ok\"} 1\nm{a=\"x\\q\"} 2\n", .text)
        #expect(error?.line == 3)
        #expect(error?.column == 7)
        #expect(error?.message == "invalid label value escape \\q")
        #expect(error?.description == "line 3: invalid label value escape \\q")
    }

    @Test func textCounters() throws {
        let families = try parseText(
            """
            # HELP requests_total Requests.
            # TYPE requests_total counter
            requests_total{code="200"} 10
            # TYPE legacy_requests counter
            legacy_requests 3

            """)
        #expect(
            families == [
                MetricFamily(
                    name: "requests", help: "Requests.", kind: .counter,
                    samples: [Sample(labels: [Label("code", "200")], value: 10)]),
                MetricFamily(name: "legacy_requests", help: "", kind: .counter, samples: [Sample(labels: [], value: 3)]),
            ])
    }

    @Test func textCreatedGaugesFoldIntoTheirFamily() throws {
        let families = try parseText(
            """
            # HELP jobs_total Jobs.
            # TYPE jobs_total counter
            jobs_total 4
            # HELP jobs_created Jobs.
            # TYPE jobs_created gauge
            jobs_created 1.7e9

            """)
        #expect(families.count == 1)
        #expect(families.first?.samples == [
            Sample(labels: [], value: 4), Sample(suffix: "_created", labels: [], value: 1.7e9),
        ])
    }

    @Test func openMetricsCounters() throws {
        let families = try parseOM(
            """
            # TYPE requests counter
            # HELP requests Requests.
            requests_total{code="200"} 10
            requests_created{code="200"} 1700000000.5

            # EOF

            """.replacingOccurrences(of: "\n\n", with: "\n"))
        #expect(
            families == [
                MetricFamily(
                    name: "requests", help: "Requests.", kind: .counter,
                    samples: [
                        Sample(labels: [Label("code", "200")], value: 10),
                        Sample(suffix: "_created", labels: [Label("code", "200")], value: 1_700_000_000.5),
                    ])
            ])
        // A bare counter sample is not part of an OpenMetrics counter family: it starts a new one, which clashes.
        #expect(parseError("# TYPE c counter\nc_total 1\nc 2\n# EOF\n", .openMetrics)?.line == 3)
        #expect(parseError("# TYPE c_total counter\nc_total_total 1\n# EOF\n", .openMetrics)?.line == 1)
    }

    @Test func histograms() throws {
        let text = """
            # TYPE latency_seconds histogram
            latency_seconds_bucket{le="0.1"} 1
            latency_seconds_bucket{le="Inf"} 2
            latency_seconds_bucket{le="+Inf"} 2
            latency_seconds_sum 0.3
            latency_seconds_count 2

            """
        let families = try parseText(text)
        #expect(families.count == 1)
        #expect(families.first?.kind == .histogram)
        #expect(families.first?.samples.map(\.suffix) == ["_bucket", "_bucket", "_bucket", "_sum", "_count"])
        #expect(families.first?.samples[1].labels == [Label("le", "Inf")])
        // In OpenMetrics too, with _created.
        let om = try parseOM(text + "latency_seconds_created 1.5\n# EOF\n")
        #expect(om.first?.samples.last == Sample(suffix: "_created", labels: [], value: 1.5))
        // A bucket without `le`, or with a non-number `le`, is rejected.
        #expect(parseError("# TYPE h histogram\nh_bucket 1\n", .text)?.line == 2)
        #expect(parseError("# TYPE h histogram\nh_bucket{le=\"x\"} 1\n", .text)?.message == "invalid le value \"x\"")
    }

    @Test func summaries() throws {
        let families = try parseText(
            """
            # TYPE rpc_seconds summary
            rpc_seconds{quantile="0.5"} 0.2
            rpc_seconds{quantile="0.99"} NaN
            rpc_seconds_sum 5
            rpc_seconds_count 20

            """)
        let samples = families.first?.samples ?? []
        #expect(samples.map(\.suffix) == ["", "", "_sum", "_count"])
        #expect(samples.count == 4 && samples[1].value.isNaN)
        #expect(parseError("# TYPE s summary\ns{q=\"1\"} 1\n", .text)?.message == "s sample without a quantile label")
    }

    @Test func openMetricsOnlyKinds() throws {
        let families = try parseOM(
            """
            # TYPE queue_bytes gaugehistogram
            queue_bytes_bucket{le="+Inf"} 5
            queue_bytes_gcount 5
            queue_bytes_gsum 100
            # TYPE flag stateset
            flag{flag="a"} 1
            flag{flag="b"} 0
            # TYPE build info
            build_info{version="1"} 1
            # TYPE legacy unknown
            legacy 7
            # EOF

            """)
        #expect(families.map(\.kind) == [.histogram, .gauge, .info, .unknown])
        #expect(families[0].samples.map(\.suffix) == ["_bucket", "_count", "_sum"])
        #expect(families[2] == MetricFamily(name: "build", help: "", kind: .info, samples: [
            Sample(labels: [Label("version", "1")], value: 1)
        ]))
        #expect(parseError("# TYPE build info\nbuild_info 2\n# EOF\n", .openMetrics)?.message == "info sample value must be 1")
        // Text has none of these types.
        #expect(parseError("# TYPE build info\n", .text)?.message == "unknown metric type \"info\"")
        #expect(parseError("# TYPE legacy unknown\n", .text)?.line == 1)
        #expect(parseError("# TYPE legacy untyped\n# EOF\n", .openMetrics)?.line == 1)
    }

    @Test func units() throws {
        let families = try parseOM("# TYPE disk_bytes gauge\n# UNIT disk_bytes bytes\ndisk_bytes 1\n# EOF\n")
        #expect(families.first?.unit == "bytes")
        #expect(parseError("# TYPE disk gauge\n# UNIT disk bytes\n# EOF\n", .openMetrics)?.line == 2)
        // `# UNIT` is just a comment in the text format.
        #expect(try parseText("# UNIT disk bytes\ndisk 1\n").first?.unit == nil)
    }

    @Test func samplesWithoutMetadataAreUntypedFamilies() throws {
        let families = try parseText("up 1\nscrape_samples_total{job=\"x\"} 12\n")
        #expect(families == [
            MetricFamily(name: "up", help: "", kind: .unknown, samples: [Sample(labels: [], value: 1)]),
            MetricFamily(
                name: "scrape_samples_total", help: "", kind: .unknown,
                samples: [Sample(labels: [Label("job", "x")], value: 12)]),
        ])
    }

    @Test func colonsInMetricNames() throws {
        let families = try parseText("# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting 2\n")
        #expect(families.first?.name == "vllm:num_requests_waiting")
        #expect(parseError("m{a:b=\"1\"} 1\n", .text)?.message == "expected = after label name")
    }

    @Test func specialValues() throws {
        let families = try parseText("a NaN\nb +Inf\nc -Inf\nd Inf\ne 1.5e-3\nf -2E+10\ng .5\nh 5.\ni infinity\nj -0\n")
        let values = families.map { $0.samples[0].value }
        #expect(values[0].isNaN)
        #expect(Array(values.dropFirst()) == [.infinity, -.infinity, .infinity, 0.0015, -2e10, 0.5, 5, .infinity, 0])
        for bad in ["1.2.3", "0x10", "1e", "--1", "+NaN", "nan(1)", "1_000", "", "1,5"] {
            #expect(parseError("m \(bad)\n", .text)?.line == 1, "value \(bad)")
        }
    }

    @Test func timestamps() throws {
        let text = try parseText("m 1 1700000000123\nn 2 -5\n")
        #expect(text.map { $0.samples[0].timestampMilliseconds } == [1_700_000_000_123, -5])
        let om = try parseOM("m 1 1700000000.123\nn 2 17\no 3 1.5e3\np 4 -1.25\n# EOF\n")
        #expect(om.map { $0.samples[0].timestampMilliseconds } == [1_700_000_000_123, 17000, 1_500_000, -1250])
        #expect(parseError("m 1 1.5\n", .text)?.message == "invalid timestamp \"1.5\"")
        #expect(parseError("m 1 99999999999999999999\n", .text)?.line == 1)
        #expect(parseError("m 1 NaN\n# EOF\n", .openMetrics)?.line == 1)
        #expect(parseError("m 1 2 3\n", .text)?.message == "unexpected text after the sample")
    }

    @Test func labelSets() throws {
        let families = try parseText("a{} 1\nb{x=\"1\",} 2\nc { x = \"1\" , y=\"2\" } 3\n")
        #expect(families.map(\.samples[0].labels) == [[], [Label("x", "1")], [Label("x", "1"), Label("y", "2")]])
        #expect(try parseOM("a{} 1\n# EOF\n").first?.samples.first?.labels == [])
        #expect(parseError("a{x=\"1\",} 1\n# EOF\n", .openMetrics)?.message == "trailing comma in label set")
        #expect(parseError("a{,} 1\n", .text)?.line == 1)
        #expect(parseError("a{x=\"1\" 1\n", .text)?.line == 1)
        #expect(parseError("a{x=\"1} 1\n", .text)?.message == "unterminated label value")
        #expect(parseError("a{__name__=\"a\"} 1\n", .text)?.line == 1)
    }

    @Test func duplicateLabelNames() {
        let error = parseError("ok 1\nm{a=\"1\",b=\"2\",a=\"3\"} 1\n", .text)
        #expect(error?.line == 2)
        #expect(error?.message == "duplicate label name a")
        #expect(parseError("m{a=\"1\",a=\"1\"} 1\n# EOF\n", .openMetrics)?.line == 1)
    }

    @Test func crlfInText() throws {
        let families = try parseText("# HELP m Help.\r\n# TYPE m gauge\r\nm{a=\"b\"} 1\r\n")
        #expect(families == [MetricFamily(name: "m", help: "Help.", kind: .gauge, samples: [
            Sample(labels: [Label("a", "b")], value: 1)
        ])])
        #expect(parseError("m 1\r\n# EOF\r\n", .openMetrics)?.line == 1)
    }

    @Test func fuzzerFindings() throws {
        // `# TYPE _total counter` would leave an empty family name.
        #expect(parseError("# TYPE _total counter\n_total 1\n", .text)?.message == "counter name _total has no family name")
        // A HELP text ending in CRs: the encoder writes them raw, so all are stripped, not just CRLF's one.
        let help = try parseText("# HELP m text\r\r\r\nm 1\n")
        #expect(help.first?.help == "text")
    }

    @Test func textToleratesWhitespaceCommentsAndBlankLines() throws {
        let families = try parseText("\n# just a comment\n#\n  m\t 1 \t\n\n# EOF\nn 2")
        #expect(families.map(\.name) == ["m", "n"])
    }

    @Test func endOfFile() {
        #expect(parseError("m 1\n", .openMetrics)?.line == 2)
        #expect(parseError("m 1\n", .openMetrics)?.message == "missing # EOF at end of OpenMetrics exposition")
        #expect(parseError("m 1\n# EOF\nn 2\n", .openMetrics)?.line == 3)
        #expect(parseError("# EOF\n\n", .openMetrics)?.message == "content after # EOF")
        #expect(parseError("# EOF", .openMetrics) == nil)
        #expect(parseError("m 1\n\n# EOF\n", .openMetrics)?.message == "empty line")
        #expect(parseError("# EOF \n", .openMetrics)?.line == 1)
        #expect(parseError("# arbitrary comment\n# EOF\n", .openMetrics)?.line == 1)
    }

    @Test func exemplars() throws {
        let families = try parseOM(
            """
            # TYPE h histogram
            h_bucket{le="1"} 1 # {trace_id="abc"} 0.5 1700000000.1
            h_bucket{le="+Inf"} 2 # {} 3
            h_count 2 1700000000 # {trace_id="x"} 1
            h_sum 3.5
            # EOF

            """)
        #expect(families.first?.samples.count == 4)
        #expect(families.first?.samples[2].timestampMilliseconds == 1_700_000_000_000)
        #expect(parseError("h 1 # {a=\"b\"} 1\n", .text)?.message == "exemplars are not allowed in the text format")
        #expect(parseError("h 1 # {a=\"b\"}\n# EOF\n", .openMetrics)?.line == 1)
        #expect(parseError("h 1 # trace\n# EOF\n", .openMetrics)?.line == 1)
    }

    @Test func openMetricsWhitespaceIsStrict() {
        #expect(parseError("m  1\n# EOF\n", .openMetrics)?.line == 1)
        #expect(parseError("m 1 \n# EOF\n", .openMetrics)?.line == 1)
        #expect(parseError("m{a = \"1\"} 1\n# EOF\n", .openMetrics)?.line == 1)
        #expect(parseError("#  TYPE m gauge\n# EOF\n", .openMetrics)?.line == 1)
    }

    @Test func familyStructureErrors() {
        // Metadata twice, after samples, or for a family seen before.
        #expect(parseError("# TYPE m gauge\n# TYPE m gauge\n", .text)?.message == "second TYPE line for m")
        #expect(parseError("# HELP m a\n# HELP m b\n", .text)?.line == 2)
        #expect(parseError("m 1\n# TYPE m gauge\n", .text)?.message == "metadata for m after its samples")
        #expect(parseError("# TYPE m gauge\nm 1\n# TYPE n gauge\n# TYPE m gauge\n", .text)?.line == 4)
        // Two families producing the same series name.
        #expect(parseError("# TYPE h histogram\n# TYPE h_count gauge\n", .text)?.line == 2)
        #expect(parseError("# TYPE a_total counter\n# TYPE a gauge\n", .text)?.line == 2)
        // OpenMetrics requires each family's samples together; the text format tolerates interleaving.
        let interleaved = "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na{x=\"y\"} 2\n"
        #expect(parseError(interleaved + "# EOF\n", .openMetrics)?.line == 5)
        #expect(parseError(interleaved, .text) == nil)
        #expect(parseError("# TYPE m bogus\n", .text)?.message == "unknown metric type \"bogus\"")
        #expect(parseError("# TYPE m\n", .text)?.line == 1)
        #expect(parseError("# HELP\n", .text)?.message == "expected a metric name")
        #expect(parseError("1m 1\n", .text)?.column == 1)
        #expect(parseError("m\n", .text)?.message == "expected a space before the value")
    }

    @Test func invalidUTF8IsRejected() {
        var bytes = Array("m{a=\"".utf8)
        bytes += [0xFF, 0xFE]
        bytes += Array("\"} 1\n".utf8)
        #expect(throws: ExpositionParseError.self) { try ExpositionParser.parse(bytes, format: .text) }
        let help = Array("# HELP m ".utf8) + [0xC3] + Array("\nm 1\n".utf8)
        #expect(throws: ExpositionParseError.self) { try ExpositionParser.parse(help, format: .text) }
        let valid = try? ExpositionParser.parse(Array("m{a=\"é 日本\"} 1\n".utf8), format: .text)
        #expect(valid?.first?.samples.first?.labels.first?.value == "é 日本")
    }

    @Test func limits() {
        let tight = ExpositionParser.Limits(
            maxBytes: 200, maxSamples: 2, maxLabelsPerSample: 2, maxLineLength: 40, maxNameLength: 8)
        #expect(parseError(String(repeating: "m 1\n", count: 51), .text, limits: tight)?.line == 1)
        #expect(parseError("a 1\nb 1\nc 1\n", .text, limits: tight)?.message == "more than 2 samples")
        #expect(parseError("a 1\nb 1\nc 1\n", .text, limits: tight)?.line == 3)
        #expect(parseError("m{a=\"1\",b=\"2\",c=\"3\"} 1\n", .text, limits: tight)?.message == "more than 2 labels")
        #expect(parseError("m 1\nm{a=\"\(String(repeating: "x", count: 40))\"} 1\n", .text, limits: tight)?.line == 2)
        #expect(parseError("abcdefghi 1\n", .text, limits: tight)?.message == "metric name longer than 8 bytes")
        #expect(parseError("m{abcdefghi=\"1\"} 1\n", .text, limits: tight)?.line == 1)
        #expect(parseError("a 1\nb 1\n", .text, limits: tight) == nil)
        // The defaults.
        let defaults = ExpositionParser.Limits.default
        #expect(defaults.maxBytes == 16 << 20 && defaults.maxSamples == 1_000_000 && defaults.maxLabelsPerSample == 64)
        #expect(defaults.maxLineLength == 1 << 20 && defaults.maxNameLength == 1024)
    }

    @Test func hugeLinesAndNumbersStayBounded() {
        let longValue = String(repeating: "9", count: 400)
        let parsed = try? parseText("m \(longValue)\n")
        #expect(parsed?.first?.samples.first?.value == Double(longValue))
        #expect(parseError("m 1e99999\n", .text) == nil)  // overflows to +Inf, as Go's ParseFloat reports it
        #expect(parseError("m \(String(repeating: "9", count: 600))\n", .text)?.line == 1)
        let manyLabels = (0..<65).map { "l\($0)=\"v\"" }.joined(separator: ",")
        #expect(parseError("m{\(manyLabels)} 1\n", .text)?.message == "more than 64 labels")
    }
}

// MARK: - Round trips

@Suite("ExpositionParser: round trips")
struct ExpositionParserRoundTripTests {
    /// Shaped like the exporter's device families: gauges per GPU with identity labels, an energy counter,
    /// an info family, a histogram.
    static let deviceFamilies: [MetricFamily] = {
        let gpus = (0..<8).map { gpu in
            [Label("gpu", "\(gpu)"), Label("model", "NVIDIA H200"), Label("uuid", "GPU-\(gpu)-3e4b1c62")]
        }
        return [
            MetricFamily(
                name: "accelerator_utilization_ratio", help: "Busy fraction.", kind: .gauge, unit: "ratio",
                samples: gpus.enumerated().map { Sample(labels: $1, value: Double($0) / 8) }),
            MetricFamily(
                name: "accelerator_memory_used_bytes", help: "Used memory.", kind: .gauge, unit: "bytes",
                samples: gpus.map { Sample(labels: $0, value: 80_000_000_000) }),
            MetricFamily(
                name: "accelerator_energy_joules", help: "Energy.", kind: .counter, unit: "joules",
                samples: gpus.map { Sample(labels: $0, value: 1.23456789e12) }
                    + gpus.map { Sample(suffix: "_created", labels: $0, value: 1_700_000_000.5) }),
            MetricFamily(
                name: "accelerator_device", help: "Identity.", kind: .info,
                samples: gpus.map { Sample(labels: $0 + [Label("driver", "550.54.15")], value: 1) }),
            MetricFamily(
                name: "accelerator_clock_hertz", help: "SM clock.", kind: .gauge, unit: "hertz",
                samples: gpus.map { Sample(labels: $0, value: 1.98e9, timestampMilliseconds: 1_700_000_000_999) }),
            MetricFamily(name: "accelerator_exporter_up", help: "", kind: .gauge, samples: [Sample(labels: [], value: 1)]),
        ]
    }()

    @Test(arguments: ExpositionFormat.allCases)
    func richFamiliesRoundTrip(format: ExpositionFormat) throws {
        for families in [richFamilies, Self.deviceFamilies] {
            let bytes = encoded(families, format)
            let parsed = try ExpositionParser.parse(bytes, format: format)
            let expected = format == .text ? textView(families) : families
            #expect(sameFamilies(parsed, expected))
            let reencoded = String(decoding: encoded(parsed, format), as: UTF8.self)
            #expect(reencoded == String(decoding: encoded(expected, format), as: UTF8.self))
            if format == .openMetrics { #expect(reencoded == String(decoding: bytes, as: UTF8.self)) }
        }
    }

    @Test func openMetricsRoundTripIsExactInEncoderOrder() throws {
        // Families and samples come back in exactly the order the encoder wrote them.
        let once = try ExpositionParser.parse(encoded(richFamilies, .openMetrics), format: .openMetrics)
        let twice = try ExpositionParser.parse(encoded(once, .openMetrics), format: .openMetrics)
        #expect(once.map(\.name) == richFamilies.map(\.name).sorted())
        #expect(once.map(\.name) == twice.map(\.name))
        #expect(sameFamilies(once, twice))
    }

    @Test(arguments: ExpositionFormat.allCases)
    func goldenFilesParse(format: ExpositionFormat) throws {
        guard format == .text else { return }
        let directory = fixturesDirectory.appendingPathComponent("golden")
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".prom") }
        #expect(!names.isEmpty)
        for name in names where name != "garbage.prom" {
            let bytes = Array(try Data(contentsOf: directory.appendingPathComponent(name)))
            let parsed = try ExpositionParser.parse(bytes, format: .text)
            #expect(encoded(try ExpositionParser.parse(encoded(parsed, .text), format: .text), .text) == encoded(parsed, .text))
        }
    }
}

// MARK: - Real-world shaped fixtures

@Suite("ExpositionParser: fixtures")
struct ExpositionParserFixtureTests {
    static let textFixtures = ["vllm.prom", "triton.prom", "tgi.prom", "node.prom"]
    static let openMetricsFixtures = ["vllm.om", "kinds.om"]

    @Test func vllmText() throws {
        let families = try ExpositionParser.parse(try fixture("vllm.prom"), format: .text)
        let model = Label("model_name", "meta-llama/Llama-3.1-8B-Instruct")
        #expect(family(families, "vllm:num_requests_waiting")?.samples == [Sample(labels: [model], value: 7)])
        #expect(family(families, "vllm:gpu_cache_usage_perc")?.samples.first?.value == 0.4375)
        let latency = family(families, "vllm:e2e_request_latency_seconds")
        #expect(latency?.kind == .histogram)
        #expect(latency?.samples.count == 9)
        #expect(latency?.samples[6] == Sample(suffix: "_bucket", labels: [Label("le", "+Inf"), model], value: 125))
        #expect(latency?.samples.last == Sample(suffix: "_created", labels: [model], value: 1.725012345e9))
        let tokens = family(families, "vllm:prompt_tokens")
        #expect(tokens?.kind == .counter)
        #expect(tokens?.samples.map(\.suffix) == ["", "_created"])
        #expect(families.count == 5)
    }

    @Test func vllmOpenMetrics() throws {
        let families = try ExpositionParser.parse(try fixture("vllm.om"), format: .openMetrics)
        #expect(families.map(\.name) == [
            "vllm:num_requests_waiting", "vllm:gpu_cache_usage_perc", "vllm:prompt_tokens",
            "vllm:e2e_request_latency_seconds", "vllm:cache_config", "vllm:lora_requests_info",
        ])
        #expect(family(families, "vllm:e2e_request_latency_seconds")?.unit == "seconds")
        #expect(family(families, "vllm:prompt_tokens")?.samples.first?.value == 123_456)
        #expect(family(families, "vllm:cache_config")?.kind == .info)
        #expect(family(families, "vllm:lora_requests_info")?.kind == .gauge)
    }

    @Test func triton() throws {
        let families = try ExpositionParser.parse(try fixture("triton.prom"), format: .text)
        let success = family(families, "nv_inference_request_success")
        #expect(success?.kind == .counter)
        #expect(success?.samples.last == Sample(labels: [Label("model", "bert"), Label("version", "2")], value: 17))
        #expect(family(families, "nv_inference_queue_duration_us")?.samples.first?.value == 1_288_593)
        #expect(family(families, "nv_gpu_memory_used_bytes")?.samples.first?.value == 62_537_072_000)
    }

    @Test func tgi() throws {
        let families = try ExpositionParser.parse(try fixture("tgi.prom"), format: .text)
        #expect(families.map(\.kind) == [.histogram, .gauge, .counter, .summary])
        let duration = family(families, "tgi_request_duration")
        #expect(duration?.samples.count == 7)
        #expect(duration?.samples[5] == Sample(suffix: "_sum", labels: [Label("method", "POST")], value: 123.456789))
        #expect(duration?.samples[3].labels == [Label("method", "POST"), Label("le", "5")])
        #expect(family(families, "tgi_request_inference_duration")?.samples[1].value == 3.25)
    }

    @Test func nodeExporter() throws {
        let families = try ExpositionParser.parse(try fixture("node.prom"), format: .text)
        #expect(family(families, "go_gc_duration_seconds")?.samples.count == 7)
        #expect(family(families, "node_cpu_seconds")?.samples.first?.value == 1_032_955.64)
        let mount = family(families, "node_filesystem_avail_bytes")?.samples.last?.labels.last
        #expect(mount == Label("mountpoint", "/run \"quoted\" \\ path"))
        #expect(family(families, "node_time_seconds")?.samples.first?.timestampMilliseconds == 1_725_012_345_678)
    }

    @Test func kindsOpenMetrics() throws {
        let families = try ExpositionParser.parse(try fixture("kinds.om"), format: .openMetrics)
        #expect(families.count == 7)
        #expect(family(families, "queue_depth_bytes")?.samples.map(\.suffix) == ["_bucket", "_bucket", "_count", "_sum"])
        #expect(family(families, "mystery")?.samples.first == Sample(
            labels: [Label("path", "a\\b\"c\nd")], value: -.infinity, timestampMilliseconds: 1_700_000_000_500))
        #expect(family(families, "build")?.help == "Build facts with \"quotes\" and a \\ backslash\nand a newline.")
        #expect(family(families, "http_requests")?.samples[2].timestampMilliseconds == 1_700_000_001_250)
        #expect(family(families, "rpc_duration_seconds")?.samples.last?.value == 1_700_000_000.123)
    }

    @Test(.tags(.endToEnd), .endToEndEnabled, arguments: textFixtures)
    func promtoolAcceptsTextFixtures(name: String) throws {
        guard let result = try run("/usr/bin/promtool", ["check", "metrics"], stdin: Data(try fixture(name))) else {
            return
        }
        // 0: clean, 3: lint findings only (real exporters have them); 1: the input did not parse.
        #expect(result.status == 0 || result.status == 3, "\(name): \(result.output)")
        #expect(!result.output.contains("error while linting"), "\(name): \(result.output)")
    }

    @Test(.tags(.endToEnd), .endToEndEnabled, arguments: textFixtures.map { ($0, "text") } + openMetricsFixtures.map { ($0, "openmetrics") })
    func referenceParserAgrees(name: String, format: String) throws {
        let script = fixturesDirectory.appendingPathComponent("exposition/reference-samples.py").path
        let path = fixturesDirectory.appendingPathComponent("exposition/\(name)").path
        guard let result = try run("/usr/bin/env", ["python3", script, format, path]) else { return }
        guard result.status == 0 else {
            // No python3 or no prometheus_client here: nothing to compare with.
            #expect(result.output.contains("No module named") || result.output.contains("No such file"), "\(result.output)")
            return
        }
        let families = try ExpositionParser.parse(try fixture(name), format: format == "text" ? .text : .openMetrics)
        var ours: [String] = []
        for family in families {
            for sample in family.samples {
                let labels = sample.labels.sorted { $0.name < $1.name }.map {
                    "\($0.name)=\"" + $0.value.replacingOccurrences(of: "\\", with: "\\\\")
                        .replacingOccurrences(of: "\n", with: "\\n") + "\""
                }
                ours.append("\(labels.joined(separator: ","))\t\(sample.value.bitPattern)")
            }
        }
        let theirs = result.output.split(separator: "\n").map(String.init)
        #expect(ours.count == theirs.count)
        #expect(ours.sorted() == theirs.sorted())
    }
}

// MARK: - Hostile input

/// Parses `bytes`; when that succeeds, re-encodes, re-parses and re-encodes, and reports whether the two
/// encodings differ (nil: it did not parse, which is fine; true: stable; false: unstable).
private func reencodingIsStable(_ bytes: [UInt8], _ format: ExpositionFormat) -> Bool? {
    guard let parsed = try? ExpositionParser.parse(bytes, format: format) else { return nil }
    let first = encoded(parsed, format)
    guard let reparsed = try? ExpositionParser.parse(first, format: format) else { return false }
    return encoded(reparsed, format) == first
}

/// The fuzz corpus (Fuzz/Corpus/exposition) is replayed with the same check by FuzzCorpusTests.
@Suite("ExpositionParser: hostile input")
struct ExpositionParserHostileInputTests {
    @Test func seededMutationsNeverCrashAndReencodeStably() throws {
        let sources = ["vllm.prom", "triton.prom", "tgi.prom", "node.prom", "vllm.om", "kinds.om"]
        let inputs = try sources.map { (try fixture($0), $0.hasSuffix(".om") ? ExpositionFormat.openMetrics : .text) }
        var generator = SeededRandom(seed: 0x5EED)
        let interesting: [UInt8] = Array("\\\"{}=, #\n\r\t_:.+-eE0123456789InfNa".utf8) + [0x00, 0xFF, 0xC3]
        var unstable: [Int] = []
        var parsed = 0
        for iteration in 0..<5000 {
            var (bytes, format) = inputs[iteration % inputs.count]
            for _ in 0...Int.random(in: 0..<3, using: &generator) {
                guard !bytes.isEmpty else { break }
                let position = Int.random(in: 0..<bytes.count, using: &generator)
                switch Int.random(in: 0..<6, using: &generator) {
                case 0: bytes[position] ^= UInt8(1) << UInt8.random(in: 0..<8, using: &generator)
                case 1: bytes[position] = interesting.randomElement(using: &generator)!
                case 2: bytes.removeSubrange(position...)
                case 3:
                    let end = min(bytes.count, position + Int.random(in: 1..<200, using: &generator))
                    bytes.insert(contentsOf: bytes[position..<end], at: position)
                case 4: bytes.remove(at: position)
                default: bytes.insert(interesting.randomElement(using: &generator)!, at: position)
                }
            }
            // Both formats: the other one is hostile input too.
            for candidate in [format, format == .text ? .openMetrics : .text] {
                switch reencodingIsStable(bytes, candidate) {
                case nil: break
                case true?: parsed += 1
                case false?: unstable.append(iteration)
                }
            }
        }
        #expect(unstable == [])
        // Most single mutations of a valid exposition still parse; make sure the stability check really ran.
        #expect(parsed > 1000)
    }
}
