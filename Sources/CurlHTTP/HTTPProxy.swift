#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The forward proxy an exchange goes through, chosen the way Go's `net/http` chooses it from `HTTPS_PROXY`,
/// `HTTP_PROXY` and `NO_PROXY`, so the exporter and adapter reach their peers the way client-go and the OpenTelemetry
/// SDKs beside them do.
///
/// - An `https://` URL goes through ``https``, in a `CONNECT` tunnel; an `http://` URL through ``http``, which forwards
///   the request. Neither falls back to the other.
/// - An HTTP/2-only exchange (gRPC) goes through ``https`` whatever its scheme, in a tunnel, as grpc-go does.
/// - A host ``noProxy`` names is reached directly. Entries are comma-separated: `*` (every host); an IP address or
///   a CIDR range (`10.0.0.0/8`); a domain (`example.com` is itself and its subdomains, `.example.com` and
///   `*.example.com` only the subdomains); any of them but a range with `:port` to match only that port.
/// - Loopback (`localhost`, 127.0.0.0/8, `::1`) is reached directly unless ``bypassesLoopback`` is false.
/// - A unix-socket exchange never goes through a proxy.
public struct HTTPProxy: Sendable, Equatable, CustomStringConvertible {
    /// The proxy for `http://` URLs (`http://proxy:3128`); nil: directly.
    public var http: String?
    /// The proxy for `https://` URLs and gRPC; nil: directly.
    public var https: String?
    /// Hosts reached directly (`NO_PROXY`'s syntax).
    public var noProxy: String
    /// Loopback hosts are reached directly, as Go's `ProxyFromEnvironment` does (false for a kubeconfig's
    /// `proxy-url`, which client-go applies to every request).
    public var bypassesLoopback: Bool

    /// No proxy at all; the environment is not read.
    public static let direct = HTTPProxy()

    /// Proxies as given: a URL, or `host:port` (meaning `http://host:port`); a proxy URL without a port gets its
    /// scheme's (80, 443, 1080 for SOCKS).
    public init(http: String? = nil, https: String? = nil, noProxy: String = "", bypassesLoopback: Bool = true) {
        self.http = http.flatMap(Self.normalised)
        self.https = https.flatMap(Self.normalised)
        self.noProxy = noProxy
        self.bypassesLoopback = bypassesLoopback
    }

    /// Every request through `url`, loopback included: a kubeconfig cluster's `proxy-url`.
    public init(all url: String) {
        self.init(http: url, https: url, bypassesLoopback: false)
    }

    /// `HTTP_PROXY`, `HTTPS_PROXY` and `NO_PROXY` from `environment`, the upper-case name before the lower-case one
    /// and an empty value as unset, as Go reads them. `ALL_PROXY` (curl's) is not read: Go does not.
    public static func environment(_ environment: [String: String]) -> HTTPProxy {
        func value(_ names: String...) -> String? {
            for name in names {
                if let text = environment[name].map(trimmed), !text.isEmpty { return text }
            }
            return nil
        }
        return HTTPProxy(http: value("HTTP_PROXY", "http_proxy"), https: value("HTTPS_PROXY", "https_proxy"),
                         noProxy: value("NO_PROXY", "no_proxy") ?? "")
    }

    /// Whether any proxy is set.
    public var isDirect: Bool { http == nil && https == nil }

    /// The proxies with any password hidden, and `NO_PROXY`, for logs.
    public var description: String {
        if isDirect { return "direct" }
        var parts: [String] = []
        if let http { parts.append("http: \(Self.redacted(http))") }
        if let https { parts.append("https: \(Self.redacted(https))") }
        if !noProxy.isEmpty { parts.append("no_proxy: \(noProxy)") }
        if !bypassesLoopback { parts.append("loopback too") }
        return parts.joined(separator: ", ")
    }

    /// Throws ``HTTPTransferError/Kind/configuration`` for a proxy that is not an `http`, `https`, `socks5` or
    /// `socks5h` URL with a host and a port (Go refuses the same, at each request).
    public func validate() throws(HTTPTransferError) {
        for (name, value) in [("HTTP_PROXY", http), ("HTTPS_PROXY", https)] {
            guard let value else { continue }
            guard let target = Self.target(value), Self.proxySchemes.contains(target.scheme), !target.host.isEmpty,
                target.port != nil
            else {
                throw HTTPTransferError(.configuration, "the \(name) proxy \"\(Self.redacted(value))\" is not an http://, https:// or socks5:// URL with a host")
            }
        }
    }

    /// The proxy an exchange with `url` goes through; nil: directly. `tunnelled` is an HTTP/2-only exchange (gRPC).
    public func route(for url: String, tunnelled: Bool = false) -> String? {
        guard !isDirect, let target = Self.target(url), let port = target.port else { return nil }
        let proxy: String?
        switch target.scheme {
        case "https": proxy = https
        case "http": proxy = tunnelled ? https : http
        default: proxy = nil
        }
        guard let proxy else { return nil }
        return bypasses(host: target.host, port: port) ? nil : proxy
    }

    /// Go's `useProxy` with the rules in the type's description: true when `host` is reached directly.
    func bypasses(host rawHost: String, port: Int) -> Bool {
        let host = rawHost.lowercased()
        let address = IPAddress(host)
        if bypassesLoopback, host == "localhost" || address?.isLoopback == true { return true }
        for rawEntry in noProxy.split(separator: ",") {
            var entry = Self.trimmed(String(rawEntry)).lowercased()
            if entry.isEmpty { continue }
            if entry == "*" { return true }
            if let slash = entry.firstIndex(of: "/") {
                if let network = IPAddress(String(entry[..<slash])), let bits = Int(entry[entry.index(after: slash)...]),
                    let address, address.isIn(network, prefix: bits)
                {
                    return true
                }
                continue
            }
            var entryPort: Int?
            if let (h, p) = Self.splitHostPort(entry) {
                entry = h
                entryPort = p
            }
            if entry.hasPrefix("["), entry.hasSuffix("]") { entry = String(entry.dropFirst().dropLast()) }
            if let portNeeded = entryPort, portNeeded != port { continue }
            if let entryAddress = IPAddress(entry) {
                if address == entryAddress { return true }
                continue
            }
            guard address == nil, !entry.isEmpty else { continue }
            if entry.hasPrefix("*.") { entry.removeFirst() }
            let matchesItself = !entry.hasPrefix(".")
            let suffix = matchesItself ? "." + entry : entry
            if host.hasSuffix(suffix) || (matchesItself && host == entry) { return true }
        }
        return false
    }

    /// A proxy URL taken apart, for clients that configure a proxy by its parts (AsyncHTTPClient).
    public struct Endpoint: Sendable, Equatable {
        /// The URL's scheme, lower case (``validate()`` admits `http`, `https`, `socks5` and `socks5h`).
        public var scheme: String
        /// Without brackets for IPv6.
        public var host: String
        /// The URL's, or its scheme's default.
        public var port: Int
        /// `user:password` as written in the URL (percent-encoded); nil without one.
        public var userInfo: String?
    }

    /// `url`'s parts (a proxy as ``route(for:tunnelled:)`` returns it); nil when it has no host or no usable port.
    public static func endpoint(_ url: String) -> Endpoint? {
        guard let target = target(url), !target.host.isEmpty, let port = target.port, let separator = url.firstRange(of: "://")
        else { return nil }
        let authority = url[separator.upperBound...].prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        let userInfo = authority.lastIndex(of: "@").map { String(authority[..<$0]) }
        return Endpoint(scheme: target.scheme, host: target.host, port: port, userInfo: userInfo)
    }

    // MARK: Parsing

    static let proxySchemes: Set<String> = ["http", "https", "socks5", "socks5h"]

    /// Scheme (lower case), host (no brackets) and port: the scheme's default when there is no colon, nil when what
    /// follows the colon is not a port number.
    static func target(_ url: String) -> (scheme: String, host: String, port: Int?, explicitPort: Bool)? {
        guard let separator = url.firstRange(of: "://") else { return nil }
        let scheme = url[..<separator.lowerBound].lowercased()
        var authority = Substring(url[separator.upperBound...].prefix { $0 != "/" && $0 != "?" && $0 != "#" })
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
        let host: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let rest = authority[authority.index(after: close)...]
            if rest.hasPrefix(":") { portText = rest.dropFirst() } else if !rest.isEmpty { return nil }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
        } else {
            host = authority
        }
        let defaults = ["http": 80, "https": 443, "socks5": 1080, "socks5h": 1080]
        let port: Int?
        if let portText {
            // `host:` with nothing after the colon has no port either.
            port = portText.allSatisfy(\.isASCII) ? Int(portText).flatMap { (1...65535).contains($0) ? $0 : nil } : nil
        } else {
            port = defaults[scheme]
        }
        return (scheme, host.lowercased(), port, portText != nil)
    }

    /// `proxy:3128` → `http://proxy:3128`; `http://proxy` → `http://proxy:80` (curl's default port is 1080 for
    /// every scheme; Go's is the scheme's); nil for an empty value.
    static func normalised(_ value: String) -> String? {
        var text = trimmed(value)
        if text.isEmpty { return nil }
        if text.firstRange(of: "://") == nil { text = "http://" + text }
        guard let target = target(text), !target.explicitPort, let port = target.port else { return text }
        // The authority ends at the first `/`, `?` or `#` after the scheme.
        let start = text.firstRange(of: "://")!.upperBound
        let end = text[start...].firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? text.endIndex
        return String(text[..<end]) + ":\(port)" + String(text[end...])
    }

    /// `user:password@` hidden: `http://***@proxy:3128`.
    public static func redacted(_ url: String) -> String {
        guard let separator = url.firstRange(of: "://") else { return url }
        let authorityEnd = url[separator.upperBound...].firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? url.endIndex
        guard let at = url[separator.upperBound..<authorityEnd].lastIndex(of: "@") else { return url }
        return String(url[..<separator.upperBound]) + "***" + String(url[at...])
    }

    /// `host:port` or `[v6]:port` → (host, port); nil when there is no port (a bare IPv6 address has none).
    static func splitHostPort(_ text: String) -> (String, Int)? {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        let host = String(text[..<colon])
        guard let port = Int(text[text.index(after: colon)...]) else { return nil }
        if host.contains(":"), !(host.hasPrefix("[") && host.hasSuffix("]")) { return nil }
        return (host, port)
    }

    static func trimmed(_ text: String) -> String {
        var slice = Substring(text)
        while let first = slice.first, first == " " || first == "\t" { slice.removeFirst() }
        while let last = slice.last, last == " " || last == "\t" { slice.removeLast() }
        return String(slice)
    }
}

/// An IPv4 or IPv6 address, as 4 or 16 bytes (an IPv4-mapped IPv6 address is taken as its IPv4 address, as Go does).
struct IPAddress: Equatable {
    let bytes: [UInt8]

    init?(_ text: String) {
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            bytes = withUnsafeBytes(of: &v4) { Array($0) }
        } else if inet_pton(AF_INET6, text, &v6) == 1 {
            let all = withUnsafeBytes(of: &v6) { Array($0) }
            if all[0..<10].allSatisfy({ $0 == 0 }), all[10] == 0xFF, all[11] == 0xFF {
                bytes = Array(all[12...])
            } else {
                bytes = all
            }
        } else {
            return nil
        }
    }

    var isLoopback: Bool {
        bytes.count == 4 ? bytes[0] == 127 : bytes == [UInt8](repeating: 0, count: 15) + [1]
    }

    /// Whether the first `prefix` bits equal `network`'s (same family only).
    func isIn(_ network: IPAddress, prefix: Int) -> Bool {
        guard network.bytes.count == bytes.count, prefix >= 0, prefix <= bytes.count * 8 else { return false }
        var remaining = prefix
        for (a, b) in zip(bytes, network.bytes) where remaining > 0 {
            let bits = min(8, remaining)
            let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
            if a & mask != b & mask { return false }
            remaining -= bits
        }
        return true
    }
}
