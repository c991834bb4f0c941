/// One entry of an `APIResourceList`.
public struct APIResource: Sendable, Hashable, Codable {
    /// `resource/metric` for custom metrics (`pods/gpu_utilization`), the metric name for external ones.
    public var name: String
    public var singularName: String
    public var namespaced: Bool
    public var kind: String
    public var verbs: [String]

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
    public var groupResource: GroupResource
    public var metric: String
    public var namespaced: Bool

    public init(groupResource: GroupResource, metric: String, namespaced: Bool) {
        self.groupResource = groupResource
        self.metric = metric
        self.namespaced = namespaced
    }
}

/// Two custom metrics disagree on whether the same resource is namespaced; aggregated discovery would then fail the
/// whole group-version, so the list is refused instead.
public struct DiscoveryConflictError: Error, Hashable, Sendable, CustomStringConvertible {
    public let resource: GroupResource
    public var description: String {
        "resource \(resource) is listed both as namespaced and as cluster-scoped; keep one scope per resource"
    }
}

/// `GET /apis/{group}/{version}`.
public struct APIResourceList: Sendable, Hashable, Codable {
    public var groupVersion: String
    public var resources: [APIResource]

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

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode("APIResourceList", forKey: .kind)
        try container.encode("v1", forKey: .apiVersion)
        try container.encode(groupVersion, forKey: .groupVersion)
        try container.encode(resources, forKey: .resources)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        groupVersion = try container.decode(String.self, forKey: .groupVersion)
        resources = try container.decode([APIResource].self, forKey: .resources)
    }
}

public struct GroupVersionForDiscovery: Sendable, Hashable, Codable {
    public var groupVersion: String
    public var version: String

    public init(groupVersion: String, version: String) {
        self.groupVersion = groupVersion
        self.version = version
    }

    public init(_ group: MetricsAPIGroup, _ version: MetricsAPIVersion) {
        self.init(groupVersion: group.groupVersion(version), version: version.rawValue)
    }
}

/// `GET /apis/{group}`; inside an `APIGroupList` it is written without `kind`/`apiVersion`, as the API server does.
public struct APIGroup: Sendable, Hashable, Codable {
    public var name: String
    public var versions: [GroupVersionForDiscovery]
    public var preferredVersion: GroupVersionForDiscovery

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

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        versions = try container.decode([GroupVersionForDiscovery].self, forKey: .versions)
        preferredVersion = try container.decode(GroupVersionForDiscovery.self, forKey: .preferredVersion)
    }
}

/// `GET /apis`.
public struct APIGroupList: Sendable, Hashable, Codable {
    public var groups: [APIGroup]

    public init(groups: [APIGroup]) { self.groups = groups }

    private struct Entry: Encodable {
        let group: APIGroup
        func encode(to encoder: any Encoder) throws { try group.encode(to: encoder, typeMeta: false) }
    }

    enum CodingKeys: String, CodingKey { case kind, apiVersion, groups }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode("APIGroupList", forKey: .kind)
        try container.encode("v1", forKey: .apiVersion)
        try container.encode(groups.map(Entry.init), forKey: .groups)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        groups = try container.decode([APIGroup].self, forKey: .groups)
    }
}
