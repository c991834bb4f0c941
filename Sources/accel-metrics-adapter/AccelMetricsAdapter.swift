import Adapter
import ConfigYAML
import ArgumentParser
import CommandLineSupport
import Dispatch
import HTTPServer
import Kubernetes
import LineLogging
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// accel-metrics-adapter: parses flags (Kubernetes API-server conventions), builds the adapter, serves until
/// SIGTERM/SIGINT.
@main
struct AccelMetricsAdapter: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "accel-metrics-adapter",
        abstract: "Kubernetes custom and external metrics API for accelerators, fed by accel-exporter.",
        version: AdapterVersion.version
    )

    @Option(name: .customLong("secure-port"), help: "HTTPS port.")
    var securePort = 6443

    @Option(name: .customLong("bind-address"), help: "Address to listen on (default: every interface).")
    var bindAddress = ""

    @Option(name: .customLong("insecure-port"), help: "Plain-HTTP port without authentication, for local development only; 0 turns it off.")
    var insecurePort = 0

    @Option(name: .customLong("tls-cert-file"), help: "Serving certificate (PEM, with intermediates); reloaded when it changes.")
    var tlsCertFile: String?

    @Option(name: .customLong("tls-private-key-file"), help: "Key of --tls-cert-file.")
    var tlsKeyFile: String?

    @Option(name: .customLong("cert-secret"), help: "In a cluster without --tls-cert-file: the Secret (in the adapter's namespace) holding the shared serving certificate, created if absent.")
    var certSecret = "accel-metrics-adapter-serving-cert"

    @Option(name: .customLong("service-name"), help: "The adapter's Service, named in the generated serving certificate.")
    var serviceName = "accel-metrics-adapter"

    @Option(name: .customLong("apiservices"), help: "APIServices whose caBundle follows the generated certificate (comma-separated).")
    var apiServices = "v1beta2.custom.metrics.k8s.io,v1beta1.custom.metrics.k8s.io,v1beta1.external.metrics.k8s.io"

    @Option(name: .customLong("client-ca-file"), help: "CA bundle for client certificates (user = CN, groups = O); default: the cluster's, from extension-apiserver-authentication.")
    var clientCAFile: String?

    @Option(name: .customLong("requestheader-client-ca-file"), help: "The front proxy's CA; given, the requestheader flags replace the cluster's ConfigMap.")
    var requestHeaderCAFile: String?

    @Option(name: .customLong("requestheader-allowed-names"), help: "Common names the front proxy's certificate may have (comma-separated; empty: any).")
    var requestHeaderAllowedNames = ""

    @Option(name: .customLong("requestheader-username-headers"), help: "Headers holding the user (comma-separated).")
    var requestHeaderUsernameHeaders = "X-Remote-User"

    @Option(name: .customLong("requestheader-group-headers"), help: "Headers holding the groups (comma-separated).")
    var requestHeaderGroupHeaders = "X-Remote-Group"

    @Option(name: .customLong("requestheader-extra-headers-prefix"), help: "Prefixes of headers holding extra user attributes (comma-separated).")
    var requestHeaderExtraPrefixes = "X-Remote-Extra-"

    @Option(name: .customLong("authorization-mode"), help: "Delegated (SubjectAccessReview) or AlwaysAllow (local development only).")
    var authorizationMode = "Delegated"

    @Option(name: .customLong("kubeconfig"), help: "kubeconfig for running outside a cluster (default: in-cluster service account).")
    var kubeconfig: String?

    @Option(name: .customLong("exporters.service"), help: "The exporters' Service, namespace/name, followed through its EndpointSlices.")
    var exporterService: String?

    @Option(name: .customLong("source"), help: "Where values come from: exporters (scrape them directly) or prometheus.")
    var source = "exporters"

    @Option(name: .customLong("exporters.targets"), help: "Static exporter list: host:port,host:port.")
    var exporterTargets: String?

    @Option(name: .customLong("exporters.scheme"), help: "http or https.")
    var exporterScheme = "http"

    @Option(name: .customLong("exporters.path"), help: "Metrics path on the exporters.")
    var exporterPath = "/metrics"

    @Option(name: .customLong("exporters.ca-file"), help: "CA bundle the exporters' certificates chain to.")
    var exporterCAFile: String?

    @Option(name: .customLong("exporters.cert-file"), help: "Client certificate for exporters that require one.")
    var exporterCertFile: String?

    @Option(name: .customLong("exporters.key-file"), help: "Key of --exporters.cert-file.")
    var exporterKeyFile: String?

    @Option(name: .customLong("exporters.username"), help: "Basic-auth user for the exporters.")
    var exporterUsername: String?

    @Option(name: .customLong("exporters.password-file"), help: "File holding the basic-auth password (re-read each scrape).")
    var exporterPasswordFile: String?

    @Option(name: .customLong("exporters.bearer-token-file"), help: "File holding a bearer token for the exporters.")
    var exporterTokenFile: String?

    @Option(name: .customLong("exporters.timeout"), help: "Scrape timeout (e.g. 2s).")
    var exporterTimeout = "2s"

    @Option(name: .customLong("exporters.concurrency"), help: "Scrapes in flight at once.")
    var exporterConcurrency = 64

    @Option(name: .customLong("prometheus.url"), help: "Prometheus (or Thanos/Mimir) base URL for --source=prometheus.")
    var prometheusURL: String?

    @Option(name: .customLong("prometheus.series-selector"), help: "Matchers added to every Prometheus query, e.g. job=\"accel-exporter\".")
    var prometheusSelector = ""

    @Option(name: .customLong("prometheus.ca-file"), help: "CA bundle for an HTTPS Prometheus.")
    var prometheusCAFile: String?

    @Option(name: .customLong("prometheus.bearer-token-file"), help: "File holding a bearer token for Prometheus.")
    var prometheusTokenFile: String?

    @Option(name: .customLong("metric-resolution"), help: "How often values are refreshed (default: 1s from exporters, 5s from Prometheus).")
    var metricResolution: String?

    @Option(name: .customLong("metrics-max-age"), help: "Values older than this are not served (default: 5 × resolution and at least 10s from exporters; 2m from Prometheus).")
    var metricsMaxAge: String?

    @Option(name: .customLong("metrics-config"), help: "YAML file adding metrics (reloaded on change and on SIGHUP).")
    var metricsConfig: String?

    @Flag(name: .customLong("external-metrics"), inversion: .prefixedNo, help: "Serve external.metrics.k8s.io (turn off where KEDA owns it).")
    var externalMetrics = true

    @Option(name: .customLong("log.level"), help: "debug, info, warn or error.")
    var logLevel = "info"

    @Option(name: .customLong("log.format"), help: "logfmt or json.")
    var logFormat = "logfmt"

    func run() async throws {
        var unblock = sigset_t()
        sigemptyset(&unblock)
        sigaddset(&unblock, SIGTERM)
        sigaddset(&unblock, SIGINT)
        pthread_sigmask(SIG_UNBLOCK, &unblock, nil)

        let level = try Self.parseLevel(logLevel)
        guard let format = LineLogHandler.Format(rawValue: logFormat) else {
            throw ValidationError("--log.format must be logfmt or json, not \"\(logFormat)\"")
        }
        LoggingSystem.bootstrap { label in LineLogHandler(label: label, format: format, level: level) }
        let logger = Logger(label: "accel-metrics-adapter")

        guard source == "exporters" || source == "prometheus" else {
            throw ValidationError("--source must be exporters or prometheus, not \"\(source)\"")
        }
        let usePrometheus = source == "prometheus"
        let resolution = try Self.parseDuration(
            metricResolution ?? (usePrometheus ? "5s" : "1s"), flag: "--metric-resolution", minimum: 0.1)
        let maxAge = try metricsMaxAge.map { try Self.parseDuration($0, flag: "--metrics-max-age", minimum: 0.1) }
            ?? (usePrometheus ? 120 : max(10, 5 * resolution))

        var settings = ScrapeSettings()
        var targets: [ExporterTarget] = []
        var prometheusSettings: PrometheusSettings?
        if usePrometheus {
            guard let prometheusURL else { throw ValidationError("--source=prometheus needs --prometheus.url") }
            var settings = PrometheusSettings(url: prometheusURL)
            settings.intervalSeconds = resolution
            settings.seriesSelector = prometheusSelector
            settings.caFile = prometheusCAFile
            settings.bearerTokenFile = prometheusTokenFile
            prometheusSettings = settings
        } else {
            guard exporterScheme == "http" || exporterScheme == "https" else {
                throw ValidationError("--exporters.scheme must be http or https, not \"\(exporterScheme)\"")
            }
            settings.scheme = exporterScheme
            guard exporterPath.hasPrefix("/") else { throw ValidationError("--exporters.path must start with /") }
            settings.path = exporterPath
            settings.intervalSeconds = resolution
            settings.timeoutSeconds = try Self.parseDuration(exporterTimeout, flag: "--exporters.timeout", minimum: 0.05)
            guard exporterConcurrency > 0 else { throw ValidationError("--exporters.concurrency must be positive") }
            settings.concurrency = exporterConcurrency
            settings.caFile = exporterCAFile
            guard (exporterCertFile == nil) == (exporterKeyFile == nil) else {
                throw ValidationError("--exporters.cert-file and --exporters.key-file go together")
            }
            settings.certFile = exporterCertFile
            settings.keyFile = exporterKeyFile
            settings.username = exporterUsername
            settings.passwordFile = exporterPasswordFile
            settings.bearerTokenFile = exporterTokenFile
            do {
                targets = try ExporterTarget.parseList(exporterTargets ?? "")
            } catch {
                throw ValidationError("--exporters.targets: \(error)")
            }
            guard !targets.isEmpty || exporterService != nil else {
                throw ValidationError("give the exporters: --exporters.service=namespace/name or --exporters.targets=host:port,…")
            }
        }
        guard authorizationMode == "Delegated" || authorizationMode == "AlwaysAllow" else {
            throw ValidationError("--authorization-mode must be Delegated or AlwaysAllow, not \"\(authorizationMode)\"")
        }
        guard (tlsCertFile == nil) == (tlsKeyFile == nil) else {
            throw ValidationError("--tls-cert-file and --tls-private-key-file go together")
        }

        // The API server: in a cluster, or through --kubeconfig.
        var kube: KubernetesClient?
        do {
            let environment = Self.environmentVariables()
            if let kubeconfig {
                kube = try KubernetesClient(configuration: try .kubeconfig(path: kubeconfig), logger: logger)
            } else if environment["KUBERNETES_SERVICE_HOST"] != nil {
                kube = try KubernetesClient(configuration: try .inCluster(environment: environment), logger: logger)
            }
        } catch {
            Self.fail("Kubernetes API: \(error)")
        }
        if authorizationMode == "Delegated" && kube == nil && securePort > 0 {
            Self.fail("--authorization-mode=Delegated needs the API server: run in a cluster or give --kubeconfig")
        }

        let store = MetricStore(maxAgeSeconds: maxAge)
        let catalog = MetricCatalog(MetricDefinition.builtIn)
        let metrics = AdapterMetrics()
        var reloader: ConfigReloader?
        if let metricsConfig {
            let configReloader = ConfigReloader(
                path: metricsConfig, catalog: catalog, metrics: metrics, logger: logger,
                parse: { bytes in try YAMLDocument.parse(bytes) })
            do {
                try configReloader.loadInitial()
            } catch {
                Self.fail("--metrics-config: \(error)")
            }
            configReloader.start()
            reloader = configReloader
        }
        let podDirectory = kube.map { PodDirectory(client: $0, logger: logger) }
        podDirectory?.start()
        let api = MetricsAPI(store: store, catalog: catalog, podLabels: podDirectory)
        let handler = APIHandler(api: api, metrics: metrics, servesExternal: externalMetrics)
        var exporterSource: ExporterSource?
        var prometheusSource: PrometheusSource?
        do {
            if let prometheusSettings {
                prometheusSource = try PrometheusSource(
                    store: store, catalog: catalog, metrics: metrics, settings: prometheusSettings, logger: logger)
            } else {
                exporterSource = try ExporterSource(
                    store: store, catalog: catalog, metrics: metrics, settings: settings, logger: logger)
            }
        } catch {
            Self.fail("metrics source: \(error)")
        }

        var servers: [HTTPServer] = []
        if insecurePort > 0 {
            let insecure = HTTPServer(
                configuration: HTTPServer.Configuration(host: bindAddress, port: insecurePort, threads: 4),
                logger: logger, handler: { handler.respond(to: $0) })
            do {
                try insecure.start()
            } catch {
                Self.fail("cannot serve on --insecure-port \(insecurePort): \(error)")
            }
            logger.warning(
                "serving plain HTTP without authentication on --insecure-port: for local development only",
                metadata: ["port": "\(insecure.port)"])
            servers.append(insecure)
        }
        var background: [Task<Void, Never>] = []
        if securePort > 0 {
            let (secure, tasks) = try await startSecureServer(kube: kube, handler: handler, metrics: metrics, logger: logger)
            servers.append(secure)
            background += tasks
        }
        var endpointTargets: EndpointSliceTargets?
        if let exporterService, let exporterSource {
            let parts = exporterService.split(separator: "/")
            guard parts.count == 2, let kube else {
                Self.fail("--exporters.service needs namespace/name and the API server (in a cluster, or --kubeconfig)")
            }
            endpointTargets = EndpointSliceTargets(
                client: kube, namespace: String(parts[0]), service: String(parts[1]), logger: logger,
                onChange: { exporterSource.setTargets($0) })
            endpointTargets?.start()
        }
        if !targets.isEmpty { exporterSource?.setTargets(targets) }
        prometheusSource?.start()
        logger.info(
            "accel-metrics-adapter started",
            metadata: [
                "version": "\(AdapterVersion.version)", "source": "\(source)", "targets": "\(targets.count)",
                "resolution": "\(resolution)s", "max_age": "\(maxAge)s",
            ])

        let activeReloader = reloader
        let hangup = Self.onHangup {
            logger.info("SIGHUP: reloading the metrics configuration")
            activeReloader?.reloadNow()
        }
        await Self.waitForTermination(logger: logger)
        withExtendedLifetime(hangup) {}
        reloader?.stop()
        for task in background { task.cancel() }
        for server in servers { server.stop() }
        await endpointTargets?.stop()
        await podDirectory?.stop()
        await exporterSource?.shutdown()
        await prometheusSource?.shutdown()
        await kube?.shutdown()
    }

    static func waitForTermination(logger: Logger) async {
        let latch = SignalLatch()
        var sources: [any DispatchSourceSignal] = []
        for sig in [SIGTERM, SIGINT] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                logger.info("shutting down", metadata: ["signal": "\(sig)"])
                latch.fire()
            }
            source.resume()
            sources.append(source)
        }
        await withCheckedContinuation { latch.wait(with: $0) }
        withExtendedLifetime(sources) {}
    }

    /// Runs `action` on each SIGHUP while the returned source lives.
    static func onHangup(_ action: @escaping @Sendable () -> Void) -> any DispatchSourceSignal {
        signal(SIGHUP, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        source.setEventHandler(handler: action)
        source.resume()
        return source
    }




    static func parseLevel(_ s: String) throws -> Logger.Level { try CommandLineSupport.parseLevel(s) }
    static func parseDuration(_ s: String, flag: String, minimum: Double) throws -> Double {
        try CommandLineSupport.parseDuration(s, flag: flag, minimum: minimum)
    }
    static func fail(_ message: String) -> Never { CommandLineSupport.fail(program: "accel-metrics-adapter", message) }

    /// One clear line for flag errors instead of the full usage text; `--help` and `--version` still work.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                Glibc.exit(0)
            }
            fail(message(for: error))
        }
    }
}

/// Resumes the shutdown wait once, whichever signal comes first (also when it came before the wait began).
final class SignalLatch: Sendable {
    private struct State {
        var fired = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())

    func wait(with continuation: CheckedContinuation<Void, Never>) {
        let resumeNow = state.withLock { state -> Bool in
            if state.fired { return true }
            state.waiter = continuation
            return false
        }
        if resumeNow { continuation.resume() }
    }

    func fire() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.fired = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }
}
