/// Which objects a custom metric request describes.
public enum ObjectSelection: Sendable, Hashable {
    /// One object by name: the answer is a list with exactly one item.
    case named(String)
    /// `*`: every object of the resource (in the namespace) that `labelSelector` selects.
    case all(labelSelector: LabelSelector)
}

/// A `custom.metrics.k8s.io` read, both versions.
public struct CustomMetricRequest: Sendable, Hashable {
    /// The version from the path; it decides the answer's item layout.
    public var version: MetricsAPIVersion
    /// Nil for cluster-scoped objects (nodes, namespaces — `/namespaces/{ns}/metrics/{m}` is the Namespace `ns`).
    public var namespace: String?
    /// The described objects' resource (`pods`, `deployments.apps`), from the path.
    public var resource: GroupResource
    /// One object by name, or `*` with the request's `labelSelector`.
    public var objects: ObjectSelection
    /// As the path spells it, percent-decoded.
    public var metricName: String
    /// `metricLabelSelector`: which series of the metric.
    public var metricSelector: LabelSelector

    /// Built by ``MetricsRoute``'s parser; tests build them by hand.
    public init(
        version: MetricsAPIVersion, namespace: String?, resource: GroupResource, objects: ObjectSelection,
        metricName: String, metricSelector: LabelSelector = .everything
    ) {
        self.version = version
        self.namespace = namespace
        self.resource = resource
        self.objects = objects
        self.metricName = metricName
        self.metricSelector = metricSelector
    }
}

/// An `external.metrics.k8s.io/v1beta1` read.
public struct ExternalMetricRequest: Sendable, Hashable {
    /// External metrics are always asked for within a namespace.
    public var namespace: String
    /// As the path spells it, percent-decoded.
    public var metricName: String
    /// From `labelSelector`: for external metrics it selects series, not objects.
    public var metricSelector: LabelSelector

    /// Built by ``MetricsRoute``'s parser; tests build them by hand.
    public init(namespace: String, metricName: String, metricSelector: LabelSelector = .everything) {
        self.namespace = namespace
        self.metricName = metricName
        self.metricSelector = metricSelector
    }
}

/// What a GET under `/apis` asks for.
public enum MetricsRoute: Sendable, Hashable {
    /// `/apis` → `APIGroupList`.
    case groupList
    /// `/apis/{group}` → `APIGroup`.
    case group(MetricsAPIGroup)
    /// `/apis/{group}/{version}` → `APIResourceList`.
    case resourceList(MetricsAPIGroup, MetricsAPIVersion)
    /// `/apis/custom.metrics.k8s.io/{version}/…` → `MetricValueList`.
    case custom(CustomMetricRequest)
    /// `/apis/external.metrics.k8s.io/v1beta1/namespaces/{ns}/{metric}` → `ExternalMetricValueList`.
    case external(ExternalMetricRequest)

    /// Routes a request target (`/apis/...?...`); see `init(path:query:)`.
    public init(target: some StringProtocol) throws(Status) {
        if let mark = target.firstIndex(of: "?") {
            try self.init(path: target[..<mark], query: target[target.index(after: mark)...])
        } else {
            try self.init(path: target, query: "")
        }
    }

    /// Maps a raw (still percent-encoded) path and query to a route, or to the Status to answer: 404 `NotFound` for
    /// paths that name nothing served, 400 `BadRequest` for malformed escapes, names or selectors.
    ///
    /// Path segments are percent-decoded one by one (so `%2A` is the wildcard and `%2F` never splits a segment);
    /// the query is form-decoded (`+` is a space; the aggregator re-encodes queries that way); the first
    /// `labelSelector` / `metricLabelSelector` wins, as in apimachinery's parameter conversion. Health and OpenAPI
    /// paths are not routes here: the HTTP layer answers those before asking.
    public init(path: some StringProtocol, query: some StringProtocol) throws(Status) {
        var raw = Substring(path)
        guard raw.first == "/" else { throw Status.pathNotFound }
        raw = raw.dropFirst()
        if raw.last == "/" { raw = raw.dropLast() }  // the API server trims slashes before routing
        var segments: [String] = []
        if !raw.isEmpty {
            for part in raw.split(separator: "/", omittingEmptySubsequences: false) {
                guard let decoded = PercentDecoding.decode(part, plusIsSpace: false) else {
                    throw Status.badRequest("invalid percent-encoding in path segment \(goQuote(String(part)))")
                }
                guard !decoded.isEmpty else { throw Status.pathNotFound }
                segments.append(decoded)
            }
        }
        guard segments.first == "apis" else { throw Status.pathNotFound }
        if segments.count == 1 {
            self = .groupList
            return
        }
        guard let group = MetricsAPIGroup(rawValue: segments[1]) else { throw Status.pathNotFound }
        if segments.count == 2 {
            self = .group(group)
            return
        }
        guard let version = MetricsAPIVersion(rawValue: segments[2]), group.versions.contains(version) else {
            throw Status.pathNotFound
        }
        if segments.count == 3 {
            self = .resourceList(group, version)
            return
        }
        let rest = Array(segments[3...])
        let parameters = try QueryParameters(query)
        switch group {
        case .external:
            // namespaces/{ns}/{metric}
            guard rest.count == 3, rest[0] == "namespaces" else { throw Status.pathNotFound }
            try Names.validateNamespace(rest[1])
            try Names.validateMetric(rest[2])
            self = .external(
                ExternalMetricRequest(
                    namespace: rest[1], metricName: rest[2],
                    metricSelector: try parameters.selector("labelSelector")))
        case .custom:
            let namespace: String?
            let resource: GroupResource
            let name: String
            let metric: String
            switch rest.count {
            case 4 where rest[0] == "namespaces" && rest[2] == "metrics":
                // The Namespace object itself.
                namespace = nil
                resource = .namespaces
                name = rest[1]
                metric = rest[3]
                guard name != "*" else { throw Status.pathNotFound }
                try Names.validateNamespace(name)
            case 5 where rest[0] == "namespaces":
                try Names.validateNamespace(rest[1])
                namespace = rest[1]
                resource = GroupResource(parsing: rest[2])
                name = rest[3]
                metric = rest[4]
            case 3:
                // Cluster-scoped objects; `namespaces/{ns}/{m}` is the Namespace `ns` as well.
                namespace = nil
                resource = GroupResource(parsing: rest[0])
                name = rest[1]
                metric = rest[2]
            default:
                throw Status.pathNotFound
            }
            try Names.validateResource(resource)
            try Names.validateMetric(metric)
            let objects: ObjectSelection
            if name == "*" {
                objects = .all(labelSelector: try parameters.selector("labelSelector"))
            } else {
                try Names.validateObjectName(name)
                objects = .named(name)
            }
            self = .custom(
                CustomMetricRequest(
                    version: version, namespace: namespace, resource: resource, objects: objects, metricName: metric,
                    metricSelector: try parameters.selector("metricLabelSelector")))
        }
    }
}

/// Path-segment checks: what the API server would refuse to route (`..`, control characters) is a 400, so that
/// nothing odd reaches a backend query.
enum Names {
    static func validateNamespace(_ name: String) throws(Status) {
        // A namespace is a DNS-1123 label.
        let bytes = Array(name.utf8)
        func ok(_ byte: UInt8) -> Bool { (byte >= 48 && byte <= 57) || (byte >= 97 && byte <= 122) }
        guard bytes.count <= 63, let first = bytes.first, let last = bytes.last, ok(first), ok(last),
            bytes.allSatisfy({ ok($0) || $0 == UInt8(ascii: "-") })
        else {
            throw Status.badRequest("invalid namespace \(goQuote(name)): must be a lowercase RFC 1123 label")
        }
    }

    static func validateObjectName(_ name: String) throws(Status) {
        // Object names differ per resource; refuse only what no name can be: path tricks and control bytes.
        guard name != ".", name != "..", !name.contains("/"), name.utf8.count <= 253,
            !name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F })
        else { throw Status.badRequest("invalid object name \(goQuote(name))") }
    }

    static func validateResource(_ resource: GroupResource) throws(Status) {
        let bytes = Array(resource.description.utf8)
        func ok(_ byte: UInt8) -> Bool {
            (byte >= 48 && byte <= 57) || (byte >= 97 && byte <= 122) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
        }
        guard !resource.resource.isEmpty, bytes.allSatisfy(ok), !resource.group.hasPrefix("."), !resource.group.hasSuffix(".")
        else { throw Status.badRequest("invalid resource \(goQuote(resource.description))") }
    }

    static func validateMetric(_ metric: String) throws(Status) {
        guard metric != "*", metric != ".", metric != "..", !metric.contains("/"), metric.utf8.count <= 253,
            !metric.unicodeScalars.contains(where: { $0.value < 0x21 || $0.value == 0x7F })
        else { throw Status.badRequest("invalid metric name \(goQuote(metric))") }
    }
}

/// `application/x-www-form-urlencoded` query parsing, first value per key.
struct QueryParameters {
    private var values: [String: String] = [:]

    init(_ query: some StringProtocol) throws(Status) {
        for pair in String(query).split(separator: "&", omittingEmptySubsequences: true) {
            let key: Substring
            let value: Substring
            if let equals = pair.firstIndex(of: "=") {
                key = pair[..<equals]
                value = pair[pair.index(after: equals)...]
            } else {
                key = pair
                value = ""
            }
            guard let decodedKey = PercentDecoding.decode(key, plusIsSpace: true),
                let decodedValue = PercentDecoding.decode(value, plusIsSpace: true)
            else { throw Status.badRequest("invalid percent-encoding in query parameter \(goQuote(String(pair)))") }
            if values[decodedKey] == nil { values[decodedKey] = decodedValue }
        }
    }

    subscript(key: String) -> String? { values[key] }

    func selector(_ key: String) throws(Status) -> LabelSelector {
        guard let text = values[key] else { return .everything }
        do {
            return try LabelSelector(parsing: text)
        } catch {
            throw Status.badRequest("invalid \(key) \(goQuote(text)): \(error.message)")
        }
    }
}

/// RFC 3986 percent-decoding to UTF-8; nil for a bad escape or invalid UTF-8.
public enum PercentDecoding {
    /// `plusIsSpace`: true for query strings (form encoding), false for path segments.
    public static func decode(_ text: some StringProtocol, plusIsSpace: Bool) -> String? {
        let bytes = Array(text.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        func hex(_ byte: UInt8) -> UInt8? {
            switch byte {
            case 48...57: byte - 48
            case 65...70: byte - 55
            case 97...102: byte - 87
            default: nil
            }
        }
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "%") {
                guard index + 2 < bytes.count, let high = hex(bytes[index + 1]), let low = hex(bytes[index + 2]) else {
                    return nil
                }
                out.append(high << 4 | low)
                index += 3
            } else if byte == UInt8(ascii: "+") && plusIsSpace {
                out.append(0x20)
                index += 1
            } else {
                out.append(byte)
                index += 1
            }
        }
        return String(validating: out, as: UTF8.self)
    }
}
