#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

/// `v1.ObjectReference` as the metric APIs use it for `describedObject`; empty fields are omitted.
public struct ObjectReference: Sendable, Hashable, Codable {
    /// `Pod`, `Node`, `Namespace`…; empty is left out of the JSON.
    public var kind: String
    /// Nil or empty (left out) for cluster-scoped objects.
    public var namespace: String?
    /// The object's name; empty is left out of the JSON.
    public var name: String
    /// `group/version`; `"/v1"` for core types, as custom-metrics-apiserver emits.
    public var apiVersion: String
    /// Nil or empty (left out) unless known.
    public var uid: String?

    /// `apiVersion` as written (see ``init(group:version:kind:namespace:name:)`` to build it).
    public init(kind: String, namespace: String? = nil, name: String, apiVersion: String, uid: String? = nil) {
        self.kind = kind
        self.namespace = namespace
        self.name = name
        self.apiVersion = apiVersion
        self.uid = uid
    }

    /// `apiVersion` built as `group + "/" + version` (so `"/v1"` for the core group).
    public init(group: String, version: String, kind: String, namespace: String? = nil, name: String) {
        self.init(kind: kind, namespace: namespace, name: name, apiVersion: "\(group)/\(version)")
    }

    /// A core `v1` Pod.
    public static func pod(namespace: String, name: String) -> ObjectReference {
        ObjectReference(group: "", version: "v1", kind: "Pod", namespace: namespace, name: name)
    }

    /// A core `v1` Node (cluster-scoped).
    public static func node(name: String) -> ObjectReference {
        ObjectReference(group: "", version: "v1", kind: "Node", name: name)
    }

    /// A core `v1` Namespace, itself cluster-scoped.
    public static func namespace(name: String) -> ObjectReference {
        ObjectReference(group: "", version: "v1", kind: "Namespace", name: name)
    }

    enum CodingKeys: String, CodingKey { case kind, namespace, name, apiVersion, uid }

    /// Leaves out empty fields, as Go's `omitempty` does.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        if !kind.isEmpty { try container.encode(kind, forKey: .kind) }
        if let namespace, !namespace.isEmpty { try container.encode(namespace, forKey: .namespace) }
        if !name.isEmpty { try container.encode(name, forKey: .name) }
        if let uid, !uid.isEmpty { try container.encode(uid, forKey: .uid) }
        if !apiVersion.isEmpty { try container.encode(apiVersion, forKey: .apiVersion) }
    }

    /// Missing fields decode as empty (or nil).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        kind = try container.decodeIfPresent(String.self, forKey: .kind) ?? ""
        namespace = try container.decodeIfPresent(String.self, forKey: .namespace)
        name = try container.decodeIfPresent(String.self, forKey: .name) ?? ""
        apiVersion = try container.decodeIfPresent(String.self, forKey: .apiVersion) ?? ""
        uid = try container.decodeIfPresent(String.self, forKey: .uid)
    }
}

/// `metav1.LabelSelector` (`matchLabels` + `matchExpressions`), the JSON form of a metric selector.
public struct MetaLabelSelector: Sendable, Hashable, Codable {
    /// One `matchExpressions` entry.
    public struct Requirement: Sendable, Hashable, Codable {
        public var key: String
        /// `In`, `NotIn`, `Exists`, `DoesNotExist`.
        public var `operator`: String
        /// Nil for `Exists` and `DoesNotExist`.
        public var values: [String]?

        /// `operator` as spelled in the API (`In`, `NotIn`, `Exists`, `DoesNotExist`).
        public init(key: String, operator: String, values: [String]? = nil) {
            self.key = key
            self.operator = `operator`
            self.values = values
        }
    }

    /// `key=value` requirements; nil when there are none.
    public var matchLabels: [String: String]?
    /// Every other requirement; nil when there are none.
    public var matchExpressions: [Requirement]?

    /// Nil fields are written as absent.
    public init(matchLabels: [String: String]? = nil, matchExpressions: [Requirement]? = nil) {
        self.matchLabels = matchLabels
        self.matchExpressions = matchExpressions
    }

    /// `metav1.ParseToLabelSelector`, except that `k!=v` becomes `k NotIn (v)` (equivalent; apimachinery rejects it).
    /// Nil for the empty selector and for `>`/`<`, which a LabelSelector cannot express (the field is informational).
    public init?(_ selector: LabelSelector) {
        if selector.isEverything { return nil }
        var labels: [String: String] = [:]
        var expressions: [Requirement] = []
        for requirement in selector.requirements {
            switch requirement.operator {
            case .equals, .doubleEquals: labels[requirement.key] = requirement.values[0]
            case .in: expressions.append(Requirement(key: requirement.key, operator: "In", values: requirement.values))
            case .notIn, .notEquals:
                expressions.append(Requirement(key: requirement.key, operator: "NotIn", values: requirement.values))
            case .exists: expressions.append(Requirement(key: requirement.key, operator: "Exists"))
            case .doesNotExist: expressions.append(Requirement(key: requirement.key, operator: "DoesNotExist"))
            case .greaterThan, .lessThan: return nil
            }
        }
        self.init(matchLabels: labels.isEmpty ? nil : labels, matchExpressions: expressions.isEmpty ? nil : expressions)
    }
}

/// One custom metric value; the same value encodes as a v1beta1 or v1beta2 item.
public struct CustomMetricValue: Sendable, Hashable {
    /// The object the value is about (a pod, node or namespace).
    public var describedObject: ObjectReference
    /// As the client asked for it; written as `metricName` in v1beta1 and `metric.name` in v1beta2.
    public var metricName: String
    /// The metric selector the value was computed for (null when none).
    public var selector: MetaLabelSelector?
    /// The sample's own time, never the request time.
    public var timestamp: Date
    /// Seconds the value covers (the adapter gives a gauge the exporters' sample interval); nil leaves it out.
    public var windowSeconds: Int64?
    /// The value as a Kubernetes quantity (`1500m`, `2Gi`).
    public var value: Quantity

    /// `selector` nil writes `null`, as the Go API server does.
    public init(
        describedObject: ObjectReference, metricName: String, selector: MetaLabelSelector? = nil, timestamp: Date,
        windowSeconds: Int64? = nil, value: Quantity
    ) {
        self.describedObject = describedObject
        self.metricName = metricName
        self.selector = selector
        self.timestamp = timestamp
        self.windowSeconds = windowSeconds
        self.value = value
    }

    func encode(into container: inout KeyedEncodingContainer<DynamicKey>, version: MetricsAPIVersion) throws {
        try container.encode(describedObject, forKey: DynamicKey("describedObject"))
        switch version {
        case .v1beta1:
            try container.encode(metricName, forKey: DynamicKey("metricName"))
            if let windowSeconds { try container.encode(windowSeconds, forKey: DynamicKey("window")) }
            try container.encode(selector, forKey: DynamicKey("selector"))  // no omitempty: null
        case .v1beta2:
            var metric = container.nestedContainer(keyedBy: DynamicKey.self, forKey: DynamicKey("metric"))
            try metric.encode(metricName, forKey: DynamicKey("name"))
            try metric.encode(selector, forKey: DynamicKey("selector"))  // no omitempty: null
            if let windowSeconds { try container.encode(windowSeconds, forKey: DynamicKey("windowSeconds")) }
        }
        try container.encode(timestamp, rfc3339: "timestamp")
        try container.encode(value, forKey: DynamicKey("value"))
    }

    init(from container: KeyedDecodingContainer<DynamicKey>, version: MetricsAPIVersion) throws {
        describedObject = try container.decode(ObjectReference.self, forKey: DynamicKey("describedObject"))
        switch version {
        case .v1beta1:
            metricName = try container.decode(String.self, forKey: DynamicKey("metricName"))
            windowSeconds = try container.decodeIfPresent(Int64.self, forKey: DynamicKey("window"))
            selector = try container.decodeIfPresent(MetaLabelSelector.self, forKey: DynamicKey("selector"))
        case .v1beta2:
            let metric = try container.nestedContainer(keyedBy: DynamicKey.self, forKey: DynamicKey("metric"))
            metricName = try metric.decode(String.self, forKey: DynamicKey("name"))
            selector = try metric.decodeIfPresent(MetaLabelSelector.self, forKey: DynamicKey("selector"))
            windowSeconds = try container.decodeIfPresent(Int64.self, forKey: DynamicKey("windowSeconds"))
        }
        timestamp = try container.decodeRFC3339("timestamp")
        value = try container.decode(Quantity.self, forKey: DynamicKey("value"))
    }
}

/// `MetricValueList` of `custom.metrics.k8s.io/{version}`.
public struct MetricValueList: Sendable, Hashable, Codable {
    /// Which of the two item layouts ``encode(to:)`` writes.
    public var version: MetricsAPIVersion
    /// One per described object.
    public var items: [CustomMetricValue]

    /// A list for `version`.
    public init(version: MetricsAPIVersion, items: [CustomMetricValue]) {
        self.version = version
        self.items = items
    }

    /// `kind: MetricValueList`, the group/version, an empty `metadata`, and the items in `version`'s layout.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: DynamicKey.self)
        try container.encodeTypeMeta(kind: "MetricValueList", apiVersion: MetricsAPIGroup.custom.groupVersion(version))
        try container.encode(EmptyObject(), forKey: DynamicKey("metadata"))
        var list = container.nestedUnkeyedContainer(forKey: DynamicKey("items"))
        for item in items {
            var entry = list.nestedContainer(keyedBy: DynamicKey.self)
            try item.encode(into: &entry, version: version)
        }
    }

    /// Refuses another kind or group/version; the version decides the item layout read.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: DynamicKey.self)
        let apiVersion = try container.expectTypeMeta(
            kind: "MetricValueList", apiVersions: MetricsAPIVersion.allCases.map { MetricsAPIGroup.custom.groupVersion($0) })
        version = apiVersion.hasSuffix("v1beta1") ? .v1beta1 : .v1beta2
        var list = try container.nestedUnkeyedContainer(forKey: DynamicKey("items"))
        var items: [CustomMetricValue] = []
        while !list.isAtEnd {
            items.append(try CustomMetricValue(from: list.nestedContainer(keyedBy: DynamicKey.self), version: version))
        }
        self.items = items
    }
}

/// One external metric value (`external.metrics.k8s.io/v1beta1`).
public struct ExternalMetricValue: Sendable, Hashable {
    /// As the client asked for it.
    public var metricName: String
    /// The labels that tell this value's series from the metric's others; empty when none.
    public var metricLabels: [String: String]
    /// The sample's own time, never the request time.
    public var timestamp: Date
    /// Seconds the value covers; nil leaves it out.
    public var windowSeconds: Int64?
    /// The value as a Kubernetes quantity.
    public var value: Quantity

    /// `metricLabels` empty is written as `{}`.
    public init(
        metricName: String, metricLabels: [String: String] = [:], timestamp: Date, windowSeconds: Int64? = nil,
        value: Quantity
    ) {
        self.metricName = metricName
        self.metricLabels = metricLabels
        self.timestamp = timestamp
        self.windowSeconds = windowSeconds
        self.value = value
    }
}

/// `ExternalMetricValueList`; the HPA sums all items.
public struct ExternalMetricValueList: Sendable, Hashable, Codable {
    /// `external.metrics.k8s.io/v1beta1`, the only version of the external group.
    public static let apiVersion = MetricsAPIGroup.external.groupVersion(.v1beta1)
    /// Every series the selector matched; the HPA sums them.
    public var items: [ExternalMetricValue]

    /// The items in the order given.
    public init(items: [ExternalMetricValue]) { self.items = items }

    /// `kind: ExternalMetricValueList`, the group/version, an empty `metadata` and the items.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: DynamicKey.self)
        try container.encodeTypeMeta(kind: "ExternalMetricValueList", apiVersion: Self.apiVersion)
        try container.encode(EmptyObject(), forKey: DynamicKey("metadata"))
        var list = container.nestedUnkeyedContainer(forKey: DynamicKey("items"))
        for item in items {
            var entry = list.nestedContainer(keyedBy: DynamicKey.self)
            try entry.encode(item.metricName, forKey: DynamicKey("metricName"))
            try entry.encode(item.metricLabels, forKey: DynamicKey("metricLabels"))
            try entry.encode(item.timestamp, rfc3339: "timestamp")
            if let window = item.windowSeconds { try entry.encode(window, forKey: DynamicKey("window")) }
            try entry.encode(item.value, forKey: DynamicKey("value"))
        }
    }

    /// Refuses another kind or group/version.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: DynamicKey.self)
        _ = try container.expectTypeMeta(kind: "ExternalMetricValueList", apiVersions: [Self.apiVersion])
        var list = try container.nestedUnkeyedContainer(forKey: DynamicKey("items"))
        var items: [ExternalMetricValue] = []
        while !list.isAtEnd {
            let entry = try list.nestedContainer(keyedBy: DynamicKey.self)
            items.append(
                ExternalMetricValue(
                    metricName: try entry.decode(String.self, forKey: DynamicKey("metricName")),
                    metricLabels: try entry.decodeIfPresent([String: String].self, forKey: DynamicKey("metricLabels")) ?? [:],
                    timestamp: try entry.decodeRFC3339("timestamp"),
                    windowSeconds: try entry.decodeIfPresent(Int64.self, forKey: DynamicKey("window")),
                    value: try entry.decode(Quantity.self, forKey: DynamicKey("value"))
                ))
        }
        self.items = items
    }
}
