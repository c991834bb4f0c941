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
    /// `client_auth_type`, spelled as in exporter-toolkit (Go's `tls.ClientAuthType`); the verifying modes need
    /// `client_ca_file`.
    public enum ClientAuth: String, Sendable, CaseIterable {
        case noClientCert = "NoClientCert"
        case requestClientCert = "RequestClientCert"
        case requireAnyClientCert = "RequireAnyClientCert"
        case verifyClientCertIfGiven = "VerifyClientCertIfGiven"
        case requireAndVerifyClientCert = "RequireAndVerifyClientCert"
    }

    /// From `tls_server_config`; nil serves plain HTTP.
    public var tls: HTTPServer.TLSConfiguration?
    /// `client_auth_type`; ``WebAccess/check(_:)`` enforces it.
    public var clientAuth: ClientAuth = .noClientCert
    /// PEM of `client_ca_file`.
    public var clientCAPEM: [UInt8]?
    /// `http_server_config.headers`, in file order; added to every answer that passes the checks.
    public var headers: [(name: String, value: String)] = []
    /// user → bcrypt hash.
    public var users: [String: String] = [:]
    /// The certificate, key and CA files read, as full paths: the reload watches them as well as the file itself.
    public var files: [String] = []

    /// Field by field; the headers compare in order (tuples are not `Equatable`), ``files`` not at all.
    public static func == (lhs: WebConfig, rhs: WebConfig) -> Bool {
        lhs.tls == rhs.tls && lhs.clientAuth == rhs.clientAuth && lhs.clientCAPEM == rhs.clientCAPEM
            && lhs.users == rhs.users && lhs.headers.map(\.name) == rhs.headers.map(\.name)
            && lhs.headers.map(\.value) == rhs.headers.map(\.value)
    }

    /// Plain HTTP, no users: every request is allowed.
    public init() {}

    /// Reads and checks the file; every problem names its key. Certificate files are read now.
    public static func load(path: String) throws(ConfigError) -> WebConfig {
        let bytes: [UInt8]
        do { bytes = try ConfigFile.read(path, limit: 1 << 20) } catch {
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
        try? ConfigFile.read(path, limit: 1 << 20)
    }
}

