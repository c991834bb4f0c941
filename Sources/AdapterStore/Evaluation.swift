import CustomMetricsAPI
import Exposition

/// Gathers the series of some objects for one metric and reduces them to a value: per accelerator first, then
/// across accelerators. A device series reached through several pods (a shared GPU) counts once.
struct Evaluator {
    let definition: MetricDefinition
    /// Extra condition on each series' labels (metricLabelSelector; for external metrics, the workload selector
    /// applied to the series' labels merged with its pod's labels).
    let accept: (_ series: [String: String], _ pod: PodKey?) -> Bool

    private var numerator: [String: [Double]] = [:]
    private var denominator: [String: [Double]] = [:]
    private var seenDevices: Set<String> = []
    /// For quantiles: upper bound → summed bucket rate over every selected series.
    private var bucketSums: [Double: Double] = [:]
    private(set) var oldestSample: Double = .infinity

    init(definition: MetricDefinition, accept: @escaping (_ series: [String: String], _ pod: PodKey?) -> Bool) {
        self.definition = definition
        self.accept = accept
    }

    /// Adds one pod's series (from the target that reported it).
    mutating func add(pod: PodKey, from data: TargetData) {
        var used = false
        switch definition.expression {
        case .quantile(_, let spec):
            for point in data.podSeries[pod]?[spec.family] ?? [] where spec.selector.matches(point.labels) {
                guard accept(point.labels, pod), let bound = Self.upperBound(point.labels["le"]) else { continue }
                bucketSums[bound, default: 0] += point.value
                used = true
            }
        case .series(let spec):
            used = collect(spec, pod: pod, data: data, into: .numerator)
        case .ratio(let top, let bottom):
            used = collect(top, pod: pod, data: data, into: .numerator)
            if used { _ = collect(bottom, pod: pod, data: data, into: .denominator) }
        }
        if used { oldestSample = min(oldestSample, data.sampleTime) }
    }

    /// Adds a node's device series (partitions excluded: their parent GPU already counts them).
    mutating func add(node data: TargetData) {
        var used = false
        switch definition.expression {
        case .quantile:
            break  // served for pods, namespaces and workloads only
        case .series(let spec):
            used = collectNode(spec, data: data, into: .numerator)
        case .ratio(let top, let bottom):
            used = collectNode(top, data: data, into: .numerator)
            if used { _ = collectNode(bottom, data: data, into: .denominator) }
        }
        if used { oldestSample = min(oldestSample, data.sampleTime) }
    }

    /// The value, scaled; nil when no series contributed (or a ratio's denominator is zero).
    func value(across aggregation: Aggregation) -> Double? {
        let perAccelerator = definition.perAccelerator
        switch definition.expression {
        case .quantile(let q, _):
            return HistogramQuantile.quantile(q, buckets: bucketSums).map { $0 * definition.scale }
        case .series:
            let values = numerator.values.compactMap { perAccelerator.reduce($0) }
            return aggregation.reduce(values).map { $0 * definition.scale }
        case .ratio:
            // Used over total of the same accelerators: sums on both sides whatever the aggregation.
            let top = Aggregation.sum.reduce(numerator.values.compactMap { perAccelerator.reduce($0) })
            let bottom = Aggregation.sum.reduce(denominator.values.compactMap { perAccelerator.reduce($0) })
            guard let top, let bottom, bottom > 0 else { return nil }
            return top / bottom * definition.scale
        }
    }

    enum Side { case numerator, denominator }

    /// `le` label values: decimal numbers or `+Inf`.
    static func upperBound(_ text: String?) -> Double? {
        guard let text else { return nil }
        if text == "+Inf" || text == "Inf" { return .infinity }
        guard let value = Double(text), !value.isNaN else { return nil }
        return value
    }

    /// Pod series group by accelerator (a GPU's share split over containers, or over a workload's pods, adds
    /// up); pod series without an accelerator (model servers' `inference_*`) group by pod.
    static func groupKey(_ target: String, _ point: SeriesPoint, _ pod: PodKey) -> String {
        let accelerator = point.accelerator
        return accelerator.isEmpty
            ? "\(target)\u{0}pod\u{0}\(pod.namespace)/\(pod.name)" : "\(target)\u{0}\(accelerator)"
    }

    private subscript(side: Side) -> [String: [Double]] {
        get { side == .numerator ? numerator : denominator }
        _modify {
            // In place: appending must not copy the dictionary.
            switch side {
            case .numerator: yield &numerator
            case .denominator: yield &denominator
            }
        }
    }

    private mutating func collect(
        _ spec: SeriesSpec, pod: PodKey, data: TargetData, into side: Side
    ) -> Bool {
        var used = false
        if spec.isPodSeries {
            for point in data.podSeries[pod]?[spec.family] ?? [] where spec.selector.matches(point.labels) {
                guard accept(point.labels, pod) else { continue }
                self[side][Self.groupKey(data.target, point, pod), default: []].append(point.value)
                used = true
            }
        } else {
            for accelerator in data.podAccelerators[pod] ?? [] {
                var values: [Double] = []
                for point in data.deviceSeries[accelerator]?[spec.family] ?? [] where spec.selector.matches(point.labels) {
                    if accept(point.labels, pod) { values.append(point.value) }
                }
                guard !values.isEmpty else { continue }
                used = true
                let device = "\(data.target)\u{0}\(accelerator)"
                if seenDevices.insert("\(device)\u{0}\(spec.family)").inserted {
                    self[side][device, default: []].append(contentsOf: values)
                }
            }
        }
        return used
    }

    private mutating func collectNode(_ spec: SeriesSpec, data: TargetData, into side: Side) -> Bool {
        var used = false
        if spec.isPodSeries {
            for (pod, families) in data.podSeries {
                for point in families[spec.family] ?? [] where spec.selector.matches(point.labels) {
                    guard accept(point.labels, pod) else { continue }
                    self[side][Self.groupKey(data.target, point, pod), default: []].append(point.value)
                    used = true
                }
            }
        } else {
            for (accelerator, families) in data.deviceSeries where !data.partitions.contains(accelerator) {
                for point in families[spec.family] ?? [] where spec.selector.matches(point.labels) {
                    guard accept(point.labels, nil) else { continue }
                    self[side]["\(data.target)\u{0}\(accelerator)", default: []].append(point.value)
                    used = true
                }
            }
        }
        return used
    }
}
