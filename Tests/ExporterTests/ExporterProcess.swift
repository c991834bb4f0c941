import AcceleratorTestSupport
import Foundation
import Testing

/// The real accel-exporter binary running under `umockdev-run` on a fixture tree, as in production but with a
/// fake /sys. The testbed directory is exposed so tests can change, corrupt or delete files while it runs.
final class ExporterProcess {
    let process = Process()
    let port: Int
    let testbed: String
    let exporterPID: Int32
    let workdir: URL
    let logFile: URL

    static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// The products sit next to the test bundle (`.build/<config>/`).
    static func binary(_ name: String) -> String {
        if let env = ProcessInfo.processInfo.environment["ACCEL_BIN_DIR"] { return env + "/" + name }
        let runner = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var dir = runner.deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent(name).path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return packageRoot.appendingPathComponent(".build/debug/\(name)").path
    }

    static let umockdevAvailable = FileManager.default.isExecutableFile(atPath: "/usr/bin/umockdev-run")

    /// `tree` nil: no umockdev (for collectors that do not read /sys, such as NVML through the fake library).
    /// `environment` is added to the runner's.
    /// `preloadFirst`: a library preloaded into the exporter ahead of umockdev's (a fake driver at the syscall
    /// boundary, which must see the calls before umockdev routes them).
    init(tree: FixtureTree?, arguments: [String] = [], environment: [String: String] = [:], preloadFirst: String? = nil) throws {
        workdir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("accel-e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: workdir, withIntermediateDirectories: true)
        let description = workdir.appendingPathComponent("node.umockdev")
        if let tree { try tree.umockdevDescription().write(to: description, atomically: false, encoding: .utf8) }
        logFile = workdir.appendingPathComponent("exporter.log")
        let testbedFile = workdir.appendingPathComponent("testbed")
        _ = FileManager.default.createFile(atPath: logFile.path, contents: nil)

        let exporter = Self.binary("accel-exporter")
        let args = (["--web.listen-address", "127.0.0.1:0", "--kubernetes.node-name", "test-node", "--log.level", "debug"] + arguments)
            .map { "'\($0)'" }.joined(separator: " ")
        let preload = preloadFirst.map { "LD_PRELOAD='\($0)'${LD_PRELOAD:+:$LD_PRELOAD} " } ?? ""
        // Files outside devices (FixtureTree.files) go straight into the testbed before the exporter starts.
        var setup = ""
        for (path, text) in tree?.files.sorted(by: { $0.key < $1.key }) ?? [] {
            let quoted = "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
            let directory = path.split(separator: "/").dropLast().joined(separator: "/")
            setup += "mkdir -p \"$UMOCKDEV_DIR/sys/\(directory)\" && printf '%s' \(quoted) > \"$UMOCKDEV_DIR/sys/\(path)\" || exit 1; "
        }
        let script = "\(setup)echo \"$$ ${UMOCKDEV_DIR:-none}\" > '\(testbedFile.path)'; \(preload)exec '\(exporter)' \(args)"
        if tree != nil {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/umockdev-run")
            process.arguments = ["-d", description.path, "--", "/bin/sh", "-c", script]
        } else {
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", script]
        }
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        process.standardError = try FileHandle(forWritingTo: logFile)
        process.standardOutput = FileHandle.nullDevice
        try process.run()

        // The exporter logs its bound port once it serves; wait for that (bounded).
        var found: Int?
        for _ in 0..<200 where found == nil && process.isRunning {
            Thread.sleep(forTimeInterval: 0.05)
            let log = (try? String(contentsOf: logFile, encoding: .utf8)) ?? ""
            if let range = log.range(of: #"msg=listening address=127\.0\.0\.1:(\d+)"#, options: .regularExpression) {
                found = Int(log[range].split(separator: ":").last!)
            }
        }
        guard let found, let bed = try? String(contentsOf: testbedFile, encoding: .utf8) else {
            process.terminate()
            throw HarnessError("exporter did not start: \((try? String(contentsOf: logFile, encoding: .utf8)) ?? "")")
        }
        port = found
        // "<exporter pid> <testbed>": the shell's pid is the exporter's after exec.
        let fields = bed.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ", maxSplits: 1)
        exporterPID = Int32(fields[0]) ?? 0
        testbed = String(fields[1])
    }

    deinit { stop() }

    func stop() {
        if process.isRunning {
            // Straight to the exporter: umockdev-run (and sh) inherit the test runner's blocked SIGTERM and would not
            // forward it. umockdev-run exits when its child does.
            kill(exporterPID, SIGTERM)
            let deadline = Date().addingTimeInterval(10)
            while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
            if process.isRunning {
                Issue.record("exporter ignored SIGTERM for 10 s; killing it")
                kill(process.processIdentifier, SIGKILL)
            }
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: workdir)
    }

    var log: String { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "" }

    struct Response {
        var status: Int
        var headers: [String: String]
        var body: Data
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    /// One request with curl (a real, independent HTTP client), bounded to 10 s.
    func get(_ path: String, headers: [String: String] = [:], method: String = "GET") throws -> Response {
        let headerFile = workdir.appendingPathComponent("headers-\(UUID().uuidString)")
        var args = ["-s", "-m", "10", "-X", method, "-D", headerFile.path, "-o", "-"]
        if method == "HEAD" { args = ["-s", "-m", "10", "-I", "-D", headerFile.path, "-o", "/dev/null"] }
        for (k, v) in headers { args += ["-H", "\(k): \(v)"] }
        args.append("http://127.0.0.1:\(port)\(path)")
        let (out, _, _) = try run("/usr/bin/curl", args)
        let rawHeaders = (try? String(contentsOf: headerFile, encoding: .utf8)) ?? ""
        try? FileManager.default.removeItem(at: headerFile)
        var status = 0
        var parsed: [String: String] = [:]
        for line in rawHeaders.split(separator: "\r\n") {
            if line.hasPrefix("HTTP/") { status = Int(line.split(separator: " ")[1]) ?? 0; continue }
            if let colon = line.firstIndex(of: ":") {
                parsed[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return Response(status: status, headers: parsed, body: out)
    }

    /// Polls until `condition` holds on a fresh text scrape (bounded), returning that scrape.
    func waitForMetrics(timeout: Double = 10, _ condition: (String) -> Bool) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        var last = ""
        while Date() < deadline {
            last = try get("/metrics").text
            if condition(last) { return last }
            Thread.sleep(forTimeInterval: 0.1)
        }
        Issue.record("condition not met within \(timeout)s; last scrape:\n\(last.prefix(3000))\nlog:\n\(log.suffix(3000))")
        return last
    }

    /// Path of a file in the running testbed, e.g. `sys/devices/.../gpu_busy_percent`.
    func testbedPath(_ relative: String) -> String { testbed + "/" + relative }
}

struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// Runs a program to completion (killed after `timeout` seconds); returns (stdout, stderr, status).
///
/// Output goes to files, not pipes: Foundation's Process can leak a pipe's write end into a child spawned at the
/// same moment by a parallel test, and a long-lived child (a running exporter) would then keep EOF from ever coming.
@discardableResult
func run(_ executable: String, _ arguments: [String], stdin: Data? = nil, timeout: Double = 60) throws -> (Data, String, Int32) {
    let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("accel-run-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let outURL = dir.appendingPathComponent("out"), errURL = dir.appendingPathComponent("err"), inURL = dir.appendingPathComponent("in")
    _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: inURL.path, contents: stdin ?? Data())
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = arguments
    let outHandle = try FileHandle(forWritingTo: outURL), errHandle = try FileHandle(forWritingTo: errURL)
    let inHandle = try FileHandle(forReadingFrom: inURL)
    defer { try? outHandle.close(); try? errHandle.close(); try? inHandle.close() }
    p.standardOutput = outHandle
    p.standardError = errHandle
    p.standardInput = inHandle
    try p.run()
    let deadline = Date().addingTimeInterval(timeout)
    while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
    if p.isRunning {
        p.terminate()
        Issue.record("\(executable) \(arguments) still running after \(timeout)s: terminated")
    }
    p.waitUntilExit()
    let out = (try? Data(contentsOf: outURL)) ?? Data()
    let err = (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
    return (out, err, p.terminationStatus)
}

/// Only the device and hwmon families of an exposition: what golden files hold (self-metrics vary per run).
func deviceFamilies(_ exposition: String) -> String {
    var keep = false
    var out = ""
    for line in exposition.split(separator: "\n", omittingEmptySubsequences: false) {
        let name: Substring
        if line.hasPrefix("# ") {
            name = line.split(separator: " ").dropFirst(2).first ?? ""
        } else {
            name = line.prefix { $0 != "{" && $0 != " " }
        }
        if !name.isEmpty { keep = name.hasPrefix("accelerator") || name.hasPrefix("hwmon_") }
        if keep && !line.isEmpty { out += line + "\n" }
    }
    return out
}

/// The value of the first sample line starting with `prefix`, or nil when absent. The `pci_bus_id` identity label
/// (after `model`) is left out of the comparison, so a prefix names a device by `accelerator`, `vendor` and `model`
/// as the tests always have; the goldens and the conformance tests hold `pci_bus_id` itself.
func value(_ exposition: String, _ prefix: String) -> Double? {
    for line in exposition.split(separator: "\n") where withoutPCIBusID(line).hasPrefix(prefix) {
        return Double(line.split(separator: " ").last!)
    }
    return nil
}

/// A sample line without its `pci_bus_id="…"` label.
func withoutPCIBusID(_ line: Substring) -> Substring {
    guard let start = line.range(of: ",pci_bus_id=\"") ?? line.range(of: "pci_bus_id=\"") else { return line }
    guard let close = line[start.upperBound...].firstIndex(of: "\"") else { return line }
    var end = line.index(after: close)
    if start.lowerBound == line.startIndex || line[line.index(before: start.lowerBound)] == "{", end < line.endIndex, line[end] == "," {
        end = line.index(after: end)
    }
    return line[..<start.lowerBound] + line[end...]
}
