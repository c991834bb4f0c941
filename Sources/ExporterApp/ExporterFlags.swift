public import ArgumentParser
import CommandLineSupport
import Accelerators
public import Exporter
import HTTPServer
import Inference
import Kubernetes
public import Logging
import OTLPExport
import TPURuntimeClient
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Every accel-exporter flag, and how they become an ``Exporter/Configuration``.
///
/// Parsed by the executable (`@OptionGroup`), and by tests straight from an argument list
/// (`try ExporterFlags.parse([...]).configuration(environment: [:])`), without a process.
public struct ExporterFlags: ParsableArguments {
    /// Every flag at its default; ArgumentParser fills it from the command line.
    public init() {}

    /// `[host]:port` as Prometheus exporters spell it (`:9445`: every interface); split by `HTTPServer.Configuration`.
    @Option(name: .customLong("web.listen-address"), help: "Address to listen on: [host]:port.")
    public var listenAddress = ":9445"

    /// Parsed by `InferenceTarget.parseList`; nil or empty: none (discovery may still find some).
    @Option(name: .customLong("inference.targets"), help: "Model servers to scrape: namespace/pod=http://host:port/metrics,… (each optionally followed by ;queued-metric=NAME;running-metric=NAME;kv-cache-metric=NAME;kv-cache-scale=0.01;model-label=LABEL for a server that is none of the known engines; ;metrics=NAME|NAME names a workload's own families to re-export, ;inference=false a server that is no model server).")
    public var inferenceTargets: String?

    /// At least 1; `WorkloadMetrics.Limits.families`.
    @Option(name: .customLong("workload-metrics.max-families"), help: "Families a pod may name in accelmetrics.io/metrics; the rest are dropped (reason too_many_families).")
    public var workloadMaxFamilies = 10

    /// At least 1; `WorkloadMetrics.Limits.seriesPerFamily`.
    @Option(name: .customLong("workload-metrics.max-series"), help: "Series one named family may have; a family with more is dropped (reason too_many_series).")
    public var workloadMaxSeries = 100

    /// Bytes, at least 1024; `WorkloadMetrics.Limits.bytes`.
    @Option(name: .customLong("workload-metrics.max-bytes"), help: "Response size of a pod scraped only for its own families; a larger one fails that pod's scrape (a model server keeps the inference bound).")
    public var workloadMaxBytes = 1 << 20

    /// A duration, at least 1 s.
    @Option(name: .customLong("inference.window"), help: "Span of the windowed latency percentiles (e.g. 60s).")
    public var inferenceWindow = "60s"

    /// nil: no OTLP push, and the other `--otlp.*` flags are not checked.
    @Option(name: .customLong("otlp.endpoint"), help: "Push every value to this OpenTelemetry receiver as well (off when unset): http(s)://collector:4318 for http/protobuf (/v1/metrics is added), http(s)://collector:4317 for grpc.")
    public var otlpEndpoint: String?

    /// Checked by `OTLPConfiguration.make`, as are the other `--otlp.*` values.
    @Option(name: .customLong("otlp.protocol"), help: "http/protobuf or grpc.")
    public var otlpProtocol = "http/protobuf"

    /// A duration, at least 100 ms.
    @Option(name: .customLong("otlp.interval"), help: "Time between pushes of the latest sample (e.g. 10s).")
    public var otlpInterval = "10s"

    /// A duration, at least 100 ms.
    @Option(name: .customLong("otlp.timeout"), help: "Deadline of one push attempt, connecting included (e.g. 10s).")
    public var otlpTimeout = "10s"

    /// One `name=value` each, values percent-decoded; the environment's headers are added after them.
    @Option(name: .customLong("otlp.header"), help: "A header on every push, name=value (repeatable; also $OTEL_EXPORTER_OTLP_HEADERS, for secrets).")
    public var otlpHeaders: [String] = []

    /// `gzip` or `none`.
    @Option(name: .customLong("otlp.compression"), help: "gzip or none.")
    public var otlpCompression = "gzip"

    /// A path; nil: the system's trust store.
    @Option(name: .customLong("otlp.tls.ca-file"), help: "CA bundle (PEM) the receiver's certificate must chain to; default: the system's.")
    public var otlpCAFile: String?

    /// A path; only with ``otlpKeyFile``.
    @Option(name: .customLong("otlp.tls.cert-file"), help: "Client certificate (PEM) for receivers that require one.")
    public var otlpCertFile: String?

    /// A path; only with ``otlpCertFile``.
    @Option(name: .customLong("otlp.tls.key-file"), help: "The client certificate's key (PEM).")
    public var otlpKeyFile: String?

    /// Never for production: any receiver certificate is accepted.
    @Flag(name: .customLong("otlp.tls.insecure-skip-verify"), help: "Accept any receiver certificate (tests only).")
    public var otlpInsecureSkipVerify = false

    /// 1 to 1000 encoded pushes.
    @Option(name: .customLong("otlp.queue-size"), help: "Pushes kept while the receiver fails; when full, the oldest is dropped.")
    public var otlpQueueSize = 6

    /// `key=value` each; they win over `$OTEL_RESOURCE_ATTRIBUTES` and the node's own attributes.
    @Option(name: .customLong("otlp.resource-attribute"), help: "An extra resource attribute, key=value (repeatable; also $OTEL_RESOURCE_ATTRIBUTES).")
    public var otlpResourceAttributes: [String] = []

    /// A path, read at start (a file that does not load fails the start) and watched for changes; nil: plain HTTP,
    /// no authentication.
    @Option(name: .customLong("web.config.file"), help: "exporter-toolkit web configuration: TLS, client certificates, headers, basic auth (re-read when it changes).")
    public var webConfigFile: String?

    /// Must be an `http://` or `https://` URL with a host; trailing slashes are dropped.
    @Option(name: .customLong("web.adapter-url"), help: "accel-metrics-adapter base URL (http://host:port) the landing page links to: what an HPA reads for this node and its pods. For demos and development; off by default.")
    public var adapterURL: String?

    /// Starts with `/` and is not `/` itself.
    @Option(name: .customLong("web.telemetry-path"), help: "Path under which to expose metrics.")
    public var telemetryPath = "/metrics"

    /// Positive.
    @Option(name: .customLong("web.max-connections"), help: "Maximum concurrent HTTP connections.")
    public var maxConnections = 512

    /// Not negative; 0 turns the limit off.
    @Option(name: .customLong("web.max-connections-per-ip"), help: "Most connections open at once from one client address (0: no limit), so one client that holds connections open cannot starve the others.")
    public var maxConnectionsPerIP = 128

    /// A duration, at least 1 s, rounded down to whole seconds.
    @Option(name: .customLong("web.request-timeout"), help: "Drop a client idle for this long (e.g. 10s).")
    public var requestTimeout = "10s"

    /// Must exist at start.
    @Option(name: .customLong("path.sysfs"), help: "sysfs mount point (for the amdgpu, habana, intel and tpu collectors).")
    public var sysfs = "/sys"

    /// Not checked at start.
    @Option(name: .customLong("path.procfs"), help: "procfs mount point (DRM fdinfo for the intel collector and for --collector.processes).")
    public var procfs = "/proc"

    /// A duration, at least 50 ms.
    @Option(name: .customLong("collect.interval"), help: "Sampling interval (e.g. 1s, 500ms).")
    public var interval = "1s"

    /// A duration, at least 50 ms.
    @Option(name: .customLong("discovery.interval"), help: "How often device discovery re-runs (e.g. 10s).")
    public var discoveryInterval = "10s"

    /// Each collector's flags (`--collector.<name>` and its own), one file per collector.
    @OptionGroup public var collectors: Collectors

    @Flag(name: .customLong("collector.kubelet"), inversion: .prefixedNo,
          help: "Pod attribution from the kubelet's pod-resources API (accelerator_allocated, accelerator_pod_*). Stays off, with one log line, when the socket's directory does not exist at start (no kubelet here).")
    /// On, but no pod-resources directory at start: off, with a start-up note.
    public var kubelet = true

    /// Its directory decides whether `--collector.kubelet` stays on.
    @Option(name: .customLong("kubelet.pod-resources-socket"), help: "The kubelet's pod-resources unix socket.")
    public var kubeletSocket = "/var/lib/kubelet/pod-resources/kubelet.sock"

    /// A duration, at least 100 ms.
    @Option(name: .customLong("kubelet.refresh-interval"), help: "How often to call pod-resources List (never per scrape), e.g. 5s.")
    public var kubeletRefresh = "5s"

    /// A duration, at least the refresh interval; empty is 6 × the refresh interval.
    @Option(name: .customLong("kubelet.stale-after"), help: "How long the last good List stays served while the kubelet fails (a kubelet restart), then attribution is dropped; default 6 × the refresh interval.")
    public var kubeletStaleAfter = ""

    /// Comma-separated, blanks trimmed, empty entries skipped.
    @Option(name: .customLong("kubelet.resource-names"), help: "Extra device-plugin resource names whose ids name accelerators (comma-separated).")
    public var kubeletResourceNames = ""

    /// Empty turns the directory reading off.
    @Option(name: .customLong("kubelet.pod-logs-path"), help: "The kubelet's pod log directories (<namespace>_<pod>_<uid>), for pod UID -> name with --collector.processes.")
    public var kubeletPodLogs = "/var/log/pods"

    @Flag(name: .customLong("collector.processes"), inversion: .prefixedNo,
          help: "Per-process attribution on shared accelerators (NVML processes, DRM fdinfo) through host PIDs under --path.procfs; needs hostPID and CAP_SYS_PTRACE.")
    /// Needs `hostPID` and `CAP_SYS_PTRACE` in the pod spec; nothing here checks for them.
    public var processes = false

    /// nil: `$NODE_NAME` when set and not empty, else the host name.
    @Option(name: .customLong("kubernetes.node-name"), help: "Node name for accelerator_info and the pod watch (default: $NODE_NAME, else the host name).")
    public var nodeName: String?

    @Flag(name: .customLong("kubernetes.watch-pods"), inversion: .prefixedNo,
          help: "Watch this node's pods through the API server (in a cluster, or with --kubeconfig): pod names for --collector.processes, --kubernetes.pod-labels, model-server discovery. Stays off, with one log line, without API access.")
    /// Needs a node name and an API server (`--kubeconfig`, or in-cluster variables); without one it stays off with a
    /// start-up note, unless `--kubeconfig` was given, which makes its error fatal.
    public var watchPods = true

    /// A path; with the pod watch on, a file that does not load fails the start.
    @Option(name: .customLong("kubeconfig"), help: "kubeconfig for the API server when running outside a cluster (default: the pod's service account).")
    public var kubeconfig: String?

    /// Comma-separated, at most `PodLabelNames.limit` (6); used only with the pod watch.
    @Option(name: .customLong("kubernetes.pod-labels"), help: "Pod labels to export on accelerator_pod_labels as label_<name> (comma-separated, at most 6), e.g. app,team.")
    public var podLabels = ""

    @Flag(name: .customLong("kubernetes.resource-slices"), inversion: .prefixedNo,
          help: "Watch this node's DRA ResourceSlices (resource.k8s.io/v1) for device attributes (uuid, PCI bus id) that join claims to accelerators.")
    /// Used only with the pod watch.
    public var resourceSlices = true

    @Flag(name: .customLong("inference.discovery"), inversion: .prefixedNo,
          help: "Scrape the node's model-server pods found by annotation (inference.accelmetrics.io/scrape, or prometheus.io/scrape probed for a known engine).")
    /// Used only with the pod watch.
    public var inferenceDiscovery = true

    /// Also sets ``Exporter/Configuration/trimStartupMemoryAfterSeconds`` to 10 s.
    @Flag(name: .customLong("runtime.trim-startup-memory"), inversion: .prefixedNo, help: "Give back the code pages only start-up used (MADV_PAGEOUT), during start and 10 s later.")
    public var trimStartupMemory = true

    /// Checked by `CommandLineSupport.parseLevel` when the exporter runs.
    @Option(name: .customLong("log.level"), help: "debug, info, warn or error.")
    public var logLevel = "info"

    /// Checked when the exporter runs.
    @Option(name: .customLong("log.format"), help: "logfmt or json.")
    public var logFormat = "logfmt"

    /// Start-up facts to log once the exporter runs (what was left off, and why).
    public typealias Notes = [(message: String, metadata: Logger.Metadata)]

    /// The configuration these flags describe. `environment` supplies `$NODE_NAME`, the in-cluster API server and
    /// the OpenTelemetry variables. A mistake throws a `ValidationError` naming the flag.
    public func configuration(environment: [String: String]) throws -> (Exporter.Configuration, Notes) {
        var config = Exporter.Configuration()
        do {
            (config.listenHost, config.listenPort) = try HTTPServer.Configuration.parseListenAddress(listenAddress)
        } catch {
            throw ValidationError("--web.listen-address: \(error)")
        }
        guard telemetryPath.hasPrefix("/"), telemetryPath != "/" else {
            throw ValidationError("--web.telemetry-path must start with / and not be / itself")
        }
        config.telemetryPath = telemetryPath
        config.interval = try CommandLineSupport.parseDuration(interval, flag: "--collect.interval", minimum: 0.05)
        config.discoveryInterval = try CommandLineSupport.parseDuration(discoveryInterval, flag: "--discovery.interval", minimum: 0.05)
        config.requestTimeoutSeconds = max(1, Int(try CommandLineSupport.parseDuration(requestTimeout, flag: "--web.request-timeout", minimum: 1)))
        guard maxConnections > 0 else { throw ValidationError("--web.max-connections must be positive") }
        config.maxConnections = maxConnections
        guard maxConnectionsPerIP >= 0 else { throw ValidationError("--web.max-connections-per-ip must not be negative") }
        config.maxConnectionsPerIP = maxConnectionsPerIP
        config.sysfs = FileRoot(sysfs)
        config.procfs = FileRoot(procfs)
        guard config.sysfs.exists(".") else {
            throw ValidationError("--path.sysfs: \(sysfs) does not exist")
        }
        config.collectors = try collectors.factories()
        config.nodeName = nodeName ?? environment["NODE_NAME"].flatMap { $0.isEmpty ? nil : $0 } ?? CommandLineSupport.hostName()
        config.trimStartupMemoryAfterSeconds = trimStartupMemory ? 10 : nil
        config.webConfigPath = webConfigFile
        if let adapterURL {
            guard let url = Exporter.Configuration.normalizedAdapterURL(adapterURL) else {
                throw ValidationError("--web.adapter-url: \"\(adapterURL)\" is not an http:// or https:// URL with a host")
            }
            config.adapterURL = url
        }
        if let inferenceTargets {
            do {
                config.inferenceTargets = try InferenceTarget.parseList(inferenceTargets)
            } catch {
                throw ValidationError("--inference.targets: \(error)")
            }
        }
        config.inferenceWindowSeconds = try CommandLineSupport.parseDuration(inferenceWindow, flag: "--inference.window", minimum: 1)
        guard workloadMaxFamilies >= 1, workloadMaxSeries >= 1, workloadMaxBytes >= 1024 else {
            throw ValidationError("--workload-metrics.max-families and .max-series must be at least 1, .max-bytes at least 1024")
        }
        config.workloadLimits = WorkloadMetrics.Limits(families: workloadMaxFamilies, seriesPerFamily: workloadMaxSeries, bytes: workloadMaxBytes)
        if let otlpEndpoint {
            do {
                config.otlp = try OTLPConfiguration.make(
                    endpoint: otlpEndpoint, wireProtocol: otlpProtocol,
                    intervalSeconds: try CommandLineSupport.parseDuration(otlpInterval, flag: "--otlp.interval", minimum: 0.1),
                    timeoutSeconds: try CommandLineSupport.parseDuration(otlpTimeout, flag: "--otlp.timeout", minimum: 0.1),
                    headers: otlpHeaders, compression: otlpCompression, caFile: otlpCAFile, certificateFile: otlpCertFile,
                    keyFile: otlpKeyFile, insecureSkipVerify: otlpInsecureSkipVerify, queueBatches: otlpQueueSize,
                    resourceAttributes: otlpResourceAttributes, environment: environment)
            } catch let error as OTLPConfigurationError {
                throw ValidationError("\(error)")
            }
        }
        var notes: Notes = []
        let labels = podLabels.split(separator: ",").map { String($0).trimmingASCIIWhitespace() }.filter { !$0.isEmpty }
        guard labels.count <= PodLabelNames.limit else {
            throw ValidationError("--kubernetes.pod-labels: at most \(PodLabelNames.limit) labels (with namespace and pod, the 8-label budget)")
        }
        if watchPods, let node = config.nodeName {
            // Outside a cluster without --kubeconfig there is no API server: stay off with one line.
            do {
                let kube: KubernetesConfiguration = try kubeconfig.map { path throws(KubernetesError) in try .kubeconfig(path: path, environment: environment) }
                    ?? .inCluster(environment: environment)
                var api = Exporter.Configuration.APIServer(configuration: kube, nodeName: node)
                api.podLabels = labels
                api.resourceSlices = resourceSlices
                api.inferenceDiscovery = inferenceDiscovery
                config.apiServer = api
            } catch {
                if kubeconfig != nil { throw ValidationError("--kubeconfig: \(error)") }
                notes.append(("pod watch off: no API server here", ["reason": "\((error as? KubernetesError)?.message ?? "\(error)")"]))
            }
        }
        config.processes = processes
        if kubelet {
            var k = Exporter.Configuration.Kubelet()
            k.socketPath = kubeletSocket
            k.refreshInterval = try CommandLineSupport.parseDuration(kubeletRefresh, flag: "--kubelet.refresh-interval", minimum: 0.1)
            if !kubeletStaleAfter.isEmpty {
                k.staleAfter = try CommandLineSupport.parseDuration(kubeletStaleAfter, flag: "--kubelet.stale-after", minimum: k.refreshInterval)
            }
            k.extraResourceNames = Set(kubeletResourceNames.split(separator: ",").map { String($0).trimmingASCIIWhitespace() }.filter { !$0.isEmpty })
            k.podLogsPath = kubeletPodLogs.isEmpty ? nil : kubeletPodLogs
            // A machine without a kubelet (a dev box) has no pod-resources directory: stay off quietly. A missing
            // socket in an existing directory is a kubelet that is (re)starting: keep trying and report it.
            let directory = kubeletSocket.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
            if access(directory.isEmpty ? "/" : directory, F_OK) == 0 {
                config.kubelet = k
            } else {
                notes.append(("kubelet collector off: no pod-resources directory here", ["directory": "\(directory)"]))
            }
        }

        return (config, notes)
    }
}

extension String {
    func trimmingASCIIWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard let start = firstIndex(where: { !isSpace($0) }), let end = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[start...end])
    }
}
