import CustomMetricsAPI
import Testing

@Suite("Routing")
struct RoutingTests {
    static let custom = "/apis/custom.metrics.k8s.io"
    static let external = "/apis/external.metrics.k8s.io/v1beta1"

    func route(_ target: String) throws -> MetricsRoute { try MetricsRoute(target: target) }

    func failure(_ target: String) -> Status? {
        do {
            _ = try MetricsRoute(target: target)
            return nil
        } catch {
            return error
        }
    }

    @Test("discovery paths")
    func discovery() throws {
        #expect(try route("/apis") == .groupList)
        #expect(try route("/apis/") == .groupList)
        #expect(try route("/apis/custom.metrics.k8s.io") == .group(.custom))
        #expect(try route("/apis/external.metrics.k8s.io/") == .group(.external))
        #expect(try route("/apis/custom.metrics.k8s.io/v1beta1") == .resourceList(.custom, .v1beta1))
        #expect(try route("/apis/custom.metrics.k8s.io/v1beta2") == .resourceList(.custom, .v1beta2))
        #expect(try route("/apis/external.metrics.k8s.io/v1beta1") == .resourceList(.external, .v1beta1))
        #expect(try route("/apis/custom.metrics.k8s.io/v1beta2?timeout=32s") == .resourceList(.custom, .v1beta2))
    }

    @Test("one namespaced object, both versions", arguments: MetricsAPIVersion.allCases)
    func namespacedObject(version: MetricsAPIVersion) throws {
        let expected = CustomMetricRequest(
            version: version, namespace: "default", resource: .pods, objects: .named("web-abc12"),
            metricName: "gpu_utilization")
        #expect(try route("\(Self.custom)/\(version.rawValue)/namespaces/default/pods/web-abc12/gpu_utilization") == .custom(expected))
        let deployment = try route("\(Self.custom)/\(version.rawValue)/namespaces/ml/deployments.apps/llm/inference_queue_depth")
        #expect(
            deployment
                == .custom(
                    CustomMetricRequest(
                        version: version, namespace: "ml", resource: GroupResource(group: "apps", resource: "deployments"),
                        objects: .named("llm"), metricName: "inference_queue_depth")))
    }

    @Test("the HPA's Pods metric: encoded wildcard, both selectors", arguments: MetricsAPIVersion.allCases)
    func podsWildcard(version: MetricsAPIVersion) throws {
        let target = "\(Self.custom)/\(version.rawValue)/namespaces/default/pods/%2A/gpu_utilization"
            + "?labelSelector=app%3Dweb%2Ctier+in+%28gpu%2Cml%29&metricLabelSelector=gpu%21%3D3"
        let expected = CustomMetricRequest(
            version: version, namespace: "default", resource: .pods,
            objects: .all(labelSelector: try LabelSelector(parsing: "app=web,tier in (gpu,ml)")),
            metricName: "gpu_utilization", metricSelector: try LabelSelector(parsing: "gpu!=3"))
        #expect(try route(target) == .custom(expected))
        // The literal `*` is the same request.
        #expect(try route(target.replacingOccurrences("%2A", with: "*")) == .custom(expected))
        // Without selectors: everything.
        let bare = try route("\(Self.custom)/\(version.rawValue)/namespaces/default/pods/*/gpu_utilization")
        guard case .custom(let request) = bare, case .all(let selector) = request.objects else {
            Issue.record("not a wildcard: \(bare)")
            return
        }
        #expect(selector.isEverything && request.metricSelector.isEverything)
    }

    @Test("cluster-scoped objects and the Namespace itself", arguments: MetricsAPIVersion.allCases)
    func rootScoped(version: MetricsAPIVersion) throws {
        let base = "\(Self.custom)/\(version.rawValue)"
        #expect(
            try route("\(base)/nodes/node-1/gpu_power_watts")
                == .custom(CustomMetricRequest(version: version, namespace: nil, resource: .nodes, objects: .named("node-1"), metricName: "gpu_power_watts")))
        #expect(
            try route("\(base)/nodes/%2A/gpu_utilization?labelSelector=gpu%3Dh100")
                == .custom(
                    CustomMetricRequest(
                        version: version, namespace: nil, resource: .nodes,
                        objects: .all(labelSelector: try LabelSelector(parsing: "gpu=h100")), metricName: "gpu_utilization")))
        let namespaceItself = CustomMetricRequest(
            version: version, namespace: nil, resource: .namespaces, objects: .named("ml"), metricName: "gpu_utilization")
        #expect(try route("\(base)/namespaces/ml/metrics/gpu_utilization") == .custom(namespaceItself))
        // The root-scoped route matches namespaces/{name}/{metric} as well (custom-metrics-apiserver does too).
        #expect(try route("\(base)/namespaces/ml/gpu_utilization") == .custom(namespaceItself))
        #expect(
            try route("\(base)/namespaces/*/gpu_utilization")
                == .custom(CustomMetricRequest(version: version, namespace: nil, resource: .namespaces, objects: .all(labelSelector: .everything), metricName: "gpu_utilization")))
    }

    @Test("external metrics: labelSelector selects series")
    func externalMetric() throws {
        #expect(
            try route("\(Self.external)/namespaces/default/queue_depth?labelSelector=queue%3Djobs")
                == .external(ExternalMetricRequest(namespace: "default", metricName: "queue_depth", metricSelector: try LabelSelector(parsing: "queue=jobs"))))
        #expect(
            try route("\(Self.external)/namespaces/default/queue_depth")
                == .external(ExternalMetricRequest(namespace: "default", metricName: "queue_depth")))
        // metricLabelSelector means nothing here.
        #expect(
            try route("\(Self.external)/namespaces/ml/q?metricLabelSelector=a%3Db")
                == .external(ExternalMetricRequest(namespace: "ml", metricName: "q")))
    }

    @Test("query decoding: + is a space, first value wins, unknown parameters are ignored")
    func queryDecoding() throws {
        let target = "\(Self.custom)/v1beta2/namespaces/d/pods/*/m?labelSelector=a+in+(x,+y)&labelSelector=b%3Dc&pretty=true&x"
        guard case .custom(let request) = try route(target), case .all(let selector) = request.objects else {
            Issue.record("not routed")
            return
        }
        #expect(selector.description == "a in (x,y)")
    }

    static let notFoundTargets: [String] = [
        "/", "", "apis", "/api", "/api/v1", "/apis/metrics.k8s.io", "/apis/custom.metrics.k8s.io/v1",
        "/apis/custom.metrics.k8s.io/v1beta3", "/apis/external.metrics.k8s.io/v1beta2",
        "/apis/custom.metrics.k8s.io/v1beta2/pods", "/apis/custom.metrics.k8s.io/v1beta2/nodes/n",
        "/apis/custom.metrics.k8s.io/v1beta2/namespaces/default/pods/x",
        "/apis/custom.metrics.k8s.io/v1beta2/namespaces/default/pods/x/m/extra",
        "/apis/custom.metrics.k8s.io/v1beta2/nodes/n/m/extra", "/apis/custom.metrics.k8s.io/v1beta2//pods/x/m",
        "/apis/custom.metrics.k8s.io/v1beta2/namespaces/*/metrics/m",
        "/apis/external.metrics.k8s.io/v1beta1/queue_depth", "/apis/external.metrics.k8s.io/v1beta1/namespaces/default",
        "/apis/external.metrics.k8s.io/v1beta1/namespaces/default/pods/x/m", "/apis/external.metrics.k8s.io/v1beta1/nodes/n/m",
        "/healthz", "/openapi/v2", "//apis",
    ]

    @Test("paths that name nothing are 404 NotFound", arguments: notFoundTargets)
    func notFound(target: String) throws {
        let status = try #require(failure(target))
        #expect(status.code == 404 && status.reason == "NotFound", "\(status)")
    }

    static let badRequestTargets: [String] = [
        "/apis/custom.metrics.k8s.io/v1beta2/namespaces/default/pods/%2/m",
        "/apis/custom.metrics.k8s.io/v1beta2/namespaces/default/pods/%zz/m",
        "/apis/custom.metrics.k8s.io/v1beta2/namespaces/default/pods/%FF/m",
        "/apis/custom.metrics.k8s.io/v1beta2/namespaces/default/pods/*/m?labelSelector=a%3D%3Db%3Dc",
        "/apis/custom.metrics.k8s.io/v1beta2/namespaces/default/pods/*/m?metricLabelSelector=%21",
        "/apis/custom.metrics.k8s.io/v1beta2/namespaces/default/pods/*/m?labelSelector=%",
        "/apis/custom.metrics.k8s.io/v1beta2/namespaces/Default/pods/x/m",
        "/apis/custom.metrics.k8s.io/v1beta2/namespaces/-bad/pods/x/m",
        "/apis/custom.metrics.k8s.io/v1beta2/namespaces/default/pods/../m",
        "/apis/custom.metrics.k8s.io/v1beta2/namespaces/default/pods/a%2Fb/m",
        "/apis/custom.metrics.k8s.io/v1beta2/namespaces/default/pods/x/*",
        "/apis/custom.metrics.k8s.io/v1beta2/namespaces/default/pods/x/a%20b",
        "/apis/custom.metrics.k8s.io/v1beta2/namespaces/default/Pods/x/m",
        "/apis/custom.metrics.k8s.io/v1beta2/nodes/n%00/m",
        "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/metrics/%2A",
        "/apis/external.metrics.k8s.io/v1beta1/namespaces/default/q?labelSelector=a+b",
        "/apis/external.metrics.k8s.io/v1beta1/namespaces/UPPER/q",
    ]

    @Test("malformed escapes, names and selectors are 400 BadRequest", arguments: badRequestTargets)
    func badRequest(target: String) throws {
        let status = try #require(failure(target))
        #expect(status.code == 400 && status.reason == "BadRequest", "\(status)")
    }

    @Test("a bad selector's message names the parameter and the problem")
    func selectorMessage() throws {
        let status = try #require(failure("\(Self.custom)/v1beta2/namespaces/d/pods/*/m?labelSelector=a+b"))
        #expect(status.message == #"invalid labelSelector "a b": found 'b', expected: in, notin, =, ==, !=, gt, lt"#)
    }

    @Test("percent-decoding")
    func percentDecoding() {
        #expect(PercentDecoding.decode("a%2Ab", plusIsSpace: false) == "a*b")
        #expect(PercentDecoding.decode("a+b", plusIsSpace: false) == "a+b")
        #expect(PercentDecoding.decode("a+b", plusIsSpace: true) == "a b")
        #expect(PercentDecoding.decode("%C3%A9%e2%9c%93", plusIsSpace: false) == "é✓")
        #expect(PercentDecoding.decode("%", plusIsSpace: false) == nil)
        #expect(PercentDecoding.decode("%4", plusIsSpace: false) == nil)
        #expect(PercentDecoding.decode("%C3", plusIsSpace: false) == nil)
    }
}

extension String {
    fileprivate func replacingOccurrences(_ target: String, with replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
