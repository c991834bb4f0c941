import ScrapeClient

/// The model-server pods on this node, from the node's pod watch: what the exporter scrapes for `inference_*`.
///
/// A pod is a target when it is Running with an IP and either
/// - carries the project's annotation `inference.accelmetrics.io/scrape: "true"` (with optional
///   `inference.accelmetrics.io/port` and `inference.accelmetrics.io/path`): reported from the first scrape on; or
/// - carries the common `prometheus.io/scrape: "true"` (with `prometheus.io/port`, `prometheus.io/path`): a probe,
///   reported only once it serves a known engine's metrics (`InferenceTarget.probe`).
/// The port is the annotation's, else the pod's first declared container port; a pod with neither, or with
/// `prometheus.io/scheme: https` (the exporter's scraper speaks plain HTTP), is skipped. The project's annotation
/// `inference.accelmetrics.io/scrape: "false"` opts a pod out of the generic one.
///
/// A server that follows the Gateway API Inference Extension's model-server protocol under names of its own says
/// which gauges hold the protocol's values with `inference.accelmetrics.io/queued-metric`, `…/running-metric`,
/// `…/kv-cache-metric`, and optionally `…/kv-cache-scale` (0.01 for a gauge in percent) and `…/model-label`
/// (the label naming the served model, default `model_name`). Annotations that cannot be used leave the pod a
/// target reported down with the reason, never scraped with a guess.
///
/// A pod that names its own families for autoscaling in `accelmetrics.io/metrics` ("app_queue_depth,app_inflight")
/// is scraped for them every tick on the same loop (port `accelmetrics.io/port`, else as above; path
/// `accelmetrics.io/path`, else as above), model server or not.
public enum InferenceDiscovery {
    /// `"true"` makes a pod a target; `"false"` opts it out of `prometheus.io/scrape`.
    public static let scrapeAnnotation = "inference.accelmetrics.io/scrape"
    /// 1–65535; over `prometheus.io/port` and the first container port. Any other value skips the pod.
    public static let portAnnotation = "inference.accelmetrics.io/port"
    /// Over `prometheus.io/path`; `/metrics` when neither is given, `/` added in front when missing.
    public static let pathAnnotation = "inference.accelmetrics.io/path"

    /// What discovery reads of a pod (the node's pod watch fills it).
    public struct Pod: Sendable, Equatable {
        /// The pod's namespace: the target's `namespace` label.
        public var namespace: String
        /// The pod's name: the target's `pod` label.
        public var name: String
        /// `status.phase`; only `Running` pods are targets.
        public var phase: String?
        /// `status.podIP`, the host scraped; nil or empty: not yet a target.
        public var podIP: String?
        /// All of the pod's annotations; discovery reads the ones named in ``InferenceDiscovery``.
        public var annotations: [String: String]
        /// The declared container ports, in spec order.
        public var ports: [Int]

        /// Memberwise; the exporter fills it from its node pod watch's entries.
        public init(namespace: String, name: String, phase: String?, podIP: String?, annotations: [String: String], ports: [Int]) {
            self.namespace = namespace
            self.name = name
            self.phase = phase
            self.podIP = podIP
            self.annotations = annotations
            self.ports = ports
        }
    }

    /// The targets among `pods`, in their order; the exporter calls it every tick with the pod watch's entries and adds
    /// them to the static `--inference.targets`. Pods that do not qualify are skipped without a word.
    public static func targets(_ pods: [Pod]) -> [InferenceTarget] {
        pods.compactMap(target)
    }

    static func target(_ pod: Pod) -> InferenceTarget? {
        guard pod.phase == "Running", let ip = pod.podIP, !ip.isEmpty else { return nil }
        let a = pod.annotations
        let own = a[scrapeAnnotation]?.lowercased()
        var probe: Bool
        var portText: String?
        var pathText: String?
        var servesInference = true
        var workloadProblem: String?
        var workload: [String] = []
        if let names = a[WorkloadMetrics.annotation] {
            do {
                workload = try WorkloadMetrics.parseNames(names)
            } catch {
                workloadProblem = "annotation \(WorkloadMetrics.annotation): \(error)"
            }
        }
        let isWorkload = !workload.isEmpty || workloadProblem != nil
        if isWorkload, own != "true", a["prometheus.io/scrape"]?.lowercased() != "true" || own == "false" {
            // Only its own families: no engine looked for.
            probe = false
            servesInference = false
            portText = a[WorkloadMetrics.portAnnotation] ?? a[portAnnotation] ?? a["prometheus.io/port"]
            pathText = a[WorkloadMetrics.pathAnnotation] ?? a[pathAnnotation] ?? a["prometheus.io/path"]
        } else if own == "true" {
            probe = false
            portText = a[portAnnotation] ?? a["prometheus.io/port"]
            pathText = a[pathAnnotation] ?? a["prometheus.io/path"]
        } else if own == nil, a["prometheus.io/scrape"]?.lowercased() == "true" {
            guard (a["prometheus.io/scheme"] ?? "http").lowercased() == "http" else { return nil }
            probe = true
            portText = a["prometheus.io/port"]
            pathText = a["prometheus.io/path"]
        } else {
            return nil
        }
        let port: Int
        if let portText {
            guard let p = Int(portText.filter { !$0.isWhitespace }), (1...65535).contains(p) else { return nil }
            port = p
        } else {
            guard let first = pod.ports.first else { return nil }
            port = first
        }
        var path = pathText ?? "/metrics"
        if path.isEmpty { path = "/metrics" }
        if !path.hasPrefix("/") { path = "/" + path }
        var target = InferenceTarget(
            namespace: pod.namespace, pod: pod.name, url: ScrapeURL(host: ip, port: port, target: path), probe: probe,
            workloadFamilies: workload, servesInference: servesInference)
        if let workloadProblem, !servesInference { target.configurationProblem = workloadProblem }
        // IPv6 pod IPs go in brackets inside the URL; ScrapeURL keeps the bare host.
        let options = CustomMetricNames.keys.compactMap { key in a[annotationPrefix + key].map { (key: key, value: $0) } }
        do {
            target.metricNames = try CustomMetricNames.parse(options)
        } catch {
            target.configurationProblem = "annotation \(annotationPrefix)\(error)"
        }
        return target
    }

    /// Put in front of ``CustomMetricNames/keys`` to name the custom-metric annotations.
    public static let annotationPrefix = "inference.accelmetrics.io/"
}
