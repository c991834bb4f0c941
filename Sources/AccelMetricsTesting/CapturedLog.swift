public import Logging
import Synchronization

/// A logger whose records a test can read back: what reached it, at which level, with which metadata.
///
/// Thread-safe: the code under test may log from any thread.
public final class CapturedLog: Sendable {
    /// One log call.
    public struct Record: Sendable, CustomStringConvertible {
        public let level: Logger.Level
        public let message: String
        /// The call's metadata (the logger's own included), `key=value` sorted by key, space-separated.
        public let metadata: String

        public var description: String { "\(level) \(message) \(metadata)" }
    }

    private let records = Mutex<[Record]>([])

    public init() {}

    /// A logger that records here; `level` is the lowest level recorded.
    public func logger(label: String = "test", level: Logger.Level = .trace) -> Logger {
        var logger = Logger(label: label) { _ in Handler(log: self) }
        logger.logLevel = level
        return logger
    }

    /// Every record, oldest first.
    public var all: [Record] { records.withLock { $0 } }

    /// How many records' messages contain `fragment` (at `level`, when given).
    public func count(_ fragment: String, level: Logger.Level? = nil) -> Int {
        all.filter { $0.message.contains(fragment) && (level == nil || $0.level == level) }.count
    }

    /// Whether a record's message contains `fragment` (at `level`, when given).
    public func contains(_ fragment: String, level: Logger.Level? = nil) -> Bool {
        count(fragment, level: level) > 0
    }

    private struct Handler: LogHandler {
        let log: CapturedLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let merged = metadata.merging(event.metadata ?? [:]) { $1 }
            let text = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            log.records.withLock { $0.append(Record(level: event.level, message: "\(event.message)", metadata: text)) }
        }
    }
}
