/// A request as the handler sees it: everything is copied out of libmicrohttpd, so it may be kept or sent to
/// other threads. There is no body: the server discards request bodies.
public struct HTTPRequest: Sendable {
    /// Method as sent (`"GET"`, `"HEAD"`); only ``HTTPServer/Configuration/allowedMethods`` reach a handler.
    public var method: String
    /// Path without the query, percent-decoded by libmicrohttpd (`/metrics`).
    public var path: String
    /// The same path as the client sent it, still percent-encoded (`/pods/%2A/m`): for handlers that decode it
    /// themselves, segment by segment, exactly once (decoding ``path`` again would turn `%252A` into `*`).
    public var rawPath: String
    /// Everything after the first `?` of the request target, not decoded; empty when there is none.
    public var query: String
    /// Request headers in the order received; see ``header(_:)``.
    public var headers: [(name: String, value: String)]
    /// The client's numeric IP address (IPv4 peers of a dual-stack socket in dotted form), if known.
    public var remoteAddress: String?
    /// Over TLS, the certificate chain the client presented (DER, leaf first), not yet verified: check it with a
    /// ``CertificateAuthority``. Nil over plain HTTP or when the client sent none.
    public var peerCertificates: [[UInt8]]?

    /// The server builds these on a worker thread; tests build them directly. `rawPath` nil means the same as `path`.
    public init(
        method: String,
        path: String,
        rawPath: String? = nil,
        query: String = "",
        headers: [(name: String, value: String)] = [],
        remoteAddress: String? = nil,
        peerCertificates: [[UInt8]]? = nil
    ) {
        self.method = method
        self.path = path
        self.rawPath = rawPath ?? path
        self.query = query
        self.headers = headers
        self.remoteAddress = remoteAddress
        self.peerCertificates = peerCertificates
    }

    /// The first value of the header `name`, compared without regard to ASCII case.
    public func header(_ name: String) -> String? {
        for header in headers where asciiCaseInsensitiveEquals(header.name, name) {
            return header.value
        }
        return nil
    }
}

/// Compares header names without allocating lowercase copies.
func asciiCaseInsensitiveEquals(_ lhs: String, _ rhs: String) -> Bool {
    var left = lhs.utf8.makeIterator()
    var right = rhs.utf8.makeIterator()
    while true {
        switch (left.next(), right.next()) {
        case (nil, nil):
            return true
        case let (a?, b?):
            if a != b && asciiLowercased(a) != asciiLowercased(b) { return false }
        default:
            return false
        }
    }
}

@inline(__always)
private func asciiLowercased(_ byte: UInt8) -> UInt8 {
    byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
}
