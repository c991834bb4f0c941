public import Accelerators
import Attribution
import ConfigYAML
import Dispatch
import Exposition
public import Inference
import HTTPAccess
import HTTPServer
import LandingPage
import KubeletClient
public import Kubernetes
public import OTLPExport
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
public import Lifecycle
public import Logging
import Synchronization
import TPURuntimeClient

/// The node daemon: sources → sampler → snapshot → HTTP.
public final class Exporter: Sendable {
    /// What ExporterApp's `ExporterFlags` makes of the command line; the defaults are the flags' defaults.
    public struct Configuration: Sendable {
        /// `--web.listen-address`'s host; empty listens on every interface.
        public var listenHost = ""
        /// `--web.listen-address`'s port; 0 lets the kernel choose (read it back from ``Exporter/port``).
        public var listenPort = 9445
        /// `--web.telemetry-path`: starts with `/` and is not `/` itself.
        public var telemetryPath = "/metrics"
        /// `--path.sysfs`.
        public var sysfs = FileRoot("/sys")
        /// `--path.procfs`.
        public var procfs = FileRoot("/proc")
        /// `--collect.interval`, in seconds: the sampler's tick.
        public var interval = 1.0
        /// `--discovery.interval`, in seconds, handed to every collector.
        public var discoveryInterval = 10.0
        /// The collectors, in the order the sampler reads them (ExporterApp's `Collectors` lists every one).
        public var collectors: [CollectorFactory] = []
        /// `--kubernetes.node-name`, else `$NODE_NAME`, else the host name: `accelerator_info`, OTLP's `host.name`, the
        /// landing page's links.
        public var nodeName: String?
        /// HTTP worker threads (no flag); at most one less (at least 1) bcrypt runs at once.
        public var httpThreads = 2
        /// `--web.max-connections`.
        public var maxConnections = 512
        /// `--web.max-connections-per-ip`: one client address's share (0: no limit).
        public var maxConnectionsPerIP = 128
        /// `--web.request-timeout`, whole seconds (at least 1): both the idle timeout and the request-head deadline.
        public var requestTimeoutSeconds = 10
        /// Model servers to scrape (`--inference.targets`); empty turns the inference collector off.
        public var inferenceTargets: [InferenceTarget] = []
        /// `--inference.window`: the span of the windowed percentiles.
        public var inferenceWindowSeconds = 60.0
        /// `--workload-metrics.*`: what a pod's own families (`accelmetrics.io/metrics`) may be.
        public var workloadLimits = WorkloadMetrics.Limits()
        /// `--web.config.file`: TLS, client certificates, headers and basic auth (exporter-toolkit's format).
        public var webConfigPath: String?
        /// `--web.adapter-url`: an accel-metrics-adapter base URL (`http://127.0.0.1:9446`, no trailing slash) whose
        /// `gpu_utilization` paths for this node and its pods the landing page links to; nil: no such links.
        public var adapterURL: String?
        /// Seconds after start at which the pages only start-up touched are given back (`MemoryTrim`); nil never.
        public var trimStartupMemoryAfterSeconds: Double? = 10
        /// `--collector.kubelet` and friends; nil: no pod attribution at all.
        public var kubelet: Kubelet?
        /// `--otlp.*`: push each tick's values to an OpenTelemetry receiver as well; nil: no push.
        public var otlp: OTLPConfiguration?
        /// `--collector.processes`: per-process attribution (NVML processes, DRM fdinfo) through host PIDs under
        /// `procfs`. Needs `hostPID` and, for other users' fdinfo, `CAP_SYS_PTRACE` (deploy/attribution).
        public var processes = false

        /// The API server, for the node's pod watch (pod names for per-process attribution, allow-listed pod labels,
        /// model-server discovery) and DRA ResourceSlices; nil: no API access.
        public var apiServer: APIServer?

        /// The flags' defaults: every collector off, no Kubernetes, no OTLP push.
        public init() {}

        /// API server access, present when the pod watch is on and an API server was found.
        public struct APIServer: Sendable {
            /// `--kubeconfig`, else the pod's service account.
            public var configuration: KubernetesConfiguration
            /// This node's name (`--kubernetes.node-name`, `$NODE_NAME`): the pod watch's field selector.
            public var nodeName: String
            /// Pod labels copied onto `accelerator_pod_labels` (`--kubernetes.pod-labels`), at most `PodLabelNames.limit`.
            public var podLabels: [String] = []
            /// Watch ResourceSlices for DRA device attributes (`--kubernetes.resource-slices`).
            public var resourceSlices = true
            /// Scrape model-server pods found through their annotations (`--inference.discovery`).
            public var inferenceDiscovery = true

            /// The optional parts start at their flags' defaults (on; no pod labels).
            public init(configuration: KubernetesConfiguration, nodeName: String) {
                self.configuration = configuration
                self.nodeName = nodeName
            }
        }

        /// The kubelet pod-resources client's settings; present when `--collector.kubelet` is on and the socket's
        /// directory exists.
        public struct Kubelet: Sendable {
            /// `--kubelet.pod-resources-socket`.
            public var socketPath = "/var/lib/kubelet/pod-resources/kubelet.sock"
            /// `--kubelet.refresh-interval`, in seconds: how often pod-resources `List` is called (never per scrape);
            /// also the pod log directories' refresh.
            public var refreshInterval = 5.0
            /// Deadline of one pod-resources call, in seconds (no flag).
            public var callTimeout = 2.0
            /// `--kubelet.stale-after`, in seconds: how long the last good `List` is served once calls fail;
            /// `nil` is 6 × `refreshInterval`.
            public var staleAfter: Double?
            /// Device-plugin resource names beyond the built-in ones (`--kubelet.resource-names`).
            public var extraResourceNames: Set<String> = []
            /// Pod UID → name for per-process attribution until the pod watch provides it: the kubelet's pod log
            /// directories (`--kubelet.pod-logs-path`), read only with `processes`.
            public var podLogsPath: String? = "/var/log/pods"

            /// The flags' defaults.
            public init() {}
        }

    }

    /// As given; never changes while the exporter runs.
    public let configuration: Configuration
    /// The `accel_exporter_*` families each snapshot carries; the HTTP handler counts scrapes into it.
    public let selfMetrics = SelfMetrics()
    private let logger: Logger
    private let sampler: Sampler
    private let current = SnapshotStore()
    private let server: Mutex<HTTPServer?> = Mutex(nil)
    /// The landing page's charts.
    let history = ReadingHistory()
    private let podResources: PodResourcesClient?
    private let kubernetes: KubernetesClient?
    private let podWatch: NodePodWatch?
    private let resourceSlices: ResourceSliceWatch?
    private let inference: InferenceSource?
    /// What the collectors run beside their sources (the libtpu client), stopped with the exporter.
    private let collectorComponents: [Component]
    /// Made by `start()` (a configuration that does not load fails it); the sampler offers it every tick.
    private let otlp = PusherSlot()

    /// Builds every collector's sources, the clients and the sampler; they run from ``start()`` (or ``components``
    /// under `Lifecycle.run`). `extraSources` are sampled after the collectors' (tests use it).
    public init(configuration: Configuration, logger: Logger, extraSources: [any AcceleratorSource] = []) {
        self.configuration = configuration
        loginGuard = LoginGuard(maxConcurrent: max(1, configuration.httpThreads - 1))
        self.logger = logger
        // With pod attribution and the pod watch, TPU pods' own libtpu endpoints are found every tick.
        let tpuPodTargets: TPUPodTargets? =
            configuration.collectors.contains { $0.name == "tpu" } && configuration.kubelet != nil && configuration.apiServer != nil
            ? TPUPodTargets() : nil
        var sources: [any AcceleratorSource] = []
        var collectorComponents: [Component] = []
        var tickSteps: [@Sendable (inout Sampler.Tick) -> Void] = []
        var podTargets: (@Sendable () -> [TPURuntimeTarget])?
        if let tpuPodTargets { podTargets = { tpuPodTargets.targets } }
        for collector in configuration.collectors {
            let context = CollectorContext(
                sysfs: configuration.sysfs, procfs: configuration.procfs, nodeName: configuration.nodeName,
                discoveryInterval: configuration.discoveryInterval, sampleInterval: configuration.interval,
                logger: logger.with("collector", collector.name), tpuPodTargets: podTargets)
            let parts = collector.make(context)
            sources += parts.sources
            collectorComponents += parts.components
            if let step = parts.tickStep { tickSteps.append(step) }
        }
        self.collectorComponents = collectorComponents
        var kubernetes: KubernetesClient?
        if let api = configuration.apiServer {
            do {
                kubernetes = try KubernetesClient(configuration: api.configuration, logger: logger.with("component", "kubernetes"))
            } catch {
                logger.error("no pod watch: the API client does not start", metadata: ["error": "\(error)"])
            }
        }
        self.kubernetes = kubernetes
        let podWatch = kubernetes.flatMap { client in
            configuration.apiServer.map { NodePodWatch(client: client, nodeName: $0.nodeName, logger: logger.with("component", "pod-watch")) }
        }
        self.podWatch = podWatch
        let discovery = podWatch != nil && configuration.apiServer?.inferenceDiscovery == true
        if !configuration.inferenceTargets.isEmpty || discovery {
            let source = InferenceSource(
                targets: configuration.inferenceTargets,
                normalizer: EngineInferenceNormalizer(
                    windowSeconds: configuration.inferenceWindowSeconds, logger: logger.with("collector", "inference")),
                // A scrape may take most of an interval; the tick waits half of one for its round, so a server that
                // hangs or drips delays only itself and keeps its last values (marked down) for ten intervals.
                timeoutSeconds: max(0.1, configuration.interval * 0.8), workloadLimits: configuration.workloadLimits,
                waitSeconds: configuration.interval * 0.5, staleSeconds: max(10, configuration.interval * 10),
                clock: { Exporter.unixNow() }, logger: logger.with("collector", "inference"))
            sources.append(source)
            inference = source
        } else {
            inference = nil
        }
        sources += extraSources
        let renderer = SnapshotRenderer(selfMetrics: selfMetrics)
        let store = current
        let history = self.history
        let resourceSlices: ResourceSliceWatch? = configuration.kubelet == nil || configuration.apiServer?.resourceSlices != true ? nil
            : kubernetes.flatMap { client in configuration.apiServer.map { ResourceSliceWatch(client: client, nodeName: $0.nodeName, logger: logger.with("component", "resource-slices")) } }
        self.resourceSlices = resourceSlices
        var stage: AttributionStage?
        if let kubelet = configuration.kubelet {
            let client = PodResourcesClient(
                configuration: .init(socketPath: kubelet.socketPath, refreshInterval: kubelet.refreshInterval, callTimeout: kubelet.callTimeout,
                                     staleAfter: kubelet.staleAfter),
                logger: logger.with("collector", "kubelet"))
            let directory = kubelet.podLogsPath.map { PodLogsDirectory(root: FileRoot($0), refreshInterval: kubelet.refreshInterval) }
            stage = AttributionStage(kubelet: client, podWatch: podWatch, podDirectory: directory, resourceSlices: resourceSlices,
                                     podLabels: configuration.apiServer?.podLabels ?? [], tpuTargets: tpuPodTargets,
                                     processes: configuration.processes,
                                     procfs: configuration.procfs,
                                     scanDRM: configuration.collectors.contains { $0.name == "amdgpu" || $0.name == "intel" },
                                     extraResourceNames: kubelet.extraResourceNames, logger: logger.with("collector", "kubelet"))
            podResources = client
        } else {
            podResources = nil
        }
        let staticTargets = configuration.inferenceTargets
        let inferenceSource = discovery ? inference : nil
        let otlp = self.otlp
        sampler = Sampler(sources: sources, interval: configuration.interval, logger: logger) { [stage, podWatch, tickSteps] tick in
            var tick = tick
            stage?.apply(to: &tick)
            for step in tickSteps { step(&tick) }
            if let podWatch {
                tick.collectors.append(Sampler.CollectorStatus(name: "pod_watch", success: podWatch.lastError == nil && podWatch.hasSynced,
                                                               durationSeconds: 0, error: podWatch.lastError))
                // Targets found this tick are scraped from the next one on.
                inferenceSource?.setTargets(staticTargets + InferenceDiscovery.targets(podWatch.entries))
            }
            if let pusher = otlp.pusher {
                tick.extraFamilies += pusher.families()
                let time = tick.wallClockSeconds
                store.publish(renderer.render(tick) { pusher.offer($0, timeUnixSeconds: time) })
            } else {
                store.publish(renderer.render(tick))
            }
            history.record(tick.devices)
        }
    }

    /// The latest snapshot; nil only before the first tick.
    public var snapshot: Snapshot? { current.latest }

    /// Everything that runs, in start order; shutdown goes the other way. `Lifecycle.run` (the executable) starts
    /// them and stops them on SIGTERM; `start()` and `stop()` do the same without signals.
    ///
    /// 1. The web configuration loads first: one that does not load stops the start before anything runs.
    /// 2. The clients and watches the sampler reads: the API client, the OTLP push, the kubelet, the pod and
    ///    ResourceSlice watches, the libtpu client.
    /// 3. The sampler runs one tick before the HTTP server opens, so the first scrape has data.
    /// 4. The HTTP server, its web configuration watch, and the start-up memory trim.
    ///
    /// On SIGTERM the server stops accepting first, then the sampler finishes its tick, then the OTLP push sends
    /// nothing more and closes, then the watches and clients stop.
    public var components: [Component] {
        componentList.withLock { list in
            if let list { return list }
            let made = makeComponents()
            list = made
            return made
        }
    }

    private let componentList = Mutex<[Component]?>(nil)

    private func makeComponents() -> [Component] {
        var out: [Component] = []
        let logger = self.logger
        out.append(Component("web-config", start: { [self] in try loadWebConfig() }))
        if let kubernetes { out.append(Component("kubernetes-client", stop: { await kubernetes.shutdown() })) }
        if let push = configuration.otlp {
            out.append(Component("otlp", start: { [self] in
                let pusher = try OTLPPusher(configuration: push, resource: otlpResource(), version: SelfMetrics.version,
                                            logger: logger.with("component", "otlp"))
                otlp.pusher = pusher
                pusher.start()
            }, stop: { [otlp] in otlp.take()?.stop() }))
        }
        out += collectorComponents
        if let podResources { out.append(Component("kubelet", start: { podResources.start() }, stop: { podResources.stop() })) }
        if let podWatch { out.append(Component("pod-watch", start: { podWatch.start() }, stop: { await podWatch.stop() })) }
        if let resourceSlices {
            out.append(Component("resource-slices", start: { resourceSlices.start() }, stop: { await resourceSlices.stop() }))
        }
        out.append(Component("sampler", start: { [sampler] in
            sampler.tickOnce()
            sampler.start()
        }, stop: { [sampler] in sampler.stop() }))
        out.append(Component("http", start: { [self] in try startHTTP() }, stop: { [self] in stopHTTP() }))
        if let delay = configuration.trimStartupMemoryAfterSeconds {
            let trim = TaskSlot()
            out.append(Component("memory-trim", start: {
                trim.task.withLock {
                    $0 = Task.detached(priority: .utility) {
                        try await Task.sleep(for: .milliseconds(Int64(delay * 1000)))
                        let mappings = MemoryTrim.pageOutReadOnlyFileMappings()
                        logger.debug("gave back start-up pages", metadata: ["mappings": "\(mappings)"])
                    }
                }
            }, stop: { trim.task.withLock { $0?.cancel() } }))
        }
        return out
    }

    /// Starts every component in order (without signal handling: in-process use and tests).
    public func start() async throws {
        try await Lifecycle.start(components)
    }

    /// Stops every component, last started first.
    public func stop() async {
        await Lifecycle.stop(components)
    }

    /// Loads `--web.config.file`, if any; throws for one that does not load.
    private func loadWebConfig() throws {
        guard let path = configuration.webConfigPath else { return }
        let loaded = try WebConfig.load(path: path)
        webAccess.withLock { $0 = try? WebAccess(config: loaded, loginGuard: loginGuard) }
        guard webAccess.withLock({ $0 }) != nil else {
            throw ConfigError(path: "tls_server_config.client_ca_file", message: "the client CA bundle does not load")
        }
        loadedWebConfig.withLock { $0 = loaded }
    }

    private func startHTTP() throws {
        let webConfig = loadedWebConfig.withLock { $0 }
        let http = HTTPServer(
            configuration: .init(host: configuration.listenHost, port: configuration.listenPort,
                                 threads: configuration.httpThreads, connectionLimit: configuration.maxConnections,
                                 perIPConnectionLimit: configuration.maxConnectionsPerIP,
                                 connectionTimeoutSeconds: configuration.requestTimeoutSeconds,
                                 headerTimeoutSeconds: Double(configuration.requestTimeoutSeconds), tls: webConfig?.tls),
            logger: logger,
            handler: { [self] request in self.guardedHandle(request) }
        )
        try http.start()
        server.withLock { $0 = http }
        if let path = configuration.webConfigPath, let webConfig {
            watchWebConfig(path, server: http, files: webConfig.files, last: Self.fingerprint(path, files: webConfig.files))
        }
        logger.info("listening", metadata: ["address": "\(configuration.listenHost.isEmpty ? "*" : configuration.listenHost):\(http.port)",
                                            "telemetry_path": "\(configuration.telemetryPath)"])
    }

    private func stopHTTP() {
        let http = server.withLock { s -> HTTPServer? in
            defer { s = nil }
            return s
        }
        http?.stop()
    }

    /// The web configuration loaded at start (the watch replaces `webAccess`, not this).
    private let loadedWebConfig = Mutex<WebConfig?>(nil)

    /// The port the HTTP server listens on (the kernel's choice for port 0); nil before it starts and after it stops.
    public var port: Int? { server.withLock { $0?.port } }

    /// The OTLP resource: this node and this exporter. `service.instance.id` is the host name the process sees (the
    /// pod's name in a DaemonSet), `host.name` the node's name where known.
    func otlpResource() -> [(String, String)] {
        var buffer = [CChar](repeating: 0, count: 256)
        let hostname = gethostname(&buffer, buffer.count - 1) == 0
            ? String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
        let node = configuration.apiServer?.nodeName ?? configuration.nodeName
        var out: [(String, String)] = [("service.name", "accel-exporter"), ("service.version", SelfMetrics.version)]
        if !hostname.isEmpty { out.append(("service.instance.id", hostname)) }
        if let node, !node.isEmpty { out.append(("k8s.node.name", node)) }
        if let host = node.flatMap({ $0.isEmpty ? nil : $0 }) ?? (hostname.isEmpty ? nil : hostname) { out.append(("host.name", host)) }
        return out
    }

    /// The web configuration in force; re-read when its file changes (a bad file keeps the previous one).
    private let webAccess = Mutex<WebAccess?>(nil)
    /// Bounds bcrypt runs (one at a time, leaving the other HTTP threads free) and throttles failing addresses.
    private let loginGuard: LoginGuard

    private func guardedHandle(_ request: HTTPRequest) -> HTTPResponse {
        // The health paths answer without credentials: kubelet probes carry none, and they must never wait on a
        // bcrypt run. They tell nothing but "ok" and the readiness reason.
        if request.path == "/healthz" || request.path == "/readyz" { return handle(request) }
        guard let access = webAccess.withLock({ $0 }) else { return handle(request) }
        func answer() -> HTTPResponse {
            var response = handle(request)
            for header in access.config.headers { response.headers.append(header) }
            return response
        }
        switch access.check(request) {
        case .allowed:
            return answer()
        case .refused(let refusal):
            return refusal
        case .verify(let login):
            // bcrypt is slow on purpose: it runs on a queue of its own while libmicrohttpd holds the connection,
            // and the worker thread goes back to serving.
            return .later { [self] responder in
                Self.loginQueue.async {
                    if let refusal = access.verify(login) {
                        responder.respond(refusal)
                    } else {
                        var response = self.handle(request)
                        for header in access.config.headers { response.headers.append(header) }
                        responder.respond(response)
                    }
                }
            }
        }
    }

    /// Where bcrypt runs (the login guard admits one at a time by default).
    private static let loginQueue = DispatchQueue(label: "accel-exporter.login", qos: .userInitiated, attributes: .concurrent)

    /// Re-reads `--web.config.file` every 5 s when it, or a certificate, key or CA file it names, changed: new
    /// credentials, users, headers and certificates apply to new connections, and TLS added or removed takes effect
    /// on the same socket. A file that does not load is logged and the previous configuration stays.
    private func watchWebConfig(_ path: String, server: HTTPServer, files: [String], last: [Int]) {
        let logger = self.logger
        DispatchQueue.global(qos: .utility).asyncAfter(deadline: .now() + 5) { [weak self] in
            guard let self, server.isRunning else { return }
            var seen = last
            var watched = files
            let now = Self.fingerprint(path, files: files)
            if now != seen {
                do {
                    let loaded = try WebConfig.load(path: path)
                    let access = try WebAccess(config: loaded, loginGuard: loginGuard)
                    if loaded.tls != server.currentTLS { try server.reloadTLS(loaded.tls) }
                    webAccess.withLock { $0 = access }
                    watched = loaded.files
                    logger.info("web configuration reloaded", metadata: [
                        "file": "\(path)", "tls": "\(loaded.tls == nil ? "off" : "on")", "client_auth": "\(loaded.clientAuth.rawValue)",
                    ])
                } catch {
                    logger.error("web configuration rejected; keeping the previous one", metadata: ["file": "\(path)", "error": "\(error)"])
                }
                seen = Self.fingerprint(path, files: watched)
            }
            self.watchWebConfig(path, server: server, files: watched, last: seen)
        }
    }

    static func unixNow() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }

    // MARK: Routes

    func handle(_ request: HTTPRequest) -> HTTPResponse {
        switch request.path {
        case configuration.telemetryPath:
            return metrics(request)
        case "/healthz":
            return .text("ok\n")
        case "/readyz":
            let (ready, reason) = readiness()
            return .text(reason + "\n", status: ready ? 200 : 503)
        case "/":
            return .html(LandingPage.render(snapshot: snapshot, configuration: configuration, history: history))
        default:
            return .text("not found: \(request.path)\n", status: 404)
        }
    }

    private func metrics(_ request: HTTPRequest) -> HTTPResponse {
        guard let snapshot else { return .text("no sample yet\n", status: 503) }
        let format = ExpositionFormat.negotiate(accept: request.header("Accept"))
        let gzip = ExpositionFormat.acceptsGzip(request.header("Accept-Encoding"))
        selfMetrics.recordScrape(format)
        let (body, gzipped) = snapshot.body(format, gzip: gzip)
        var headers = [("Content-Type", format.contentType), ("Vary", "Accept-Encoding")]
        if gzipped { headers.append(("Content-Encoding", "gzip")) }
        return HTTPResponse(status: 200, headers: headers, body: body)
    }

    /// Ready while the sampler completed a tick within 3 intervals. Failing collectors and a node without
    /// accelerators are still ready: their state is in the metrics, and restarting would not fix it.
    public func readiness() -> (Bool, String) {
        guard let snapshot else { return (false, "no sample completed yet") }
        let age = MonotonicInstant.now().seconds(since: snapshot.tick.startedAt.adding(seconds: snapshot.tick.durationSeconds))
        let limit = 3 * configuration.interval
        if age > limit {
            return (false, "last sample completed \(Int(age))s ago (limit \(limit)s)")
        }
        return (true, "ok: \(snapshot.tick.devices.count) accelerators, last sample \(Int(age * 1000))ms ago")
    }
}

extension Logger {
    func with(_ key: String, _ value: String) -> Logger {
        var copy = self
        copy[metadataKey: key] = "\(value)"
        return copy
    }
}

/// A task a component starts and its stop cancels.
final class TaskSlot: Sendable {
    let task = Mutex<Task<Void, any Error>?>(nil)
}

/// The OTLP pusher, once `start()` made it: read by the sampler every tick, taken by `stop()`.
final class PusherSlot: Sendable {
    private let value = Mutex<OTLPPusher?>(nil)

    var pusher: OTLPPusher? {
        get { value.withLock { $0 } }
        set { value.withLock { $0 = newValue } }
    }

    func take() -> OTLPPusher? { value.withLock { p in defer { p = nil }; return p } }
}

/// The latest snapshot, swapped once per tick and read by every scrape: one short lock around a pointer copy.
final class SnapshotStore: Sendable {
    private let value = Mutex<Snapshot?>(nil)

    func publish(_ snapshot: Snapshot) { value.withLock { $0 = snapshot } }

    var latest: Snapshot? { value.withLock { $0 } }
}
