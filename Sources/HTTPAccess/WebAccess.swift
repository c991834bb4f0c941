import CCrypt
import ConfigYAML
public import HTTPServer
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Checks requests against a ``WebConfig``: client certificates, then basic auth. Successful bcrypt checks are
/// cached (bcrypt is slow on purpose, and Prometheus sends the same credentials every scrape); failures are not.
/// Uncached checks go through a ``LoginGuard``: bounded in number at once, refused for an address that keeps failing;
/// the exporter runs them off its HTTP worker threads (``Decision/verify(_:)``).
public final class WebAccess: Sendable {
    /// Its ``WebConfig/headers`` go on every answer the checks let through.
    public let config: WebConfig
    private let authority: CertificateAuthority?
    private let loginGuard: LoginGuard
    private let verified = Mutex<[String: String]>([:])  // user → the password's bcrypt result that matched

    /// Throws when `config`'s client CA PEM does not parse. The exporter makes a new one on each web configuration
    /// reload and passes the same `loginGuard`, so failure counts survive reloads.
    public init(config: WebConfig, loginGuard: LoginGuard = LoginGuard()) throws {
        self.config = config
        self.loginGuard = loginGuard
        authority = try config.clientCAPEM.map { try CertificateAuthority(pem: $0) }
    }

    /// What ``check(_:)`` decides without a bcrypt run.
    public enum Decision {
        case allowed
        case refused(HTTPResponse)
        /// Admitted by the login guard: run ``verify(_:)`` off the HTTP worker thread (it calls bcrypt).
        case verify(Login)
    }

    /// Credentials admitted to a bcrypt run: opaque, made by ``check(_:)`` and consumed by ``verify(_:)``.
    public struct Login: Sendable {
        let user: String
        let password: String
        let hash: String?
        let address: String
        let challenge: HTTPResponse
    }

    /// The checks that need no bcrypt run: client certificates, the header, cached credentials, the login guard.
    public func check(_ request: HTTPRequest) -> Decision {
        switch config.clientAuth {
        case .noClientCert, .requestClientCert:
            break
        case .requireAnyClientCert:
            guard request.peerCertificates != nil else { return .refused(.text("client certificate required\n", status: 401)) }
        case .verifyClientCertIfGiven, .requireAndVerifyClientCert:
            if let chain = request.peerCertificates {
                guard let authority, (try? authority.verify(chain: chain)) != nil else {
                    return .refused(.text("client certificate not trusted\n", status: 403))
                }
            } else if config.clientAuth == .requireAndVerifyClientCert {
                return .refused(.text("client certificate required\n", status: 401))
            }
        }
        guard !config.users.isEmpty else { return .allowed }
        let challenge = HTTPResponse.text("Unauthorized\n", status: 401).withHeader("WWW-Authenticate", "Basic realm=\"accel-exporter\"")
        guard let header = request.header("Authorization"), header.lowercased().hasPrefix("basic "),
            let decoded = Base64.decode(String(header.dropFirst(6))).flatMap({ String(validating: $0, as: UTF8.self) }), let colon = decoded.firstIndex(of: ":")
        else { return .refused(challenge) }
        let user = String(decoded[..<colon])
        let password = String(decoded[decoded.index(after: colon)...])
        let hash = config.users[user]
        if hash != nil, let cached = verified.withLock({ $0[user + "\u{0}" + (hash ?? "")] }), Self.constantTimeEquals(cached, password) {
            return .allowed
        }
        // A bcrypt run from here on: refused for an address over its failures, or when too many run at once.
        let address = request.remoteAddress ?? ""
        switch loginGuard.admit(address) {
        case .throttled(let retryAfter):
            return .refused(HTTPResponse.text("too many failed logins from this address\n", status: 429)
                .withHeader("Retry-After", "\(retryAfter)"))
        case .busy:
            return .refused(HTTPResponse.text("authentication busy\n", status: 503).withHeader("Retry-After", "1"))
        case .admitted:
            return .verify(Login(user: user, password: password, hash: hash, address: address, challenge: challenge))
        }
    }

    /// The bcrypt run for an admitted login: nil when the password matches, else the challenge.
    public func verify(_ login: Login) -> HTTPResponse? {
        defer { loginGuard.finished() }
        guard let hash = login.hash else {
            // Spend a bcrypt run on unknown users too, so the answer's timing does not tell which users exist.
            var out = [CChar](repeating: 0, count: 256)
            _ = CCrypt_hash(login.password, Self.dummyHash, &out, out.count)
            loginGuard.failed(login.address)
            return login.challenge
        }
        guard Self.bcryptMatches(password: login.password, hash: hash) else {
            loginGuard.failed(login.address)
            return login.challenge
        }
        // As in exporter-toolkit, a verified (user, hash, password) is remembered in memory, so each scrape does not
        // pay a bcrypt run; only an exact match of all three skips it, so a wrong password always runs bcrypt.
        verified.withLock { $0[login.user + "\u{0}" + hash] = login.password }
        loginGuard.succeeded(login.address)
        return nil
    }

    /// A bcrypt hash of nothing anyone knows (cost 10), checked for unknown users.
    static let dummyHash = "$2b$10$ErxT.v881dCsz2xndRWCz..U.vddRFOkoHjulEoDcg2z2HY3upvXa"

    static func bcryptMatches(password: String, hash: String) -> Bool {
        var out = [CChar](repeating: 0, count: 256)
        guard CCrypt_hash(password, hash, &out, out.count) == 0 else { return false }
        let computed = String(decoding: out.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return constantTimeEquals(computed, hash)
    }

    static func constantTimeEquals(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var difference = x.count ^ y.count
        for index in 0..<max(x.count, y.count) {
            difference |= Int((index < x.count ? x[index] : 0) ^ (index < y.count ? y[index] : 0))
        }
        return difference == 0
    }
}


