import ArgumentParser
import CommandLineSupport
import Foundation
import Logging
import Testing

/// What both programs' flags go through: durations, log levels and the environment.
@Suite struct CommandLineSupportTests {
    @Test(arguments: [
        ("1s", 1.0), ("500ms", 0.5), ("2m", 120.0), ("1h", 3600.0), ("1.5", 1.5), ("0.25s", 0.25), ("1e3ms", 1.0),
    ])
    func durations(text: String, seconds: Double) throws {
        #expect(try CommandLineSupport.parseDuration(text, flag: "--x", minimum: 0) == seconds)
    }

    @Test(arguments: ["", "often", "5 s", "1d", "s", "ms", "inf", "nan", "infs", "1s1"])
    func notADurationNamesTheFlagAndTheValue(text: String) {
        do {
            _ = try CommandLineSupport.parseDuration(text, flag: "--collect.interval", minimum: 0)
            Issue.record("\"\(text)\" was accepted")
        } catch {
            #expect("\(error)".contains("--collect.interval: \"\(text)\" is not a duration"))
        }
    }

    @Test func belowTheMinimumIsRefused() throws {
        #expect(try CommandLineSupport.parseDuration("100ms", flag: "--x", minimum: 0.1) == 0.1)
        #expect(throws: ValidationError.self) { try CommandLineSupport.parseDuration("99ms", flag: "--x", minimum: 0.1) }
        #expect(throws: ValidationError.self) { try CommandLineSupport.parseDuration("-1s", flag: "--x", minimum: 0) }
    }

    @Test func logLevels() throws {
        #expect(try CommandLineSupport.parseLevel("debug") == .debug)
        #expect(try CommandLineSupport.parseLevel("INFO") == .info)
        #expect(try CommandLineSupport.parseLevel("warn") == .warning)
        #expect(try CommandLineSupport.parseLevel("warning") == .warning)
        #expect(try CommandLineSupport.parseLevel("error") == .error)
        #expect(throws: ValidationError.self) { try CommandLineSupport.parseLevel("trace") }
    }

    /// Read only: setenv while other suites in this process read the environment would race them.
    @Test func theEnvironment() throws {
        let path = try #require(ProcessInfo.processInfo.environment["PATH"])
        #expect(CommandLineSupport.environment("PATH") == path)
        #expect(CommandLineSupport.environment("ACCEL_NO_SUCH_VARIABLE_\(getpid())") == nil)
        let all = CommandLineSupport.environmentVariables()
        #expect(all == ProcessInfo.processInfo.environment)
    }

    @Test func hostName() throws {
        let kernel = try String(contentsOfFile: "/proc/sys/kernel/hostname", encoding: .utf8)
        #expect(CommandLineSupport.hostName() == kernel.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
