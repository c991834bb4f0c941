import ConfigYAML
public import CurlHTTP
public import SwiftProtobuf

/// A gRPC status other than OK, or a call that never got one (mapped the way gRPC clients map them: no connection
/// is `unavailable`, a passed deadline `deadlineExceeded`, an answer that does not decode `internalError`).
public struct GRPCStatusError: Error, Sendable, CustomStringConvertible {
    /// gRPC's status codes.
    public struct Code: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        public var rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }

        public static let cancelled = Code(rawValue: 1)
        public static let unknown = Code(rawValue: 2)
        public static let invalidArgument = Code(rawValue: 3)
        public static let deadlineExceeded = Code(rawValue: 4)
        public static let notFound = Code(rawValue: 5)
        public static let alreadyExists = Code(rawValue: 6)
        public static let permissionDenied = Code(rawValue: 7)
        public static let resourceExhausted = Code(rawValue: 8)
        public static let failedPrecondition = Code(rawValue: 9)
        public static let aborted = Code(rawValue: 10)
        public static let outOfRange = Code(rawValue: 11)
        public static let unimplemented = Code(rawValue: 12)
        public static let internalError = Code(rawValue: 13)
        public static let unavailable = Code(rawValue: 14)
        public static let dataLoss = Code(rawValue: 15)
        public static let unauthenticated = Code(rawValue: 16)

        private static let names = [
            "ok", "cancelled", "unknown", "invalidArgument", "deadlineExceeded", "notFound", "alreadyExists", "permissionDenied",
            "resourceExhausted", "failedPrecondition", "aborted", "outOfRange", "unimplemented", "internalError", "unavailable",
            "dataLoss", "unauthenticated",
        ]
        /// The code's name as grpc-swift spells it (`deadlineExceeded`), or its number.
        public var description: String { Self.names.indices.contains(rawValue) ? Self.names[rawValue] : "\(rawValue)" }
    }

    /// The status.
    public var code: Code
    /// The server's `grpc-message`, or what went wrong on the way.
    public var message: String
    /// `code: message`.
    public var description: String { "\(code): \(message)" }

    /// A status `code` explained by `message`.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
}

/// Where a channel connects.
public enum GRPCTarget: Sendable, CustomStringConvertible {
    /// A unix socket (the kubelet's pod-resources socket).
    case unixSocket(String)
    /// A host name or IP literal (an IPv6 one without brackets) and a port.
    case host(String, port: Int)

    /// `unix:PATH` or `host:port`.
    public var description: String {
        switch self {
        case .unixSocket(let path): "unix:\(path)"
        case .host(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        }
    }
}

/// Unary gRPC calls over HTTP/2 through one ``HTTPConnection`` (libcurl with nghttp2; TLS from GnuTLS): what the
/// exporter's gRPC peers need — the kubelet's pod-resources `List`, libtpu's runtime metrics, an OTLP collector's
/// `Export` — without a gRPC framework.
///
/// Each call is one HTTP/2 request on a connection of its own (Debian 12's libcurl cannot reuse an HTTP/2
/// connection opened with prior knowledge; see ``HTTPRequest/Version/http2Only``): the message in gRPC's
/// length-prefixed frame, `grpc-timeout` for the deadline, the answer's single frame read up to a bound, and the
/// status taken from the trailers (or the headers of a trailers-only answer). Calls on one channel run one at a
/// time on the connection's own queue: a hung peer holds only its own channel.
public final class GRPCChannel: Sendable {
    /// As given.
    public let target: GRPCTarget
    private let connection: HTTPConnection
    private let base: String
    private let metadata: [(String, String)]

    /// A channel to `target`, over TLS when `tls` is given (HTTP/2 through ALPN), over cleartext HTTP/2 otherwise,
    /// through `proxy`'s `https` proxy in a `CONNECT` tunnel where it applies (never for a unix socket); `metadata`
    /// goes with every call (lowercase names).
    public init(target: GRPCTarget, tls: TLSMaterial? = nil, proxy: HTTPProxy = .direct, metadata: [(String, String)] = [],
                label: String = "accelmetrics.grpc") throws(GRPCStatusError)
    {
        self.target = target
        self.metadata = metadata.map { ($0.0.lowercased(), $0.1) }
        let scheme = tls == nil ? "http" : "https"
        switch target {
        case .unixSocket: base = "\(scheme)://localhost"
        case .host(let host, let port): base = host.contains(":") ? "\(scheme)://[\(host)]:\(port)" : "\(scheme)://\(host):\(port)"
        }
        do {
            connection = try HTTPConnection(tls: tls, proxy: proxy, label: label)
        } catch {
            throw GRPCStatusError(.internalError, error.message)
        }
    }

    /// Makes the blocking call under way, and any later one, fail as `cancelled` within about a second.
    public func cancel() { connection.cancel() }

    /// Calls `method` (`/package.Service/Method`) with `request`, waiting at most `timeout` seconds, and decodes the
    /// answer as `Response` (at most `maxResponseBytes`).
    public func unary<Request: Message, Response: Message>(
        _ method: String, _ request: Request, as type: Response.Type = Response.self, timeout: Double, maxResponseBytes: Int = 4 << 20
    ) async throws(GRPCStatusError) -> Response {
        let bytes: [UInt8]
        do {
            bytes = try request.serializedBytes()
        } catch {
            throw GRPCStatusError(.internalError, "the request did not serialize: \(error)")
        }
        let http = self.request(method, message: bytes, compressed: false, timeout: timeout, maxResponseBytes: maxResponseBytes)
        let response: HTTPResponse
        do {
            response = try await connection.perform(http)
        } catch {
            throw Self.status(for: error, timeout: timeout)
        }
        return try Self.decode(response, as: Response.self)
    }

    /// The blocking form for a thread of the caller's own: `message` already serialized (and gzip-compressed when
    /// `compressed`, which sends `grpc-encoding: gzip`); the answer's message bytes come back.
    public func unaryBytes(_ method: String, message: [UInt8], compressed: Bool, timeout: Double, maxResponseBytes: Int = 64 << 10)
        throws(GRPCStatusError) -> [UInt8]
    {
        let http = request(method, message: message, compressed: compressed, timeout: timeout, maxResponseBytes: maxResponseBytes)
        let response: HTTPResponse
        do {
            response = try connection.perform(http)
        } catch {
            throw Self.status(for: error, timeout: timeout)
        }
        return try Self.message(of: response)
    }

    private func request(_ method: String, message: [UInt8], compressed: Bool, timeout: Double, maxResponseBytes: Int) -> HTTPRequest {
        var body: [UInt8] = [compressed ? 1 : 0]
        let length = UInt32(clamping: message.count)
        body += [UInt8(length >> 24), UInt8(truncatingIfNeeded: length >> 16), UInt8(truncatingIfNeeded: length >> 8), UInt8(truncatingIfNeeded: length)]
        body += message
        var headers = [
            ("Content-Type", "application/grpc+proto"), ("TE", "trailers"), ("User-Agent", "accelmetrics-grpc"),
            ("grpc-timeout", Self.timeoutHeader(timeout)), ("Accept", ""),
        ]
        if compressed { headers.append(("grpc-encoding", "gzip")) }
        headers += metadata
        var socket: String?
        if case .unixSocket(let path) = target { socket = path }
        // The frame header, the bound, and room for a status message.
        let (bound, overflow) = maxResponseBytes.addingReportingOverflow(5)
        return HTTPRequest(
            method: "POST", url: base + method, headers: headers, body: body, unixSocketPath: socket, timeout: timeout,
            connectTimeout: timeout, maxResponseBytes: overflow ? Int.max : bound, version: .http2Only)
    }

    /// `grpc-timeout`: at most 8 digits, in the coarsest unit that keeps the deadline.
    static func timeoutHeader(_ seconds: Double) -> String {
        let milliseconds = max(1, Int(min(seconds * 1000, 99_999_999).rounded(.up)))
        return "\(milliseconds)m"
    }

    static func status(for error: HTTPTransferError, timeout: Double) -> GRPCStatusError {
        switch error.kind {
        case .timeout: GRPCStatusError(.deadlineExceeded, "no answer within \(timeout)s (deadline exceeded): \(error.message)")
        case .connect, .tls, .transport: GRPCStatusError(.unavailable, error.message)
        case .cancelled: GRPCStatusError(.cancelled, error.message)
        case .tooLarge: GRPCStatusError(.resourceExhausted, error.message)
        case .configuration, .aborted: GRPCStatusError(.internalError, error.message)
        }
    }

    /// The answer's message, or the status it carries.
    static func message(of response: HTTPResponse) throws(GRPCStatusError) -> [UInt8] {
        guard response.status == 200 else {
            // gRPC's mapping of HTTP statuses from peers that answered without gRPC (a proxy, a wrong port).
            let code: GRPCStatusError.Code =
                switch response.status {
                case 400: .internalError
                case 401: .unauthenticated
                case 403: .permissionDenied
                case 404: .unimplemented
                case 429, 502, 503, 504: .unavailable
                default: .unknown
                }
            throw GRPCStatusError(code, "HTTP \(response.status) instead of a gRPC answer")
        }
        guard let contentType = response.header("content-type"), contentType.lowercased().hasPrefix("application/grpc") else {
            throw GRPCStatusError(.unknown, "not a gRPC answer (content-type \(response.header("content-type") ?? "none"))")
        }
        guard let statusText = response.trailer("grpc-status") else {
            throw GRPCStatusError(.internalError, "the answer ended without a grpc-status")
        }
        guard let code = Int(statusText), code >= 0 else {
            throw GRPCStatusError(.unknown, "grpc-status \"\(statusText.prefix(16))\" is not a number")
        }
        guard code == 0 else {
            throw GRPCStatusError(.init(rawValue: code), Self.grpcMessage(response.trailer("grpc-message") ?? ""))
        }
        let body = response.body
        guard body.count >= 5 else {
            throw GRPCStatusError(.internalError, "the answer has no message (\(body.count) bytes)")
        }
        guard body[0] == 0 else {
            throw GRPCStatusError(.internalError, "the answer is compressed, which was not asked for")
        }
        let length = Int(body[1]) << 24 | Int(body[2]) << 16 | Int(body[3]) << 8 | Int(body[4])
        guard length <= body.count - 5 else {
            throw GRPCStatusError(.internalError, "the answer's frame says \(length) bytes but \(body.count - 5) came")
        }
        return Array(body[5..<(5 + length)])
    }

    static func decode<Response: Message>(_ response: HTTPResponse, as type: Response.Type) throws(GRPCStatusError) -> Response {
        let bytes = try message(of: response)
        do {
            return try Response(serializedBytes: bytes)
        } catch {
            throw GRPCStatusError(.internalError, "could not deserialize the answer as \(Response.protoMessageName): \(error)")
        }
    }

    /// `grpc-message` is percent-encoded UTF-8; text with bad escapes is kept as it came.
    static func grpcMessage(_ text: String) -> String { PercentEncoding.decode(text) ?? text }
}
