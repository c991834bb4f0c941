public import Accelerators
public import Logging
import Synchronization
import TPURuntimeAPI
import UnaryGRPC

/// libtpu's runtime-metrics client: every workload address is polled on its own loop (never per scrape or per
/// sample), and the latest good answer is kept for the TPU source to read without waiting.
///
/// Per target, one background task owns a gRPC channel (``UnaryGRPC``: plaintext HTTP/2 through libcurl; libtpu uses
/// gRPC local credentials, which do not encrypt), so a hung target holds only its own channel. On a new connection it asks `ListSupportedMetrics` which metrics this libtpu serves, then
/// every `refreshInterval` calls `GetRuntimeMetric` for each wanted one, each call with a deadline. A failure closes
/// the connection; the next attempt opens a new one after a backoff doubling from the interval up to
/// `min(30 s, 8 × interval)`. The last good answer is served for `staleAfter` seconds, then dropped, so values of a
/// workload that ended never linger. Nothing listening (connection refused) is the normal state of a TPU node
/// between workloads: reported as `noWorkload`, not as a failure. Logs once per change of state per target.
public final class TPURuntimeClient: TPURuntimeReadings, Sendable {
    /// The `--tpu.runtime-metrics-*` settings; all durations in seconds.
    public struct Configuration: Sendable {
        /// The endpoints to poll, asked again every refresh: the configured addresses, or — once the pod watch
        /// provides them — the TPU pods' IPs with the chips each holds. Called on the client's loop: it must answer
        /// from memory, never wait on the network.
        public var targets: @Sendable () -> [TPURuntimeTarget]
        /// `--tpu.runtime-metrics-interval`: seconds between polls of one target.
        public var refreshInterval: Double
        /// Deadline of each call.
        public var callTimeout: Double
        /// How long the last good answer is served after polls start failing (default: 3 × the interval).
        public var staleAfter: Double

        /// `staleAfter` nil means 3 × `refreshInterval`.
        public init(targets: @escaping @Sendable () -> [TPURuntimeTarget], refreshInterval: Double = 2, callTimeout: Double = 1,
                    staleAfter: Double? = nil) {
            self.targets = targets
            self.refreshInterval = refreshInterval
            self.callTimeout = callTimeout
            self.staleAfter = staleAfter ?? 3 * refreshInterval
        }

        /// Fixed addresses, each standing for the whole host (`--tpu.runtime-metrics-address`).
        public init(addresses: [String], refreshInterval: Double = 2, callTimeout: Double = 1, staleAfter: Double? = nil) {
            let targets = addresses.map { TPURuntimeTarget(address: $0) }
            self.init(targets: { targets }, refreshInterval: refreshInterval, callTimeout: callTimeout, staleAfter: staleAfter)
        }
    }

    /// As given to ``init(configuration:logger:)``.
    public let configuration: Configuration
    private let logger: Logger
    private let state = Mutex(State())
    private let executor = SerialTaskExecutor(label: "accel-exporter.tpu-runtime")

    private struct State {
        var supervisor: Task<Void, Never>?
        var stopped = false
        /// Targets in the order the provider gave them.
        var order: [TPURuntimeTarget] = []
        var entries: [TPURuntimeTarget: Entry] = [:]
    }

    private struct Entry {
        var state = TPURuntimeReport.State.connecting
        var snapshot: TPURuntimeSnapshot?
        var lastSuccess: ContinuousClock.Instant?
        var durationSeconds = 0.0
        var polls = 0
        /// What was last logged: a state kind, so each change is logged once.
        var logged: String?
        var loggedProblems: [String] = []
        var loggedUnsupported: Set<String> = []
        var staleLogged = false
    }

    /// Built by the TPU collector; nothing connects until ``activate()``.
    public init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Starts the loops (once); after `stop()` it stays stopped.
    public func activate() {
        state.withLock { s in
            guard s.supervisor == nil, !s.stopped else { return }
            s.supervisor = Task.detached(executorPreference: executor) { [self] in
                await self.supervise()
            }
        }
    }

    /// Whether `activate()` started the loops (the exporter reports `tpu_runtime` only then).
    public var isActive: Bool { state.withLock { $0.supervisor != nil } }

    /// Cancels every loop; they close their connections on the way out (without blocking here).
    public func stop() {
        let task = state.withLock { s in
            s.stopped = true
            defer { s.supervisor = nil }
            return s.supervisor
        }
        task?.cancel()
    }

    /// The latest state of every target; values older than `staleAfter` are left out (and that is logged once).
    public var reports: [TPURuntimeReport] {
        let now = ContinuousClock.now
        var dropped: [TPURuntimeTarget] = []
        let reports = state.withLock { s -> [TPURuntimeReport] in
            s.order.compactMap { target in
                guard var entry = s.entries[target] else { return nil }
                var snapshot = entry.snapshot
                if let last = entry.lastSuccess, now - last > .seconds(configuration.staleAfter), snapshot != nil {
                    snapshot = nil
                    if !entry.staleLogged {
                        entry.staleLogged = true
                        entry.snapshot = nil
                        s.entries[target] = entry
                        dropped.append(target)
                    }
                }
                return TPURuntimeReport(target: target, state: entry.state, snapshot: snapshot, durationSeconds: entry.durationSeconds)
            }
        }
        for target in dropped {
            logger.info("dropping TPU runtime values: no good answer for too long",
                        metadata: ["target": "\(target)", "stale_after_seconds": "\(Self.rounded(configuration.staleAfter))"])
        }
        return reports
    }

    /// Polls made so far for `address` (tests count them).
    public func polls(_ address: String) -> Int {
        state.withLock { s in s.entries.first { $0.key.address == address }?.value.polls ?? 0 }
    }

    // MARK: Loops

    /// Keeps one polling task per target the provider names, starting and cancelling them as the list changes.
    private func supervise() async {
        var tasks: [TPURuntimeTarget: Task<Void, Never>] = [:]
        while !Task.isCancelled {
            var wanted: [TPURuntimeTarget] = []
            for target in configuration.targets() where !wanted.contains(target) { wanted.append(target) }
            for (target, task) in tasks where !wanted.contains(target) {
                task.cancel()
                tasks[target] = nil
                logger.info("TPU runtime target removed", metadata: ["target": "\(target)"])
            }
            state.withLock { s in
                s.order = wanted
                for target in wanted where s.entries[target] == nil { s.entries[target] = Entry() }
                for target in s.entries.keys where !wanted.contains(target) { s.entries[target] = nil }
            }
            for target in wanted where tasks[target] == nil {
                tasks[target] = Task(executorPreference: executor) { [self] in await self.poll(target) }
            }
            do { try await Task.sleep(for: .seconds(configuration.refreshInterval)) } catch { break }
        }
        for task in tasks.values { task.cancel() }
        for task in tasks.values { await task.value }
    }

    private func poll(_ target: TPURuntimeTarget) async {
        var failures = 0
        while !Task.isCancelled {
            do {
                try await connectAndPoll(target) { failures = 0 }
            } catch is CancellationError {
                return
            } catch {
                if Task.isCancelled { return }
                failures += 1
            }
            let interval = configuration.refreshInterval
            let cap = max(interval, min(30, 8 * interval))
            let backoff = min(interval * Double(1 << min(max(failures - 1, 0), 10)), cap)
            do { try await Task.sleep(for: .seconds(backoff)) } catch { return }
        }
    }

    /// One connection: `ListSupportedMetrics`, then every wanted metric every interval until a call fails (throws).
    private func connectAndPoll(_ target: TPURuntimeTarget, onSuccess: () -> Void) async throws {
        let address: TPURuntimeAddress
        switch TPURuntimeAddress.parse(target.address) {
        case .success(let parsed): address = parsed
        case .failure(let error):
            record(target, failure: .failing(error.message), kind: "address", duration: 0)
            throw error
        }
        let channel = try GRPCChannel(target: .host(address.host, port: address.port), label: "accel-exporter.tpu-runtime")
        var wanted = try await supported(channel, target: target)
        var answered = false
        while true {
            try await pollOnce(channel, target: target, wanted: &wanted, answered: answered)
            answered = true
            onSuccess()
            try await Task.sleep(for: .seconds(configuration.refreshInterval))
        }
    }

    /// The wanted metrics this libtpu lists; all of them when it does not implement the listing (older versions),
    /// each then dropped for this connection if asking for it says it is unknown.
    private func supported(_ channel: GRPCChannel, target: TPURuntimeTarget) async throws -> [TPURuntimeMetric] {
        let started = ContinuousClock.now
        do {
            let response = try await channel.unary(
                RuntimeMetricMethod.listSupportedMetrics, Tpu_Monitoring_Runtime_ListSupportedMetricsRequest(),
                as: Tpu_Monitoring_Runtime_ListSupportedMetricsResponse.self, timeout: configuration.callTimeout)
            let names = Set(response.supportedMetric.map(\.metricName))
            let wanted = TPURuntimeMetric.allCases.filter { names.contains($0.rawValue) }
            noteUnsupported(target, TPURuntimeMetric.allCases.filter { !names.contains($0.rawValue) })
            return wanted
        } catch where error.code == .unimplemented {
            return TPURuntimeMetric.allCases
        } catch {
            fail(target, error, started: started, call: "ListSupportedMetrics", answered: false)
            throw error
        }
    }

    private func pollOnce(_ channel: GRPCChannel, target: TPURuntimeTarget, wanted: inout [TPURuntimeMetric], answered: Bool) async throws {
        let started = ContinuousClock.now
        state.withLock { $0.entries[target]?.polls += 1 }
        var snapshot = TPURuntimeSnapshot()
        var problems: [String] = []
        var unknown: [TPURuntimeMetric] = []
        for metric in wanted {
            var request = Tpu_Monitoring_Runtime_MetricRequest()
            request.metricName = metric.rawValue
            do {
                let response = try await channel.unary(
                    RuntimeMetricMethod.getRuntimeMetric, request, as: Tpu_Monitoring_Runtime_MetricResponse.self,
                    timeout: configuration.callTimeout)
                problems += TPURuntimeConversion.add(response, as: metric, to: &snapshot)
            } catch where Self.isUnknownMetric(error) {
                // This libtpu does not know the metric: stop asking on this connection.
                unknown.append(metric)
            } catch {
                fail(target, error, started: started, call: "GetRuntimeMetric \(metric.rawValue)", answered: answered)
                throw error
            }
        }
        if !unknown.isEmpty {
            wanted.removeAll { unknown.contains($0) }
            noteUnsupported(target, unknown)
        }
        problems += TPURuntimeConversion.checkConsistency(&snapshot)
        let duration = Self.seconds(ContinuousClock.now - started)
        let (recovered, newProblems) = state.withLock { s -> (String?, [String]?) in
            guard var entry = s.entries[target] else { return (nil, nil) }
            entry.state = .answering
            entry.snapshot = snapshot
            entry.lastSuccess = ContinuousClock.now
            entry.staleLogged = false
            entry.durationSeconds = duration
            let was = entry.logged
            entry.logged = "answering"
            let changed = problems != entry.loggedProblems
            entry.loggedProblems = problems
            s.entries[target] = entry
            return (was == "answering" ? nil : (was ?? "start"), changed ? problems : nil)
        }
        if let recovered {
            logger.info("TPU runtime metrics answering", metadata: [
                "target": "\(target)", "was": "\(recovered)", "metrics": "\(wanted.map(\.rawValue).joined(separator: ","))",
                "devices": "\(Set(snapshot.hbmUsedBytes.keys).union(snapshot.hbmTotalBytes.keys).count)",
            ])
        }
        if let newProblems {
            if newProblems.isEmpty {
                logger.info("TPU runtime answers are sound again", metadata: ["target": "\(target)"])
            } else {
                logger.warning("TPU runtime answer had values that were dropped", metadata: [
                    "target": "\(target)", "problems": "\(newProblems.prefix(5).joined(separator: "; "))", "count": "\(newProblems.count)",
                ])
            }
        }
    }

    /// The status a libtpu answers for a metric it does not have **[UNVERIFIED which one: NOT_FOUND, UNIMPLEMENTED
    /// or INVALID_ARGUMENT are all taken]** — but not an answer that failed to decode.
    static func isUnknownMetric(_ error: GRPCStatusError) -> Bool {
        [.notFound, .unimplemented, .invalidArgument].contains(error.code) && !error.message.lowercased().contains("deserializ")
    }

    private func noteUnsupported(_ target: TPURuntimeTarget, _ metrics: [TPURuntimeMetric]) {
        let names = Set(metrics.map(\.rawValue))
        let log = state.withLock { s -> Bool in
            guard var entry = s.entries[target], entry.loggedUnsupported != names else { return false }
            entry.loggedUnsupported = names
            s.entries[target] = entry
            return !names.isEmpty
        }
        if log {
            logger.info("this libtpu does not serve some runtime metrics; they stay absent",
                        metadata: ["target": "\(target)", "metrics": "\(names.sorted().joined(separator: ","))"])
        }
    }

    private func fail(_ target: TPURuntimeTarget, _ error: any Error, started: ContinuousClock.Instant, call: String, answered: Bool) {
        let (state, kind) = Self.classify(error, timeout: configuration.callTimeout, call: call, answered: answered)
        record(target, failure: state, kind: kind, duration: Self.seconds(ContinuousClock.now - started))
    }

    private func record(_ target: TPURuntimeTarget, failure: TPURuntimeReport.State, kind: String, duration: Double) {
        let log = state.withLock { s -> Bool in
            guard var entry = s.entries[target] else { return false }
            entry.state = failure
            entry.durationSeconds = duration
            let changed = entry.logged != kind
            entry.logged = kind
            s.entries[target] = entry
            return changed
        }
        guard log else { return }
        switch failure {
        case .noWorkload(let reason):
            logger.info("no TPU workload answers runtime metrics here; runtime values absent until one does",
                        metadata: ["target": "\(target)", "reason": "\(reason)"])
        case .failing(let reason):
            logger.warning("TPU runtime metrics failing; keeping the last values for a while",
                           metadata: ["target": "\(target)", "error": "\(reason)", "stale_after_seconds": "\(Self.rounded(configuration.staleAfter))"])
        case .connecting, .answering:
            break
        }
    }

    /// A state and a coarse kind (log once per kind). A refused connection means no workload, and so does a
    /// connection lost after it answered (the workload ended; the retry then finds the port refusing). Everything
    /// else — no answer in time, an answer that does not decode, an error status, a peer that is not gRPC — fails.
    static func classify(_ error: any Error, timeout: Double, call: String, answered: Bool) -> (TPURuntimeReport.State, String) {
        guard let rpc = error as? GRPCStatusError else { return (.failing("\(call): \(error)"), "other") }
        let text = rpc.message.lowercased()
        if rpc.message.lowercased().contains("deserializ") {
            return (.failing("\(call): the answer did not decode as tpu.monitoring.runtime: \(rpc.message)"), "garbage")
        }
        switch rpc.code {
        case .unavailable where text.contains("refused") || text.contains("econnrefused"):
            return (.noWorkload("connection refused"), "no_workload")
        case .unavailable where answered:
            return (.noWorkload("the workload went away: \(rpc.message)"), "no_workload")
        case .unavailable:
            return (.failing("\(call): unreachable: \(rpc.message)"), "unavailable")
        case .deadlineExceeded:
            return (.failing("\(call): no answer within \(timeout)s (deadline exceeded)"), "deadline")
        default:
            return (.failing("\(call): \(rpc.code): \(rpc.message)"), "\(rpc.code)")
        }
    }

    static func rounded(_ seconds: Double) -> Double { (seconds * 1000).rounded() / 1000 }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }
}

/// `host:port`, `[v6]:port` → where to connect.
public struct TPURuntimeAddress: Sendable, Equatable {
    /// An IPv4 or IPv6 literal (without brackets) or a DNS name, resolved on each connect.
    public var host: String
    /// 1–65535.
    public var port: Int

    /// Unchecked: ``parse(_:)`` is where text is validated.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// The text was not an address; `message` quotes it with examples of what is accepted.
    public struct Invalid: Error, Sendable, CustomStringConvertible {
        public var message: String
        /// ``message``.
        public var description: String { message }
    }

    /// Accepts `host:port` and `[v6]:port`; a bare IPv6 address, an empty host, a host with spaces or `/`, or a
    /// port outside 1–65535 is ``Invalid``.
    public static func parse(_ text: String) -> Result<TPURuntimeAddress, Invalid> {
        let bad = Invalid(message: "\"\(text)\" is not host:port (e.g. localhost:8431, 10.4.0.7:8431, [fd00::7]:8431)")
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else { return .failure(bad) }
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":"), !text[..<colon].contains(":") else { return .failure(bad) }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        guard !host.isEmpty, !host.contains(where: { $0 == " " || $0 == "/" }), let port = Int(portText), (1...65535).contains(port)
        else { return .failure(bad) }
        return .success(TPURuntimeAddress(host: String(host), port: port))
    }
}

/// The runtime-metrics methods the client calls (`Protos/tpu/runtime_metric_service.proto`).
enum RuntimeMetricMethod {
    static let getRuntimeMetric = "/tpu.monitoring.runtime.RuntimeMetricService/GetRuntimeMetric"
    static let listSupportedMetrics = "/tpu.monitoring.runtime.RuntimeMetricService/ListSupportedMetrics"
}
