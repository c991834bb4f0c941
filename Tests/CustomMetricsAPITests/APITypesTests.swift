import AccelMetricsTesting
import CustomMetricsAPI
import Testing

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Encoded documents compared byte for byte (sorted keys) with the reference's JSON, then decoded back.
@Suite("API documents")
struct APITypesTests {
    static let noon = Date(timeIntervalSince1970: 1_735_732_800)  // 2025-01-01T12:00:00Z

    func json(_ value: some Encodable) throws -> String {
        String(decoding: try APIJSON.encode(value, sortedKeys: true), as: UTF8.self)
    }

    func roundTrip<T: Codable & Equatable>(_ value: T, _ type: T.Type) throws {
        let decoded = try JSONDecoder().decode(T.self, from: Data(try APIJSON.encode(value)))
        #expect(decoded == value)
    }

    static let podValue = CustomMetricValue(
        describedObject: .pod(namespace: "default", name: "web-abc12"), metricName: "gpu_utilization",
        timestamp: noon, windowSeconds: 60, value: Quantity(0.735)!)

    @Test("v1beta2 MetricValueList is the reference document")
    func v1beta2() throws {
        let list = MetricValueList(version: .v1beta2, items: [Self.podValue])
        #expect(
            try json(list)
                == #"{"apiVersion":"custom.metrics.k8s.io/v1beta2","items":[{"describedObject":{"apiVersion":"/v1","kind":"Pod","name":"web-abc12","namespace":"default"},"metric":{"name":"gpu_utilization","selector":null},"timestamp":"2025-01-01T12:00:00Z","value":"735m","windowSeconds":60}],"kind":"MetricValueList","metadata":{}}"#
        )
        try roundTrip(list, MetricValueList.self)
    }

    @Test("v1beta1 uses metricName, window and an item-level selector")
    func v1beta1() throws {
        let list = MetricValueList(version: .v1beta1, items: [Self.podValue])
        #expect(
            try json(list)
                == #"{"apiVersion":"custom.metrics.k8s.io/v1beta1","items":[{"describedObject":{"apiVersion":"/v1","kind":"Pod","name":"web-abc12","namespace":"default"},"metricName":"gpu_utilization","selector":null,"timestamp":"2025-01-01T12:00:00Z","value":"735m","window":60}],"kind":"MetricValueList","metadata":{}}"#
        )
        try roundTrip(list, MetricValueList.self)
    }

    @Test("a metric selector is written as a metav1.LabelSelector; no window means no field")
    func selectorAndNoWindow() throws {
        let selector = try MetaLabelSelector(LabelSelector(parsing: "gpu=0,model in (h100,mi300x),!mig,x!=y"))
        var value = Self.podValue
        value.selector = selector
        value.windowSeconds = nil
        value.describedObject = .node(name: "node-1")
        value.value = Quantity(12000)!
        let list = MetricValueList(version: .v1beta2, items: [value])
        #expect(
            try json(list)
                == #"{"apiVersion":"custom.metrics.k8s.io/v1beta2","items":[{"describedObject":{"apiVersion":"/v1","kind":"Node","name":"node-1"},"metric":{"name":"gpu_utilization","selector":{"matchExpressions":[{"key":"mig","operator":"DoesNotExist"},{"key":"model","operator":"In","values":["h100","mi300x"]},{"key":"x","operator":"NotIn","values":["y"]}],"matchLabels":{"gpu":"0"}}},"timestamp":"2025-01-01T12:00:00Z","value":"12k"}],"kind":"MetricValueList","metadata":{}}"#
        )
        try roundTrip(list, MetricValueList.self)
        #expect(MetaLabelSelector(.everything) == nil)
        #expect(try MetaLabelSelector(LabelSelector(parsing: "a>1")) == nil)
    }

    @Test("an empty list is still a well-formed document")
    func emptyList() throws {
        #expect(
            try json(MetricValueList(version: .v1beta2, items: []))
                == #"{"apiVersion":"custom.metrics.k8s.io/v1beta2","items":[],"kind":"MetricValueList","metadata":{}}"#)
    }

    @Test("ExternalMetricValueList is the reference document")
    func external() throws {
        let list = ExternalMetricValueList(items: [
            ExternalMetricValue(
                metricName: "queue_depth", metricLabels: ["queue": "jobs"], timestamp: Self.noon, windowSeconds: 60,
                value: Quantity(42)!)
        ])
        #expect(
            try json(list)
                == #"{"apiVersion":"external.metrics.k8s.io/v1beta1","items":[{"metricLabels":{"queue":"jobs"},"metricName":"queue_depth","timestamp":"2025-01-01T12:00:00Z","value":"42","window":60}],"kind":"ExternalMetricValueList","metadata":{}}"#
        )
        try roundTrip(list, ExternalMetricValueList.self)
        let bare = ExternalMetricValueList(items: [ExternalMetricValue(metricName: "q", timestamp: Self.noon, value: .zero)])
        #expect(try json(bare).contains(#""metricLabels":{}"#))
    }

    @Test("decoding refuses the wrong kind or group-version")
    func wrongKind() {
        let doc = #"{"kind":"MetricValueList","apiVersion":"custom.metrics.k8s.io/v1","metadata":{},"items":[]}"#
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(MetricValueList.self, from: Data(doc.utf8)) }
        let other = #"{"kind":"Status","apiVersion":"external.metrics.k8s.io/v1beta1","metadata":{},"items":[]}"#
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(ExternalMetricValueList.self, from: Data(other.utf8))
        }
    }

    @Test("custom discovery: resource/metric names, one scope per resource, sorted")
    func customDiscovery() throws {
        let list = try APIResourceList.customMetrics(
            version: .v1beta2,
            metrics: [
                CustomMetricInfo(groupResource: .pods, metric: "gpu_utilization", namespaced: true),
                CustomMetricInfo(groupResource: .namespaces, metric: "queue_depth", namespaced: false),
                CustomMetricInfo(groupResource: .pods, metric: "gpu_utilization", namespaced: true),
            ])
        #expect(
            try json(list)
                == #"{"apiVersion":"v1","groupVersion":"custom.metrics.k8s.io/v1beta2","kind":"APIResourceList","resources":[{"kind":"MetricValueList","name":"namespaces/queue_depth","namespaced":false,"singularName":"","verbs":["get"]},{"kind":"MetricValueList","name":"pods/gpu_utilization","namespaced":true,"singularName":"","verbs":["get"]}]}"#
        )
        try roundTrip(list, APIResourceList.self)
        #expect(throws: DiscoveryConflictError.self) {
            try APIResourceList.customMetrics(
                version: .v1beta1,
                metrics: [
                    CustomMetricInfo(groupResource: .pods, metric: "a", namespaced: true),
                    CustomMetricInfo(groupResource: .pods, metric: "b", namespaced: false),
                ])
        }
        let apps = try APIResourceList.customMetrics(
            version: .v1beta1,
            metrics: [CustomMetricInfo(groupResource: GroupResource(parsing: "deployments.apps"), metric: "m", namespaced: true)])
        #expect(apps.resources.map(\.name) == ["deployments.apps/m"])
        #expect(apps.groupVersion == "custom.metrics.k8s.io/v1beta1")
    }

    @Test("external discovery: every metric namespaced")
    func externalDiscovery() throws {
        let list = APIResourceList.externalMetrics(["queue_depth", "inference_latency_p95_seconds", "queue_depth"])
        #expect(
            try json(list)
                == #"{"apiVersion":"v1","groupVersion":"external.metrics.k8s.io/v1beta1","kind":"APIResourceList","resources":[{"kind":"ExternalMetricValueList","name":"inference_latency_p95_seconds","namespaced":true,"singularName":"","verbs":["get"]},{"kind":"ExternalMetricValueList","name":"queue_depth","namespaced":true,"singularName":"","verbs":["get"]}]}"#
        )
        #expect(try json(APIResourceList.externalMetrics([])).contains(#""resources":[]"#))
    }

    @Test("APIGroup prefers v1beta2; APIGroupList omits the groups' own kind")
    func groups() throws {
        #expect(
            try json(APIGroup(.custom))
                == #"{"apiVersion":"v1","kind":"APIGroup","name":"custom.metrics.k8s.io","preferredVersion":{"groupVersion":"custom.metrics.k8s.io/v1beta2","version":"v1beta2"},"versions":[{"groupVersion":"custom.metrics.k8s.io/v1beta2","version":"v1beta2"},{"groupVersion":"custom.metrics.k8s.io/v1beta1","version":"v1beta1"}]}"#
        )
        let list = APIGroupList(groups: [APIGroup(.custom), APIGroup(.external)])
        #expect(
            try json(list)
                == #"{"apiVersion":"v1","groups":[{"name":"custom.metrics.k8s.io","preferredVersion":{"groupVersion":"custom.metrics.k8s.io/v1beta2","version":"v1beta2"},"versions":[{"groupVersion":"custom.metrics.k8s.io/v1beta2","version":"v1beta2"},{"groupVersion":"custom.metrics.k8s.io/v1beta1","version":"v1beta1"}]},{"name":"external.metrics.k8s.io","preferredVersion":{"groupVersion":"external.metrics.k8s.io/v1beta1","version":"v1beta1"},"versions":[{"groupVersion":"external.metrics.k8s.io/v1beta1","version":"v1beta1"}]}],"kind":"APIGroupList"}"#
        )
        try roundTrip(list, APIGroupList.self)
        try roundTrip(APIGroup(.external), APIGroup.self)
    }

    @Test(
        "Status documents",
        arguments: [
            (Status.metricNotFound("gpu_utilization", for: .pods),
             #"{"apiVersion":"v1","code":404,"kind":"Status","message":"the server could not find the metric gpu_utilization for pods","metadata":{},"reason":"NotFound","status":"Failure"}"#),
            (Status.metricNotFound("m", for: GroupResource(parsing: "deployments.apps"), named: "web"),
             #"{"apiVersion":"v1","code":404,"kind":"Status","message":"the server could not find the metric m for deployments.apps web","metadata":{},"reason":"NotFound","status":"Failure"}"#),
            (Status.pathNotFound,
             #"{"apiVersion":"v1","code":404,"details":{},"kind":"Status","message":"the server could not find the requested resource","metadata":{},"reason":"NotFound","status":"Failure"}"#),
            (Status.badRequest("invalid labelSelector"),
             #"{"apiVersion":"v1","code":400,"kind":"Status","message":"invalid labelSelector","metadata":{},"reason":"BadRequest","status":"Failure"}"#),
            (Status.unauthorized(),
             #"{"apiVersion":"v1","code":401,"kind":"Status","message":"Unauthorized","metadata":{},"reason":"Unauthorized","status":"Failure"}"#),
            (Status.forbidden(
                user: "system:serviceaccount:kube-system:horizontal-pod-autoscaler", verb: "get",
                group: "custom.metrics.k8s.io", resource: "pods", subresource: "gpu_utilization", namespace: "default",
                name: "*"),
             #"{"apiVersion":"v1","code":403,"details":{"group":"custom.metrics.k8s.io","kind":"pods","name":"*"},"kind":"Status","message":"pods.custom.metrics.k8s.io \"*\" is forbidden: User \"system:serviceaccount:kube-system:horizontal-pod-autoscaler\" cannot get resource \"pods/gpu_utilization\" in API group \"custom.metrics.k8s.io\" in the namespace \"default\"","metadata":{},"reason":"Forbidden","status":"Failure"}"#),
            (Status.forbidden(user: "bob", verb: "get", path: "/apis"),
             #"{"apiVersion":"v1","code":403,"details":{},"kind":"Status","message":"forbidden: User \"bob\" cannot get path \"/apis\"","metadata":{},"reason":"Forbidden","status":"Failure"}"#),
            (Status.internalError("prometheus: connection refused"),
             #"{"apiVersion":"v1","code":500,"details":{"causes":[{"message":"prometheus: connection refused"}]},"kind":"Status","message":"Internal error occurred: prometheus: connection refused","metadata":{},"reason":"InternalError","status":"Failure"}"#),
        ]
    )
    func status(status: Status, expected: String) throws {
        #expect(try json(status) == expected)
        try roundTrip(status, Status.self)
    }

    @Test(
        "RFC 3339: UTC, Z, whole seconds (truncated)",
        arguments: [
            (0.0, "1970-01-01T00:00:00Z"), (1_735_732_800, "2025-01-01T12:00:00Z"),
            (1_735_732_800.999, "2025-01-01T12:00:00Z"), (951_782_400, "2000-02-29T00:00:00Z"),
            (-1, "1969-12-31T23:59:59Z"), (-0.5, "1969-12-31T23:59:59Z"), (253_402_300_799, "9999-12-31T23:59:59Z"),
            (4_107_542_400, "2100-03-01T00:00:00Z"),
        ]
    )
    func rfc3339(seconds: Double, expected: String) {
        #expect(RFC3339.string(from: Date(timeIntervalSince1970: seconds)) == expected)
        #expect(RFC3339.date(from: expected) == Date(timeIntervalSince1970: seconds.rounded(.down)))
    }

    @Test("RFC 3339 parsing takes offsets and fractions, refuses the malformed")
    func rfc3339Parsing() {
        #expect(RFC3339.date(from: "2025-01-01T13:00:00+01:00") == Self.noon)
        #expect(RFC3339.date(from: "2025-01-01T07:30:00-04:30") == Self.noon)
        #expect(RFC3339.date(from: "2025-01-01T12:00:00.5Z") == Self.noon.addingTimeInterval(0.5))
        for bad in ["", "2025-01-01", "2025-01-01 12:00:00Z", "2025-13-01T12:00:00Z", "2025-02-29T12:00:00Z",
                    "2025-01-01T24:00:00Z", "2025-01-01T12:00:00", "2025-01-01T12:00:00.Z", "2025-01-01T12:00:00+0100"] {
            #expect(RFC3339.date(from: bad) == nil, "\(bad)")
        }
    }

    @Test("property: timestamps round-trip at second precision")
    func propertyTimestamps() {
        var random = SeededRandom(seed: 0x71AE)
        for _ in 0..<5_000 {
            let seconds = Double(Int64.random(in: -62_135_596_800...253_402_300_799, using: &random))
            let date = Date(timeIntervalSince1970: seconds)
            let text = RFC3339.string(from: date)
            #expect(RFC3339.date(from: text) == date, "\(text)")
        }
    }
}
