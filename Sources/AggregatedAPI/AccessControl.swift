public import AdapterStore
import CustomMetricsAPI
public import HTTPServer
public import Logging

/// Authentication and delegated authorization in front of ``APIHandler``, as the generic API server library
/// does for an aggregated API: health paths are open; everything else needs a known user whom the API server
/// allows (SubjectAccessReview).
public struct AccessControl: Sendable {
    /// Runs first for every path that is not open.
    public let authenticator: Authenticator
    /// Nil: every authenticated user may do everything (`--authorization-mode=AlwaysAllow`).
    public let authorizer: Authorizer?
    /// Counts each authentication and authorization by result.
    public let metrics: AdapterMetrics
    /// Authentication refusals at debug level, failures to ask the API server as errors.
    public let logger: Logger

    /// Memberwise; the adapter makes one for its HTTPS server.
    public init(authenticator: Authenticator, authorizer: Authorizer?, metrics: AdapterMetrics, logger: Logger) {
        self.authenticator = authenticator
        self.authorizer = authorizer
        self.metrics = metrics
        self.logger = logger
    }

    /// Paths answered without authentication: the kubelet's probes carry no credentials.
    public static func isOpen(_ path: String) -> Bool {
        APIHandler.kind(ofPath: path) == .health
    }

    /// nil when `handler` may answer `request` (with the identity headers stripped); else the refusal.
    public func check(_ request: HTTPRequest, peerChain: [[UInt8]]?) async -> (HTTPRequest, HTTPResponse?) {
        if Self.isOpen(request.path) { return (authenticator.strippingIdentityHeaders(request), nil) }
        let user: UserInfo
        switch await authenticator.authenticate(request, peerChain: peerChain) {
        case .authenticated(let who):
            metrics.observeAuthentication(result: "success")
            user = who
        case .unauthenticated(let reason):
            metrics.observeAuthentication(result: "failure")
            logger.debug("request not authenticated", metadata: ["path": "\(request.path)", "reason": "\(reason)"])
            return (request, APIHandler.status(Status.unauthorized()))
        case .failed(let reason):
            metrics.observeAuthentication(result: "error")
            logger.error("authentication failed", metadata: ["path": "\(request.path)", "error": "\(reason)"])
            return (request, APIHandler.status(Status.unauthorized()))
        }
        let stripped = authenticator.strippingIdentityHeaders(request)
        guard let authorizer else { return (stripped, nil) }
        let attributes = RequestAttributes.of(method: request.method, path: request.rawPath, query: request.query)
        do {
            let decision = try await authorizer.authorize(user, attributes)
            guard decision.allowed else {
                metrics.observeAuthorization(result: "denied")
                return (stripped, APIHandler.status(Self.forbidden(user: user, attributes: attributes, reason: decision.reason)))
            }
            metrics.observeAuthorization(result: "allowed")
            return (stripped, nil)
        } catch {
            metrics.observeAuthorization(result: "error")
            logger.error("authorization failed", metadata: ["path": "\(request.path)", "error": "\(error)"])
            return (stripped, APIHandler.status(Status.internalError("authorization failed: \(error)")))
        }
    }

    static func forbidden(user: UserInfo, attributes: RequestAttributes, reason: String) -> Status {
        switch attributes {
        case .resource(let resource):
            Status.forbidden(
                user: user.name, verb: resource.verb, group: resource.group, resource: resource.resource,
                subresource: resource.subresource, namespace: resource.namespace,
                name: resource.name == "*" ? "" : resource.name, reason: reason)
        case .nonResource(let path, let verb):
            Status.forbidden(user: user.name, verb: verb, path: path, reason: reason)
        }
    }
}

extension APIHandler {
    /// A handler for the HTTP server that runs `access` first, off the HTTP worker threads.
    ///
    /// The access check may ask the API server (a TokenReview or SubjectAccessReview on a cache miss). The request
    /// is deferred (``HTTPResponse/later(_:)``: libmicrohttpd suspends the connection and the worker thread goes
    /// back to serving), the check runs as a task, and the answer comes when it ends or at `deadlineSeconds`,
    /// whichever is first (then 503). Health paths are answered at once, without a check. At most `maxPending`
    /// checks run at once; past that a request gets 503 at once, so a stalled API server costs bounded memory.
    /// Answers are cached ~10 s, so steady HPA traffic rarely asks the API server.
    public func guarded(by access: AccessControl, maxPending: Int = 256, deadlineSeconds: Double = 5) -> @Sendable (HTTPRequest) -> HTTPResponse {
        let handler = self
        let gate = WaitingGate(limit: maxPending)
        return { request in
            let started = monotonicSeconds()
            if AccessControl.isOpen(request.path) {
                return handler.respond(to: access.authenticator.strippingIdentityHeaders(request))
            }
            @Sendable func refuse(_ response: HTTPResponse) -> HTTPResponse {
                handler.metrics.observeRequest(
                    kind: APIHandler.kind(ofPath: request.path).rawValue, code: response.status, seconds: monotonicSeconds() - started)
                return response
            }
            guard gate.enter() else {
                access.logger.warning("request refused: too many requests wait for the API server", metadata: ["path": "\(request.path)"])
                return refuse(APIHandler.status(Status.serviceUnavailable("too many requests are waiting for the API server; retry")))
            }
            return .later { responder in
                DispatchQueue.global().asyncAfter(deadline: .now() + deadlineSeconds) {
                    let late = APIHandler.status(Status.serviceUnavailable("the API server did not answer in \(deadlineSeconds) s; retry"))
                    if responder.respond(late) {
                        _ = refuse(late)
                        access.logger.error("request refused: the API server did not answer its review in time", metadata: ["path": "\(request.path)"])
                    }
                }
                Task {
                    let (checked, refusal) = await access.check(request, peerChain: request.peerCertificates)
                    // The review is over (answered, failed or timed out on its own deadline): its slot is free.
                    gate.leave()
                    responder.respond(refusal.map(refuse) ?? handler.respond(to: checked))
                }
            }
        }
    }
}

/// Counts the access checks in progress; refuses past `limit`, never blocks.
final class WaitingGate: Sendable {
    private let waiting = Atomic<Int>(0)
    private let limit: Int

    init(limit: Int) { self.limit = max(1, limit) }

    func enter() -> Bool {
        if waiting.add(1, ordering: .acquiring).newValue <= limit { return true }
        waiting.subtract(1, ordering: .releasing)
        return false
    }

    func leave() { waiting.subtract(1, ordering: .releasing) }
}


import Dispatch
import Synchronization
