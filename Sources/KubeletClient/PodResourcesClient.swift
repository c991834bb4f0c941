public import Attribution
public import Logging
import PodResourcesAPI
import Synchronization
import UnaryGRPC
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The kubelet pod-resources client: `List` on its own interval (never per scrape), `GetAllocatableResources` once
/// per connection, the latest answers kept for the sampler to read without waiting.
///
/// One background task owns the gRPC channel (HTTP/2 over the unix socket, through libcurl: ``UnaryGRPC``). Each
/// call has a deadline. A failure (socket missing or dead, deadline passed, an answer that does not decode) closes the
/// connection; the next attempt opens a new one after a backoff that doubles from the refresh interval up to
/// `min(30 s, 8 × interval)`. The last good `List` stays served for `staleAfter` seconds, then is dropped, so a
/// dead kubelet never pins allocations of pods that are long gone. Logs once per change of state, not per attempt.
public final class PodResourcesClient: Sendable {
    /// The `--kubelet.*` settings; all durations in seconds.
    public struct Configuration: Sendable {
        /// `--kubelet.pod-resources-socket`.
        public var socketPath: String
        /// `--kubelet.refresh-interval`: seconds between `List` calls (the kubelet allows 100 QPS, burst 10).
        public var refreshInterval: Double
        /// Deadline of each call.
        public var callTimeout: Double
        /// How long the last good `List` is served after calls start failing (default: 6 × the refresh interval).
        public var staleAfter: Double

        /// `staleAfter` nil means 6 × `refreshInterval`.
        public init(socketPath: String = "/var/lib/kubelet/pod-resources/kubelet.sock", refreshInterval: Double = 5,
                    callTimeout: Double = 2, staleAfter: Double? = nil) {
            self.socketPath = socketPath
            self.refreshInterval = refreshInterval
            self.callTimeout = callTimeout
            self.staleAfter = staleAfter ?? 6 * refreshInterval
        }
    }

    /// What the sampler reads each tick.
    public struct Status: Sendable, Equatable {
        /// The last good `List`; `nil` before the first one and once it is older than `staleAfter`.
        public var list: PodResourcesList?
        /// The last `GetAllocatableResources` answer; `nil` when the kubelet does not implement it.
        public var allocatable: AllocatableResources?
        /// Whether the last `List` succeeded (`accel_exporter_collector_success{collector="kubelet"}`).
        public var success = false
        /// Why the last attempt failed, for the log and the landing page.
        public var error: String?
        /// Seconds the last `List` took (or failed after).
        public var durationSeconds = 0.0
        /// `List` calls made so far (for tests and self-metrics).
        public var listCalls = 0
        /// Whether any `List` attempt has finished: before that, there is no health to report.
        public var attempted = false
    }

    /// As given to ``init(configuration:logger:)``.
    public let configuration: Configuration
    private let logger: Logger
    private let state = Mutex(State())
    private let executor = QueueTaskExecutor(label: "accel-exporter.kubelet")

    private struct State {
        var status = Status()
        var lastSuccess: ContinuousClock.Instant?
        var task: Task<Void, Never>?
        /// The last logged failure kind; `nil` while healthy (log once per change).
        var failureLogged: String?
        var unimplementedLogged = false
        var namelessLogged = 0
    }

    /// Nothing connects until ``start()``.
    public init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// The latest answers; never blocks on the kubelet.
    public var status: Status {
        let (status, dropped) = state.withLock { s -> (Status, Bool) in
            guard let last = s.lastSuccess, s.status.list != nil, ContinuousClock.now - last > .seconds(configuration.staleAfter) else {
                return (s.status, false)
            }
            s.status.list = nil
            return (s.status, true)
        }
        if dropped {
            logger.warning("dropping pod-resources allocations: no good List for too long",
                           metadata: ["stale_after_seconds": "\(Self.rounded(configuration.staleAfter))"])
        }
        return status
    }

    /// Starts the refresh task; the first `List` is attempted at once.
    public func start() {
        state.withLock { s in
            guard s.task == nil else { return }
            s.task = Task.detached(executorPreference: executor) { [self] in
                await self.run()
            }
        }
    }

    /// Cancels the refresh task; it closes its connection on its way out (without blocking here).
    public func stop() {
        let task = state.withLock { s in
            defer { s.task = nil }
            return s.task
        }
        task?.cancel()
    }

    // MARK: The refresh loop

    private func run() async {
        var failures = 0
        while !Task.isCancelled {
            do {
                try await connectAndRefresh { failures = 0 }
            } catch is CancellationError {
                return
            } catch {
                if Task.isCancelled { return }
                failures += 1
            }
            let cap = max(configuration.refreshInterval, min(30, 8 * configuration.refreshInterval))
            let backoff = min(configuration.refreshInterval * Double(1 << min(max(failures - 1, 0), 10)), cap)
            do { try await Task.sleep(for: .seconds(backoff)) } catch { return }
        }
    }

    /// One connection: `GetAllocatableResources`, then `List` every interval until a call fails (throws).
    private func connectAndRefresh(onSuccess: () -> Void) async throws {
        guard access(configuration.socketPath, F_OK) == 0 else {
            let reason = "socket \(configuration.socketPath) does not exist"
            record(failure: reason, kind: "missing", duration: 0)
            throw KubeletError(reason)
        }
        let channel = try GRPCChannel(target: .unixSocket(configuration.socketPath), label: "accel-exporter.kubelet")
        await fetchAllocatable(channel)
        while true {
            try await list(channel)
            onSuccess()
            try await Task.sleep(for: .seconds(configuration.refreshInterval))
        }
    }

    private func list(_ channel: GRPCChannel) async throws {
        let started = ContinuousClock.now
        state.withLock { $0.status.listCalls += 1 }
        do {
            let response = try await channel.unary(
                PodResourcesMethod.list, V1_ListPodResourcesRequest(), as: V1_ListPodResourcesResponse.self,
                timeout: configuration.callTimeout, maxResponseBytes: Self.maxAnswerBytes)
            var list = PodResourcesList(response)
            let nameless = Self.dropNameless(&list)
            let duration = Self.seconds(ContinuousClock.now - started)
            let logNameless = state.withLock { s -> Bool in
                defer { s.namelessLogged = nameless }
                return nameless != s.namelessLogged && nameless > 0
            }
            if logNameless {
                logger.warning("kubelet pod-resources List named pods or containers without a name; they are left out",
                               metadata: ["entries": "\(nameless)"])
            }
            let recovered = state.withLock { s -> String? in
                s.status.list = list
                s.status.attempted = true
                s.status.success = true
                s.status.error = nil
                s.status.durationSeconds = duration
                s.lastSuccess = ContinuousClock.now
                defer { s.failureLogged = nil }
                return s.failureLogged
            }
            if let recovered {
                logger.info("kubelet pod-resources List answering again", metadata: ["was": "\(recovered)", "pods": "\(list.pods.count)"])
            }
        } catch {
            let (reason, kind) = Self.describe(error, timeout: configuration.callTimeout)
            record(failure: "List: " + reason, kind: kind, duration: Self.seconds(ContinuousClock.now - started))
            throw error
        }
    }

    /// `Unimplemented` (feature gate off on 1.21/1.22 kubelets) is not a failure: allocations still work, only the
    /// "advertised as shares" check is lost. Other errors leave the previous answer in place; `List` decides health.
    private func fetchAllocatable(_ channel: GRPCChannel) async {
        do {
            let response = try await channel.unary(
                PodResourcesMethod.getAllocatableResources, V1_AllocatableResourcesRequest(),
                as: V1_AllocatableResourcesResponse.self, timeout: configuration.callTimeout, maxResponseBytes: Self.maxAnswerBytes)
            state.withLock { $0.status.allocatable = AllocatableResources(response) }
        } catch where error.code == .unimplemented {
            let first = state.withLock { s -> Bool in
                s.status.allocatable = nil
                defer { s.unimplementedLogged = true }
                return !s.unimplementedLogged
            }
            if first {
                logger.info("kubelet does not implement GetAllocatableResources (feature gate off or kubelet < 1.21); device sharing is then inferred from allocations alone")
            }
        } catch {
            logger.debug("GetAllocatableResources failed", metadata: ["error": "\(Self.describe(error, timeout: configuration.callTimeout).0)"])
        }
    }

    private func record(failure reason: String, kind: String, duration: Double) {
        let log = state.withLock { s -> Bool in
            s.status.attempted = true
            s.status.success = false
            s.status.error = reason
            s.status.durationSeconds = duration
            defer { s.failureLogged = kind }
            return s.failureLogged != kind
        }
        if log {
            logger.warning("kubelet pod-resources List failing; keeping the last allocations for a while",
                           metadata: ["error": "\(reason)", "socket": "\(configuration.socketPath)",
                                      "stale_after_seconds": "\(Self.rounded(configuration.staleAfter))"])
        }
    }

    /// Pods without a namespace or name and containers without a name would become series with empty `namespace`,
    /// `pod` or `container` labels that collide with each other: the kubelet never sends them, so they are dropped.
    /// Returns how many entries were dropped.
    static func dropNameless(_ list: inout PodResourcesList) -> Int {
        var dropped = 0
        list.pods.removeAll { pod in
            let bad = pod.name.isEmpty || pod.namespace.isEmpty
            if bad { dropped += 1 }
            return bad
        }
        for i in list.pods.indices {
            list.pods[i].containers.removeAll { container in
                if container.name.isEmpty { dropped += 1 }
                return container.name.isEmpty
            }
        }
        return dropped
    }

    static func rounded(_ seconds: Double) -> Double { (seconds * 1000).rounded() / 1000 }

    /// The largest answer read: a node's pods with their devices, far above any real one (the kubelet's own gRPC
    /// server allows 16 MiB).
    static let maxAnswerBytes = 16 << 20

    /// A clear reason and a coarse kind (log once per kind).
    static func describe(_ error: any Error, timeout: Double) -> (String, String) {
        guard let rpc = error as? GRPCStatusError else { return ("\(error)", "other") }
        if rpc.message.lowercased().contains("deserializ") {
            return ("answer did not decode as pod-resources v1: \(rpc.message)", "garbage")
        }
        switch rpc.code {
        case .deadlineExceeded:
            return ("no answer within \(timeout)s (deadline exceeded)", "deadline")
        case .unavailable:
            return ("kubelet unreachable: \(rpc.message)", "unavailable")
        case .unimplemented:
            return ("not implemented by this kubelet", "unimplemented")
        default:
            return ("\(rpc.code): \(rpc.message)", "\(rpc.code)")
        }
    }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }
}

/// The refresh loop's own failures (socket missing); gRPC failures are `GRPCStatusError`s.
struct KubeletError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// The pod-resources v1 methods the client calls (`Protos/podresources/v1/api.proto`: package `v1`, service
/// `PodResourcesLister`).
enum PodResourcesMethod {
    static let list = "/v1.PodResourcesLister/List"
    static let getAllocatableResources = "/v1.PodResourcesLister/GetAllocatableResources"
}
