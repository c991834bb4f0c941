import CCurl
import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One HTTP exchange for ``HTTPConnection``.
public struct HTTPRequest: Sendable {
    /// Which HTTP the transfer speaks.
    public enum Version: Sendable {
        /// HTTP/2 where TLS's ALPN offers it, HTTP/1.1 otherwise (curl's default).
        case automatic
        /// HTTP/1.1 only.
        case http1
        /// HTTP/2 from the first byte, without upgrade or ALPN (gRPC over cleartext and unix sockets); over `https`
        /// HTTP/2 through ALPN, failing when the server does not offer it. Each such exchange opens its own
        /// connection: Debian 12's libcurl 7.88.1 fails a second request on a kept prior-knowledge connection.
        case http2Only
    }

    /// `GET`, `POST`, `PATCH`…
    public var method: String
    /// `http://` or `https://`; with ``unixSocketPath`` the host part is only the `Host` header.
    public var url: String
    /// Sent as given, after curl's own (`Host`, `Content-Length`); `Expect` is never sent.
    public var headers: [(String, String)]
    /// The request body, if any.
    public var body: [UInt8]?
    /// Connect to this unix socket instead of the URL's host and port.
    public var unixSocketPath: String?
    /// Deadline of the whole exchange, body included; nil for none (streams, which use ``idleTimeout``).
    public var timeout: Double?
    /// Deadline of the connection (TCP and TLS).
    public var connectTimeout: Double
    /// The exchange fails when no byte arrives for this long (a half-open connection, a stalled proxy).
    public var idleTimeout: Double?
    /// A response body longer than this fails with ``HTTPTransferError/Kind/tooLarge`` (headers are bounded
    /// separately, to 64 KiB).
    public var maxResponseBytes: Int
    /// HTTP/1.1, HTTP/2 or whichever TLS agrees.
    public var version: Version

    /// A GET of `url` with a 30 s deadline and a 16 MiB body limit unless told otherwise.
    public init(method: String = "GET", url: String, headers: [(String, String)] = [], body: [UInt8]? = nil,
                unixSocketPath: String? = nil, timeout: Double? = 30, connectTimeout: Double = 10, idleTimeout: Double? = nil,
                maxResponseBytes: Int = 16 << 20, version: Version = .automatic) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.unixSocketPath = unixSocketPath
        self.timeout = timeout
        self.connectTimeout = connectTimeout
        self.idleTimeout = idleTimeout
        self.maxResponseBytes = maxResponseBytes
        self.version = version
    }
}

/// What came back: the final status, headers and trailers (names lowercased) and, unless it was streamed, the body.
public struct HTTPResponse: Sendable {
    /// The final response's status code (after any `100 Continue`).
    public var status: Int
    /// Header fields of the final response, in order, names lowercased.
    public var headers: [(name: String, value: String)]
    /// Trailer fields (HTTP/2 trailers, chunked trailers), names lowercased.
    public var trailers: [(name: String, value: String)]
    /// The body; empty when it went to a stream handler instead.
    public var body: [UInt8]

    /// A response as given (what a transfer collected, or a test's).
    public init(status: Int, headers: [(name: String, value: String)], trailers: [(name: String, value: String)] = [], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.trailers = trailers
        self.body = body
    }

    /// The first header field named `name` (any case).
    public func header(_ name: String) -> String? {
        let wanted = name.lowercased()
        return headers.first { $0.name == wanted }?.value
    }

    /// The first trailer field named `name`, else the first header field (gRPC's trailers-only answers put their
    /// status in the headers).
    public func trailer(_ name: String) -> String? {
        let wanted = name.lowercased()
        return trailers.first { $0.name == wanted }?.value ?? header(name)
    }
}

/// Why an exchange did not produce a response. `message` is one line naming the peer and the cause.
public struct HTTPTransferError: Error, Sendable, CustomStringConvertible {
    /// Coarse causes callers decide on.
    public enum Kind: Sendable, Equatable {
        /// Bad settings: an unusable URL, certificate or option.
        case configuration
        /// No connection: refused, no such socket, unresolvable host, unreachable.
        case connect
        /// The deadline (whole exchange, connection or idle) passed.
        case timeout
        /// The response (body or headers) was larger than allowed.
        case tooLarge
        /// Cancelled by the caller (``HTTPConnection/cancel()`` or task cancellation).
        case cancelled
        /// The TLS handshake or certificate check failed.
        case tls
        /// The stream handler refused the data.
        case aborted
        /// The connection broke or the peer did not speak HTTP.
        case transport
    }

    /// The cause's kind.
    public var kind: Kind
    /// One line for logs: curl's own explanation, with the URL.
    public var message: String
    /// ``message``.
    public var description: String { message }

    /// An error of `kind` explained by `message`.
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }
}

/// One libcurl easy handle: its connections are kept and reused by the exchanges made through it, one at a time.
///
/// Built on Debian's libcurl with GnuTLS, the TLS library libmicrohttpd already brings, so the exporter carries one
/// TLS stack. Every exchange has deadlines and bounded reads; an exchange blocks its calling thread (the async
/// forms run it on the connection's own dispatch queue, so a slow peer holds only that queue). Not for concurrent
/// use: ``perform(_:onBody:)`` calls are serialized by the caller (the async forms serialize on the queue).
public final class HTTPConnection: @unchecked Sendable {
    private let handle: UnsafeMutableRawPointer
    private let tls: TLSMaterial?
    private let proxy: HTTPProxy
    private let queue: DispatchQueue
    private let cancelled = CancelFlag()

    /// A new handle, with `tls` for `https` URLs (nil: the system's CA bundle, full verification), reaching its
    /// peers through `proxy` (checked now; ``HTTPProxy/direct`` by default: proxies in the environment are not
    /// followed unless the caller reads them with ``HTTPProxy/environment(_:)``).
    public init(tls: TLSMaterial? = nil, proxy: HTTPProxy = .direct, label: String = "accelmetrics.http") throws(HTTPTransferError) {
        try proxy.validate()
        let initialised = ccurl_global_init()
        guard initialised == CURLE_OK else {
            throw HTTPTransferError(.configuration, "libcurl does not initialise: \(Self.text(initialised))")
        }
        guard let handle = curl_easy_init() else { throw HTTPTransferError(.configuration, "libcurl has no handle to give") }
        self.handle = handle
        self.tls = tls
        self.proxy = proxy
        queue = DispatchQueue(label: label)
    }

    deinit { curl_easy_cleanup(handle) }

    /// Makes the exchange under way (and any later one, until ``resetCancellation()``) stop within about a second
    /// with ``HTTPTransferError/Kind/cancelled``. Any thread may call it.
    public func cancel() { cancelled.set(true) }

    /// Clears ``cancel()``.
    public func resetCancellation() { cancelled.set(false) }

    /// Runs the exchange on the calling thread. With `onBody`, the body of a 2xx answer goes to it as it arrives
    /// (return false to stop the exchange, which then fails as ``HTTPTransferError/Kind/aborted``) and the
    /// response's `body` stays empty: the handler bounds what it keeps. Any other answer's body (an error document)
    /// is collected as usual, up to ``HTTPRequest/maxResponseBytes``.
    public func perform(_ request: HTTPRequest, onBody: ((UnsafeRawBufferPointer) -> Bool)? = nil) throws(HTTPTransferError) -> HTTPResponse {
        try run(request, onBody: onBody, flag: nil)
    }

    /// ``perform(_:onBody:)`` on this connection's own queue, so a slow peer holds no task executor. Cancelling the
    /// task stops the exchange within about a second, as ``HTTPTransferError/Kind/cancelled``.
    public func perform(_ request: HTTPRequest, onBody: (@Sendable (UnsafeRawBufferPointer) -> Bool)? = nil) async throws(HTTPTransferError)
        -> HTTPResponse
    {
        let flag = CancelFlag()
        let result: Result<HTTPResponse, HTTPTransferError> = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                queue.async { [self] in
                    do throws(HTTPTransferError) {
                        continuation.resume(returning: .success(try run(request, onBody: onBody, flag: flag)))
                    } catch {
                        continuation.resume(returning: .failure(error))
                    }
                }
            }
        } onCancel: {
            flag.set(true)
        }
        return try result.get()
    }

    private func run(_ request: HTTPRequest, onBody: ((UnsafeRawBufferPointer) -> Bool)?, flag: CancelFlag?) throws(HTTPTransferError)
        -> HTTPResponse
    {
        let context = TransferContext(request: request, handle: handle, flags: [cancelled] + (flag.map { [$0] } ?? []), onBody: onBody)
        var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        var headerList: UnsafeMutablePointer<curl_slist>?
        defer { curl_slist_free_all(headerList) }
        curl_easy_reset(handle)

        var failure: HTTPTransferError?
        func set(_ result: CURLcode, _ what: String) {
            if result != CURLE_OK, failure == nil {
                failure = HTTPTransferError(.configuration, "\(what): \(Self.text(result))")
            }
        }
        set(ccurl_setopt_pointer(handle, CURLOPT_URL, request.url), "URL \(request.url)")
        set(ccurl_setopt_long(handle, CURLOPT_NOSIGNAL, 1), "no signals")
        set(ccurl_setopt_pointer(handle, CURLOPT_PROTOCOLS_STR, "http,https"), "protocols")
        // The proxy is ours to choose (HTTPProxy, Go's rules): curl's own reading of the environment is switched off,
        // NO_PROXY included, which curl would otherwise apply even to a proxy set here.
        let through = request.unixSocketPath == nil ? proxy.route(for: request.url, tunnelled: request.version == .http2Only) : nil
        if let through {
            set(ccurl_setopt_pointer(handle, CURLOPT_PROXY, through), "proxy")
            set(ccurl_setopt_pointer(handle, CURLOPT_NOPROXY, ""), "no proxy list")
            // The proxy's own answer to CONNECT stays out of the response's headers (curl bounds it itself).
            set(ccurl_setopt_long(handle, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1), "CONNECT headers")
            if request.version == .http2Only {
                // gRPC needs the HTTP/2 connection end to end: a tunnel, never a proxy forwarding HTTP/1.1.
                set(ccurl_setopt_long(handle, CURLOPT_HTTPPROXYTUNNEL, 1), "proxy tunnel")
            }
        } else {
            set(ccurl_setopt_pointer(handle, CURLOPT_PROXY, ""), "proxy")
        }
        set(ccurl_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 0), "redirects")
        set(ccurl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, Self.milliseconds(request.connectTimeout)), "connect timeout")
        if let timeout = request.timeout {
            set(ccurl_setopt_long(handle, CURLOPT_TIMEOUT_MS, Self.milliseconds(timeout)), "timeout")
        }
        if let socket = request.unixSocketPath {
            set(ccurl_setopt_pointer(handle, CURLOPT_UNIX_SOCKET_PATH, socket), "unix socket \(socket)")
        }
        switch request.version {
        case .automatic: break
        case .http1: set(ccurl_setopt_long(handle, CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_1_1)), "HTTP/1.1")
        case .http2Only:
            let https = request.url.lowercased().hasPrefix("https:")
            let version = https ? CURL_HTTP_VERSION_2TLS : CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE
            set(ccurl_setopt_long(handle, CURLOPT_HTTP_VERSION, Int(version)), "HTTP/2")
            // Debian 12's libcurl (7.88.1) fails the second request on a kept HTTP/2 connection it opened with prior
            // knowledge ("Error in the HTTP2 framing layer"; `curl --http2-prior-knowledge URL URL` shows it): each
            // such exchange gets a connection of its own.
            set(ccurl_setopt_long(handle, CURLOPT_FORBID_REUSE, 1), "no reuse")
        }
        switch request.method {
        case "GET": break
        case "POST": set(ccurl_setopt_long(handle, CURLOPT_POST, 1), "POST")
        default:
            set(ccurl_setopt_pointer(handle, CURLOPT_CUSTOMREQUEST, request.method), "method \(request.method)")
        }
        // Held by `request` for the whole (synchronous) exchange: curl reads the body while perform runs.
        let body = request.body ?? []
        if request.body != nil || request.method == "POST" {
            set(ccurl_setopt_offset(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count)), "body size")
        }
        for (name, value) in request.headers + [("Expect", "")] {
            // A line break would end the field and start another (a configured token or header smuggling fields in).
            // Bytes, not Characters: "\r\n" is one Character, equal to neither "\r" nor "\n".
            guard !(name + value).utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0 }), !name.contains(":") else {
                if failure == nil { failure = HTTPTransferError(.configuration, "header \"\(name.prefix(40))\" holds a line break or colon") }
                continue
            }
            let line = value.isEmpty ? "\(name):" : "\(name): \(value)"
            headerList = curl_slist_append(headerList, line)
        }
        set(ccurl_setopt_pointer(handle, CURLOPT_HTTPHEADER, headerList), "headers")
        if let tls {
            if let ca = tls.caPath {
                // The given bundle and nothing else: no system CA directory beside it (a cluster's CA is the only
                // root its API server is checked against, and parsing the system's hundreds of roots costs MiBs).
                set(ccurl_setopt_pointer(handle, CURLOPT_CAINFO, ca), "CA bundle")
                set(ccurl_setopt_pointer(handle, CURLOPT_CAPATH, nil), "CA directory")
            }
            if let certificate = tls.certificatePath, let key = tls.keyPath {
                set(ccurl_setopt_pointer(handle, CURLOPT_SSLCERT, certificate), "client certificate")
                set(ccurl_setopt_pointer(handle, CURLOPT_SSLKEY, key), "client key")
            }
            if tls.insecureSkipVerify {
                set(ccurl_setopt_long(handle, CURLOPT_SSL_VERIFYPEER, 0), "verify peer")
                set(ccurl_setopt_long(handle, CURLOPT_SSL_VERIFYHOST, 0), "verify host")
            }
        }
        set(ccurl_setopt_long(handle, CURLOPT_SSLVERSION, Int(CURL_SSLVERSION_TLSv1_2)), "TLS 1.2 or later")
        let unmanaged = Unmanaged.passRetained(context)
        defer { unmanaged.release() }
        let pointer = unmanaged.toOpaque()
        set(ccurl_setopt_write(handle, TransferContext.write, pointer), "write callback")
        set(ccurl_setopt_header(handle, TransferContext.header, pointer), "header callback")
        set(ccurl_setopt_xferinfo(handle, TransferContext.progress, pointer), "progress callback")
        if let failure { throw failure }

        let result = errorBuffer.withUnsafeMutableBufferPointer { buffer in
            body.withUnsafeBytes { bytes -> CURLcode in
                _ = ccurl_setopt_pointer(handle, CURLOPT_ERRORBUFFER, buffer.baseAddress)
                if request.body != nil || request.method == "POST" {
                    // POSTFIELDS borrows the bytes, which live until perform returns (COPYPOSTFIELDS would copy them).
                    _ = ccurl_setopt_pointer(handle, CURLOPT_POSTFIELDS, bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1))
                }
                defer { _ = ccurl_setopt_pointer(handle, CURLOPT_ERRORBUFFER, nil) }
                return curl_easy_perform(handle)
            }
        }
        var status = 0
        ccurl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        if result != CURLE_OK {
            var osError = 0
            ccurl_getinfo_long(handle, CURLINFO_OS_ERRNO, &osError)
            let detail = String(decoding: errorBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw context.error(
                for: result, url: request.url, socket: request.unixSocketPath, proxy: through.map(HTTPProxy.redacted), detail: detail,
                osError: Int32(osError))
        }
        return HTTPResponse(status: status, headers: context.headers, trailers: context.trailers, body: context.body)
    }

    static func milliseconds(_ seconds: Double) -> Int {
        guard seconds.isFinite, seconds > 0 else { return 1 }
        return Int(min(seconds * 1000, Double(Int32.max)).rounded(.up))
    }

    static func text(_ code: CURLcode) -> String { String(cString: curl_easy_strerror(code)) }
}

/// The state one exchange's callbacks share: what came back, and the limits it is held to.
private final class TransferContext {
    static let maxHeaderBytes = 64 << 10

    let maxBytes: Int
    let idleTimeout: Double?
    let flags: [CancelFlag]
    let onBody: ((UnsafeRawBufferPointer) -> Bool)?
    var body: [UInt8] = []
    var headers: [(name: String, value: String)] = []
    var trailers: [(name: String, value: String)] = []
    var headerBytes = 0
    var headersDone = false
    var overflow = false
    var refused = false
    var idleFired = false
    var lastByte = ContinuousClock.now

    let handle: UnsafeMutableRawPointer
    /// Whether body bytes go to `onBody`: decided on the first one, by the status (only 2xx answers stream).
    var streaming: Bool?

    init(request: HTTPRequest, handle: UnsafeMutableRawPointer, flags: [CancelFlag], onBody: ((UnsafeRawBufferPointer) -> Bool)?) {
        self.handle = handle
        maxBytes = request.maxResponseBytes
        idleTimeout = request.idleTimeout
        self.flags = flags
        self.onBody = onBody
    }

    var isCancelled: Bool { flags.contains { $0.value } }

    static let write: ccurl_data_fn = { data, size, count, context in
        guard let context, let data else { return 0 }
        let me = Unmanaged<TransferContext>.fromOpaque(context).takeUnretainedValue()
        let (n, overflowed) = size.multipliedReportingOverflow(by: count)
        guard !overflowed else { return 0 }
        me.lastByte = .now
        let bytes = UnsafeRawBufferPointer(start: data, count: n)
        if me.streaming == nil {
            var status = 0
            ccurl_getinfo_long(me.handle, CURLINFO_RESPONSE_CODE, &status)
            me.streaming = me.onBody != nil && (200..<300).contains(status)
        }
        if me.streaming == true, let onBody = me.onBody {
            guard onBody(bytes) else {
                me.refused = true
                return 0
            }
            return n
        }
        guard n <= me.maxBytes - me.body.count else {
            me.overflow = true
            return 0
        }
        me.body.append(contentsOf: bytes)
        return n
    }

    static let header: ccurl_data_fn = { data, size, count, context in
        guard let context, let data else { return 0 }
        let me = Unmanaged<TransferContext>.fromOpaque(context).takeUnretainedValue()
        let (n, overflowed) = size.multipliedReportingOverflow(by: count)
        guard !overflowed, n <= maxHeaderBytes - me.headerBytes else {
            me.overflow = true
            return 0
        }
        me.headerBytes += n
        me.lastByte = .now
        // Without the line end, byte by byte ("\r\n" is one Character, which hasSuffix("\n") does not see).
        var bytes = UnsafeRawBufferPointer(start: data, count: n)[...]
        while let last = bytes.last, last == UInt8(ascii: "\n") || last == UInt8(ascii: "\r") { bytes = bytes.dropLast() }
        let line = String(decoding: bytes, as: UTF8.self)
        if line.hasPrefix("HTTP/") {
            // A new status line: an interim response (100) or a redirect's answer is forgotten.
            me.headers = []
            me.trailers = []
            me.headersDone = false
            return n
        }
        if line.isEmpty {
            me.headersDone = true
            return n
        }
        guard let colon = line.firstIndex(of: ":") else { return n }
        let name = line[..<colon].lowercased()
        let value = line[line.index(after: colon)...].trimmingSpaces()
        if me.headersDone {
            me.trailers.append((name, value))
        } else {
            me.headers.append((name, value))
        }
        return n
    }

    static let progress: ccurl_xferinfo_fn = { context, _, _, _, _ in
        guard let context else { return 1 }
        let me = Unmanaged<TransferContext>.fromOpaque(context).takeUnretainedValue()
        if me.isCancelled { return 1 }
        if let idle = me.idleTimeout, ContinuousClock.now - me.lastByte > .milliseconds(Int64(idle * 1000)) {
            me.idleFired = true
            return 1
        }
        return 0
    }

    func error(for code: CURLcode, url: String, socket: String?, proxy: String?, detail: String, osError: Int32) -> HTTPTransferError {
        let peer = socket.map { "\(url) (unix socket \($0))" } ?? proxy.map { "\(url) (through proxy \($0))" } ?? url
        if overflow {
            return HTTPTransferError(.tooLarge, "\(peer): the answer is larger than \(maxBytes) bytes (headers: \(Self.maxHeaderBytes))")
        }
        if refused { return HTTPTransferError(.aborted, "\(peer): the stream's reader stopped it") }
        if idleFired {
            return HTTPTransferError(.timeout, "\(peer): no data for \(idleTimeout ?? 0) s; the connection is presumed dead")
        }
        var text = detail.isEmpty ? HTTPConnection.text(code) : detail
        if osError != 0, code == CURLE_COULDNT_CONNECT {
            let reason = String(cString: strerror(osError))
            if !text.lowercased().contains(reason.lowercased()) { text += " (\(reason))" }
        }
        switch code {
        case CURLE_ABORTED_BY_CALLBACK:
            return HTTPTransferError(.cancelled, "\(peer): cancelled")
        case CURLE_OPERATION_TIMEDOUT:
            return HTTPTransferError(.timeout, "\(peer): \(text) (deadline exceeded)")
        case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY:
            return HTTPTransferError(.connect, "\(peer): \(text)")
        case CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CONNECT_ERROR, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CACERT_BADFILE,
             CURLE_SSL_CIPHER, CURLE_SSL_ISSUER_ERROR, CURLE_SSL_CRL_BADFILE:
            return HTTPTransferError(.tls, "\(peer): TLS: \(text)")
        case CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL, CURLE_NOT_BUILT_IN:
            return HTTPTransferError(.configuration, "\(peer): \(text)")
        default:
            return HTTPTransferError(.transport, "\(peer): \(text)")
        }
    }
}

/// A flag one thread sets and a transfer's progress callback reads.
final class CancelFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    var value: Bool { flag.load(ordering: .relaxed) }
    func set(_ value: Bool) { flag.store(value, ordering: .relaxed) }
}

extension Substring {
    fileprivate func trimmingSpaces() -> String {
        var text = self
        while let first = text.first, first == " " || first == "\t" { text.removeFirst() }
        while let last = text.last, last == " " || last == "\t" { text.removeLast() }
        return String(text)
    }
}
