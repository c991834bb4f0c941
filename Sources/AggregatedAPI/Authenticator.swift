import ConfigYAML
public import AdapterStore
public import HTTPServer
import Synchronization

/// The leaf certificate's identity after its chain verified against one CA bundle.
public struct VerifiedClient: Sendable, Hashable {
    /// The leaf's subject CN: a front proxy's name, or the user name for `--client-ca-file` certificates.
    public var commonName: String
    /// The leaf's subject O values: the user's groups for `--client-ca-file` certificates.
    public var organizations: [String]

    /// Memberwise.
    public init(commonName: String, organizations: [String]) {
        self.commonName = commonName
        self.organizations = organizations
    }
}

/// Verifies a client certificate chain (DER, leaf first) against one CA bundle: the requestheader CA or
/// `--client-ca-file`. Implemented over GnuTLS by the HTTP server module; tests use fakes.
public protocol ClientCertificateVerifier: Sendable {
    /// The leaf's identity, or an error saying why the chain is refused (unknown CA, expired, wrong key usage).
    func verify(chain: [[UInt8]]) throws -> VerifiedClient
}

/// Front-proxy (requestheader) settings, from `kube-system/extension-apiserver-authentication` or the flags.
public struct RequestHeaderSettings: Sendable {
    /// The front proxy's CA; nil: no front proxy is trusted and the header settings are ignored.
    public var verifier: (any ClientCertificateVerifier)?
    /// Common names the proxy's certificate may have; empty accepts any certificate from the CA.
    public var allowedNames: [String]
    /// Tried in order; the first non-empty one names the user.
    public var usernameHeaders: [String]
    /// Every value of every one of these headers is a group.
    public var groupHeaders: [String]
    /// Headers with one of these prefixes carry extra attributes, keyed by the rest of their name.
    public var extraHeaderPrefixes: [String]

    /// The header defaults are the API server's.
    public init(
        verifier: (any ClientCertificateVerifier)?, allowedNames: [String] = [],
        usernameHeaders: [String] = ["X-Remote-User"], groupHeaders: [String] = ["X-Remote-Group"],
        extraHeaderPrefixes: [String] = ["X-Remote-Extra-"]
    ) {
        self.verifier = verifier
        self.allowedNames = allowedNames
        self.usernameHeaders = usernameHeaders
        self.groupHeaders = groupHeaders
        self.extraHeaderPrefixes = extraHeaderPrefixes
    }
}

/// Checks bearer tokens (TokenReview through the API server in production).
public protocol TokenReviewer: Sendable {
    /// The token's user, or nil when the API server says it is not authenticated. Throws when it cannot ask.
    func review(token: String) async throws -> UserInfo?
}

/// What authentication concluded.
public enum AuthenticationResult: Sendable, Equatable {
    case authenticated(UserInfo)
    /// 401 with this reason (never echoing a credential).
    case unauthenticated(String)
    /// The API server could not be asked: 401 too (as the API server does), but logged as an error.
    case failed(String)
}

/// The API server's authentication chain for an aggregated server: a trusted front proxy's headers, a client
/// certificate from `--client-ca-file`, or a bearer token through TokenReview — in that order.
public final class Authenticator: Sendable {
    private let settings: Mutex<RequestHeaderSettings>
    private let clientCA: Mutex<(any ClientCertificateVerifier)?>
    private let tokens: (any TokenReviewer)?
    private let cache: TTLCache<String, UserInfo?>

    /// Successful and refused token reviews are cached for `cacheSeconds` (at most 4096 tokens); `clock` is
    /// monotonic seconds. Errors are not cached.
    public init(
        requestHeader: RequestHeaderSettings, clientCA: (any ClientCertificateVerifier)?, tokens: (any TokenReviewer)?,
        cacheSeconds: Double = 10, clock: @escaping @Sendable () -> Double = { monotonicSeconds() }
    ) {
        settings = Mutex(requestHeader)
        self.clientCA = Mutex(clientCA)
        self.tokens = tokens
        cache = TTLCache(ttl: cacheSeconds, capacity: 4096, clock: clock)
    }

    /// New front-proxy settings (the ConfigMap changed).
    public func update(requestHeader: RequestHeaderSettings) {
        settings.withLock { $0 = requestHeader }
    }

    /// A new client CA from the cluster ConfigMap (unless `--client-ca-file` fixed it); nil stops accepting client
    /// certificates as users.
    public func update(clientCA verifier: (any ClientCertificateVerifier)?) {
        clientCA.withLock { $0 = verifier }
    }

    /// `peerChain`: the TLS client's certificate chain (DER, leaf first), nil without one.
    public func authenticate(_ request: HTTPRequest, peerChain: [[UInt8]]?) async -> AuthenticationResult {
        let settings = self.settings.withLock { $0 }
        if let chain = peerChain, !chain.isEmpty {
            // 1. A front proxy: its certificate chains to the requestheader CA and has an allowed name.
            if let verifier = settings.verifier, let proxy = try? verifier.verify(chain: chain) {
                guard settings.allowedNames.isEmpty || settings.allowedNames.contains(proxy.commonName) else {
                    return .unauthenticated(
                        "client certificate CN \"\(proxy.commonName)\" is not an allowed requestheader name")
                }
                guard let user = Self.headerUser(request, settings) else {
                    return .unauthenticated("front-proxy request without a user header")
                }
                return .authenticated(user)
            }
            // 2. A client certificate from --client-ca-file: user = CN, groups = O.
            if let verifier = clientCA.withLock({ $0 }) {
                do {
                    let client = try verifier.verify(chain: chain)
                    return .authenticated(UserInfo(name: client.commonName, groups: client.organizations))
                } catch {
                    return .unauthenticated("client certificate refused: \(error)")
                }
            }
        }
        // 3. A bearer token.
        if let header = request.header("Authorization"), header.count > 7,
            header.prefix(7).lowercased() == "bearer "
        {
            let token = String(header.dropFirst(7)).trimmingASCIISpace()
            guard !token.isEmpty, let tokens else { return .unauthenticated("bearer tokens are not accepted") }
            if let cached = cache[token] {
                return cached.map(AuthenticationResult.authenticated) ?? .unauthenticated("token not authenticated")
            }
            do {
                let user = try await tokens.review(token: token)
                cache[token] = .some(user)
                return user.map(AuthenticationResult.authenticated) ?? .unauthenticated("token not authenticated")
            } catch {
                return .failed("TokenReview failed: \(error)")
            }
        }
        return .unauthenticated("no client certificate or bearer token")
    }

    /// User, groups and extras from the front proxy's headers (Kubernetes' requestheader rules).
    package static func headerUser(_ request: HTTPRequest, _ settings: RequestHeaderSettings) -> UserInfo? {
        var name: String?
        for header in settings.usernameHeaders {
            if let value = request.header(header), !value.isEmpty {
                name = value
                break
            }
        }
        guard let name else { return nil }
        var groups: [String] = []
        var extra: [String: [String]] = [:]
        for (headerName, value) in request.headers {
            if settings.groupHeaders.contains(where: { $0.caseInsensitiveEquals(headerName) }) {
                groups.append(value)
                continue
            }
            for prefix in settings.extraHeaderPrefixes where headerName.count > prefix.count
                && String(headerName.prefix(prefix.count)).caseInsensitiveEquals(prefix)
            {
                // `X-Remote-Extra-<key>`: the key is lowercased and percent-decoded.
                let rawKey = String(headerName.dropFirst(prefix.count)).lowercased()
                let key = PercentEncoding.decode(rawKey) ?? rawKey
                extra[key, default: []].append(value)
            }
        }
        return UserInfo(name: name, groups: groups, extra: extra)
    }

    /// The request without the headers that carry identity, so nothing downstream can read a forged one.
    package func strippingIdentityHeaders(_ request: HTTPRequest) -> HTTPRequest {
        let settings = self.settings.withLock { $0 }
        var copy = request
        copy.headers.removeAll { Self.isIdentityHeader($0.name, settings) }
        return copy
    }

    /// Every header that carries identity, to strip before anything else sees the request.
    package static func isIdentityHeader(_ name: String, _ settings: RequestHeaderSettings) -> Bool {
        settings.usernameHeaders.contains { $0.caseInsensitiveEquals(name) }
            || settings.groupHeaders.contains { $0.caseInsensitiveEquals(name) }
            || settings.extraHeaderPrefixes.contains { String(name.prefix($0.count)).caseInsensitiveEquals($0) }
    }
}
