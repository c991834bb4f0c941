public import Foundation
public import Testing

/// Runs a program to completion and returns its output as text: `(out, err, status)`.
///
/// - Parameters:
///   - stdin: fed from a file (nil: /dev/null).
///   - environment: added to the runner's own.
///   - mergingOutput: stderr goes where stdout goes (one ordered stream in `out`; `err` is empty), so "no output"
///     means neither stream said anything.
///   - timeout: past it the program is killed (SIGTERM, then SIGKILL) and the test gets an issue.
@discardableResult
public func runProgram(
    _ executable: String, _ arguments: [String], stdin: Data? = nil, environment: [String: String] = [:],
    mergingOutput: Bool = false, timeout: Double = 60, sourceLocation: SourceLocation = #_sourceLocation
) throws -> (out: String, err: String, status: Int32) {
    let (out, err, status) = try runProgramCapturingBytes(
        executable, arguments, stdin: stdin, environment: environment, mergingOutput: mergingOutput, timeout: timeout,
        sourceLocation: sourceLocation)
    return (String(decoding: out, as: UTF8.self), err, status)
}

/// `runProgram` with stdout as bytes, for output that is not text (a gzip body).
///
/// Output goes to files, never pipes: Foundation's `Process` can leak a pipe's write end into a child that a
/// parallel test spawns at the same moment, and a long-lived child (a running exporter) then keeps EOF from ever
/// coming.
@discardableResult
public func runProgramCapturingBytes(
    _ executable: String, _ arguments: [String], stdin: Data? = nil, environment: [String: String] = [:],
    mergingOutput: Bool = false, timeout: Double = 60, sourceLocation: SourceLocation = #_sourceLocation
) throws -> (out: Data, err: String, status: Int32) {
    let directory = TemporaryDirectory(prefix: "accel-run")
    let outURL = directory.url("out"), errURL = directory.url("err"), inURL = directory.url("in")
    _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if !environment.isEmpty {
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    }
    let outHandle = try FileHandle(forWritingTo: outURL), errHandle = try FileHandle(forWritingTo: errURL)
    defer { try? outHandle.close(); try? errHandle.close() }
    process.standardOutput = outHandle
    process.standardError = mergingOutput ? outHandle : errHandle
    if let stdin {
        _ = FileManager.default.createFile(atPath: inURL.path, contents: stdin)
        process.standardInput = try FileHandle(forReadingFrom: inURL)
    } else {
        process.standardInput = FileHandle.nullDevice
    }
    try process.run()
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
    if process.isRunning {
        Issue.record("\(executable) \(arguments) still running after \(timeout)s: terminated", sourceLocation: sourceLocation)
        ManagedProcess.terminate(process, signalling: process.processIdentifier, signal: SIGTERM, grace: 5)
    }
    process.waitUntilExit()
    (process.standardInput as? FileHandle).map { try? $0.close() }
    let out = (try? Data(contentsOf: outURL)) ?? Data()
    let err = (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
    return (out, err, process.terminationStatus)
}
