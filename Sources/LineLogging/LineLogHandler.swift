public import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `--log.format=logfmt|json` handlers writing one line per record to stderr, as Prometheus exporters do.
///
/// The executable bootstraps one of these; libraries only take a `Logger`.
public struct LineLogHandler: LogHandler {
    /// The `--log.format` value: `key=value` pairs (logfmt) or one JSON object of string fields per line.
    public enum Format: String, Sendable, CaseIterable {
        case logfmt, json
    }

    /// Handler-wide metadata; a record's own metadata wins for keys both carry.
    public var metadata: Logger.Metadata = [:]
    /// The `--log.level` threshold; `Logger` drops records below it before calling ``log(event:)``.
    public var logLevel: Logger.Level
    private let format: Format
    private let label: String

    /// Serialises writes so lines from several threads never interleave.
    private static let output = Mutex(())

    /// `label` is the logger's label from `LoggingSystem.bootstrap`; it is kept but not written to the line.
    public init(label: String, format: Format, level: Logger.Level) {
        self.label = label
        self.format = format
        self.logLevel = level
    }

    /// One entry of ``metadata``.
    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Writes `ts`, `level`, `msg`, the merged metadata in key order and, at `warning` and above (except from
    /// the `Exporter` source), `caller=FILE:LINE`, as one line on stderr under a process-wide lock.
    public func log(event: LogEvent) {
        var fields: [(String, String)] = [("ts", Self.timestamp()), ("level", event.level.rawValue), ("msg", "\(event.message)")]
        let merged = metadata.merging(event.metadata ?? [:]) { _, new in new }
        for key in merged.keys.sorted() { fields.append((key, "\(merged[key]!)")) }
        if event.level >= .warning && event.source != "Exporter" {
            fields.append(("caller", "\(Self.shortFile(event.file)):\(event.line)"))
        }
        let line = format == .json ? Self.json(fields) : Self.logfmt(fields)
        Self.output.withLock { _ in
            let bytes = Array(line.utf8)
            var offset = 0
            while offset < bytes.count {
                let n = bytes.withUnsafeBytes { write(2, $0.baseAddress! + offset, $0.count - offset) }
                if n <= 0 { break }
                offset += n
            }
        }
    }

    static func logfmt(_ fields: [(String, String)]) -> String {
        var out = ""
        for (i, (k, v)) in fields.enumerated() {
            if i > 0 { out += " " }
            out += k + "="
            if v.isEmpty || v.contains(where: { $0 == " " || $0 == "=" || $0 == "\"" || $0 == "\n" }) {
                out += "\"" + v.replacingEach(["\\": "\\\\", "\"": "\\\"", "\n": "\\n"]) + "\""
            } else {
                out += v
            }
        }
        return out + "\n"
    }

    static func json(_ fields: [(String, String)]) -> String {
        var out = "{"
        for (i, (k, v)) in fields.enumerated() {
            if i > 0 { out += "," }
            out += "\"" + jsonEscape(k) + "\":\"" + jsonEscape(v) + "\""
        }
        return out + "}\n"
    }

    static func jsonEscape(_ s: String) -> String {
        var out = ""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }

    /// RFC 3339 UTC with milliseconds, without Foundation.
    static func timestamp() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = time_t(ts.tv_sec)
        var tm = tm()
        gmtime_r(&t, &tm)
        var buffer = [CChar](repeating: 0, count: 32)
        let n = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%S", &tm)
        let ms = String(ts.tv_nsec / 1_000_000)
        let base = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return base + "." + String(repeating: "0", count: 3 - ms.count) + ms + "Z"
    }

    static func shortFile(_ path: String) -> String {
        path.split(separator: "/").last.map(String.init) ?? path
    }
}

extension String {
    fileprivate func replacingEach(_ map: [Character: String]) -> String {
        var out = ""
        for c in self { if let r = map[c] { out += r } else { out.append(c) } }
        return out
    }
}
