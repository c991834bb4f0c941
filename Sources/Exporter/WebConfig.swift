import Accelerators
import CCrypt
import Kubernetes
public import ConfigYAML
public import HTTPServer
import Dispatch
import Synchronization

/// `--web.config.file`, in Prometheus exporter-toolkit's shape: TLS with optional client certificates, response
/// headers, and basic-auth users with bcrypt hashes.
///
/// ```yaml
/// tls_server_config:
///   cert_file: server.crt            # relative paths are relative to this file
///   key_file: server.key
///   client_auth_type: RequireAndVerifyClientCert   # NoClientCert (default), RequestClientCert,
///                                     # RequireAnyClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert
///   client_ca_file: clients-ca.pem
///   min_version: TLS12                # TLS12 (default) or TLS13
///   max_version: TLS13
/// http_server_config:
///   headers: {Strict-Transport-Security: max-age=31536000}
/// basic_auth_users:
///   prometheus: $2y$10$…              # bcrypt (htpasswd -nBC 10 "" | tr -d ':\n')
/// ```
public struct WebConfig: Sendable, Equatable {
    public enum ClientAuth: String, Sendable, CaseIterable {
        case noClientCert = "NoClientCert"
        case requestClientCert = "RequestClientCert"
        case requireAnyClientCert = "RequireAnyClientCert"
        case verifyClientCertIfGiven = "VerifyClientCertIfGiven"
        case requireAndVerifyClientCert = "RequireAndVerifyClientCert"
    }

    public var tls: HTTPServer.TLSConfiguration?
    public var clientAuth: ClientAuth = .noClientCert
    /// PEM of `client_ca_file`.
    public var clientCAPEM: [UInt8]?
    public var headers: [(name: String, value: String)] = []
    /// user → bcrypt hash.
    public var users: [String: String] = [:]
    /// The certificate, key and CA files read, as full paths: the reload watches them as well as the file itself.
    public var files: [String] = []

    public static func == (lhs: WebConfig, rhs: WebConfig) -> Bool {
        lhs.tls == rhs.tls && lhs.clientAuth == rhs.clientAuth && lhs.clientCAPEM == rhs.clientCAPEM
            && lhs.users == rhs.users && lhs.headers.map(\.name) == rhs.headers.map(\.name)
            && lhs.headers.map(\.value) == rhs.headers.map(\.value)
    }

    public init() {}

    /// Reads and checks the file; every problem names its key. Certificate files are read now.
    public static func load(path: String) throws(ConfigError) -> WebConfig {
        let bytes: [UInt8]
        do { bytes = try FileRoot("/").readBytes(String(path.drop { $0 == "/" }), limit: 1 << 20) } catch {
            throw ConfigError(path: "", message: "cannot read \(path)")
        }
        let directory = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
        return try parse(try YAMLDocument.parse(bytes), directory: directory)
    }

    /// Checks a parsed file. `readFile` reads the certificate files it names (absolute paths; nil: unreadable),
    /// replaced by the fuzz target so that no input names a real file.
    package static func parse(
        _ document: ConfigValue, directory: String, readFile: (String) -> [UInt8]? = readCertificateFile
    ) throws(ConfigError) -> WebConfig {
        var config = WebConfig()
        guard case .map(let top) = document else {
            if case .null = document { return config }
            throw ConfigError(path: "", message: "the web configuration must be a map")
        }
        func read(_ file: String, at path: String) throws(ConfigError) -> [UInt8] {
            let full = file.hasPrefix("/") ? file : directory + "/" + file
            config.files.append(full)
            guard let bytes = readFile(full) else { throw ConfigError(path: path, message: "cannot read \(full)") }
            return bytes
        }
        for (key, value) in top {
            switch key {
            case "tls_server_config":
                guard case .map(let fields) = value else { throw ConfigError(path: key, message: "must be a map") }
                var certificate: [UInt8]?
                var privateKey: [UInt8]?
                var minimum = "TLS12"
                var maximum = "TLS13"
                for (field, item) in fields {
                    let here = "\(key).\(field)"
                    switch field {
                    case "cert_file": certificate = try read(try scalar(item, at: here), at: here)
                    case "key_file": privateKey = try read(try scalar(item, at: here), at: here)
                    case "client_ca_file": config.clientCAPEM = try read(try scalar(item, at: here), at: here)
                    case "client_auth_type":
                        let text = try scalar(item, at: here)
                        guard let mode = ClientAuth(rawValue: text) else {
                            throw ConfigError(
                                path: here,
                                message: "\"\(text)\" is not one of \(ClientAuth.allCases.map(\.rawValue).joined(separator: ", "))")
                        }
                        config.clientAuth = mode
                    case "min_version": minimum = try scalar(item, at: here)
                    case "max_version": maximum = try scalar(item, at: here)
                    case "cipher_suites", "curve_preferences", "prefer_server_cipher_suites", "client_allowed_sans":
                        throw ConfigError(path: here, message: "is not supported by accel-exporter (GnuTLS chooses secure suites)")
                    default:
                        throw ConfigError(path: here, message: "unknown key")
                    }
                }
                guard let certificate, let privateKey else {
                    throw ConfigError(path: key, message: "cert_file and key_file are both required")
                }
                let versions = ["TLS12": "VERS-TLS1.2", "TLS13": "VERS-TLS1.3"]
                guard versions[minimum] != nil else {
                    throw ConfigError(path: "\(key).min_version", message: "\"\(minimum)\" is not TLS12 or TLS13")
                }
                guard versions[maximum] != nil, !(minimum == "TLS13" && maximum == "TLS12") else {
                    throw ConfigError(path: "\(key).max_version", message: "\"\(maximum)\" is not TLS12 or TLS13 (at least min_version)")
                }
                let allowed = ["TLS12", "TLS13"].filter { $0 >= minimum && $0 <= maximum }.compactMap { versions[$0] }
                if config.clientAuth != .noClientCert, config.clientAuth != .requestClientCert,
                    config.clientAuth != .requireAnyClientCert, config.clientCAPEM == nil
                {
                    throw ConfigError(path: "\(key).client_ca_file", message: "is required for \(config.clientAuth.rawValue)")
                }
                // Without client_ca_file (RequestClientCert, RequireAnyClientCert) the server still asks for a
                // certificate, with an empty CA list, so that clients send whichever they have.
                config.tls = HTTPServer.TLSConfiguration(
                    certificateChainPEM: certificate, privateKeyPEM: privateKey,
                    clientCAsPEM: config.clientAuth == .noClientCert ? nil : (config.clientCAPEM ?? []),
                    priorities: HTTPServer.TLSConfiguration.priorities(versions: allowed))
            case "http_server_config":
                guard case .map(let fields) = value else { throw ConfigError(path: key, message: "must be a map") }
                for (field, item) in fields {
                    switch field {
                    case "headers":
                        guard case .map(let pairs) = item else { throw ConfigError(path: "\(key).headers", message: "must be a map") }
                        for (name, headerValue) in pairs {
                            config.headers.append((name, try scalar(headerValue, at: "\(key).headers.\(name)")))
                        }
                    case "http2":
                        break  // libmicrohttpd speaks HTTP/1.1; the setting has nothing to turn off
                    default:
                        throw ConfigError(path: "\(key).\(field)", message: "unknown key")
                    }
                }
            case "basic_auth_users":
                guard case .map(let pairs) = value else {
                    if case .null = value { continue }
                    throw ConfigError(path: key, message: "must be a map of user: bcrypt hash")
                }
                for (user, hash) in pairs {
                    let text = try scalar(hash, at: "\(key).\(user)")
                    guard text.hasPrefix("$2a$") || text.hasPrefix("$2b$") || text.hasPrefix("$2y$") else {
                        throw ConfigError(path: "\(key).\(user)", message: "is not a bcrypt hash ($2y$…)")
                    }
                    config.users[user] = text
                }
            default:
                throw ConfigError(path: key, message: "unknown key (expected tls_server_config, http_server_config, basic_auth_users)")
            }
        }
        return config
    }

    private static func scalar(_ value: ConfigValue, at path: String) throws(ConfigError) -> String {
        guard case .scalar(let text) = value else { throw ConfigError(path: path, message: "must be a single value") }
        return text
    }

    /// A certificate or key file, at most 1 MiB.
    package static func readCertificateFile(_ path: String) -> [UInt8]? {
        try? FileRoot("/").readBytes(String(path.drop { $0 == "/" }), limit: 1 << 20)
    }
}

/// Checks requests against a ``WebConfig``: client certificates, then basic auth. Successful bcrypt checks are
/// cached (bcrypt is slow on purpose, and Prometheus sends the same credentials every scrape); failures are not.
/// Uncached checks go through a ``LoginGuard``: bounded in number at once, refused for an address that keeps failing;
/// the exporter runs them off its HTTP worker threads (``Decision/verify(_:)``).
final class WebAccess: Sendable {
    let config: WebConfig
    private let authority: CertificateAuthority?
    private let loginGuard: LoginGuard
    private let verified = Mutex<[String: String]>([:])  // user → the password's bcrypt result that matched

    init(config: WebConfig, loginGuard: LoginGuard = LoginGuard()) throws {
        self.config = config
        self.loginGuard = loginGuard
        authority = try config.clientCAPEM.map { try CertificateAuthority(pem: $0) }
    }

    /// What ``check(_:)`` decides without a bcrypt run.
    enum Decision {
        case allowed
        case refused(HTTPResponse)
        /// Admitted by the login guard: run ``verify(_:)`` off the HTTP worker thread (it calls bcrypt).
        case verify(Login)
    }

    struct Login: Sendable {
        let user: String
        let password: String
        let hash: String?
        let address: String
        let challenge: HTTPResponse
    }

    /// The checks that need no bcrypt run: client certificates, the header, cached credentials, the login guard.
    func check(_ request: HTTPRequest) -> Decision {
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
    func verify(_ login: Login) -> HTTPResponse? {
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


/// What stands between clients and bcrypt runs (each about 50 ms at cost 10; the exporter runs them on a queue of
/// their own while the connection is suspended):
/// - at most ``maxConcurrent`` run at once; another is answered 503 at once rather than waiting, so a flood of
///   logins costs bounded CPU and memory;
/// - an address with ``allowedFailures`` failed logins within ``window`` seconds is answered 429 without a run
///   until the window since its first failure passes; a success clears its count.
/// The table of addresses is bounded (``maxAddresses``): when full, expired entries go, then all of them.
/// It outlives web configuration reloads.
final class LoginGuard: Sendable {
    enum Admission: Equatable {
        case admitted
        case busy
        case throttled(retryAfter: Int)
    }

    let maxConcurrent: Int
    let allowedFailures: Int
    let window: Double
    let maxAddresses: Int
    private let state = Mutex(State())

    private struct State {
        var running = 0
        /// address → failures and when the first of them happened (monotonic seconds).
        var failures: [String: (count: Int, since: Double)] = [:]
    }

    init(maxConcurrent: Int = 1, allowedFailures: Int = 5, window: Double = 60, maxAddresses: Int = 4096) {
        self.maxConcurrent = max(1, maxConcurrent)
        self.allowedFailures = max(1, allowedFailures)
        self.window = window
        self.maxAddresses = max(1, maxAddresses)
    }

    func admit(_ address: String, now: Double = LoginGuard.now()) -> Admission {
        state.withLock { state in
            if let entry = state.failures[address] {
                if now - entry.since >= window {
                    state.failures[address] = nil
                } else if entry.count >= allowedFailures {
                    return .throttled(retryAfter: max(1, Int((window - (now - entry.since)).rounded(.up))))
                }
            }
            guard state.running < maxConcurrent else { return .busy }
            state.running += 1
            return .admitted
        }
    }

    func finished() {
        state.withLock { $0.running = max(0, $0.running - 1) }
    }

    func failed(_ address: String, now: Double = LoginGuard.now()) {
        state.withLock { state in
            if state.failures[address] == nil, state.failures.count >= maxAddresses {
                state.failures = state.failures.filter { now - $0.value.since < window }
                if state.failures.count >= maxAddresses { state.failures.removeAll() }
            }
            let entry = state.failures[address] ?? (0, now)
            state.failures[address] = (entry.count + 1, entry.since)
        }
    }

    func succeeded(_ address: String) {
        _ = state.withLock { $0.failures.removeValue(forKey: address) }
    }

    static func now() -> Double {
        Double(DispatchTime.now().uptimeNanoseconds) / 1e9
    }
}
