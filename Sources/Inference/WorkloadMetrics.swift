public import Exposition
import MetricSchema

/// A workload's own metrics for autoscaling (KAR-0057): the families a pod names in its
/// `accelmetrics.io/metrics` annotation, taken from its scrape and re-exported under the same names with the pod's
/// `namespace` and `pod`, so that the adapter serves them as pods custom metrics, from the exporters or from a
/// Prometheus that scraped the pod itself.
///
/// A pod is an outside peer: it names at most ``Limits/families`` families, each of at most
/// ``Limits/seriesPerFamily`` series of gauges or counters, with label values of bounded length and no name of the
/// exporter's own. A family over a bound is dropped whole with its reason; nothing else is.
public enum WorkloadMetrics {
    /// Comma-separated family names.
    public static let annotation = "accelmetrics.io/metrics"
    /// The port and path to scrape, when not the inference or `prometheus.io` ones.
    public static let portAnnotation = "accelmetrics.io/port"
    /// For a pod scraped only for its own families: over `inference.accelmetrics.io/path` and `prometheus.io/path`.
    public static let pathAnnotation = "accelmetrics.io/path"

    /// The bounds on one pod's own families (`--workload-metrics.*` flags set some); past one, a family is dropped
    /// whole.
    public struct Limits: Sendable, Equatable {
        /// Families past this many in the annotation's order are dropped (`too_many_families`).
        public var families: Int
        /// More series than this drop the family (`too_many_series`).
        public var seriesPerFamily: Int
        /// In UTF-8 bytes; a longer label value drops the family (`label_value_too_long`).
        public var labelValueLength: Int
        /// Response size for a pod scraped only for its own metrics (a model server keeps the inference bound).
        public var bytes: Int

        /// Nothing is checked here; the flags pass their values.
        public init(families: Int = 10, seriesPerFamily: Int = 100, labelValueLength: Int = 256, bytes: Int = 1 << 20) {
            self.families = families
            self.seriesPerFamily = seriesPerFamily
            self.labelValueLength = labelValueLength
            self.bytes = bytes
        }
    }

    /// Why a named family is not exported; the `reason` label of `accel_exporter_workload_families_dropped`.
    public enum DropReason: String, Sendable, CaseIterable, Comparable {
        case tooManyFamilies = "too_many_families"
        case reservedName = "reserved_name"
        case notFound = "not_found"
        case unsupportedType = "unsupported_type"
        case tooManySeries = "too_many_series"
        case tooManyLabels = "too_many_labels"
        case labelValueTooLong = "label_value_too_long"

        /// By raw value: the order the dropped-families series are written in.
        public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
    }

    /// What ``extract(_:names:namespace:pod:limits:)`` keeps, in the annotation's order, and what it drops.
    public struct Result: Sendable, Equatable {
        /// Relabelled with the pod's `namespace` and `pod`; counters stay counters, untyped families become gauges.
        public var families: [MetricFamily] = []
        /// Family name → why it was dropped.
        public var dropped: [String: DropReason] = [:]
    }

    /// The annotation's names: trimmed, empty entries skipped, duplicates once, in order. A name that is not a
    /// metric name is an error naming it.
    public static func parseNames(_ text: String) throws(WorkloadMetricsError) -> [String] {
        var out: [String] = []
        for part in text.split(separator: ",") {
            let name = String(part.filter { $0 != " " })
            guard !name.isEmpty else { continue }
            guard CustomMetricNames.isMetricName(name) else { throw WorkloadMetricsError(message: "\"\(name)\" is not a metric name") }
            if !out.contains(name) { out.append(name) }
        }
        return out
    }

    /// The named families of one scrape, relabelled for the pod.
    public static func extract(_ scraped: [MetricFamily], names: [String], namespace: String, pod: String, limits: Limits) -> Result {
        var result = Result()
        var byName: [String: MetricFamily] = [:]
        for family in scraped where byName[family.name] == nil { byName[family.name] = family }
        for (index, name) in names.enumerated() {
            // The parser names counters without `_total`; a pod may name either spelling.
            let base = name.hasSuffix("_total") && byName[name] == nil ? String(name.dropLast("_total".count)) : name
            if index >= limits.families {
                result.dropped[name] = .tooManyFamilies
            } else if Families.named(name) != nil || Families.named(base) != nil || reservedPrefixes.contains(where: name.hasPrefix) {
                result.dropped[name] = .reservedName
            } else if let family = byName[base] {
                switch relabel(family, namespace: namespace, pod: pod, limits: limits) {
                case .success(let family): result.families.append(family)
                case .failure(let reason): result.dropped[name] = reason.reason
                }
            } else {
                result.dropped[name] = .notFound
            }
        }
        return result
    }

    /// The exporter's own namespaces: a pod cannot pose as a device, a model server or the exporter.
    static let reservedPrefixes = ["accelerator_", "inference_", "accel_exporter_", "hwmon_", "process_"]

    struct Refusal: Error { var reason: DropReason }

    static func relabel(_ family: MetricFamily, namespace: String, pod: String, limits: Limits) -> Swift.Result<MetricFamily, Refusal> {
        guard family.kind == .gauge || family.kind == .counter || family.kind == .unknown else {
            return .failure(Refusal(reason: .unsupportedType))
        }
        let samples = family.samples.filter { $0.suffix.isEmpty || $0.suffix == "_total" }
        guard samples.count <= limits.seriesPerFamily else { return .failure(Refusal(reason: .tooManySeries)) }
        var out = MetricFamily(name: family.name, help: family.help, kind: family.kind == .counter ? .counter : .gauge, unit: family.unit)
        for sample in samples {
            // The pod's own `namespace`/`pod` labels never override where it runs.
            var labels = [Label(SchemaLabel.namespace, namespace), Label(SchemaLabel.pod, pod)]
            for label in sample.labels where label.name != SchemaLabel.namespace && label.name != SchemaLabel.pod {
                guard label.value.utf8.count <= limits.labelValueLength else { return .failure(Refusal(reason: .labelValueTooLong)) }
                labels.append(label)
            }
            guard labels.count <= SchemaLabel.budget else { return .failure(Refusal(reason: .tooManyLabels)) }
            out.samples.append(Sample(suffix: sample.suffix, labels: labels, value: sample.value))
        }
        return .success(out)
    }
}

/// An `accelmetrics.io/metrics` annotation (or `;metrics=` option) naming something that is not a metric name.
public struct WorkloadMetricsError: Error, Sendable, CustomStringConvertible {
    /// Quotes the name at fault.
    public var message: String
    /// The ``message``.
    public var description: String { message }
}
