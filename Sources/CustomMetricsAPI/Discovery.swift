/// One entry of an `APIResourceList`.
public struct APIResource: Sendable, Hashable, Codable {
    /// `resource/metric` for custom metrics (`pods/gpu_utilization`), the metric name for external ones.
    public var name: String
    /// Empty for metrics.
    public var singularName: String
    /// Whether objects of the resource live in a namespace; one value per resource across its metrics.
    public var namespaced: Bool
    /// The list kind a `GET` answers: `MetricValueList` or `ExternalMetricValueList`.
    public var kind: String
    /// `["get"]`: metrics are only read.
    public var verbs: [String]

    /// `verbs` defaults to `["get"]`; the static builders of ``APIResourceList`` fill the rest.
    public init(name: String, singularName: String = "", namespaced: Bool, kind: String, verbs: [String] = ["get"]) {
        self.name = name
        self.singularName = singularName
        self.namespaced = namespaced
        self.kind = kind
        self.verbs = verbs
    }
}

/// A custom metric offered for one kind of object.
public struct CustomMetricInfo: Sendable, Hashable {
    /// The kind of object the metric describes (`pods`, `namespaces`, `deployments.apps`).
    public var groupResource: GroupResource
    /// The metric name as clients ask for it (`gpu_utilization`).
    public var metric: String
    /// Whether that resource is namespaced; every metric of one resource must agree.
    public var namespaced: Bool

    /// Built by the adapter's store from its metric definitions.
    public init(groupResource: GroupResource, metric: String, namespaced: Bool) {
        self.groupResource = groupResource
        self.metric = metric
        self.namespaced = namespaced
    }
}

/// Two custom metrics disagree on whether the same resource is namespaced; aggregated discovery would then fail the
/// whole group-version, so the list is refused instead.
public struct DiscoveryConflictError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The resource listed with both scopes.
    public let resource: GroupResource
    /// Names the resource and how to fix the configuration.
    public var description: String {
        "resource \(resource) is listed both as namespaced and as cluster-scoped; keep one scope per resource"
    }
}

/// `GET /apis/{group}/{version}`.
public struct APIResourceList: Sendable, Hashable, Codable {
    /// `group/version`, as `custom.metrics.k8s.io/v1beta2`.
    public var groupVersion: String
    /// Sorted by name.
    public var resources: [APIResource]

    /// Unchecked; ``customMetrics(version:metrics:)`` and ``externalMetrics(_:)`` build the served documents.
    public init(groupVersion: String, resources: [APIResource]) {
        self.groupVersion = groupVersion
        self.resources = resources
    }

    /// The custom metrics discovery document: one `resource/metric` entry per pair, sorted and de-duplicated, with a
    /// single `namespaced` flag per resource.
    public static func customMetrics(
        version: MetricsAPIVersion, metrics: [CustomMetricInfo]
    ) throws(DiscoveryConflictError) -> APIResourceList {
        var scope: [GroupResource: Bool] = [:]
        var entries: [String: APIResource] = [:]
        for info in metrics {
            if let known = scope[info.groupResource], known != info.namespaced {
                throw DiscoveryConflictError(resource: info.groupResource)
            }
            scope[info.groupResource] = info.namespaced
            let name = "\(info.groupResource)/\(info.metric)"
            entries[name] = APIResource(name: name, namespaced: info.namespaced, kind: "MetricValueList")
        }
        return APIResourceList(
            groupVersion: MetricsAPIGroup.custom.groupVersion(version),
            resources: entries.keys.sorted().compactMap { entries[$0] }
        )
    }

    /// The external metrics discovery document: every metric namespaced.
    public static func externalMetrics(_ names: [String]) -> APIResourceList {
        APIResourceList(
            groupVersion: MetricsAPIGroup.external.groupVersion(.v1beta1),
            resources: Set(names).sorted().map {
                APIResource(name: $0, namespaced: true, kind: "ExternalMetricValueList")
            }
        )
    }

    enum CodingKeys: String, CodingKey { case kind, apiVersion, groupVersion, resources }

    /// Adds `kind: APIResourceList` and `apiVersion: v1`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode("APIResourceList", forKey: .kind)
        try container.encode("v1", forKey: .apiVersion)
        try container.encode(groupVersion, forKey: .groupVersion)
        try container.encode(resources, forKey: .resources)
    }

    /// Reads `groupVersion` and `resources`; `kind` and `apiVersion` are not checked.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        groupVersion = try container.decode(String.self, forKey: .groupVersion)
        resources = try container.decode([APIResource].self, forKey: .resources)
    }
}

/// One entry of an `APIGroup`'s `versions`.
public struct GroupVersionForDiscovery: Sendable, Hashable, Codable {
    /// `group/version`.
    public var groupVersion: String
    /// The bare version, `v1beta1`.
    public var version: String

    /// Unchecked: the two fields must agree.
    public init(groupVersion: String, version: String) {
        self.groupVersion = groupVersion
        self.version = version
    }

    /// The entry for one of the served groups and versions.
    public init(_ group: MetricsAPIGroup, _ version: MetricsAPIVersion) {
        self.init(groupVersion: group.groupVersion(version), version: version.rawValue)
    }
}

/// `GET /apis/{group}`; inside an `APIGroupList` it is written without `kind`/`apiVersion`, as the API server does.
public struct APIGroup: Sendable, Hashable, Codable {
    /// The group, as `custom.metrics.k8s.io`.
    public var name: String
    /// Served versions, preferred first.
    public var versions: [GroupVersionForDiscovery]
    /// The version clients should use: the first of ``versions``.
    public var preferredVersion: GroupVersionForDiscovery

    /// Unchecked; ``init(_:)`` builds the served groups.
    public init(name: String, versions: [GroupVersionForDiscovery], preferredVersion: GroupVersionForDiscovery) {
        self.name = name
        self.versions = versions
        self.preferredVersion = preferredVersion
    }

    /// The group with its served versions, preferred first.
    public init(_ group: MetricsAPIGroup) {
        self.init(
            name: group.rawValue,
            versions: group.versions.map { GroupVersionForDiscovery(group, $0) },
            preferredVersion: GroupVersionForDiscovery(group, group.preferredVersion)
        )
    }

    enum CodingKeys: String, CodingKey { case kind, apiVersion, name, versions, preferredVersion }

    /// Adds `kind: APIGroup` and `apiVersion: v1` (left out inside an ``APIGroupList``).
    public func encode(to encoder: any Encoder) throws {
        try encode(to: encoder, typeMeta: true)
    }

    func encode(to encoder: any Encoder, typeMeta: Bool) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        if typeMeta {
            try container.encode("APIGroup", forKey: .kind)
            try container.encode("v1", forKey: .apiVersion)
        }
        try container.encode(name, forKey: .name)
        try container.encode(versions, forKey: .versions)
        try container.encode(preferredVersion, forKey: .preferredVersion)
    }

    /// Reads the group's fields; `kind` and `apiVersion` are not checked.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        versions = try container.decode([GroupVersionForDiscovery].self, forKey: .versions)
        preferredVersion = try container.decode(GroupVersionForDiscovery.self, forKey: .preferredVersion)
    }
}

/// `GET /apis`.
public struct APIGroupList: Sendable, Hashable, Codable {
    /// In the order given.
    public var groups: [APIGroup]

    /// The served groups, in the order given.
    public init(groups: [APIGroup]) { self.groups = groups }

    private struct Entry: Encodable {
        let group: APIGroup
        func encode(to encoder: any Encoder) throws { try group.encode(to: encoder, typeMeta: false) }
    }

    enum CodingKeys: String, CodingKey { case kind, apiVersion, groups }

    /// Adds `kind: APIGroupList` and `apiVersion: v1`; groups are written without their own type fields.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode("APIGroupList", forKey: .kind)
        try container.encode("v1", forKey: .apiVersion)
        try container.encode(groups.map(Entry.init), forKey: .groups)
    }

    /// Reads `groups`; `kind` and `apiVersion` are not checked.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        groups = try container.decode([APIGroup].self, forKey: .groups)
    }
}
