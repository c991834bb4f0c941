public import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A program running in the background for the length of a test: a product binary, the fake API server, Prometheus.
///
/// Its stdout and stderr go to files in a directory of its own (never pipes; see `runProgramCapturingBytes`), read
/// back whole by `output` and `log`. `stop()` and `deinit` always end it — the stop signal, a grace period, then
/// SIGKILL — and remove the directory, so a failing test leaves neither a process nor a file behind.
public final class ManagedProcess: @unchecked Sendable {
    // Safe enough for tests: `process` is Foundation's (thread-safe for isRunning/terminationStatus); the stop
    // settings are set before the process is shared.

    /// Where one stream goes.
    public enum Output: Sendable {
        /// A file in the process's directory (`stdoutURL`, `stderrURL`).
        case file
        /// /dev/null.
        case discard
    }

    /// Foundation's process (for `processIdentifier`, `isRunning`, `terminationStatus`).
    public let process = Process()

    /// The process's own temporary directory (its output files; scratch space for the test).
    public let directory: TemporaryDirectory

    /// stdout's file (empty when discarded).
    public let stdoutURL: URL

    /// stderr's file, where our binaries log.
    public let stderrURL: URL

    /// The signal `stop()` sends first. Our binaries unblock SIGTERM and exit on it; others (Python) keep the
    /// blocked mask Foundation's Process starts children with, so they are stopped with SIGKILL.
    public var stopSignal: Int32 = SIGTERM

    /// The process `stop()` signals, when it is not the one started (a binary exec'd by `umockdev-run sh -c …`,
    /// whose wrappers inherit the blocked SIGTERM and would not forward it).
    public var signalTarget: Int32?

    /// How long `stop()` waits after `stopSignal` before SIGKILL (and an issue saying the signal was ignored).
    public var stopGrace: Double = 10

    private let name: String

    /// Starts `executable` with `arguments`; `environment` is added to the runner's own.
    public init(
        _ executable: String, _ arguments: [String], environment: [String: String] = [:], stdout: Output = .file,
        stderr: Output = .file, directoryPrefix: String = "accel-proc"
    ) throws {
        name = URL(fileURLWithPath: executable).lastPathComponent
        directory = TemporaryDirectory(prefix: directoryPrefix)
        stdoutURL = directory.url("stdout.log")
        stderrURL = directory.url("stderr.log")
        _ = FileManager.default.createFile(atPath: stdoutURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrURL.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        process.standardOutput = stdout == .file ? try FileHandle(forWritingTo: stdoutURL) : FileHandle.nullDevice
        process.standardError = stderr == .file ? try FileHandle(forWritingTo: stderrURL) : FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    deinit { stop() }

    /// The pid of the process started.
    public var pid: Int32 { process.processIdentifier }

    public var isRunning: Bool { process.isRunning }

    /// Waits for the process to exit by itself (a client run in the background, such as curl with its own `-m`).
    public func waitUntilExit() { process.waitUntilExit() }

    /// Everything written to stdout so far.
    public var output: String { (try? String(contentsOf: stdoutURL, encoding: .utf8)) ?? "" }

    /// Everything written to stderr so far (our binaries' log).
    public var log: String { (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? "" }

    /// Which stream `waitFor` reads.
    public enum Stream: Sendable { case stdout, stderr }

    /// Waits (at most `timeout` seconds) until `stream` matches the regular expression `pattern`; returns the first
    /// capture group (or "" without one). Throws when the deadline passes or the process exits first.
    @discardableResult
    public func waitFor(_ pattern: String, in stream: Stream = .stderr, timeout: Double = 15) throws -> String {
        let regex = try NSRegularExpression(pattern: pattern)
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let running = process.isRunning
            let text = stream == .stdout ? output : log
            if let match = regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) {
                if match.numberOfRanges > 1, let range = Range(match.range(at: 1), in: text) { return String(text[range]) }
                return ""
            }
            guard running, Date() < deadline else { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        let why = process.isRunning ? "within \(timeout) s" : "before it exited (status \(process.terminationStatus))"
        throw HarnessError("no /\(pattern)/ \(why) in the \(stream) of \(name):\n\(log.suffix(3000))\(output.suffix(1000))")
    }

    /// Waits (at most `timeout` seconds) until something accepts TCP connections on 127.0.0.1:`port`.
    public func waitForPort(_ port: Int, timeout: Double = 15) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if canConnect(toLoopbackPort: port) { return }
            guard process.isRunning else { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw HarnessError("\(name) did not listen on 127.0.0.1:\(port) within \(timeout) s:\n\(log.suffix(3000))")
    }

    /// Ends the process (idempotent): `stopSignal` to `signalTarget ?? pid`, `stopGrace` seconds, then SIGKILL to
    /// both; waits for it; removes its directory.
    public func stop() {
        if process.isRunning {
            let ignored = Self.terminate(process, signalling: signalTarget ?? pid, signal: stopSignal, grace: stopGrace)
            if ignored { Issue.record("\(name) ignored signal \(stopSignal) for \(stopGrace) s; killed it") }
        }
        directory.remove()
    }

    /// Sends `signal` to `target`, waits `grace` seconds for `process` to exit, then SIGKILLs `target` and
    /// `process`; returns whether SIGKILL was needed. Always waits for the exit.
    @discardableResult
    static func terminate(_ process: Process, signalling target: Int32, signal: Int32, grace: Double) -> Bool {
        // Never 0 or -1: kill(2) would signal this whole process group (the test runner) or every process.
        let target = target > 0 ? target : process.processIdentifier
        guard target > 0 else { return false }
        kill(target, signal)
        let deadline = Date().addingTimeInterval(grace)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        let needed = process.isRunning
        if needed {
            kill(target, SIGKILL)
            kill(process.processIdentifier, SIGKILL)
        }
        process.waitUntilExit()
        return needed && signal != SIGKILL
    }
}
