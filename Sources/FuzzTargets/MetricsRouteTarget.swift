import AdapterSources
import AdapterStore
import AggregatedAPI
import CustomMetricsAPI

extension FuzzTargets {
    /// The adapter's request targets: `/apis/...` paths, percent-decoded segment by segment, and their query
    /// parameters (`labelSelector`, `metricLabelSelector`), into a route and into the SubjectAccessReview attributes
    /// the request is authorized with. The input is the raw request target (`path?query`).
    ///
    /// A route's selectors print canonically, and no attribute the API server authorizes (namespace, name, resource,
    /// subresource) can carry a path separator or be `.`/`..`: nothing odd reaches a backend query or an RBAC check.
    static let metricsRoute = FuzzTarget("metrics-route", maxLength: 4096) { (raw) throws(FuzzFinding) in
        let target = String(decoding: raw, as: UTF8.self)
        let path: Substring
        let query: Substring
        if let mark = target.firstIndex(of: "?") {
            path = target[..<mark]
            query = target[target.index(after: mark)...]
        } else {
            path = Substring(target)
            query = ""
        }
        switch try? MetricsRoute(target: target) {
        case .custom(let read)?:
            try checkCanonical(read.metricSelector)
            if case .all(let objects) = read.objects { try checkCanonical(objects) }
        case .external(let read)?:
            try checkCanonical(read.metricSelector)
        default:
            break
        }
        for method in ["GET", "HEAD"] {
            guard case .resource(let attributes) = RequestAttributes.of(method: method, path: String(path), query: String(query)) else {
                continue
            }
            for (field, value) in [
                ("namespace", attributes.namespace), ("name", attributes.name), ("resource", attributes.resource),
                ("subresource", attributes.subresource),
            ] {
                try check(
                    !value.contains("/") && value != "." && value != "..",
                    "\(method) \(excerpt(target)): the authorized \(field) is \"\(excerpt(value))\"")
            }
        }
    }
}
