import Exposition
import Foundation
import Testing

/// The real parsers scrapers use, run over a rendering of every kind. Skipped where they are not installed, so the
/// suite still passes on a bare toolchain image.
@Suite("Real linters and parsers")
struct LinterTests {
    static let promtool = findExecutable("promtool")
    static let pythonParser: Bool = {
        guard let python = findExecutable("python3") else { return false }
        let check = try? run(python, ["-c", "import prometheus_client.openmetrics.parser"], stdin: [])
        return check?.status == 0
    }()

    @Test("promtool check metrics accepts the text rendering without a single lint", .enabled(if: promtool != nil))
    func promtoolCheckMetrics() throws {
        let result = try run(try #require(Self.promtool), ["check", "metrics"], stdin: rendered(.text))
        #expect(result.status == 0)
        #expect(result.output == "")
    }

    @Test(
        "prometheus_client's OpenMetrics parser reads every family and sample back",
        .enabled(if: pythonParser)
    )
    func pythonOpenMetricsParser() throws {
        let script = """
            import sys
            from prometheus_client.openmetrics.parser import text_string_to_metric_families
            families = list(text_string_to_metric_families(sys.stdin.read()))
            print(len(families), sum(len(f.samples) for f in families))
            """
        let bytes = rendered(.openMetrics)
        let result = try run(try #require(findExecutable("python3")), ["-c", script], stdin: bytes)
        #expect(result.status == 0, "\(result.output)")
        let samples = String(decoding: bytes, as: UTF8.self).split(separator: "\n").filter { !$0.hasPrefix("#") }
        #expect(result.output == "\(richFamilies.count) \(samples.count)\n")
    }

    private func rendered(_ format: ExpositionFormat) -> [UInt8] {
        var buffer: [UInt8] = []
        ExpositionEncoder.encode(richFamilies, format: format, into: &buffer)
        return buffer
    }
}

private func findExecutable(_ name: String) -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
    return path.split(separator: ":").map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
}

/// Runs a tool with `stdin` fed from a temporary file (no pipe-buffer deadlock) and stdout and stderr merged, so
/// "no output" means neither stream said anything.
private func run(_ executable: String, _ arguments: [String], stdin: [UInt8]) throws -> (status: Int32, output: String) {
    let input = FileManager.default.temporaryDirectory.appendingPathComponent("exposition-\(UUID().uuidString)")
    try Data(stdin).write(to: input)
    defer { try? FileManager.default.removeItem(at: input) }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.standardInput = try FileHandle(forReadingFrom: input)
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let output = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: output, as: UTF8.self))
}
