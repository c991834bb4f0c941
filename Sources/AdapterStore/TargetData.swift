public import Exposition
import MetricSchema

/// A pod, by namespace and name.
public struct PodKey: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var namespace: String
    public var name: String

    /// Memberwise.
    public init(namespace: String, name: String) {
        self.namespace = namespace
        self.name = name
    }

    /// By namespace, then name.
    public static func < (lhs: PodKey, rhs: PodKey) -> Bool {
        (lhs.namespace, lhs.name) < (rhs.namespace, rhs.name)
    }

    /// `namespace/name`.
    public var description: String { "\(namespace)/\(name)" }
}

/// One series as the adapter keeps it: its labels and its value.
public struct SeriesPoint: Sendable, Hashable {
    /// The series' labels as the exporter wrote them.
    public var labels: [String: String]
    /// As exposed; values that are not finite are skipped when values are combined.
    public var value: Double

    /// Memberwise.
    public init(labels: [String: String], value: Double) {
        self.labels = labels
        self.value = value
    }

    var accelerator: String { labels["accelerator"] ?? "" }
}

/// What one scrape of one exporter left: the series the served metrics read, indexed by pod and by accelerator.
/// Immutable once built, so queries read it without holding the store's lock.
public struct TargetData: Sendable {
    /// The exporter's address as configured or discovered (`10.0.0.5:9445`).
    public var target: String
    /// The Kubernetes node the exporter runs on: `accelerator_info{node}`, else the discovery's node name, else
    /// the target address.
    public var node: String
    /// Unix seconds of the sample the values come from (`accel_exporter_last_sample_timestamp_seconds`), else of
    /// the scrape: the timestamp served. Replaced by `freshAsOf` when the store ages data by arrival and the
    /// exporter's clock is further off than the staleness bound.
    public var sampleTime: Double
    /// When the data counts as taken, for staleness, by the store's own clock: the sample time for the Prometheus
    /// source; for exporters, when the adapter first saw this sample (an exporter's clock never decides how long
    /// its data stays fresh).
    public var freshAsOf: Double
    /// The sample time the exporter reported, as it reported it: a sample seen again is no fresher.
    var reportedSampleTime: Double
    /// Device series: accelerator → family → series. Series without an `accelerator` label are under "".
    public var deviceSeries: [String: [String: [SeriesPoint]]]
    /// Pod series (`accelerator_pod_*`, `inference_*` and any configured family with `namespace` and `pod`).
    public var podSeries: [PodKey: [String: [SeriesPoint]]]
    /// The accelerators allocated to each pod (`accelerator_allocated`, plus those its pod series name).
    public var podAccelerators: [PodKey: Set<String>]
    /// MIG devices and other partitions (`accelerator_info{parent}`): their parent already counts them on nodes.
    public var partitions: Set<String>

    /// Memberwise; `freshAsOf` and the reported sample time start at `sampleTime`.
    public init(
        target: String, node: String, sampleTime: Double,
        deviceSeries: [String: [String: [SeriesPoint]]] = [:], podSeries: [PodKey: [String: [SeriesPoint]]] = [:],
        podAccelerators: [PodKey: Set<String>] = [:], partitions: Set<String> = []
    ) {
        self.target = target
        self.node = node
        self.sampleTime = sampleTime
        self.freshAsOf = sampleTime
        self.reportedSampleTime = sampleTime
        self.deviceSeries = deviceSeries
        self.podSeries = podSeries
        self.podAccelerators = podAccelerators
        self.partitions = partitions
    }

    /// The exporter's self-metric carrying the sample's wall-clock time.
    public static let sampleTimestampFamily = Families.Exporter.lastSampleTimestamp.name
    /// `accelerator_info`: the node name and the partitions' parents are read from it.
    package static let infoSeries = Families.Device.info.queryName

    /// Indexes parsed exposition families, keeping only `families` (plus allocation, identity and the sample
    /// time). `scrapeTime` stands in for the sample time when the exporter does not say it; `fallbackNode` for the
    /// node when no `accelerator_info` names one.
    public init(
        target: String, parsed: [MetricFamily], keeping families: Set<String>, scrapeTime: Double,
        fallbackNode: String?
    ) {
        var deviceSeries: [String: [String: [SeriesPoint]]] = [:]
        var podSeries: [PodKey: [String: [SeriesPoint]]] = [:]
        var podAccelerators: [PodKey: Set<String>] = [:]
        var partitions: Set<String> = []
        var node: String?
        var sampleTime: Double?
        for family in parsed {
            // Keyed by series name, as Prometheus knows them: text format names the info family
            // `accelerator_info` (OpenMetrics: `accelerator`), and the parser names counters without `_total`.
            let name: String
            switch family.kind {
            case .info: name = family.name + "_info"
            case .counter where !family.name.hasSuffix("_total"): name = family.name + "_total"
            default: name = family.name
            }
            switch name {
            case Self.sampleTimestampFamily:
                if let value = family.samples.first?.value, value.isFinite, value > 0 { sampleTime = value }
                continue
            case Self.infoSeries:
                for sample in family.samples {
                    let labels = Self.dictionary(sample.labels)
                    if node == nil, let name = labels["node"], !name.isEmpty { node = name }
                    if let parent = labels["parent"], !parent.isEmpty, let id = labels["accelerator"] {
                        partitions.insert(id)
                    }
                }
                continue
            case Families.Pod.allocated.name:
                for sample in family.samples where sample.value > 0 {
                    let labels = Self.dictionary(sample.labels)
                    guard let pod = Self.podKey(labels), let accelerator = labels["accelerator"] else { continue }
                    podAccelerators[pod, default: []].insert(accelerator)
                }
                continue
            default:
                break
            }
            // Histograms: only their `_bucket` series, under the series name (as Prometheus knows it).
            let histogram = family.kind == .histogram
            let keptName = histogram ? name + "_bucket" : name
            guard families.contains(keptName) else { continue }
            for sample in family.samples
            where histogram ? sample.suffix == "_bucket" : (sample.suffix.isEmpty || sample.suffix == "_total") {
                let name = keptName
                let labels = Self.dictionary(sample.labels)
                let point = SeriesPoint(labels: labels, value: sample.value)
                if let pod = Self.podKey(labels) {
                    podSeries[pod, default: [:]][name, default: []].append(point)
                    if let accelerator = labels["accelerator"], !accelerator.isEmpty {
                        podAccelerators[pod, default: []].insert(accelerator)
                    }
                } else {
                    deviceSeries[point.accelerator, default: [:]][name, default: []].append(point)
                }
            }
        }
        self.init(
            target: target, node: node ?? fallbackNode ?? target, sampleTime: sampleTime ?? scrapeTime,
            deviceSeries: deviceSeries, podSeries: podSeries, podAccelerators: podAccelerators,
            partitions: partitions)
    }

    private static func dictionary(_ labels: [Label]) -> [String: String] {
        var out: [String: String] = [:]
        out.reserveCapacity(labels.count)
        for label in labels { out[label.name] = label.value }
        return out
    }

    private static func podKey(_ labels: [String: String]) -> PodKey? {
        guard let namespace = labels["namespace"], let pod = labels["pod"], !namespace.isEmpty, !pod.isEmpty
        else { return nil }
        return PodKey(namespace: namespace, name: pod)
    }
}
