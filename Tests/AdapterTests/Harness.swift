import Foundation
import HTTPServer
import Logging
import Synchronization
import Testing

/// Paths and processes for tests that run the real binaries.
enum Harness {
    static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// Products sit next to the test bundle (`.build/<config>/`).
    static func binary(_ name: String) -> String {
        if let env = ProcessInfo.processInfo.environment["ACCEL_BIN_DIR"] { return env + "/" + name }
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent(name).path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return packageRoot.appendingPathComponent(".build/debug/\(name)").path
    }

    static var kubectl: String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
            let path = "\(dir)/kubectl"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    /// A TCP port nobody listens on right now (bound and released; good enough on a test machine).
    static func freePort() throws -> Int {
        let server = HTTPServer(
            configuration: .init(host: "127.0.0.1", port: 0, threads: 1), logger: Logger(label: "probe"),
            handler: { _ in .notFound })
        try server.start()
        let port = server.port
        server.stop()
        return port
    }

    static func temporaryDirectory(_ prefix: String) throws -> URL {
        let url = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A binary running in the background with its stderr in a file; stopped with SIGTERM.
final class BackgroundProcess {
    let process = Process()
    let logFile: URL
    let directory: URL

    /// stdout, when the program prints something the test reads (the fake API server's port).
    let outputFile: URL

    init(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws {
        directory = try Harness.temporaryDirectory("accel-proc")
        logFile = directory.appendingPathComponent("stderr.log")
        outputFile = directory.appendingPathComponent("stdout.log")
        _ = FileManager.default.createFile(atPath: logFile.path, contents: nil)
        _ = FileManager.default.createFile(atPath: outputFile.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardError = try FileHandle(forWritingTo: logFile)
        process.standardOutput = try FileHandle(forWritingTo: outputFile)
        try process.run()
    }

    var output: String { (try? String(contentsOf: outputFile, encoding: .utf8)) ?? "" }

    deinit { stop() }

    /// The signal `stop()` sends.
    var killWith: Int32 = SIGTERM

    var log: String { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "" }

    /// Waits (bounded) until the log holds `pattern`; returns the first capture group, if any.
    @discardableResult
    func waitForLog(_ pattern: String, timeout: Double = 15) throws -> String {
        let regex = try NSRegularExpression(pattern: pattern)
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let text = log
            if let match = regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) {
                if match.numberOfRanges > 1, let range = Range(match.range(at: 1), in: text) { return String(text[range]) }
                return ""
            }
            guard process.isRunning else { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw HarnessError("no /\(pattern)/ in the log of \(process.executableURL?.lastPathComponent ?? "?"):\n\(log.suffix(3000))")
    }

    func stop() {
        if process.isRunning {
            // Our binaries unblock SIGTERM; others (Python) keep the blocked mask Foundation's Process gives them.
            kill(process.processIdentifier, killWith)
            let deadline = Date().addingTimeInterval(10)
            while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
            if process.isRunning {
                Issue.record("\(process.executableURL?.lastPathComponent ?? "?") ignored SIGTERM for 10 s")
                kill(process.processIdentifier, SIGKILL)
            }
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: directory)
    }
}

/// Runs a program to completion (killed after `timeout`); output through files, never pipes (see ExporterTests).
@discardableResult
func runProgram(_ executable: String, _ arguments: [String], timeout: Double = 30) throws -> (out: String, err: String, status: Int32) {
    let dir = try Harness.temporaryDirectory("accel-run")
    defer { try? FileManager.default.removeItem(at: dir) }
    let outURL = dir.appendingPathComponent("out"), errURL = dir.appendingPathComponent("err")
    _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(["KUBECONFIG": "/nonexistent"]) { $1 }
    let outHandle = try FileHandle(forWritingTo: outURL), errHandle = try FileHandle(forWritingTo: errURL)
    defer { try? outHandle.close(); try? errHandle.close() }
    process.standardOutput = outHandle
    process.standardError = errHandle
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
    if process.isRunning {
        process.terminate()
        Issue.record("\(executable) \(arguments) still running after \(timeout)s: terminated")
    }
    process.waitUntilExit()
    return (
        (try? String(contentsOf: outURL, encoding: .utf8)) ?? "", (try? String(contentsOf: errURL, encoding: .utf8)) ?? "",
        process.terminationStatus
    )
}

/// An exporter stand-in on loopback serving exporter-shaped text that tests change while the adapter scrapes it;
/// optionally slow. Served by the project's own HTTP server.
final class FakeExporter: Sendable {
    private final class Content: Sendable {
        let body: Mutex<String>
        let delaySeconds: Mutex<Double>
        init(body: String, delaySeconds: Double) {
            self.body = Mutex(body)
            self.delaySeconds = Mutex(delaySeconds)
        }
    }

    let server: HTTPServer
    private let content: Content

    init(_ node: FakeNode, delaySeconds: Double = 0) throws {
        let content = Content(body: node.exposition(), delaySeconds: delaySeconds)
        self.content = content
        server = HTTPServer(
            configuration: .init(host: "127.0.0.1", port: 0, threads: 2), logger: Logger(label: "fake-exporter"),
            handler: { request in
                let wait = content.delaySeconds.withLock { $0 }
                if wait > 0 { Thread.sleep(forTimeInterval: wait) }
                guard request.path == "/metrics" else { return .notFound }
                return .text(content.body.withLock { $0 })
            })
        try server.start()
    }

    var address: String { "127.0.0.1:\(server.port)" }

    func publish(_ node: FakeNode) {
        publish(text: node.exposition())
    }

    func publish(text: String) {
        content.body.withLock { $0 = text }
    }

    deinit { server.stop() }
}
