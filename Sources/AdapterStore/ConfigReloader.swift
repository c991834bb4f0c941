public import ConfigYAML
public import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Keeps the metric catalog in step with `--metrics-config`: reloads when the file changes (checked every few
/// seconds, so ConfigMap updates through a symlink swap are seen) or on SIGHUP; a configuration that does not
/// parse or validate is logged and counted, and the last good one stays in force.
public final class ConfigReloader: Sendable {
    /// The file's bytes to a document; the adapter passes the YAML parser, and its error is reported as it is.
    public typealias Parser = @Sendable ([UInt8]) throws -> ConfigValue

    private let path: String
    private let catalog: MetricCatalog
    private let metrics: AdapterMetrics
    private let logger: Logger
    private let parse: Parser
    private let state = Mutex(State())

    private struct State {
        var fingerprint: FileFingerprint?
        var task: Task<Void, Never>?
        var lastError: String?
    }

    struct FileFingerprint: Equatable {
        var device: UInt64
        var inode: UInt64
        var size: Int64
        var modified: Int64
        var modifiedNanoseconds: Int64
    }

    /// Reads nothing yet: ``loadInitial()`` does, at start. Each load replaces `catalog`'s definitions and counts in
    /// `metrics`.
    public init(path: String, catalog: MetricCatalog, metrics: AdapterMetrics, logger: Logger, parse: @escaping Parser) {
        self.path = path
        self.catalog = catalog
        self.metrics = metrics
        self.logger = logger
        self.parse = parse
    }

    /// Loads the file once; throws with a clear message when it is unusable (the adapter then refuses to start).
    public func loadInitial() throws(ConfigError) {
        try reload(force: true, throwing: true)
    }

    /// Re-reads the file now (SIGHUP), whether or not it changed.
    public func reloadNow() {
        try? reload(force: true, throwing: false)
    }

    /// Polls the file every `intervalSeconds` until ``stop()``.
    public func start(intervalSeconds: Double = 2) {
        state.withLock { state in
            guard state.task == nil else { return }
            state.task = Task { [self] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(Int64(intervalSeconds * 1000)))
                    try? reload(force: false, throwing: false)
                }
            }
        }
    }

    /// Cancels the polling task; does not wait for a load in progress. A later ``start(intervalSeconds:)`` polls again.
    public func stop() {
        let task = state.withLock { state in
            defer { state.task = nil }
            return state.task
        }
        task?.cancel()
    }

    /// The last reload's problem, or nil when the configuration in force is the file's.
    public var lastError: String? { state.withLock { $0.lastError } }

    private func reload(force: Bool, throwing: Bool) throws(ConfigError) {
        let fingerprint = Self.fingerprint(path)
        if !force, fingerprint == state.withLock({ $0.fingerprint }) { return }
        do throws(ConfigError) {
            let bytes: [UInt8]
            do {
                bytes = try readWholeFile(path, limit: 1 << 20)
            } catch {
                throw ConfigError(path: "", message: error.message)
            }
            let document: ConfigValue
            do {
                document = try parse(bytes)
            } catch let error as ConfigError {
                throw error
            } catch {
                throw ConfigError(path: "", message: "\(error)")
            }
            let config = try MetricsConfig(document)
            catalog.replace(with: config.definitions)
            state.withLock {
                $0.fingerprint = fingerprint
                $0.lastError = nil
            }
            metrics.observeConfigReload(success: true)
            logger.info(
                "metrics configuration loaded",
                metadata: ["file": "\(path)", "metrics": "\(config.definitions.map(\.name).joined(separator: ","))"])
        } catch {
            // Remember the broken file's fingerprint so it is reported once, not every poll.
            state.withLock {
                $0.fingerprint = fingerprint
                $0.lastError = error.description
            }
            metrics.observeConfigReload(success: false)
            if throwing { throw ConfigError(path: "", message: "\(path): \(error.description)") }
            logger.error(
                "metrics configuration rejected; keeping the previous one",
                metadata: ["file": "\(path)", "error": "\(error)"])
        }
    }

    static func fingerprint(_ path: String) -> FileFingerprint? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return FileFingerprint(
            device: UInt64(info.st_dev), inode: UInt64(info.st_ino), size: Int64(info.st_size),
            modified: Int64(info.st_mtim.tv_sec), modifiedNanoseconds: Int64(info.st_mtim.tv_nsec))
    }
}
