import AdapterSources
import AdapterStore
import AggregatedAPI
import ArgumentParser
import CommandLineSupport
import ConfigYAML
import Dispatch
import HTTPServer
import Kubernetes
import Lifecycle
import LineLogging
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// accel-metrics-adapter's composition root: flags → the store, a source, the API and its servers, run until
/// SIGTERM.
extension AdapterFlags {
    /// Runs the adapter these flags describe until SIGTERM or SIGINT, then stops it in order.
    public func run() async throws {
        var unblock = sigset_t()
        sigemptyset(&unblock)
        sigaddset(&unblock, SIGTERM)
        sigaddset(&unblock, SIGINT)
        pthread_sigmask(SIG_UNBLOCK, &unblock, nil)

        let config = try configuration(environment: Self.environmentVariables())
        CommandLineSupport.bootstrapLogging(level: config.logLevel, format: config.logFormat)
        let logger = Logger(label: "accel-metrics-adapter")
        var settings = ScrapeSettings()
        var targets: [ExporterTarget] = []
        var service: (namespace: String, name: String)?
        var prometheusSettings: PrometheusSettings?
        switch config.source {
        case .exporters(let scrape, let fixed, let followed):
            settings = scrape
            targets = fixed
            service = followed
        case .prometheus(let prometheus):
            prometheusSettings = prometheus
        }
        let resolution = config.resolutionSeconds
        let maxAge = config.maxAgeSeconds

        // The API server: in a cluster, or through --kubeconfig.
        var kube: KubernetesClient?
        do {
            let environment = Self.environmentVariables()
            if let kubeconfig {
                kube = try KubernetesClient(configuration: try .kubeconfig(path: kubeconfig, environment: environment), logger: logger)
            } else if environment["KUBERNETES_SERVICE_HOST"] != nil {
                kube = try KubernetesClient(configuration: try .inCluster(environment: environment), logger: logger)
            }
        } catch {
            Self.fail("Kubernetes API: \(error)")
        }
        if config.delegatedAuthorization && kube == nil && securePort > 0 {
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
            reloader = configReloader
        }
        let podDirectory = kube.map { PodDirectory(client: $0, logger: logger) }
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
        var endpointTargets: EndpointSliceTargets?
        if let service, let exporterSource {
            guard let kube else {
                Self.fail("--exporters.service needs the API server (in a cluster, or --kubeconfig)")
            }
            endpointTargets = EndpointSliceTargets(
                client: kube, namespace: service.namespace, service: service.name, logger: logger,
                onChange: { exporterSource.setTargets($0) })
        }

        let staticTargets = targets
        let kubeClient = kube
        // What runs, in start order; SIGTERM stops them the other way round (the servers first, the API client last).
        var components: [Component] = []
        if let kubeClient { components.append(Component("kubernetes-client", stop: { await kubeClient.shutdown() })) }
        if let reloader {
            let hangup = SignalSourceSlot()
            components.append(Component("metrics-config", start: {
                reloader.start()
                hangup.install(SIGHUP) {
                    logger.info("SIGHUP: reloading the metrics configuration")
                    reloader.reloadNow()
                }
            }, stop: {
                hangup.cancel()
                reloader.stop()
            }))
        }
        if let podDirectory { components.append(Component("pod-directory", start: { podDirectory.start() }, stop: { await podDirectory.stop() })) }
        if let exporterSource {
            components.append(Component("exporter-source", start: { if !staticTargets.isEmpty { exporterSource.setTargets(staticTargets) } },
                                        stop: { await exporterSource.shutdown() }))
        }
        if let prometheusSource {
            components.append(Component("prometheus-source", start: { prometheusSource.start() }, stop: { await prometheusSource.shutdown() }))
        }
        if let endpointTargets {
            components.append(Component("endpoint-slices", start: { endpointTargets.start() }, stop: { await endpointTargets.stop() }))
        }
        if insecurePort > 0 {
            let insecure = HTTPServer(
                configuration: HTTPServer.Configuration(host: bindAddress, port: insecurePort, threads: 4),
                logger: logger, handler: { handler.respond(to: $0) })
            components.append(Component("insecure-http", start: { [insecurePort] in
                do {
                    try insecure.start()
                } catch {
                    Self.fail("cannot serve on --insecure-port \(insecurePort): \(error)")
                }
                logger.warning(
                    "serving plain HTTP without authentication on --insecure-port: for local development only",
                    metadata: ["port": "\(insecure.port)"])
            }, stop: { insecure.stop() }))
        }
        if securePort > 0 {
            let running = SecureServerSlot()
            components.append(Component("secure-https", start: { [self] in
                let (secure, tasks) = try await startSecureServer(kube: kubeClient, handler: handler, metrics: metrics, logger: logger)
                running.set(secure, tasks)
            }, stop: { running.stop() }))
        }
        let startedMetadata: Logger.Metadata = [
            "version": "\(AdapterVersion.version)", "source": "\(config.sourceName)", "targets": "\(targets.count)",
            "resolution": "\(resolution)s", "max_age": "\(maxAge)s",
        ]
        try await Lifecycle.run(components, logger: logger) {
            logger.info("accel-metrics-adapter started", metadata: startedMetadata)
        }
        logger.info("accel-metrics-adapter stopped")
    }
}

/// A signal handler a component installs at start and removes at stop (SIGHUP: reload the metrics configuration).
final class SignalSourceSlot: Sendable {
    /// A dispatch source is thread-safe but not marked Sendable.
    private struct Held: @unchecked Sendable { let source: any DispatchSourceSignal }
    private let source = Mutex<Held?>(nil)

    func install(_ signalNumber: Int32, _ action: @escaping @Sendable () -> Void) {
        signal(signalNumber, SIG_IGN)
        let made = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
        made.setEventHandler(handler: action)
        made.resume()
        source.withLock { $0 = Held(source: made) }
    }

    func cancel() { source.withLock { $0?.source.cancel(); $0 = nil } }
}

/// The HTTPS server and its certificate and ConfigMap watches, once started.
final class SecureServerSlot: Sendable {
    private let state = Mutex<(HTTPServer?, [Task<Void, Never>])>((nil, []))

    func set(_ server: HTTPServer, _ tasks: [Task<Void, Never>]) { state.withLock { $0 = (server, tasks) } }

    func stop() {
        let (server, tasks) = state.withLock { s in defer { s = (nil, []) }; return s }
        for task in tasks { task.cancel() }
        server?.stop()
    }
}
