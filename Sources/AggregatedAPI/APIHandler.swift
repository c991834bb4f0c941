public import AdapterStore
public import CustomMetricsAPI
import Exposition
public import HTTPServer
import Synchronization

/// Who is asking, once authentication has run.
public struct UserInfo: Sendable, Hashable {
    /// The user name: a front proxy's user header, a client certificate's CN, or TokenReview's `username`.
    public var name: String
    /// Empty when the source gives none.
    public var uid: String
    /// A front proxy's group headers, a certificate's O fields, or TokenReview's groups.
    public var groups: [String]
    /// Extra attributes (front-proxy `X-Remote-Extra-*` headers, TokenReview's `extra`), passed on to
    /// SubjectAccessReview.
    public var extra: [String: [String]]

    /// Memberwise; ``Authenticator`` makes these.
    public init(name: String, uid: String = "", groups: [String] = [], extra: [String: [String]] = [:]) {
        self.name = name
        self.uid = uid
        self.groups = groups
        self.extra = extra
    }
}

/// The HTTP face of the adapter: health, OpenAPI, its own metrics, discovery and the metrics API. Every answer is
/// JSON (`metav1.Status` for errors) even when the client prefers protobuf.
public struct APIHandler: Sendable {
    /// Answers the metrics reads and discovery.
    public let api: MetricsAPI
    /// Counts every request by kind and status, and is served on `/metrics`.
    public let metrics: AdapterMetrics
    /// Whether `external.metrics.k8s.io` is served (KEDA may own that APIService).
    public let servesExternal: Bool
    /// What `/readyz` waits for (e.g. the front proxy's settings from the cluster).
    public let readiness: ReadinessGate

    /// One handler serves both the secure and the insecure port.
    public init(api: MetricsAPI, metrics: AdapterMetrics, servesExternal: Bool, readiness: ReadinessGate = ReadinessGate()) {
        self.api = api
        self.metrics = metrics
        self.servesExternal = servesExternal
        self.readiness = readiness
    }

    /// What a request is, for metrics, authorization and logs.
    public enum Kind: String, Sendable {
        case health, openapi, metrics, discovery, custom, external, other
    }

    /// From the path alone: health and `/metrics` paths, `/openapi/…`, `/apis` and each group's top two levels are
    /// discovery, deeper group paths are reads; anything else is `other`.
    public static func kind(ofPath path: String) -> Kind {
        switch path {
        case "/healthz", "/livez", "/readyz": return .health
        case "/metrics": return .metrics
        default: break
        }
        if path.hasPrefix("/healthz/") || path.hasPrefix("/livez/") || path.hasPrefix("/readyz/") { return .health }
        if path.hasPrefix("/openapi/") { return .openapi }
        if path == "/apis" || path == "/apis/" { return .discovery }
        for group in MetricsAPIGroup.allCases {
            let prefix = "/apis/\(group.rawValue)"
            guard path.hasPrefix(prefix) else { continue }
            // /apis/{g} and /apis/{g}/{v} are discovery; deeper paths are reads.
            let depth = path.dropFirst(prefix.count).split(separator: "/").count
            if depth <= 1 { return .discovery }
            return group == .external ? .external : .custom
        }
        return .other
    }

    /// Answers an authenticated, authorized request (or one to a path that needs neither).
    public func respond(to request: HTTPRequest) -> HTTPResponse {
        let started = monotonicSeconds()
        let kind = Self.kind(ofPath: request.path)
        let response = answer(request, kind: kind)
        metrics.observeRequest(kind: kind.rawValue, code: response.status, seconds: monotonicSeconds() - started)
        return response
    }

    private func answer(_ request: HTTPRequest, kind: Kind) -> HTTPResponse {
        switch kind {
        case .health:
            guard request.path.hasPrefix("/readyz") else { return .text("ok") }
            let pending = readiness.pending
            guard pending.isEmpty else {
                return .text(pending.map { "[-]\($0) failed: not loaded yet" }.joined(separator: "\n") + "\nreadyz check failed", status: 500)
            }
            return .text("ok")
        case .openapi:
            return openAPI(request.path)
        case .metrics:
            let format = ExpositionFormat.negotiate(accept: request.header("Accept"))
            var buffer: [UInt8] = []
            ExpositionEncoder.encode(metrics.families(store: api.store), format: format, into: &buffer)
            return HTTPResponse(contentType: format.contentType, body: ResponseBody(buffer))
        case .other:
            return Self.status(Status.pathNotFound)
        case .discovery, .custom, .external:
            break
        }
        do throws(Status) {
            let route = try MetricsRoute(path: request.rawPath, query: request.query)
            switch route {
            case .groupList:
                let groups = MetricsAPIGroup.allCases.filter { servesExternal || $0 != .external }.map(APIGroup.init)
                return Self.json(APIGroupList(groups: groups))
            case .group(let group):
                guard servesExternal || group != .external else { throw Status.pathNotFound }
                return Self.json(APIGroup(group))
            case .resourceList(.external, _):
                guard servesExternal else { throw Status.pathNotFound }
                return Self.json(api.externalResources())
            case .resourceList(_, let version):
                return Self.json(api.customResources(version: version))
            case .custom(let read):
                return Self.json(try api.answer(read))
            case .external(let read):
                guard servesExternal else { throw Status.pathNotFound }
                return Self.json(try api.answer(read))
            }
        } catch {
            return Self.status(error)
        }
    }

    /// A `metav1.Status` answer with the status's own code.
    public static func status(_ status: Status) -> HTTPResponse {
        json(status, code: status.code)
    }

    static func json(_ value: some Encodable, code: Int = 200) -> HTTPResponse {
        do {
            let bytes = try APIJSON.encode(value, sortedKeys: true)
            return HTTPResponse(status: code, contentType: "application/json", body: ResponseBody(bytes))
        } catch {
            let fallback = #"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"encoding failed","reason":"InternalError","code":500}"#
            return HTTPResponse(status: 500, contentType: "application/json", body: ResponseBody(string: fallback))
        }
    }

    private func openAPI(_ path: String) -> HTTPResponse {
        switch path {
        case "/openapi/v2":
            return HTTPResponse(contentType: "application/json", body: OpenAPIDocuments.v2)
        case "/openapi/v3":
            return HTTPResponse(contentType: "application/json", body: OpenAPIDocuments.v3Index)
        default:
            return Self.status(Status.pathNotFound)
        }
    }
}

/// Named conditions `/readyz` waits for; each is cleared once, when it holds.
public final class ReadinessGate: Sendable {
    private let waiting = Mutex<Set<String>>([])

    /// Nothing required: `/readyz` passes until a condition is required.
    public init() {}

    /// Makes `/readyz` fail, naming `name`, until ``satisfy(_:)``.
    public func require(_ name: String) { waiting.withLock { _ = $0.insert(name) } }
    /// Clears `name` for good; satisfying one never required is harmless. Safe from any thread.
    public func satisfy(_ name: String) { waiting.withLock { _ = $0.remove(name) } }
    /// The conditions still waited for, sorted; `/readyz` lists them.
    public var pending: [String] { waiting.withLock { $0.sorted() } }
}

/// Minimal, valid OpenAPI documents: the aggregator downloads them from every APIService and logs an error on
/// every attempt when they are missing.
enum OpenAPIDocuments {
    static let v2 = ResponseBody(
        string: #"{"swagger":"2.0","info":{"title":"accel-metrics-adapter","version":"v1"},"paths":{},"definitions":{}}"#)
    /// The v3 index: no group-version documents are published (the API is read through discovery).
    static let v3Index = ResponseBody(string: #"{"paths":{}}"#)
}


#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
