public import AdapterStore
import ConfigYAML
import AsyncHTTPClient
import Exposition
import Kubernetes
public import Logging
import NIOCore
import NIOSSL
import NIOHTTP1
import NIOHTTPCompression
import Synchronization

/// One accel-exporter to scrape.
public struct ExporterTarget: Sendable, Hashable, Comparable {
    /// `host:port` (`[v6]:port` for IPv6).
    public var address: String
    /// The node it runs on, when discovery knows it (EndpointSlice `nodeName`).
    public var node: String?

    public init(address: String, node: String? = nil) {
        self.address = address
        self.node = node
    }

    public static func < (lhs: ExporterTarget, rhs: ExporterTarget) -> Bool { lhs.address < rhs.address }

    /// Parses `--exporters.targets`: `host:port` entries separated by commas, blanks ignored.
    public static func parseList(_ text: String) throws(AdapterError) -> [ExporterTarget] {
        var out: [ExporterTarget] = []
        for entry in text.split(separator: ",") {
            let address = entry.trimmingASCIISpaces()
            guard !address.isEmpty else { continue }
            guard let colon = address.lastIndex(of: ":"), colon != address.startIndex,
                let port = Int(address[address.index(after: colon)...]), (1...65535).contains(port),
                !address.contains("/")
            else {
                throw AdapterError(
                    code: .invalidConfiguration,
                    message: "invalid exporter target \"\(address)\": expected host:port (e.g. 10.0.0.5:9445)")
            }
            out.append(ExporterTarget(address: String(address)))
        }
        return out
    }
}

/// How the direct source reaches the exporters.
public struct ScrapeSettings: Sendable {
    /// `http` or `https`.
    public var scheme: String = "http"
    public var path: String = "/metrics"
    /// How often each exporter is scraped (`--metric-resolution`).
    public var intervalSeconds: Double = 1
    /// A scrape that takes longer is abandoned and counted as `timeout`.
    public var timeoutSeconds: Double = 2
    /// Scrapes in flight at once: with many exporters, the rest wait and the achieved resolution drops.
    public var concurrency: Int = 64
    /// Larger answers are refused (`too_large`); an 8-GPU node's exposition is about 40 KB.
    public var maxBytes: Int = 8 << 20
    /// PEM CA bundle that exporters' serving certificates chain to; nil uses the system's roots.
    public var caFile: String?
    /// Client certificate and key, for exporters that require one.
    public var certFile: String?
    public var keyFile: String?
    /// Basic-auth user; the password is read from ``passwordFile`` at each scrape (rotated Secrets work).
    public var username: String?
    public var passwordFile: String?
    /// Bearer token file, read at each scrape.
    public var bearerTokenFile: String?
    /// Skip verifying the exporters' certificates (tests only).
    public var insecureSkipVerify = false

    public init() {}

    func tlsConfiguration() throws -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        if let caFile { tls.trustRoots = .file(caFile) }
        if let certFile, let keyFile {
            tls.certificateChain = try NIOSSLCertificate.fromPEMFile(certFile).map { .certificate($0) }
            tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: keyFile, format: .pem))
        }
        if insecureSkipVerify { tls.certificateVerification = .none }
        return tls
    }
}

/// The default source: scrapes every exporter directly, on its own schedule per target, and keeps the store
/// current. Failed scrapes leave the previous data in place until it goes stale.
public final class ExporterSource: Sendable {
    private let store: MetricStore
    private let catalog: MetricCatalog
    private let metrics: AdapterMetrics
    private let settings: ScrapeSettings
    private let logger: Logger
    private let client: HTTPClient
    private let limiter: AsyncLimiter
    private let state = Mutex(State())

    private struct State {
        var tasks: [String: Task<Void, Never>] = [:]
        var targets: [String: ExporterTarget] = [:]
        /// address → whether the last scrape succeeded.
        var up: [String: Bool] = [:]
        /// address → seconds between its last two scrape starts.
        var intervals: [String: Double] = [:]
        var lastError: [String: String] = [:]
    }

    public init(
        store: MetricStore, catalog: MetricCatalog, metrics: AdapterMetrics, settings: ScrapeSettings, logger: Logger
    ) throws {
        self.store = store
        self.catalog = catalog
        self.metrics = metrics
        self.settings = settings
        self.logger = logger
        var configuration = HTTPClient.Configuration()
        configuration.tlsConfiguration = try settings.tlsConfiguration()
        configuration.decompression = .enabled(limit: .size(settings.maxBytes))
        configuration.redirectConfiguration = .disallow
        configuration.timeout = HTTPClient.Configuration.Timeout(
            connect: .milliseconds(Int64(settings.timeoutSeconds * 1000)),
            read: .milliseconds(Int64(settings.timeoutSeconds * 1000)))
        configuration.connectionPool = HTTPClient.Configuration.ConnectionPool(
            idleTimeout: .seconds(max(30, Int64(settings.intervalSeconds * 3))),
            concurrentHTTP1ConnectionsPerHostSoftLimit: 2)
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        limiter = AsyncLimiter(limit: settings.concurrency)
    }

    /// Stops every scrape loop and closes the HTTP client.
    public func shutdown() async {
        let tasks = state.withLock { state in
            defer { state.tasks = [:] }
            return Array(state.tasks.values)
        }
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
        try? await client.shutdown()
    }

    /// Makes `targets` the set being scraped: new ones start (at a random offset within one interval, so a fleet's
    /// scrapes spread out), removed ones stop and leave the store.
    public func setTargets(_ targets: [ExporterTarget]) {
        let wanted = Dictionary(targets.map { ($0.address, $0) }, uniquingKeysWith: { first, _ in first })
        let removed: [(String, Task<Void, Never>)] = state.withLock { state in
            var removed: [(String, Task<Void, Never>)] = []
            for (address, task) in state.tasks where wanted[address] == nil {
                removed.append((address, task))
                state.tasks[address] = nil
                state.up[address] = nil
                state.intervals[address] = nil
                state.lastError[address] = nil
            }
            for (address, target) in wanted {
                state.targets[address] = target
                guard state.tasks[address] == nil else { continue }
                state.tasks[address] = Task { [self] in await self.loop(target) }
            }
            state.targets = wanted
            return removed
        }
        for (address, task) in removed {
            task.cancel()
            store.remove(target: address)
        }
        publishTargetFigures()
    }

    /// The current targets and their health, for the landing page and tests.
    public var targetStatus: [(target: ExporterTarget, up: Bool?, lastError: String?)] {
        state.withLock { state in
            state.targets.values.sorted().map { ($0, state.up[$0.address], state.lastError[$0.address]) }
        }
    }

    private func loop(_ initial: ExporterTarget) async {
        let interval = settings.intervalSeconds
        // Spread the first scrapes over one interval.
        let offset = Double.random(in: 0..<interval)
        try? await Task.sleep(for: .milliseconds(Int64(offset * 1000)))
        var lastStart: Double?
        while !Task.isCancelled {
            let target = state.withLock { $0.targets[initial.address] } ?? initial
            await limiter.acquire()
            let started = monotonicSeconds()
            if let lastStart {
                let elapsed = started - lastStart
                state.withLock { $0.intervals[target.address] = elapsed }
            }
            lastStart = started
            await scrapeOnce(target)
            limiter.release()
            publishTargetFigures()
            let next = started + interval
            let wait = next - monotonicSeconds()
            if wait > 0 { try? await Task.sleep(for: .milliseconds(Int64(wait * 1000))) }
        }
    }

    /// Scrapes one exporter and stores what it says. Public for tests and benchmarks.
    public func scrapeOnce(_ target: ExporterTarget) async {
        let started = monotonicSeconds()
        let result: String
        do {
            let data = try await fetch(target)
            store.update(data, rateCounters: catalog.rateCounters, ageByArrival: true)
            result = "success"
            record(target, error: nil)
        } catch where Task.isCancelled {
            // Shutting down (or the target was removed): not the exporter's failure; nothing to record or log.
            return
        } catch let error as ScrapeFailure {
            result = error.result
            record(target, error: error.message)
        } catch {
            result = "connect_error"
            record(target, error: String(describing: error))
        }
        metrics.observeScrape(result: result, seconds: monotonicSeconds() - started)
    }

    private func record(_ target: ExporterTarget, error: String?) {
        let previous: (up: Bool?, error: String?) = state.withLock { state in
            guard state.targets[target.address] != nil else { return (nil, nil) }
            let previous = (state.up[target.address], state.lastError[target.address])
            state.up[target.address] = error == nil
            state.lastError[target.address] = error
            return previous
        }
        // Log transitions only: a dead exporter must not write a line per interval.
        if let error, previous.up != false {
            logger.warning("exporter scrape failed", metadata: ["target": "\(target.address)", "error": "\(error)"])
        } else if error == nil, previous.up == false {
            logger.info("exporter scrape recovered", metadata: ["target": "\(target.address)"])
        }
    }

    private func publishTargetFigures() {
        let (up, total, mean) = state.withLock { state -> (Int, Int, Double) in
            let up = state.up.values.filter { $0 }.count
            let intervals = state.intervals.values
            let mean = intervals.isEmpty ? 0 : intervals.reduce(0, +) / Double(intervals.count)
            return (up, state.targets.count, mean)
        }
        metrics.setTargets(up: up, total: total, achievedIntervalSeconds: mean)
    }

    private struct ScrapeFailure: Error {
        var result: String
        var message: String
    }

    private func fetch(_ target: ExporterTarget) async throws -> TargetData {
        var request = HTTPClientRequest(url: "\(settings.scheme)://\(target.address)\(settings.path)")
        request.headers.add(name: "Accept", value: "text/plain;version=0.0.4")
        request.headers.add(name: "Accept-Encoding", value: "gzip")
        request.headers.add(name: "User-Agent", value: "accel-metrics-adapter")
        if let username = settings.username {
            let password = try settings.passwordFile.map { try readSecretFile($0) } ?? ""
            request.headers.add(name: "Authorization", value: "Basic " + Base64.encode(Array("\(username):\(password)".utf8)))
        } else if let tokenFile = settings.bearerTokenFile {
            request.headers.add(name: "Authorization", value: "Bearer " + (try readSecretFile(tokenFile)))
        }
        let timeout = TimeAmount.milliseconds(Int64(settings.timeoutSeconds * 1000))
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, timeout: timeout)
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout
            || error == .connectTimeout
        {
            throw ScrapeFailure(result: "timeout", message: "no answer within \(settings.timeoutSeconds) s")
        } catch {
            throw ScrapeFailure(result: "connect_error", message: String(describing: error))
        }
        guard response.status.code == 200 else {
            throw ScrapeFailure(result: "http_error", message: "HTTP \(response.status.code)")
        }
        var body: ByteBuffer
        do {
            body = try await response.body.collect(upTo: settings.maxBytes)
        } catch let error as NIOTooManyBytesError {
            throw ScrapeFailure(result: "too_large", message: "answer larger than \(settings.maxBytes) bytes: \(error)")
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout {
            throw ScrapeFailure(result: "timeout", message: "no complete answer within \(settings.timeoutSeconds) s")
        } catch {
            throw ScrapeFailure(result: "connect_error", message: String(describing: error))
        }
        let scrapeTime = unixTimeNow()
        let families: [MetricFamily]
        do {
            families = try body.withUnsafeReadableBytes { raw in
                try ExpositionParser.parse(raw.bindMemory(to: UInt8.self), format: .text)
            }
        } catch {
            throw ScrapeFailure(result: "parse_error", message: "\(error)")
        }
        return TargetData(
            target: target.address, parsed: families, keeping: catalog.families, scrapeTime: scrapeTime,
            fallbackNode: target.node)
    }
}

/// Reads a credential file, without its trailing newline. The content is never logged.
func readSecretFile(_ path: String) throws -> String {
    guard let bytes = try? readWholeFile(path) else {
        throw AdapterError(code: .credentialsUnreadable, message: "cannot read credentials file \(path)")
    }
    var text = String(decoding: bytes, as: UTF8.self)
    while text.last == "\n" || text.last == "\r" { text.removeLast() }
    return text
}
