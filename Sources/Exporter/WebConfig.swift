import Accelerators
import CCrypt
import Kubernetes
public import ConfigYAML
public import HTTPServer
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
                config.tls = HTTPServer.TLSConfiguration(
                    certificateChainPEM: certificate, privateKeyPEM: privateKey,
                    clientCAsPEM: config.clientAuth == .noClientCert ? nil : (config.clientCAPEM ?? []),
                    priorities: HTTPServer.TLSConfiguration.priorities(versions: allowed))
                if config.clientAuth != .noClientCert, config.clientCAPEM == nil {
                    // Ask for a certificate with an empty CA list.
                    config.tls?.clientCAsPEM = nil
                }
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
final class WebAccess: Sendable {
    let config: WebConfig
    private let authority: CertificateAuthority?
    private let verified = Mutex<[String: String]>([:])  // user → the password's bcrypt result that matched

    init(config: WebConfig) throws {
        self.config = config
        authority = try config.clientCAPEM.map { try CertificateAuthority(pem: $0) }
    }

    /// Nil when the request may go on; else the refusal.
    func check(_ request: HTTPRequest) -> HTTPResponse? {
        switch config.clientAuth {
        case .noClientCert, .requestClientCert:
            break
        case .requireAnyClientCert:
            guard request.peerCertificates != nil else { return .text("client certificate required\n", status: 401) }
        case .verifyClientCertIfGiven, .requireAndVerifyClientCert:
            if let chain = request.peerCertificates {
                guard let authority, (try? authority.verify(chain: chain)) != nil else {
                    return .text("client certificate not trusted\n", status: 403)
                }
            } else if config.clientAuth == .requireAndVerifyClientCert {
                return .text("client certificate required\n", status: 401)
            }
        }
        guard !config.users.isEmpty else { return nil }
        let challenge = HTTPResponse.text("Unauthorized\n", status: 401).withHeader("WWW-Authenticate", "Basic realm=\"accel-exporter\"")
        guard let header = request.header("Authorization"), header.lowercased().hasPrefix("basic "),
            let decoded = Base64.decode(String(header.dropFirst(6))).flatMap({ String(validating: $0, as: UTF8.self) }), let colon = decoded.firstIndex(of: ":")
        else { return challenge }
        let user = String(decoded[..<colon])
        let password = String(decoded[decoded.index(after: colon)...])
        guard let hash = config.users[user] else {
            // Spend a bcrypt run on unknown users too, so the answer's timing does not tell which users exist.
            var out = [CChar](repeating: 0, count: 256)
            _ = CCrypt_hash(password, Self.dummyHash, &out, out.count)
            return challenge
        }
        return Self.matches(password: password, hash: hash, user: user, cache: verified) ? nil : challenge
    }

    /// A bcrypt hash of nothing anyone knows (cost 10), checked for unknown users.
    static let dummyHash = "$2b$10$ErxT.v881dCsz2xndRWCz..U.vddRFOkoHjulEoDcg2z2HY3upvXa"

    static func matches(password: String, hash: String, user: String, cache: borrowing Mutex<[String: String]>) -> Bool {
        // As in exporter-toolkit, a verified (user, hash, password) is remembered in memory, so each scrape does not
        // pay a bcrypt run; only an exact match of all three skips it, so a wrong password always runs bcrypt.
        let key = user + "\u{0}" + hash
        if let cached = cache.withLock({ $0[key] }), constantTimeEquals(cached, password) { return true }
        var out = [CChar](repeating: 0, count: 256)
        guard CCrypt_hash(password, hash, &out, out.count) == 0 else { return false }
        let computed = String(decoding: out.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard constantTimeEquals(computed, hash) else { return false }
        cache.withLock { $0[key] = password }
        return true
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

