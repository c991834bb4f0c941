extension HTTPServer {
    /// How the server listens and what it tolerates from clients.
    ///
    /// The limits exist because the exporter runs on every node and the adapter faces the API server: a slow or
    /// hostile client must cost a bounded amount of memory and connection slots, never a worker thread.
    public struct Configuration: Sendable {
        /// Interface to listen on: an IPv4 or IPv6 literal or a host name. Empty (or `::`) listens on every
        /// interface, IPv6 and IPv4 alike, through one dual-stack socket.
        public var host: String
        /// TCP port; 0 lets the kernel choose one (read it back from ``HTTPServer/port``).
        public var port: Int
        /// Worker threads, each with its own epoll loop. 1 runs a single internal polling thread.
        public var threads: Int
        /// Most connections open at once. libmicrohttpd splits it evenly across ``threads``; a worker at its share
        /// stops accepting, and further clients wait in the kernel's listen backlog.
        public var connectionLimit: Int
        /// Most connections open at once from one IP address; further ones are closed as soon as they are
        /// accepted. 0 turns the limit off.
        public var perIPConnectionLimit: Int
        /// Seconds a connection may stay idle (a client that sends half a request and stalls, or an idle
        /// keep-alive connection) before it is closed. 0 never closes idle connections.
        public var connectionTimeoutSeconds: Int
        /// Seconds a connection has from being accepted (TLS handshake included) to a complete request head, and a
        /// kept-alive one from the end of a request to its next head beyond ``connectionTimeoutSeconds``. Unlike
        /// the idle timeout, a client trickling bytes cannot extend it. 0 turns it off.
        public var headerTimeoutSeconds: Double
        /// Bytes of memory per connection for the request line, the headers and the response headers. A request
        /// whose headers do not fit is answered 431 (or 414 for a long URI) and the connection is closed.
        public var connectionMemoryLimit: Int
        /// Request bodies are not used by any handler and are discarded as they arrive; a client that sends more
        /// than this many bytes of body is disconnected.
        public var maxRequestBodySize: Int
        /// Methods the server answers at all; any other gets 405 with an `Allow` header before a handler runs.
        /// Spelled as on the wire (`"GET"`); list `HEAD` explicitly if it should be answered.
        public var allowedMethods: [String]
        /// HTTPS settings; nil serves plain HTTP.
        public var tls: TLSConfiguration?

        /// Not checked here: ``HTTPServer`` validates the values when it starts and throws
        /// ``HTTPServerError/Code/invalidConfiguration``.
        public init(
            host: String = "",
            port: Int,
            threads: Int = 2,
            connectionLimit: Int = 512,
            perIPConnectionLimit: Int = 0,
            connectionTimeoutSeconds: Int = 10,
            headerTimeoutSeconds: Double = 10,
            connectionMemoryLimit: Int = 32 * 1024,
            maxRequestBodySize: Int = 64 * 1024,
            allowedMethods: [String] = ["GET", "HEAD"],
            tls: TLSConfiguration? = nil
        ) {
            self.host = host
            self.port = port
            self.threads = threads
            self.connectionLimit = connectionLimit
            self.perIPConnectionLimit = perIPConnectionLimit
            self.connectionTimeoutSeconds = connectionTimeoutSeconds
            self.headerTimeoutSeconds = headerTimeoutSeconds
            self.connectionMemoryLimit = connectionMemoryLimit
            self.maxRequestBodySize = maxRequestBodySize
            self.allowedMethods = allowedMethods
            self.tls = tls
        }

        /// Builds a configuration from a `--web.listen-address` style value; see ``parseListenAddress(_:)``.
        public init(listenAddress: String) throws {
            let (host, port) = try Self.parseListenAddress(listenAddress)
            self.init(host: host, port: port)
        }

        /// Splits a listen address into host and port, as Prometheus exporters spell it: `:9445` (every
        /// interface), `0.0.0.0:9445`, `[::1]:9445`, `[::]:9445`, `localhost:9445`. IPv6 literals need brackets;
        /// the port must be decimal, 0–65535. The brackets are not part of the returned host.
        public static func parseListenAddress(_ address: String) throws -> (host: String, port: Int) {
            func failure(_ reason: String) -> HTTPServerError {
                HTTPServerError(
                    code: .invalidListenAddress,
                    message: "invalid listen address \"\(address)\": \(reason) "
                        + "(expected [host]:port, e.g. :9445, 0.0.0.0:9445, [::1]:9445 or localhost:9445)"
                )
            }
            let host: Substring
            let portText: Substring
            if address.hasPrefix("[") {
                guard let close = address.firstIndex(of: "]") else {
                    throw failure("missing ']' after the IPv6 address")
                }
                host = address[address.index(after: address.startIndex)..<close]
                let rest = address[address.index(after: close)...]
                guard rest.first == ":" else { throw failure("expected ':' and a port after ']'") }
                portText = rest.dropFirst()
                guard host.contains(":"), host.utf8.allSatisfy(isIPv6LiteralByte) else {
                    throw failure("brackets must hold an IPv6 address")
                }
            } else {
                guard let colon = address.lastIndex(of: ":") else { throw failure("missing ':' and port") }
                host = address[..<colon]
                portText = address[address.index(after: colon)...]
                if host.contains(":") {
                    throw failure("an IPv6 address must be written in brackets, e.g. [::1]:9445")
                }
                guard host.utf8.allSatisfy(isHostNameByte) else {
                    throw failure("the host may hold only letters, digits, '.', '-' and '_'")
                }
            }
            guard !portText.isEmpty else { throw failure("missing port") }
            let decimal = portText.utf8.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
            guard portText.utf8.count <= 5, decimal,
                let port = Int(portText), port <= 65535
            else {
                throw failure("the port must be a number from 0 to 65535")
            }
            return (String(host), port)
        }

        /// Throws ``HTTPServerError/Code/invalidConfiguration`` for values libmicrohttpd cannot take.
        func validate() throws {
            func failure(_ reason: String) -> HTTPServerError {
                HTTPServerError(code: .invalidConfiguration, message: reason)
            }
            guard (0...65535).contains(port) else { throw failure("port \(port) is not in 0...65535") }
            guard (1...1024).contains(threads) else { throw failure("threads \(threads) is not in 1...1024") }
            guard (1...1_000_000).contains(connectionLimit) else {
                throw failure("connectionLimit \(connectionLimit) is not in 1...1000000")
            }
            guard (0...1_000_000).contains(perIPConnectionLimit) else {
                throw failure("perIPConnectionLimit \(perIPConnectionLimit) is not in 0...1000000")
            }
            guard (0...86_400).contains(connectionTimeoutSeconds) else {
                throw failure("connectionTimeoutSeconds \(connectionTimeoutSeconds) is not in 0...86400")
            }
            guard headerTimeoutSeconds.isFinite, (0...86_400).contains(headerTimeoutSeconds) else {
                throw failure("headerTimeoutSeconds \(headerTimeoutSeconds) is not in 0...86400")
            }
            guard (4096...(64 << 20)).contains(connectionMemoryLimit) else {
                throw failure("connectionMemoryLimit \(connectionMemoryLimit) is not in 4096...67108864")
            }
            guard maxRequestBodySize >= 0 else {
                throw failure("maxRequestBodySize \(maxRequestBodySize) is negative")
            }
            guard !allowedMethods.isEmpty else { throw failure("allowedMethods is empty") }
            for method in allowedMethods where method.isEmpty || !method.utf8.allSatisfy(isTokenByte) {
                throw failure("allowedMethods holds \"\(method)\", which is not an HTTP method token")
            }
        }
    }

    /// HTTPS: the serving certificate and, optionally, the CAs whose names a client certificate is asked for.
    ///
    /// Credentials are PEM bytes, so that callers may load them from files, a Kubernetes Secret or memory; swap
    /// them on a running server with ``HTTPServer/reloadTLS(_:)``.
    public struct TLSConfiguration: Sendable, Equatable {
        /// The serving certificate, then its intermediates.
        public var certificateChainPEM: [UInt8]
        /// The key of the chain's first certificate.
        public var privateKeyPEM: [UInt8]
        /// CA certificates named in the TLS CertificateRequest: clients may then present a certificate, which
        /// handlers find in ``HTTPRequest/peerCertificates`` and verify with a ``CertificateAuthority``. Nil asks
        /// for none; empty asks for any certificate and names no CA. (Clients such as Go's send a certificate only
        /// when its issuer is named here, or when no CA is named.)
        public var clientCAsPEM: [UInt8]?
        /// GnuTLS priority string (see ``priorities(versions:)``).
        public var priorities: String

        /// TLS 1.2 and 1.3 (or the `versions` given, GnuTLS spelling `VERS-TLS1.2`) with forward-secret key exchange
        /// and AEAD ciphers only: GnuTLS' SECURE levels alone still admit CBC suites with SHA-1 MACs and static RSA
        /// key exchange on TLS 1.2.
        public static func priorities(versions: [String] = ["VERS-TLS1.3", "VERS-TLS1.2"]) -> String {
            (["SECURE256", "+SECURE128", "-VERS-ALL"] + versions.map { "+" + $0 }
                + ["-CIPHER-ALL", "+AES-256-GCM", "+AES-128-GCM", "+CHACHA20-POLY1305", "-MAC-ALL", "+AEAD",
                   "-KX-ALL", "+ECDHE-ECDSA", "+ECDHE-RSA", "%SERVER_PRECEDENCE"]).joined(separator: ":")
        }

        /// `priorities` defaults to ``priorities(versions:)`` with TLS 1.3 and 1.2.
        public init(
            certificateChainPEM: [UInt8], privateKeyPEM: [UInt8], clientCAsPEM: [UInt8]? = nil,
            priorities: String = TLSConfiguration.priorities()
        ) {
            self.certificateChainPEM = certificateChainPEM
            self.privateKeyPEM = privateKeyPEM
            self.clientCAsPEM = clientCAsPEM
            self.priorities = priorities
        }
    }
}

private func isHostNameByte(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
        UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "_"):
        true
    default:
        false
    }
}

private func isIPv6LiteralByte(_ byte: UInt8) -> Bool {
    // Hex digits, ':' and '.' (embedded IPv4), '%' and a zone name (fe80::1%eth0).
    isHostNameByte(byte) || byte == UInt8(ascii: ":") || byte == UInt8(ascii: "%")
}

/// RFC 9110 `tchar`.
func isTokenByte(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
        UInt8(ascii: "0")...UInt8(ascii: "9"):
        true
    default:
        "!#$%&'*+-.^_`|~".utf8.contains(byte)
    }
}
