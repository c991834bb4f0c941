public import ArgumentParser
public import Logging
public import LineLogging
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What both executables' command lines share: the duration and log-level spellings, the environment, the host
/// name, and the one-line failure.
public enum CommandLineSupport {
    /// `debug`, `info`, `warn`/`warning`, `error`.
    public static func parseLevel(_ s: String) throws -> Logger.Level {
        switch s.lowercased() {
        case "debug": return .debug
        case "info": return .info
        case "warn", "warning": return .warning
        case "error": return .error
        default: throw ValidationError("--log.level must be debug, info, warn or error, not \"\(s)\"")
        }
    }

    /// `1s`, `500ms`, `2m`, `1h`, or a bare number of seconds; at least `minimum`.
    public static func parseDuration(_ s: String, flag: String, minimum: Double) throws -> Double {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        var seconds: Double?
        if let v = Double(s) { seconds = v }
        for (suffix, scale) in units where seconds == nil && s.hasSuffix(suffix) {
            if let v = Double(s.dropLast(suffix.count)) { seconds = v * scale }
        }
        guard let seconds, seconds.isFinite else {
            throw ValidationError("\(flag): \"\(s)\" is not a duration (e.g. 1s, 500ms)")
        }
        guard seconds >= minimum else { throw ValidationError("\(flag): \(s) is below the minimum of \(minimum)s") }
        return seconds
    }

    /// The variable's value; nil when unset or empty.
    public static func environment(_ name: String) -> String? {
        guard let v = getenv(name) else { return nil }
        let s = String(cString: v)
        return s.isEmpty ? nil : s
    }

    /// The whole environment.
    public static func environmentVariables() -> [String: String] {
        var out: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") {
                out[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            pointer += 1
        }
        return out
    }

    /// `gethostname(2)`, at most 255 bytes; nil when the call fails. The exporter's node name when neither
    /// `--kubernetes.node-name` nor `NODE_NAME` is set, and a name on the adapter's self-signed certificate.
    public static func hostName() -> String? {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return nil }
        return String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// `<program>: <message>` on stderr, exit status 1.
    public static func fail(program: String, _ message: String) -> Never {
        let line = Array("\(program): \(message)\n".utf8)
        _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        exit(1)
    }
}

extension CommandLineSupport {
    /// Installs the line log handler (logfmt or JSON) for every logger of the process.
    public static func bootstrapLogging(level: Logger.Level, format: LineLogHandler.Format) {
        LoggingSystem.bootstrap { label in LineLogHandler(label: label, format: format, level: level) }
    }

    /// Parses `Command`'s arguments and runs it; a flag mistake or a failure is one line on stderr and status 1
    /// instead of the full usage text (`--help` and `--version` still print theirs).
    public static func main<Command: AsyncParsableCommand>(_ command: Command.Type, program: String) async {
        do {
            var parsed = try Command.parseAsRoot()
            if var asyncCommand = parsed as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try parsed.run()
            }
        } catch {
            if Command.exitCode(for: error) == .success {
                print(Command.fullMessage(for: error))
                exit(0)
            }
            fail(program: program, Command.message(for: error))
        }
    }
}
