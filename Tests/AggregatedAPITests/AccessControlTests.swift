import AccelMetricsTesting
@testable import AdapterStore
@testable import AggregatedAPI
import HTTPServer
import Logging
import Synchronization
import Testing

/// Fake CA: a "chain" is the UTF-8 of `<ca>/<CN>/<O>,<O>`; it verifies when `<ca>` is this CA's name.
struct FakeCA: ClientCertificateVerifier {
    var name: String
    struct Refused: Error, CustomStringConvertible { var description: String }
    func verify(chain: [[UInt8]]) throws -> VerifiedClient {
        let parts = String(decoding: chain[0], as: UTF8.self).split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == name else { throw Refused(description: "signed by an unknown authority") }
        return VerifiedClient(commonName: String(parts[1]), organizations: parts[2].split(separator: ",").map(String.init))
    }
    static func chain(_ ca: String, _ cn: String, _ orgs: [String] = []) -> [[UInt8]] {
        [Array("\(ca)/\(cn)/\(orgs.joined(separator: ","))".utf8)]
    }
}

/// Records every review and answers from a table.
final class RecordingReviewer: AccessReviewer, TokenReviewer {
    let reviews = Mutex<[(UserInfo, RequestAttributes)]>([])
    let tokenReviews = Mutex<Int>(0)
    let allowedUsers: Set<String>
    let tokens: [String: UserInfo]

    init(allowedUsers: Set<String>, tokens: [String: UserInfo] = [:]) {
        self.allowedUsers = allowedUsers
        self.tokens = tokens
    }

    func review(user: UserInfo, attributes: RequestAttributes) async throws -> (allowed: Bool, reason: String) {
        reviews.withLock { $0.append((user, attributes)) }
        return allowedUsers.contains(user.name) ? (true, "") : (false, "no RBAC rule")
    }

    func review(token: String) async throws -> UserInfo? {
        tokenReviews.withLock { $0 += 1 }
        return tokens[token]
    }
}

@Suite struct AccessControlTests {
    static let podsPath = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/pods/%2A/gpu_utilization"

    @Test func attributesFollowTheAPIServersRequestInfo() {
        let pods = RequestAttributes.of(method: "GET", path: Self.podsPath, query: "labelSelector=app%3Dx")
        #expect(pods == .resource(.init(verb: "get", group: "custom.metrics.k8s.io", version: "v1beta2", resource: "pods",
                                          subresource: "gpu_utilization", name: "*", namespace: "ml")))
        let node = RequestAttributes.of(method: "GET", path: "/apis/custom.metrics.k8s.io/v1beta1/nodes/n1/gpu_power_watts", query: "")
        #expect(node == .resource(.init(verb: "get", group: "custom.metrics.k8s.io", version: "v1beta1", resource: "nodes",
                                          subresource: "gpu_power_watts", name: "n1")))
        // The Namespace object's metric, as RequestInfo reads it: `metrics` named `m` in namespace `ml` (issue 15,
        // case 7: these were `namespaces`/`ml` with subresource `m`, which the API server never asks about).
        let namespace = RequestAttributes.of(method: "GET", path: "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/metrics/m", query: "")
        #expect(namespace == .resource(.init(verb: "get", group: "custom.metrics.k8s.io", version: "v1beta2", resource: "metrics",
                                               name: "m", namespace: "ml")))
        let rootForm = RequestAttributes.of(method: "GET", path: "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml/m", query: "")
        #expect(rootForm == .resource(.init(verb: "list", group: "custom.metrics.k8s.io", version: "v1beta2", resource: "m",
                                              namespace: "ml")))
        let external = RequestAttributes.of(method: "GET", path: "/apis/external.metrics.k8s.io/v1beta1/namespaces/ml/queue", query: "")
        #expect(external == .resource(.init(verb: "list", group: "external.metrics.k8s.io", version: "v1beta1", resource: "queue",
                                              namespace: "ml")))
        #expect(RequestAttributes.of(method: "GET", path: "/apis/custom.metrics.k8s.io/v1beta2", query: "")
                == .nonResource(path: "/apis/custom.metrics.k8s.io/v1beta2", verb: "get"))
        #expect(RequestAttributes.of(method: "GET", path: "/metrics", query: "") == .nonResource(path: "/metrics", verb: "get"))
    }

    func authenticator(allowed: [String] = ["front-proxy-client"], tokens: (any TokenReviewer)? = nil,
                       clock: @escaping @Sendable () -> Double = { 0 }) -> Authenticator {
        Authenticator(
            requestHeader: RequestHeaderSettings(verifier: FakeCA(name: "proxy-ca"), allowedNames: allowed),
            clientCA: FakeCA(name: "client-ca"), tokens: tokens, clock: clock)
    }

    func request(_ headers: [(String, String)] = []) -> HTTPRequest {
        HTTPRequest(method: "GET", path: Self.podsPath, headers: headers.map { (name: $0.0, value: $0.1) })
    }

    @Test func frontProxyHeadersNeedATrustedProxyCertificate() async {
        let headers = [("X-Remote-User", "system:serviceaccount:kube-system:horizontal-pod-autoscaler"),
                       ("X-Remote-Group", "system:serviceaccounts"), ("X-Remote-Group", "system:authenticated"),
                       ("X-Remote-Extra-Authentication.kubernetes.io%2fpod-name", "hpa-0"),
                       ("X-Remote-Extra-Scopes", "a"), ("X-Remote-Extra-Scopes", "b")]
        let trusted = await authenticator().authenticate(request(headers), peerChain: FakeCA.chain("proxy-ca", "front-proxy-client"))
        #expect(trusted == .authenticated(UserInfo(
            name: "system:serviceaccount:kube-system:horizontal-pod-autoscaler",
            groups: ["system:serviceaccounts", "system:authenticated"],
            extra: ["authentication.kubernetes.io/pod-name": ["hpa-0"], "scopes": ["a", "b"]])))

        // The right CA but a name outside requestheader-allowed-names.
        let wrongName = await authenticator().authenticate(request(headers), peerChain: FakeCA.chain("proxy-ca", "someone-else"))
        #expect(wrongName == .unauthenticated("client certificate CN \"someone-else\" is not an allowed requestheader name"))
        // Any name when the list is empty.
        let anyName = await authenticator(allowed: []).authenticate(request(headers), peerChain: FakeCA.chain("proxy-ca", "someone-else"))
        #expect(anyName != .unauthenticated("no client certificate or bearer token"))
        // Headers without a proxy certificate are ignored: no identity.
        let forged = await authenticator().authenticate(request(headers), peerChain: nil)
        #expect(forged == .unauthenticated("no client certificate or bearer token"))
        // A certificate from another CA is refused.
        let stranger = await authenticator().authenticate(request(headers), peerChain: FakeCA.chain("evil-ca", "front-proxy-client"))
        #expect(stranger == .unauthenticated("client certificate refused: signed by an unknown authority"))
    }

    @Test func clientCertificatesFromTheClientCA() async {
        let result = await authenticator().authenticate(request(), peerChain: FakeCA.chain("client-ca", "alice", ["dev", "ops"]))
        #expect(result == .authenticated(UserInfo(name: "alice", groups: ["dev", "ops"])))
    }

    @Test func bearerTokensAreReviewedOnceAndCached() async {
        let reviewer = RecordingReviewer(allowedUsers: [], tokens: ["good": UserInfo(name: "bob", uid: "u1", groups: ["g"])])
        let clock = TestClock(0)
        let auth = authenticator(tokens: reviewer, clock: { clock.now })
        for _ in 0..<3 {
            let result = await auth.authenticate(request([("Authorization", "Bearer good")]), peerChain: nil)
            #expect(result == .authenticated(UserInfo(name: "bob", uid: "u1", groups: ["g"])))
        }
        let bad = await auth.authenticate(request([("Authorization", "Bearer bad")]), peerChain: nil)
        #expect(bad == .unauthenticated("token not authenticated"))
        #expect(reviewer.tokenReviews.withLock { $0 } == 2)
        clock.advance(11)
        _ = await auth.authenticate(request([("Authorization", "Bearer good")]), peerChain: nil)
        #expect(reviewer.tokenReviews.withLock { $0 } == 3)
    }

    @Test func identityHeadersAreStripped() {
        let stripped = authenticator().strippingIdentityHeaders(request([("X-Remote-User", "x"), ("x-remote-group", "g"),
                                                                       ("X-Remote-Extra-Foo", "1"), ("Accept", "application/json")]))
        #expect(stripped.headers.map(\.name) == ["Accept"])
    }

    @Test func authorizationIsDelegatedAndCached() async throws {
        let reviewer = RecordingReviewer(allowedUsers: ["hpa"])
        let clock = TestClock(0)
        let authorizer = Authorizer(reviewer: reviewer, clock: { clock.now })
        let attributes = RequestAttributes.of(method: "GET", path: Self.podsPath, query: "")
        let hpa = UserInfo(name: "hpa", groups: ["system:serviceaccounts"])
        #expect(try await authorizer.authorize(hpa, attributes).allowed)
        #expect(try await authorizer.authorize(hpa, attributes).allowed)
        let mallory = UserInfo(name: "mallory")
        #expect(try await !authorizer.authorize(mallory, attributes).allowed)
        #expect(try await !authorizer.authorize(mallory, attributes).allowed)
        #expect(reviewer.reviews.withLock { $0.count } == 2)  // allow and deny both cached
        clock.advance(11)
        _ = try await authorizer.authorize(hpa, attributes)
        #expect(reviewer.reviews.withLock { $0.count } == 3)
        // system:masters needs no review.
        #expect(try await authorizer.authorize(UserInfo(name: "admin", groups: ["system:masters"]), attributes).allowed)
        #expect(reviewer.reviews.withLock { $0.count } == 3)
    }

    @Test func accessControlAnswers401And403AndLeavesHealthOpen() async {
        let reviewer = RecordingReviewer(allowedUsers: ["hpa"])
        let control = AccessControl(
            authenticator: authenticator(), authorizer: Authorizer(reviewer: reviewer), metrics: AdapterMetrics(),
            logger: Logger(label: "test"))
        let (_, health) = await control.check(HTTPRequest(method: "GET", path: "/readyz"), peerChain: nil)
        #expect(health == nil)
        let (_, anonymous) = await control.check(request(), peerChain: nil)
        #expect(anonymous?.status == 401)
        let proxy = FakeCA.chain("proxy-ca", "front-proxy-client")
        let (_, denied) = await control.check(request([("X-Remote-User", "mallory")]), peerChain: proxy)
        #expect(denied?.status == 403)
        let deniedBody = denied.map { String(decoding: $0.body.bytes, as: UTF8.self) } ?? ""
        #expect(deniedBody.contains(#"User \"mallory\" cannot get resource \"pods/gpu_utilization\" in API group \"custom.metrics.k8s.io\" in the namespace \"ml\""#))
        let (passed, allowed) = await control.check(request([("X-Remote-User", "hpa"), ("X-Remote-Group", "g")]), peerChain: proxy)
        #expect(allowed == nil)
        #expect(passed.header("X-Remote-User") == nil)
        let recorded = reviewer.reviews.withLock { $0.last }
        #expect(recorded?.0 == UserInfo(name: "hpa", groups: ["g"]))
    }
}
