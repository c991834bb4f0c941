import AdapterStore
import CustomMetricsAPI

/// What a request asks to do, in SubjectAccessReview terms (`authorization.k8s.io/v1`), derived from the URL as
/// the API server's RequestInfo resolver would.
public enum RequestAttributes: Sendable, Hashable {
    /// `resourceAttributes`: empty strings are left out of the review.
    public struct Resource: Sendable, Hashable {
        /// The method's verb (`get` for GET and HEAD); `list` for external reads and namespace-root reads.
        public var verb: String
        /// `custom.metrics.k8s.io` or `external.metrics.k8s.io`.
        public var group: String
        /// The API version from the path (`v1beta2`).
        public var version: String
        /// `pods`, `nodes` or `namespaces`; `metrics` for a Namespace object's metric; the metric name for external and
        /// namespace-root reads.
        public var resource: String
        /// The metric name for object reads; empty otherwise.
        public var subresource: String
        /// The object's name, `*` for every object; empty for list reads.
        public var name: String
        /// Empty for cluster-scoped objects.
        public var namespace: String

        /// Memberwise.
        public init(
            verb: String, group: String, version: String, resource: String, subresource: String = "", name: String = "",
            namespace: String = ""
        ) {
            self.verb = verb
            self.group = group
            self.version = version
            self.resource = resource
            self.subresource = subresource
            self.name = name
            self.namespace = namespace
        }
    }

    case resource(Resource)
    /// `nonResourceAttributes{path, verb}`: discovery, health, OpenAPI, metrics.
    case nonResource(path: String, verb: String)

    /// Attributes of a GET (or HEAD) to `path`: metric reads are resources of the metrics API groups; everything
    /// else, discovery included, is a non-resource URL.
    public static func of(method: String, path: String, query: String) -> RequestAttributes {
        let verb = method == "GET" || method == "HEAD" ? "get" : method.lowercased()
        guard let route = try? MetricsRoute(path: path, query: query) else {
            return .nonResource(path: path, verb: verb)
        }
        switch route {
        case .groupList, .group, .resourceList:
            return .nonResource(path: path, verb: verb)
        case .custom(let read):
            let name: String
            switch read.objects {
            case .named(let object): name = object
            // The API server treats `*` as a name; the HPA's RBAC grants `get` on it.
            case .all: name = "*"
            }
            if read.namespace == nil, read.resource == .namespaces {
                // RequestInfo takes `namespaces/{ns}` as the namespace (only `status` and `finalize` are the
                // Namespace's own subresources) and reads the rest as a resource in it: the Namespace object's
                // metric (`namespaces/ml/metrics/m`) is `get` on `metrics` named `m` in `ml`, and the root form
                // (`namespaces/ml/m`) is `list` on `m` in `ml`.
                let objectForm = path.split(separator: "/").suffix(4).first == "namespaces"
                return .resource(
                    Resource(
                        verb: objectForm ? verb : (verb == "get" ? "list" : verb), group: MetricsAPIGroup.custom.rawValue,
                        version: read.version.rawValue, resource: objectForm ? "metrics" : read.metricName,
                        name: objectForm ? read.metricName : "", namespace: name))
            }
            return .resource(
                Resource(
                    verb: verb, group: MetricsAPIGroup.custom.rawValue, version: read.version.rawValue,
                    resource: read.resource.description, subresource: read.metricName, name: name,
                    namespace: read.namespace ?? ""))
        case .external(let read):
            // External metrics are a list of the metric "resource" in the namespace.
            return .resource(
                Resource(
                    verb: verb == "get" ? "list" : verb, group: MetricsAPIGroup.external.rawValue,
                    version: MetricsAPIVersion.v1beta1.rawValue, resource: read.metricName, namespace: read.namespace))
        }
    }
}
