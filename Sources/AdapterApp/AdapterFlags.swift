public import ArgumentParser

/// Every accel-metrics-adapter flag (the Kubernetes API server's spellings where they exist).
///
/// Parsed by the executable (`@OptionGroup`), and by tests straight from an argument list; ``AdapterApp`` turns
/// them into the running adapter.
public struct AdapterFlags: ParsableArguments, Sendable {
    /// Every flag at its default; ArgumentParser fills it from the command line. ``configuration()`` checks them.
    public init() {}

    /// 0 turns HTTPS off (and with it the need for the API server under `Delegated` authorization).
    @Option(name: .customLong("secure-port"), help: "HTTPS port.")
    public var securePort = 6443

    /// Shared by the secure and the insecure port; empty listens on every interface.
    @Option(name: .customLong("bind-address"), help: "Address to listen on (default: every interface).")
    public var bindAddress = ""

    /// Serves the API with no authentication or authorization at all; a warning is logged when it starts.
    @Option(name: .customLong("insecure-port"), help: "Plain-HTTP port without authentication, for local development only; 0 turns it off.")
    public var insecurePort = 0

    /// A path, checked every 10 s; only with ``tlsKeyFile``. Without it: the cluster Secret, else a self-signed
    /// certificate generated at start.
    @Option(name: .customLong("tls-cert-file"), help: "Serving certificate (PEM, with intermediates); reloaded when it changes.")
    public var tlsCertFile: String?

    /// A path; only with ``tlsCertFile``.
    @Option(name: .customLong("tls-private-key-file"), help: "Key of --tls-cert-file.")
    public var tlsKeyFile: String?

    /// Used only in a cluster (or with `--kubeconfig`) without ``tlsCertFile``.
    @Option(name: .customLong("cert-secret"), help: "In a cluster without --tls-cert-file: the Secret (in the adapter's namespace) holding the shared serving certificate, created if absent.")
    public var certSecret = "accel-metrics-adapter-serving-cert"

    /// The name the generated certificate is made out to.
    @Option(name: .customLong("service-name"), help: "The adapter's Service, named in the generated serving certificate.")
    public var serviceName = "accel-metrics-adapter"

    /// Comma-separated; used only with ``certSecret``.
    @Option(name: .customLong("apiservices"), help: "APIServices whose caBundle follows the generated certificate (comma-separated).")
    public var apiServices = "v1beta2.custom.metrics.k8s.io,v1beta1.custom.metrics.k8s.io,v1beta1.external.metrics.k8s.io"

    /// A path, read once at start; given, the ConfigMap's client CA is ignored.
    @Option(name: .customLong("client-ca-file"), help: "CA bundle for client certificates (user = CN, groups = O); default: the cluster's, from extension-apiserver-authentication.")
    public var clientCAFile: String?

    /// A path, read once at start; given, the other `--requestheader-*` flags apply and the ConfigMap is not watched.
    @Option(name: .customLong("requestheader-client-ca-file"), help: "The front proxy's CA; given, the requestheader flags replace the cluster's ConfigMap.")
    public var requestHeaderCAFile: String?

    /// Empty allows any name; text that names none (`,`) fails the start rather than allowing any.
    @Option(name: .customLong("requestheader-allowed-names"), help: "Common names the front proxy's certificate may have (comma-separated; empty: any).")
    public var requestHeaderAllowedNames = ""

    /// Comma-separated; blanks and empty entries dropped.
    @Option(name: .customLong("requestheader-username-headers"), help: "Headers holding the user (comma-separated).")
    public var requestHeaderUsernameHeaders = "X-Remote-User"

    /// Comma-separated; blanks and empty entries dropped.
    @Option(name: .customLong("requestheader-group-headers"), help: "Headers holding the groups (comma-separated).")
    public var requestHeaderGroupHeaders = "X-Remote-Group"

    /// Comma-separated; blanks and empty entries dropped.
    @Option(name: .customLong("requestheader-extra-headers-prefix"), help: "Prefixes of headers holding extra user attributes (comma-separated).")
    public var requestHeaderExtraPrefixes = "X-Remote-Extra-"

    /// Anything else fails the start. `Delegated` with HTTPS needs the API server.
    @Option(name: .customLong("authorization-mode"), help: "Delegated (SubjectAccessReview) or AlwaysAllow (local development only).")
    public var authorizationMode = "Delegated"

    /// A path; without it the API server is used only when `$KUBERNETES_SERVICE_HOST` is set. A file that does not load
    /// fails the start.
    @Option(name: .customLong("kubeconfig"), help: "kubeconfig for running outside a cluster (default: in-cluster service account).")
    public var kubeconfig: String?

    /// `namespace/name`; needs the API server. Used only with `--source=exporters`, beside any ``exporterTargets``.
    @Option(name: .customLong("exporters.service"), help: "The exporters' Service, namespace/name, followed through its EndpointSlices.")
    public var exporterService: String?

    /// `exporters` or `prometheus`; anything else fails the start.
    @Option(name: .customLong("source"), help: "Where values come from: exporters (scrape them directly) or prometheus.")
    public var source = "exporters"

    /// Parsed by `ExporterTarget.parseList`; it or ``exporterService`` is required with `--source=exporters`.
    @Option(name: .customLong("exporters.targets"), help: "Static exporter list: host:port,host:port.")
    public var exporterTargets: String?

    /// `http` or `https`.
    @Option(name: .customLong("exporters.scheme"), help: "http or https.")
    public var exporterScheme = "http"

    /// Starts with `/`.
    @Option(name: .customLong("exporters.path"), help: "Metrics path on the exporters.")
    public var exporterPath = "/metrics"

    /// A path; nil: the system's trust store.
    @Option(name: .customLong("exporters.ca-file"), help: "CA bundle the exporters' certificates chain to.")
    public var exporterCAFile: String?

    /// A path; only with ``exporterKeyFile``.
    @Option(name: .customLong("exporters.cert-file"), help: "Client certificate for exporters that require one.")
    public var exporterCertFile: String?

    /// A path; only with ``exporterCertFile``.
    @Option(name: .customLong("exporters.key-file"), help: "Key of --exporters.cert-file.")
    public var exporterKeyFile: String?

    /// With ``exporterPasswordFile``.
    @Option(name: .customLong("exporters.username"), help: "Basic-auth user for the exporters.")
    public var exporterUsername: String?

    /// A path, read at each scrape (a rotated Secret is picked up).
    @Option(name: .customLong("exporters.password-file"), help: "File holding the basic-auth password (re-read each scrape).")
    public var exporterPasswordFile: String?

    /// A path, read at each scrape.
    @Option(name: .customLong("exporters.bearer-token-file"), help: "File holding a bearer token for the exporters.")
    public var exporterTokenFile: String?

    /// A duration, at least 50 ms.
    @Option(name: .customLong("exporters.timeout"), help: "Scrape timeout (e.g. 2s).")
    public var exporterTimeout = "2s"

    /// Positive.
    @Option(name: .customLong("exporters.concurrency"), help: "Scrapes in flight at once.")
    public var exporterConcurrency = 64

    /// Required with `--source=prometheus`; ignored otherwise.
    @Option(name: .customLong("prometheus.url"), help: "Prometheus (or Thanos/Mimir) base URL for --source=prometheus.")
    public var prometheusURL: String?

    /// Matchers as PromQL writes them inside `{}`, added to every query; empty adds none.
    @Option(name: .customLong("prometheus.series-selector"), help: "Matchers added to every Prometheus query, e.g. job=\"accel-exporter\".")
    public var prometheusSelector = ""

    /// A path; nil: the system's trust store.
    @Option(name: .customLong("prometheus.ca-file"), help: "CA bundle for an HTTPS Prometheus.")
    public var prometheusCAFile: String?

    /// A path, read at each query.
    @Option(name: .customLong("prometheus.bearer-token-file"), help: "File holding a bearer token for Prometheus.")
    public var prometheusTokenFile: String?

    /// A duration, at least 100 ms; nil: the source's default.
    @Option(name: .customLong("metric-resolution"), help: "How often values are refreshed (default: 1s from exporters, 5s from Prometheus).")
    public var metricResolution: String?

    /// A duration, at least 100 ms; nil: the source's default.
    @Option(name: .customLong("metrics-max-age"), help: "Values older than this are not served (default: 5 × resolution and at least 10s from exporters; 2m from Prometheus).")
    public var metricsMaxAge: String?

    /// A path; a file that does not load at start fails it, a later bad version is refused and the previous one kept.
    @Option(name: .customLong("metrics-config"), help: "YAML file adding metrics (reloaded on change and on SIGHUP).")
    public var metricsConfig: String?

    /// Off: the external group is left out of discovery and its paths answer 404.
    @Flag(name: .customLong("external-metrics"), inversion: .prefixedNo, help: "Serve external.metrics.k8s.io (turn off where KEDA owns it).")
    public var externalMetrics = true

    /// Checked at the start of ``run()``.
    @Option(name: .customLong("log.level"), help: "debug, info, warn or error.")
    public var logLevel = "info"

    /// `logfmt` or `json`, checked at the start of ``run()``.
    @Option(name: .customLong("log.format"), help: "logfmt or json.")
    public var logFormat = "logfmt"
}
