public import CustomMetricsAPI
import MetricSchema

private typealias I = Families.Inference

/// How the series that belong to one object (a pod, a node, a namespace, a workload) become one value.
public enum Aggregation: String, Sendable, Hashable, CaseIterable, Codable {
    case avg, max, sum

    /// Nil for no input: an object with no series has no value (never 0).
    func reduce(_ values: some Sequence<Double>) -> Double? {
        var count = 0
        var total = 0.0
        var largest = -Double.infinity
        for value in values where value.isFinite {
            count += 1
            total += value
            largest = Swift.max(largest, value)
        }
        guard count > 0 else { return nil }
        switch self {
        case .avg: return total / Double(count)
        case .sum: return total
        case .max: return largest
        }
    }
}

/// Which exporter series feed a metric: a family name plus an optional selector on the series' own labels
/// (`accelerator_memory_used_bytes{memory="vram"}`).
public struct SeriesSpec: Sendable, Hashable {
    /// The exporter family as `/metrics` names it, or `<counter>:rate` for the counter's per-second rate.
    public var family: String
    /// Matched against the series' own labels; ``LabelSelector/everything`` keeps every series.
    public var selector: LabelSelector

    /// Unchecked: a family nothing exports yields no value, never an error.
    public init(family: String, selector: LabelSelector = .everything) {
        self.family = family
        self.selector = selector
    }

    /// True for families whose series name a pod (`namespace` and `pod` labels): their value is the pod's own.
    /// Other families are device series, which reach a pod through the accelerators it holds.
    /// A family the exporter does not define is a workload's own metric (KAR-0057: the exporter re-exports the
    /// families a pod names in `accelmetrics.io/metrics`, and Prometheus scrapes them with `namespace` and `pod`):
    /// a pod series too.
    public var isPodSeries: Bool {
        var name = family
        if name.hasSuffix(RateTracker.suffix) { name.removeLast(RateTracker.suffix.count) }
        guard let definition = Families.named(name) else { return true }
        return definition.group == .pod || definition.group == .inference
    }
}

/// One metric the adapter serves.
///
/// Values are computed in two steps, so that a pod with two containers on one shared GPU and a GPU with several
/// temperature sensors both come out right: first the series of one accelerator are combined
/// (``perAccelerator``), then the accelerators of the object (``across``). A pod's device series are those of
/// the accelerators allocated to it; a node's are all its exporter's series.
public struct MetricDefinition: Sendable, Hashable {
    /// What a value is computed from.
    public enum Expression: Sendable, Hashable {
        /// One family, aggregated.
        case series(SeriesSpec)
        /// numerator / denominator (each summed over the object's accelerators) — memory used / total.
        case ratio(numerator: SeriesSpec, denominator: SeriesSpec)
        /// The q-quantile of a histogram whose `_bucket` series (as per-second rates, `<family>_bucket:rate`)
        /// are first summed by `le` over every selected series: `histogram_quantile` over merged buckets.
        case quantile(Double, buckets: SeriesSpec)
    }

    /// The adapter's metric name (`gpu_utilization`).
    public var name: String
    /// What pods and nodes read.
    public var expression: Expression
    /// Combines the series of one accelerator (several containers' shares, several sensors).
    public var perAccelerator: Aggregation
    /// Combines the object's accelerators: a pod's, a node's, or the pods of a workload (external metrics).
    public var across: Aggregation
    /// Combines the pods of a namespace for the Namespace object: totals, not averages.
    public var namespaceTotal: Aggregation
    /// Multiplies the value (ratio 0..1 → percent: 100).
    public var scale: Double
    /// What workloads (external) and namespaces read instead of ``expression``, where the two differ: merged
    /// histogram buckets where pods read their exporter's own percentile.
    public var workloadExpression: Expression?
    /// Which objects the metric is served for.
    public var resources: Set<ServedResource>
    /// Human-readable unit for docs/adapter.md and the discovery of operators (`percent`, `bytes`).
    public var unit: String

    /// Memberwise; `--metrics-config` entries become these through ``MetricsConfig``.
    public init(
        name: String, expression: Expression, perAccelerator: Aggregation, across: Aggregation,
        namespaceTotal: Aggregation, scale: Double = 1, resources: Set<ServedResource>, unit: String,
        workloadExpression: Expression? = nil
    ) {
        self.name = name
        self.expression = expression
        self.workloadExpression = workloadExpression
        self.perAccelerator = perAccelerator
        self.across = across
        self.namespaceTotal = namespaceTotal
        self.scale = scale
        self.resources = resources
        self.unit = unit
    }

    /// Every family the expressions read.
    public var families: [String] {
        func of(_ expression: Expression) -> [String] {
            switch expression {
            case .series(let spec): [spec.family]
            case .ratio(let numerator, let denominator): [numerator.family, denominator.family]
            case .quantile(_, let buckets): [buckets.family]
            }
        }
        return of(expression) + (workloadExpression.map(of) ?? [])
    }

    /// The definition as workloads and namespaces evaluate it.
    var forWorkloads: MetricDefinition {
        guard let workloadExpression else { return self }
        var copy = self
        copy.expression = workloadExpression
        return copy
    }
}

/// The objects a custom metric can describe, and external (per-workload) serving.
public enum ServedResource: String, Sendable, Hashable, CaseIterable, Codable {
    case pods, nodes, namespaces, external

    var groupResource: GroupResource? {
        switch self {
        case .pods: .pods
        case .nodes: .nodes
        case .namespaces: .namespaces
        case .external: nil
        }
    }
}

extension MetricDefinition {
    /// DESIGN.md's adapter table: what is served with no configuration at all.
    public static let builtIn: [MetricDefinition] = {
        let everywhere: Set<ServedResource> = [.pods, .nodes, .namespaces, .external]
        func selector(_ text: String) -> LabelSelector {
            // The literals below are valid selectors; a failure here is a programming error.
            do { return try LabelSelector(parsing: text) } catch { fatalError("built-in selector \(text): \(error)") }
        }
        let vram = selector("memory=vram")
        return [
            // Pods: the pod's own share; nodes: the device figure (the pod-share family has no node-wide meaning).
            MetricDefinition(
                name: "gpu_utilization",
                expression: .series(SeriesSpec(family: Families.Pod.utilization.name)),
                perAccelerator: .sum, across: .avg, namespaceTotal: .sum, scale: 100,
                resources: everywhere, unit: "percent"),
            MetricDefinition(
                name: "gpu_memory_used_bytes",
                expression: .series(SeriesSpec(family: Families.Pod.memoryUsed.name)),
                perAccelerator: .sum, across: .sum, namespaceTotal: .sum,
                resources: everywhere, unit: "bytes"),
            MetricDefinition(
                name: "gpu_memory_utilization",
                expression: .ratio(
                    numerator: SeriesSpec(family: Families.Pod.memoryUsed.name),
                    denominator: SeriesSpec(family: Families.Device.memoryTotal.name, selector: vram)),
                perAccelerator: .sum, across: .sum, namespaceTotal: .sum, scale: 100,
                resources: everywhere, unit: "percent"),
            MetricDefinition(
                name: "gpu_temperature_celsius",
                expression: .series(SeriesSpec(family: Families.Device.temperature.name)),
                perAccelerator: .max, across: .max, namespaceTotal: .max,
                resources: everywhere, unit: "celsius"),
            MetricDefinition(
                name: "gpu_power_watts",
                expression: .series(SeriesSpec(family: Families.Device.power.name)),
                perAccelerator: .sum, across: .sum, namespaceTotal: .sum,
                resources: everywhere, unit: "watts"),
            // Real work rather than busy time (NVIDIA GPM, Hopper and later): the share of SMs busy and of tensor
            // pipe activity, averaged over the pod's or node's accelerators. GPM has no per-process split, so a
            // pod reads its accelerators' own figures (pods sharing a GPU read the same number), as for power.
            MetricDefinition(
                name: "gpu_sm_active",
                expression: .series(SeriesSpec(family: Families.Device.smActive.name)),
                perAccelerator: .max, across: .avg, namespaceTotal: .avg, scale: 100,
                resources: [.pods, .nodes], unit: "percent"),
            MetricDefinition(
                name: "gpu_tensor_active",
                expression: .series(SeriesSpec(family: Families.Device.pipeActive.name, selector: selector("pipe=tensor"))),
                perAccelerator: .max, across: .avg, namespaceTotal: .avg, scale: 100,
                resources: [.pods, .nodes], unit: "percent"),
        ] + inference
    }()

    /// DESIGN.md's inference rows, from the exporter's normalized `inference_*` families (one series per served
    /// model in a pod). Pods: the pod's own figure; namespaces and workloads (external): totals for counts and
    /// rates, averages for cache pressure.
    static let inference: [MetricDefinition] = {
        let counts: Set<ServedResource> = [.pods, .namespaces, .external]
        func total(_ name: String, _ family: String, unit: String) -> MetricDefinition {
            MetricDefinition(
                name: name, expression: .series(SeriesSpec(family: family)), perAccelerator: .sum, across: .sum,
                namespaceTotal: .sum, resources: counts, unit: unit)
        }
        // Pods: the exporter's windowed percentile, the slowest model in the pod. Workloads and namespaces: the
        // percentile of the selected pods' merged bucket rates, never an average of per-pod percentiles.
        func percentile(_ name: String, _ histogram: FamilyDefinition, _ quantile: String) -> MetricDefinition {
            let p = I.percentiles.first { $0.histogram == histogram && $0.name == quantile }!
            return MetricDefinition(
                name: name, expression: .series(SeriesSpec(family: p.family.name)), perAccelerator: .max, across: .max,
                namespaceTotal: .max, resources: counts, unit: "seconds",
                workloadExpression: .quantile(p.quantile, buckets: SeriesSpec(family: histogram.sampleNames[0] + RateTracker.suffix)))
        }
        return [
            total("inference_queue_depth", I.requestsWaiting.name, unit: "requests"),
            // Served under the exporter family's own name.
            total(I.requestsRunning.name, I.requestsRunning.name, unit: "requests"),
            total("inference_requests_per_second", I.requests.queryName + RateTracker.suffix, unit: "requests/s"),
            MetricDefinition(
                name: "inference_kv_cache_utilization",
                expression: .series(SeriesSpec(family: I.kvCacheUtilization.name)),
                perAccelerator: .max, across: .avg, namespaceTotal: .avg, scale: 100, resources: counts,
                unit: "percent"),
            percentile("inference_latency_p50_seconds", I.requestDuration, "p50"),
            percentile("inference_latency_p95_seconds", I.requestDuration, "p95"),
            percentile("inference_latency_p99_seconds", I.requestDuration, "p99"),
            percentile("inference_ttft_p95_seconds", I.timeToFirstToken, "p95"),
            percentile("inference_tpot_p95_seconds", I.timePerOutputToken, "p95"),
        ]
    }()

    /// For nodes, the pod-share families are replaced by their device counterparts: a node's utilization is its
    /// devices' utilization, whoever uses them.
    func forNodes() -> MetricDefinition {
        var copy = self
        func deviceSpec(_ spec: SeriesSpec) -> SeriesSpec {
            switch spec.family {
            case Families.Pod.utilization.name:
                SeriesSpec(family: Families.Device.utilization.name, selector: spec.selector)
            case Families.Pod.memoryUsed.name:
                SeriesSpec(family: Families.Device.memoryUsed.name, selector: Self.vramOnly(spec.selector))
            default:
                spec
            }
        }
        switch expression {
        case .series(let spec):
            copy.expression = .series(deviceSpec(spec))
        case .ratio(let numerator, let denominator):
            copy.expression = .ratio(numerator: deviceSpec(numerator), denominator: deviceSpec(denominator))
        case .quantile:
            break
        }
        return copy
    }

    private static func vramOnly(_ selector: LabelSelector) -> LabelSelector {
        guard let requirement = try? LabelSelector.Requirement(key: "memory", operator: .equals, values: ["vram"])
        else { return selector }
        return LabelSelector(requirements: selector.requirements + [requirement])
    }
}
