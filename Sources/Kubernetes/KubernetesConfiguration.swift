import ConfigYAML
public import CurlHTTP

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// How to reach the API server: in-cluster service-account credentials, or a kubeconfig for development.
public struct KubernetesConfiguration: Sendable {
    /// How requests authenticate.
    public enum Credentials: Sendable {
        /// No `Authorization` header and no client certificate.
        case none
        /// A bearer token read from a file at each request (projected service-account tokens rotate).
        case tokenFile(String)
        /// A fixed bearer token (kubeconfig `token`).
        case token(String)
        /// Client certificate and key, PEM.
        case clientCertificate(certificatePEM: [UInt8], keyPEM: [UInt8])
        /// HTTP basic authentication (kubeconfig `username`/`password`).
        case basic(username: String, password: String)
    }

    /// `https://10.96.0.1:443`, no trailing slash.
    public var server: String
    /// CA bundle for the API server's certificate (PEM); nil uses the system's roots.
    public var certificateAuthorityPEM: [UInt8]?
    /// Kubeconfig `insecure-skip-tls-verify`: no certificate check at all (development only).
    public var insecureSkipTLSVerify: Bool
    /// Kubeconfig `tls-server-name`: read but not applied. The client logs that it is unsupported, and the server's
    /// certificate must name the URL's host.
    public var tlsServerName: String?
    /// How requests authenticate.
    public var credentials: Credentials
    /// The namespace the program runs in (in-cluster), or the context's namespace.
    public var namespace: String?
    /// The forward proxy requests go through: a kubeconfig cluster's `proxy-url`, else `HTTPS_PROXY`, `HTTP_PROXY`
    /// and `NO_PROXY` from the environment, as client-go chooses.
    public var proxy: HTTPProxy

    /// Trailing slashes on `server` are dropped.
    public init(
        server: String, certificateAuthorityPEM: [UInt8]? = nil, insecureSkipTLSVerify: Bool = false,
        tlsServerName: String? = nil, credentials: Credentials = .none, namespace: String? = nil, proxy: HTTPProxy = .direct
    ) {
        // Trailing slashes after the scheme's `://` go, all of them (the paths added start with one).
        var trimmed = Substring(server)
        let schemeEnd = server.firstRange(of: "://")?.upperBound ?? server.startIndex
        while trimmed.endIndex > schemeEnd, trimmed.last == "/" { trimmed = trimmed.dropLast() }
        self.server = String(trimmed)
        self.certificateAuthorityPEM = certificateAuthorityPEM
        self.insecureSkipTLSVerify = insecureSkipTLSVerify
        self.tlsServerName = tlsServerName
        self.credentials = credentials
        self.namespace = namespace
        self.proxy = proxy
    }

    /// The pod's service account: `KUBERNETES_SERVICE_HOST`/`_PORT` and the files under `root`
    /// (`/var/run/secrets/kubernetes.io/serviceaccount`); the proxy from `environment`'s `HTTPS_PROXY` and `NO_PROXY`
    /// (a cluster that sets a proxy for pods lists the API server's address in `NO_PROXY`, as client-go needs too).
    public static func inCluster(
        environment: [String: String], root: String = "/var/run/secrets/kubernetes.io/serviceaccount"
    ) throws(KubernetesError) -> KubernetesConfiguration {
        guard let host = environment["KUBERNETES_SERVICE_HOST"], !host.isEmpty,
            let port = environment["KUBERNETES_SERVICE_PORT"], !port.isEmpty
        else {
            throw KubernetesError(
                code: .configuration,
                message: "not running in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set")
        }
        let tokenPath = root + "/token"
        guard FileAccess.exists(tokenPath) else {
            throw KubernetesError(code: .configuration, message: "no service-account token at \(tokenPath)")
        }
        let authority = try? FileAccess.read(root + "/ca.crt")
        let namespace = (try? FileAccess.read(root + "/namespace")).map { String(decoding: $0, as: UTF8.self) }
        let hostPart = host.contains(":") ? "[\(host)]" : host
        return KubernetesConfiguration(
            server: "https://\(hostPart):\(port)", certificateAuthorityPEM: authority, credentials: .tokenFile(tokenPath),
            namespace: namespace.map { String($0.filter { !$0.isWhitespace }) }, proxy: .environment(environment))
    }

    /// A kubeconfig file's current context (or `context`). Relative file paths are relative to the file's folder.
    /// The cluster's `proxy-url` takes every request; without one, `environment`'s proxy variables apply.
    public static func kubeconfig(path: String, context: String? = nil, environment: [String: String]) throws(KubernetesError)
        -> KubernetesConfiguration
    {
        try kubeconfig(parsing: try FileAccess.read(path), path: path, context: context, environment: environment) {
            (file) throws(KubernetesError) in try FileAccess.read(file)
        }
    }

    /// A kubeconfig's bytes, read from `path`; `readFile` reads the files it names (the fuzz target's reads none).
    package static func kubeconfig(
        parsing bytes: [UInt8], path: String, context: String?, environment: [String: String],
        readFile: (String) throws(KubernetesError) -> [UInt8]
    ) throws(KubernetesError) -> KubernetesConfiguration {
        let document: ConfigValue
        do {
            document = try YAMLDocument.parse(bytes)
        } catch {
            throw KubernetesError(code: .configuration, message: "\(path): \(error)")
        }
        let directory = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
        func resolve(_ file: String) -> String { file.hasPrefix("/") ? file : directory + "/" + file }
        func fail(_ message: String) -> KubernetesError {
            KubernetesError(code: .configuration, message: "\(path): \(message)")
        }
        let contextName = context ?? document["current-context"]?.string
        guard let contextName, !contextName.isEmpty else { throw fail("no current-context") }
        guard let contextEntry = document["contexts"]?.named(contextName)?["context"] else {
            throw fail("no context named \"\(contextName)\"")
        }
        guard let clusterName = contextEntry["cluster"]?.string,
            let cluster = document["clusters"]?.named(clusterName)?["cluster"]
        else { throw fail("context \"\(contextName)\" names no known cluster") }
        // A scheme and a host at least: `https://` alone would become requests to `https:/api/…`.
        guard let server = cluster["server"]?.string, let scheme = ["https://", "http://"].first(where: server.hasPrefix),
            !server.dropFirst(scheme.count).prefix(while: { $0 != "/" && $0 != "?" && $0 != "#" }).isEmpty
        else {
            throw fail("cluster \"\(clusterName)\" has no http(s) server")
        }
        var authority: [UInt8]?
        if let data = cluster["certificate-authority-data"]?.string {
            guard let decoded = Base64.decode(data) else { throw fail("certificate-authority-data is not base64") }
            authority = decoded
        } else if let file = cluster["certificate-authority"]?.string {
            authority = try readFile(resolve(file))
        }
        var credentials = Credentials.none
        if let userName = contextEntry["user"]?.string, let user = document["users"]?.named(userName)?["user"] {
            if let token = user["token"]?.string {
                credentials = .token(token)
            } else if let file = user["tokenFile"]?.string {
                credentials = .tokenFile(resolve(file))
            } else if user["client-certificate-data"] != nil || user["client-certificate"] != nil {
                func material(_ dataKey: String, _ fileKey: String) throws(KubernetesError) -> [UInt8] {
                    if let data = user[dataKey]?.string {
                        guard let decoded = Base64.decode(data) else { throw fail("\(dataKey) is not base64") }
                        return decoded
                    }
                    guard let file = user[fileKey]?.string else { throw fail("user \"\(userName)\" lacks \(fileKey)") }
                    return try readFile(resolve(file))
                }
                credentials = .clientCertificate(
                    certificatePEM: try material("client-certificate-data", "client-certificate"),
                    keyPEM: try material("client-key-data", "client-key"))
            } else if let username = user["username"]?.string {
                credentials = .basic(username: username, password: user["password"]?.string ?? "")
            }
        }
        var proxy = HTTPProxy.environment(environment)
        if let url = cluster["proxy-url"]?.string, !url.isEmpty {
            proxy = HTTPProxy(all: url)
            do { try proxy.validate() } catch { throw fail("cluster \"\(clusterName)\" proxy-url is not an http://, https:// or socks5:// URL with a host") }
        }
        return KubernetesConfiguration(
            server: server, certificateAuthorityPEM: authority,
            insecureSkipTLSVerify: cluster["insecure-skip-tls-verify"]?.string == "true",
            tlsServerName: cluster["tls-server-name"]?.string, credentials: credentials,
            namespace: contextEntry["namespace"]?.string, proxy: proxy)
    }
}

extension ConfigValue {
    subscript(key: String) -> ConfigValue? {
        guard case .map(let entries) = self else { return nil }
        return entries.first { $0.key == key }?.value
    }

    var string: String? {
        if case .scalar(let text) = self { return text }
        return nil
    }

    /// In a kubeconfig list of `{name: …, …}` entries, the one called `name`.
    func named(_ name: String) -> ConfigValue? {
        guard case .list(let items) = self else { return nil }
        return items.first { $0["name"]?.string == name }
    }
}

/// Whole-file reads with POSIX calls.
enum FileAccess {
    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    static func read(_ path: String, limit: Int = 4 << 20) throws(KubernetesError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw KubernetesError(code: .configuration, message: "cannot read \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else {
                throw KubernetesError(code: .configuration, message: "cannot read \(path): \(String(cString: strerror(errno)))")
            }
            if count == 0 { return out }
            out.append(contentsOf: chunk[0..<count])
            guard out.count <= limit else {
                throw KubernetesError(code: .configuration, message: "\(path) is larger than \(limit) bytes")
            }
        }
    }
}


#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
