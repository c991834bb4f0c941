public import Exposition
public import Logging
import MetricSchema
import CurlHTTP
import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Pushes the latest tick to an OTLP receiver on its own interval.
///
/// The sampler hands each tick's families to ``offer(_:timeUnixSeconds:)``: a pointer swap under a lock, never a
/// wait. The pusher's one thread does the rest: every `intervalSeconds` it turns the newest tick into a request
/// (``MetricsRequestBuilder``), encodes and compresses it and queues it, and between those it sends the queue in
/// order. While the receiver fails, pushes wait in a queue bounded by count and bytes; when it is full the oldest
/// push is dropped. A retryable failure waits (exponential backoff with jitter, or the receiver's `Retry-After`, at
/// most `maxBackoffSeconds`) and tries the same push again; a refusal drops it. An attempt blocks the thread for at
/// most `timeoutSeconds`; the push due meanwhile is made when it returns (with the newest tick). Each outcome is counted in `accel_exporter_otlp_exports_total{result}`:
/// `success`, `retry` (a retryable failure; the push stays queued), `failure` (refused; the push is gone) and
/// `dropped` (pushed out of a full queue, or left queued at shutdown).
public final class OTLPPusher: Sendable {
    /// As given; the pusher reads its interval, queue bounds and backoff from it.
    public let configuration: OTLPConfiguration
    private let transport: any OTLPTransport
    private let logger: Logger
    private let compress: Bool
    private let state: Mutex<State>
    /// Signalled by `stop()`: cuts the thread's waits short.
    private let wake = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    private let running = Atomic<Bool>(false)
    private let stopping = Atomic<Bool>(false)
    private let counts = Counts()
    /// The pusher thread's alone; apart from `state` so that encoding never holds the lock `offer` takes.
    private let builder: Mutex<MetricsRequestBuilder>

    private struct State {
        var latest: (families: [MetricFamily], time: UInt64)?
        var latestIsNew = false
        var queue: [Push] = []
        var queuedBytes = 0
        var nextID = 0
        var failing = false
    }

    struct Push: Sendable {
        var id: Int
        var body: [UInt8]
        var points: Int
    }

    private final class Counts: Sendable {
        let success = Atomic<Int>(0)
        let retry = Atomic<Int>(0)
        let failure = Atomic<Int>(0)
        let dropped = Atomic<Int>(0)
    }

    /// - Parameters:
    ///   - resource: the node's attributes; `configuration.resourceAttributes` are added after them (and win).
    ///   - transport: nil: the one `configuration.wireProtocol` names.
    public init(configuration: OTLPConfiguration, resource: [(String, String)], version: String, logger: Logger,
                transport: (any OTLPTransport)? = nil) throws(OTLPConfigurationError) {
        self.configuration = configuration
        self.logger = logger
        var merged = resource.filter { pair in !configuration.resourceAttributes.contains { $0.0 == pair.0 } }
        merged += configuration.resourceAttributes
        state = Mutex(State())
        builder = Mutex(MetricsRequestBuilder(resource: merged, scopeVersion: version))
        if let proxy = configuration.proxy.route(for: configuration.endpoint, tunnelled: configuration.wireProtocol == .grpc) {
            logger.info("OTLP pushes go through a proxy", metadata: ["proxy": "\(HTTPProxy.redacted(proxy))"])
        }
        switch configuration.wireProtocol {
        case .httpProtobuf:
            if let transport {
                self.transport = transport
            } else if configuration.endpoint.lowercased().hasPrefix("https://")
                || configuration.proxy.route(for: configuration.endpoint) != nil
            {
                // libcurl for TLS, and for a proxy (the small plain client speaks to the endpoint only).
                self.transport = try HTTPTransport(configuration: configuration)
            } else {
                self.transport = try PlainHTTPTransport(configuration: configuration)
            }
            compress = configuration.gzip
        case .grpc:
            if let transport { self.transport = transport } else { self.transport = try GRPCTransport(configuration: configuration) }
            // Queued gzip-compressed too: the call sends them with `grpc-encoding: gzip`.
            compress = configuration.gzip
        }
    }

    /// The sampler's hand-off: keeps a reference to the tick's families until the next push takes it.
    public func offer(_ families: [MetricFamily], timeUnixSeconds: Double) {
        let nanos = timeUnixSeconds > 0 && timeUnixSeconds < 1e10 ? UInt64(timeUnixSeconds * 1e9) : 0
        state.withLock {
            $0.latest = (families, nanos)
            $0.latestIsNew = true
        }
    }

    /// Starts the pusher's thread.
    public func start() {
        guard !running.exchange(true, ordering: .acquiringAndReleasing) else { return }
        DispatchQueue(label: "accel-exporter.otlp-push").async { [self] in
            loop()
            finished.signal()
        }
        logger.info("pushing OTLP", metadata: [
            "endpoint": "\(configuration.endpoint)", "protocol": "\(configuration.wireProtocol.rawValue)",
            "interval": "\(configuration.intervalSeconds)s",
        ])
    }

    /// Stops the thread (waiting at most 4 s for an attempt in flight), counts what was still queued as dropped, and
    /// closes the connections.
    public func stop() {
        guard running.load(ordering: .acquiring), !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        wake.signal()
        // An attempt in flight gets a few seconds to end; a receiver that hangs longer is left behind (the thread ends
        // with its attempt's own deadline), so shutdown stays within the lifecycle's deadline.
        _ = finished.wait(timeout: .now() + min(configuration.timeoutSeconds, 3) + 1)
        let left = state.withLock { s -> Int in
            defer { s.queue = []; s.queuedBytes = 0 }
            return s.queue.count
        }
        counts.dropped.add(left, ordering: .relaxed)
        transport.shutdown()
    }

    /// `accel_exporter_otlp_exports_total{result}`.
    public func families() -> [MetricFamily] {
        [Families.Exporter.otlpExports.family([
            Sample(labels: [Label("result", "dropped")], value: Double(counts.dropped.load(ordering: .relaxed))),
            Sample(labels: [Label("result", "failure")], value: Double(counts.failure.load(ordering: .relaxed))),
            Sample(labels: [Label("result", "retry")], value: Double(counts.retry.load(ordering: .relaxed))),
            Sample(labels: [Label("result", "success")], value: Double(counts.success.load(ordering: .relaxed))),
        ])]
    }

    /// Pushes waiting to be sent.
    public var queued: Int { state.withLock { $0.queue.count } }

    // MARK: The thread

    private func loop() {
        let interval = max(0.05, configuration.intervalSeconds)
        var nextPush = Self.now()
        var nextAttempt = nextPush
        var backoff = configuration.initialBackoffSeconds
        while !stopping.load(ordering: .acquiring) {
            let now = Self.now()
            if now >= nextPush {
                enqueueLatest()
                nextPush = max(nextPush + interval, now)
            }
            if now >= nextAttempt, let head = state.withLock({ $0.queue.first }) {
                switch transport.export(head.body, compressed: compress) {
                case .success(let rejected, let message):
                    remove(head.id)
                    counts.success.add(1, ordering: .relaxed)
                    backoff = configuration.initialBackoffSeconds
                    recovered()
                    if rejected > 0 {
                        logger.warning("OTLP receiver refused some points", metadata: ["rejected": "\(rejected)", "message": "\(message)"])
                    }
                case .failed(let reason):
                    remove(head.id)
                    counts.failure.add(1, ordering: .relaxed)
                    failing("OTLP receiver refused a push; dropped it", reason: reason)
                case .retryable(let reason, let retryAfter):
                    counts.retry.add(1, ordering: .relaxed)
                    failing("OTLP push failed; retrying", reason: reason)
                    // Full jitter on the doubling backoff; a receiver's Retry-After is honoured up to the cap.
                    let wait = min(configuration.maxBackoffSeconds, retryAfter ?? Double.random(in: (backoff / 2)...backoff))
                    backoff = min(configuration.maxBackoffSeconds, backoff * 2)
                    nextAttempt = Self.now() + wait
                }
                continue
            }
            let queueEmpty = state.withLock { $0.queue.isEmpty }
            let wakeAt = queueEmpty ? nextPush : min(nextPush, nextAttempt)
            let seconds = max(0, wakeAt - Self.now())
            _ = wake.wait(timeout: .now() + .milliseconds(Int(seconds * 1000)))
        }
    }

    static func now() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }

    /// Encodes the newest tick, if one arrived since the last push, and queues it (dropping the oldest to fit).
    func enqueueLatest() {
        let taken = state.withLock { s -> (families: [MetricFamily], time: UInt64)? in
            guard s.latestIsNew else { return nil }
            s.latestIsNew = false
            return s.latest
        }
        guard let taken else { return }
        var (body, points) = builder.withLock { $0.encode(taken.families, timeUnixNano: taken.time) }
        if compress, let zipped = try? Gzip.compress(body) { body = zipped }
        let limits = (count: configuration.queueBatches, bytes: configuration.queueBytes)
        let dropped = state.withLock { s -> Int in
            s.nextID += 1
            s.queue.append(Push(id: s.nextID, body: body, points: points))
            s.queuedBytes += body.count
            var dropped = 0
            while s.queue.count > 1, s.queue.count > limits.count || s.queuedBytes > limits.bytes {
                s.queuedBytes -= s.queue.removeFirst().body.count
                dropped += 1
            }
            return dropped
        }
        if dropped > 0 {
            counts.dropped.add(dropped, ordering: .relaxed)
            logger.warning("OTLP queue full: dropped the oldest pushes", metadata: ["dropped": "\(dropped)"])
        }
    }

    private func remove(_ id: Int) {
        state.withLock { s in
            if let index = s.queue.firstIndex(where: { $0.id == id }) {
                s.queuedBytes -= s.queue.remove(at: index).body.count
            }
        }
    }

    /// Logs the first failure of a run of failures, and the recovery; not every attempt.
    private func failing(_ message: Logger.Message, reason: String) {
        let first = state.withLock { s -> Bool in
            defer { s.failing = true }
            return !s.failing
        }
        if first { logger.warning(message, metadata: ["endpoint": "\(configuration.endpoint)", "reason": "\(reason)"]) }
    }

    private func recovered() {
        let was = state.withLock { s -> Bool in
            defer { s.failing = false }
            return s.failing
        }
        if was { logger.info("OTLP pushes succeed again", metadata: ["endpoint": "\(configuration.endpoint)"]) }
    }
}
