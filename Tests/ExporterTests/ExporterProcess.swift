import DeviceSimulation
import AccelMetricsTesting
import Foundation
import Testing

/// The real accel-exporter binary running under `umockdev-run` on a fixture tree, as in production but with a
/// fake /sys. The testbed directory is exposed so tests can change, corrupt or delete files while it runs.
final class ExporterProcess {
    let managed: ManagedProcess
    let port: Int
    let testbed: String
    let exporterPID: Int32

    static let umockdevAvailable = FileManager.default.isExecutableFile(atPath: "/usr/bin/umockdev-run")

    /// `tree` nil: no umockdev (for collectors that do not read /sys, such as NVML through the fake library).
    /// `environment` is added to the runner's.
    /// `preloadFirst`: a library preloaded into the exporter ahead of umockdev's (a fake driver at the syscall
    /// boundary, which must see the calls before umockdev routes them).
    init(tree: FixtureTree?, arguments: [String] = [], environment: [String: String] = [:], preloadFirst: String? = nil) throws {
        let setupDirectory = TemporaryDirectory(prefix: "accel-e2e")
        self.setupDirectory = setupDirectory
        let description = setupDirectory.url("node.umockdev")
        if let tree { try setupDirectory.write("node.umockdev", tree.umockdevDescription()) }
        let testbedFile = setupDirectory.url("testbed")

        let exporter = PackagePaths.product("accel-exporter")
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
            managed = try ManagedProcess(
                "/usr/bin/umockdev-run", ["-d", description.path, "--", "/bin/sh", "-c", script], environment: environment,
                stdout: .discard, directoryPrefix: "accel-e2e")
        } else {
            managed = try ManagedProcess("/bin/sh", ["-c", script], environment: environment, stdout: .discard, directoryPrefix: "accel-e2e")
        }

        // The exporter logs its bound port once it serves; wait for that (bounded).
        let found: Int
        do {
            found = Int(try managed.waitFor(#"msg=listening address=127\.0\.0\.1:(\d+)"#, timeout: 10)) ?? 0
        } catch {
            managed.stop()
            throw HarnessError("exporter did not start: \(error)")
        }
        guard let bed = try? String(contentsOf: testbedFile, encoding: .utf8) else {
            managed.stop()
            throw HarnessError("exporter did not start (no testbed line): \(managed.log)")
        }
        port = found
        // "<exporter pid> <testbed>": the shell's pid is the exporter's after exec.
        let fields = bed.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ", maxSplits: 1)
        exporterPID = Int32(fields[0]) ?? 0
        testbed = String(fields[1])
        // Straight to the exporter: umockdev-run (and sh) inherit the test runner's blocked SIGTERM and would not
        // forward it. umockdev-run exits when its child does.
        managed.signalTarget = exporterPID
    }

    /// The umockdev description and the testbed line, kept while the exporter runs.
    private let setupDirectory: TemporaryDirectory

    deinit { stop() }

    func stop() { managed.stop() }

    /// The exporter's scratch directory (removed with it).
    var workdir: URL { managed.directory.url }

    var log: String { managed.log }

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
        let (out, _, _) = try runProgramCapturingBytes("/usr/bin/curl", args)
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
        var last = ""
        let met = try eventually(timeout: timeout, pollInterval: 0.1) {
            last = try get("/metrics").text
            return condition(last)
        }
        if met { return last }
        Issue.record("condition not met within \(timeout)s; last scrape:\n\(last.prefix(3000))\nlog:\n\(log.suffix(3000))")
        return last
    }

    /// Waits (bounded) until the exporter has completed `count` more sample ticks than it has now
    /// (`accel_exporter_samples_total`): "several ticks later" without guessing how long a tick takes on a loaded
    /// machine.
    func waitForTicks(_ count: Int, timeout: Double = 20) throws {
        let start = value(try get("/metrics").text, "accel_exporter_samples_total") ?? 0
        _ = try waitForMetrics(timeout: timeout) { (value($0, "accel_exporter_samples_total") ?? 0) >= start + Double(count) }
    }

    /// promtool on a fresh text scrape, and the strict OpenMetrics parser (scripts/check-openmetrics.py) on a fresh
    /// scrape that negotiated OpenMetrics.
    func expectBothFormatsLint(sourceLocation: SourceLocation = #_sourceLocation) throws {
        let body = try get("/metrics").body
        let (out, err, status) = try runProgramCapturingBytes(EndToEndTests.promtool, ["check", "metrics"], stdin: body)
        #expect(status == 0, "promtool: \(String(decoding: out, as: UTF8.self)) \(err)", sourceLocation: sourceLocation)
        let accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
        let om = try get("/metrics", headers: ["Accept": accept])
        #expect(om.headers["content-type"] == "application/openmetrics-text; version=1.0.0; charset=utf-8", sourceLocation: sourceLocation)
        let script = PackagePaths.file("scripts/check-openmetrics.py").path
        let (_, omErr, omStatus) = try runProgramCapturingBytes("/usr/bin/env", ["python3", script], stdin: om.body)
        #expect(omStatus == 0, "OpenMetrics parser: \(omErr)", sourceLocation: sourceLocation)
    }

    /// Path of a file in the running testbed, e.g. `sys/devices/.../gpu_busy_percent`.
    func testbedPath(_ relative: String) -> String { testbed + "/" + relative }
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
