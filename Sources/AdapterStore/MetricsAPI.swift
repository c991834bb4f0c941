public import CustomMetricsAPI
import Synchronization

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Pod labels for `labelSelector`, from the pod watch.
public protocol PodLabelSource: Sendable {
    /// The pod's labels, or nil when the pod is not known (yet).
    func labels(of pod: PodKey) -> [String: String]?
}

/// A fixed table of pod labels, for tests (outside a cluster the adapter has no pod labels at all).
public struct StaticPodLabels: PodLabelSource {
    /// Pod → its labels; a pod absent here is unknown.
    public var table: [PodKey: [String: String]]
    /// Takes the table as it is.
    public init(_ table: [PodKey: [String: String]]) { self.table = table }
    /// The table's entry; nil for a pod not in it.
    public func labels(of pod: PodKey) -> [String: String]? { table[pod] }
}

/// The metrics the adapter serves, swappable as a whole when the configuration file is reloaded.
public final class MetricCatalog: Sendable {
    private let current: Mutex<[String: MetricDefinition]>

    /// Indexed by name: of two definitions with one name, the later wins.
    public init(_ definitions: [MetricDefinition]) {
        current = Mutex(Self.index(definitions))
    }

    /// Swaps the whole catalog at once (a configuration reload); requests in flight keep the definitions they read.
    public func replace(with definitions: [MetricDefinition]) {
        let table = Self.index(definitions)
        current.withLock { $0 = table }
    }

    /// The definition served as `name`; nil: no such metric.
    public subscript(name: String) -> MetricDefinition? { current.withLock { $0[name] } }

    /// Every definition, sorted by name: the discovery order.
    public var all: [MetricDefinition] { current.withLock { Array($0.values) }.sorted { $0.name < $1.name } }

    /// Every family some metric reads, in both its pod and node forms, plus the counters behind `:rate` series.
    public var families: Set<String> {
        var out: Set<String> = []
        for definition in all {
            out.formUnion(definition.families)
            out.formUnion(definition.forNodes().families)
        }
        return out.union(RateTracker.counters(in: out))
    }

    /// The counters whose rates some metric reads.
    public var rateCounters: Set<String> { RateTracker.counters(in: families) }

    private static func index(_ definitions: [MetricDefinition]) -> [String: MetricDefinition] {
        var table: [String: MetricDefinition] = [:]
        for definition in definitions { table[definition.name] = definition }
        return table
    }
}

/// Answers the custom and external metrics API from the store: pure request → document logic, no HTTP.
public struct MetricsAPI: Sendable {
    /// Where the values come from.
    public let store: MetricStore
    /// The metrics served; read anew for each request, so a reload takes effect at once.
    public let catalog: MetricCatalog
    /// The pod watch; nil without an API server, when a non-empty pod `labelSelector` is answered with an error.
    public let podLabels: (any PodLabelSource)?
    /// `windowSeconds` reported for point-in-time gauges: the exporters' sample interval.
    public let gaugeWindowSeconds: Int64

    /// Memberwise.
    public init(
        store: MetricStore, catalog: MetricCatalog, podLabels: (any PodLabelSource)?, gaugeWindowSeconds: Int64 = 1
    ) {
        self.store = store
        self.catalog = catalog
        self.podLabels = podLabels
        self.gaugeWindowSeconds = gaugeWindowSeconds
    }

    // MARK: Discovery

    /// The custom metrics group-version's resource list: every metric for each resource it is served for.
    public func customResources(version: MetricsAPIVersion) -> APIResourceList {
        var infos: [CustomMetricInfo] = []
        for definition in catalog.all {
            for resource in definition.resources {
                guard let groupResource = resource.groupResource else { continue }
                infos.append(
                    CustomMetricInfo(groupResource: groupResource, metric: definition.name, namespaced: resource == .pods))
            }
        }
        do {
            return try APIResourceList.customMetrics(version: version, metrics: infos)
        } catch {
            // Scope is fixed per resource above (pods namespaced, nodes and namespaces not): cannot conflict.
            preconditionFailure("discovery scope conflict: \(error)")
        }
    }

    /// The external metrics group's resource list: every metric served for `external`.
    public func externalResources() -> APIResourceList {
        APIResourceList.externalMetrics(catalog.all.filter { $0.resources.contains(.external) }.map(\.name))
    }

    // MARK: Custom metrics

    /// One custom metrics read. Throws the `Status` to answer with (`metricNotFound` for a metric not served for the
    /// resource).
    public func answer(_ request: CustomMetricRequest) throws(Status) -> MetricValueList {
        guard let definition = catalog[request.metricName],
            let served = Self.served(request.resource), definition.resources.contains(served)
        else {
            if case .named(let name) = request.objects {
                throw Status.metricNotFound(request.metricName, for: request.resource, named: name)
            }
            throw Status.metricNotFound(request.metricName, for: request.resource)
        }
        let metricSelector = request.metricSelector
        let accept: (_ series: [String: String], _ pod: PodKey?) -> Bool = { labels, _ in
            metricSelector.matches(labels)
        }
        let selectorDocument = metricSelector.isEverything ? nil : MetaLabelSelector(metricSelector)
        var items: [CustomMetricValue] = []

        func item(_ object: ObjectReference, _ value: Double, _ time: Double) -> CustomMetricValue? {
            guard let quantity = Quantity(Self.milliRounded(value)) else { return nil }
            return CustomMetricValue(
                describedObject: object, metricName: definition.name, selector: selectorDocument,
                timestamp: Date(timeIntervalSince1970: time.rounded(.down)), windowSeconds: gaugeWindowSeconds,
                value: quantity)
        }

        switch served {
        case .pods:
            guard let namespace = request.namespace else { throw Status.pathNotFound }
            switch request.objects {
            case .named(let name):
                let key = PodKey(namespace: namespace, name: name)
                if let data = store.pod(key) {
                    var evaluator = Evaluator(definition: definition, accept: accept)
                    evaluator.add(pod: key, from: data)
                    if let value = evaluator.value(across: definition.across),
                        let entry = item(.pod(namespace: namespace, name: name), value, evaluator.oldestSample)
                    {
                        items.append(entry)
                    }
                }
                guard !items.isEmpty else {
                    throw Status.metricNotFound(request.metricName, for: request.resource, named: name)
                }
            case .all(let selector):
                let labels = try podLabelMatcher(selector)
                for (key, data) in store.pods(in: namespace).sorted(by: { $0.0 < $1.0 }) where labels(key) {
                    var evaluator = Evaluator(definition: definition, accept: accept)
                    evaluator.add(pod: key, from: data)
                    if let value = evaluator.value(across: definition.across),
                        let entry = item(.pod(namespace: namespace, name: key.name), value, evaluator.oldestSample)
                    {
                        items.append(entry)
                    }
                }
            }
        case .nodes:
            let nodes: [TargetData]
            switch request.objects {
            case .named(let name):
                nodes = store.nodes(named: name)
            case .all(let selector):
                guard selector.isEverything else {
                    throw Status.badRequest("labelSelector on nodes is not supported: node labels are not watched")
                }
                nodes = store.nodes().sorted { $0.node < $1.node }
            }
            let nodeDefinition = definition.forNodes()
            for data in nodes {
                var evaluator = Evaluator(definition: nodeDefinition, accept: accept)
                evaluator.add(node: data)
                if let value = evaluator.value(across: definition.across),
                    let entry = item(.node(name: data.node), value, evaluator.oldestSample)
                {
                    items.append(entry)
                }
            }
            if case .named(let name) = request.objects, items.isEmpty {
                throw Status.metricNotFound(request.metricName, for: request.resource, named: name)
            }
        case .namespaces:
            var namespaces: [String]
            switch request.objects {
            case .named(let name):
                namespaces = [name]
            case .all(let selector):
                guard selector.isEverything else {
                    throw Status.badRequest(
                        "labelSelector on namespaces is not supported: namespace labels are not watched")
                }
                namespaces = Array(Set(store.pods(in: nil).map(\.0.namespace))).sorted()
            }
            for namespace in namespaces {
                var evaluator = Evaluator(definition: definition.forWorkloads, accept: accept)
                for (key, data) in store.pods(in: namespace) { evaluator.add(pod: key, from: data) }
                if let value = evaluator.value(across: definition.namespaceTotal),
                    let entry = item(.namespace(name: namespace), value, evaluator.oldestSample)
                {
                    items.append(entry)
                }
            }
            if case .named(let name) = request.objects, items.isEmpty {
                throw Status.metricNotFound(request.metricName, for: request.resource, named: name)
            }
        case .external:
            throw Status.pathNotFound
        }
        return MetricValueList(version: request.version, items: items)
    }

    // MARK: External metrics

    /// One item per request: the workload aggregate over the series (of pods in the namespace) that the selector
    /// matches, with the selector's equality labels as `metricLabels`. No matching series gives an empty list.
    public func answer(_ request: ExternalMetricRequest) throws(Status) -> ExternalMetricValueList {
        guard let definition = catalog[request.metricName], definition.resources.contains(.external) else {
            throw Status.externalMetricNotFound(request.metricName)
        }
        let selector = request.metricSelector
        let podLabels = self.podLabels
        let accept: (_ series: [String: String], _ pod: PodKey?) -> Bool = { labels, pod in
            guard !selector.isEverything else { return true }
            var merged = pod.flatMap { podLabels?.labels(of: $0) } ?? [:]
            if let pod {
                merged["namespace"] = pod.namespace
                merged["pod"] = pod.name
            }
            merged.merge(labels) { _, series in series }
            return selector.matches(merged)
        }
        var evaluator = Evaluator(definition: definition.forWorkloads, accept: accept)
        for (key, data) in store.pods(in: request.namespace) { evaluator.add(pod: key, from: data) }
        guard let value = evaluator.value(across: definition.across), let quantity = Quantity(Self.milliRounded(value))
        else {
            return ExternalMetricValueList(items: [])
        }
        var metricLabels: [String: String] = [:]
        for requirement in selector.requirements
        where [.equals, .doubleEquals, .in].contains(requirement.operator) && requirement.values.count == 1 {
            metricLabels[requirement.key] = requirement.values[0]
        }
        return ExternalMetricValueList(items: [
            ExternalMetricValue(
                metricName: definition.name, metricLabels: metricLabels,
                timestamp: Date(timeIntervalSince1970: evaluator.oldestSample.rounded(.down)),
                windowSeconds: gaugeWindowSeconds, value: quantity)
        ])
    }

    // MARK: Helpers

    /// The HPA reads `MilliValue()`; finer digits only make the quantity unreadable (`46042129011n`).
    static func milliRounded(_ value: Double) -> Double {
        guard value.isFinite, abs(value) < 9e15 else { return value }
        return (value * 1000).rounded() / 1000
    }

    private static func served(_ resource: GroupResource) -> ServedResource? {
        switch resource {
        case .pods: .pods
        case .nodes: .nodes
        case .namespaces: .namespaces
        default: nil
        }
    }

    /// Which pods a `labelSelector` selects. Pods whose labels are unknown are not selected by a non-empty
    /// selector; with no pod watch at all, a non-empty selector cannot be answered.
    private func podLabelMatcher(_ selector: LabelSelector) throws(Status) -> (PodKey) -> Bool {
        guard !selector.isEverything else { return { _ in true } }
        guard let podLabels else {
            throw Status.internalError(
                "cannot evaluate labelSelector \(selector): the adapter has no pod watch (it runs outside a cluster "
                    + "without --kubeconfig)")
        }
        return { key in podLabels.labels(of: key).map(selector.matches) ?? false }
    }
}
