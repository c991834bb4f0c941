import CMicroHTTPD
import Glibc
import Logging
import Synchronization

// libmicrohttpd calls these functions on its worker threads. They never throw and never trap on anything a
// client sends: a fault here would take the whole exporter down.

/// The one place where objects cross into C as context pointers and come back.
enum CallbackContext {
    /// A +1 reference for C to hold; balance it with `fromOpaque(...).release()`.
    static func retain(_ object: some AnyObject) -> UnsafeMutableRawPointer {
        Unmanaged.passRetained(object).toOpaque()
    }

    /// The object behind a pointer made by `retain`: `takeUnretainedValue()` to borrow it, `release()` to drop
    /// C's reference.
    static func fromOpaque<Object: AnyObject>(_ pointer: UnsafeRawPointer, as: Object.Type) -> Unmanaged<Object> {
        Unmanaged<Object>.fromOpaque(pointer)
    }
}

/// What the callbacks of one running daemon share. Immutable but for the start-up bookkeeping of libmicrohttpd's
/// log, behind an atomic and a lock.
final class ServerContext: Sendable {
    let handler: @Sendable (HTTPRequest) -> HTTPResponse
    let logger: Logger
    let allowedMethods: [String]
    let methodNotAllowed: HTTPResponse
    let maxRequestBodySize: Int
    /// The header deadline's bookkeeping; nil when it is off.
    let headerDeadlines: HeaderDeadlines?
    /// Responses owed on suspended connections (``HTTPResponse/later(_:)``), answered 503 before the daemon stops.
    /// Once `stopping`, nothing more is suspended.
    let owed = Mutex<(stopping: Bool, table: [ObjectIdentifier: Responder])>((false, [:]))

    /// Suspends `connection` for `responder`, unless the daemon is stopping (then false: answer at once).
    /// Under the same lock as ``answerOwed()``, so that no resume can come before its suspend.
    func suspend(_ connection: OpaquePointer, for responder: Responder) -> Bool {
        owed.withLock { owed in
            guard !owed.stopping else { return false }
            owed.table[ObjectIdentifier(responder)] = responder
            MHD_suspend_connection(connection)
            return true
        }
    }

    /// Answers every response still owed (503) and suspends nothing more, so that no connection is suspended when
    /// the daemon stops.
    func answerOwed() {
        let pending = owed.withLock { owed in
            owed.stopping = true
            defer { owed.table = [:] }
            return Array(owed.table.values)
        }
        for responder in pending { responder.respond(.text("the server is shutting down\n", status: 503)) }
    }
    /// Whether connections are TLS (then the peer's certificates are read for each request).
    let tls: Bool
    /// libmicrohttpd's messages while the daemon starts explain a failed start (logged as errors); afterwards
    /// they are about single connections (a malformed request, a client over a limit), which clients can cause at
    /// will, so they are logged as notices.
    private let starting = Atomic<Bool>(true)
    /// The last message libmicrohttpd logged while starting, for the error thrown if the start fails.
    private let lastStartupMessage = Mutex<String?>(nil)

    func startupFinished() {
        starting.store(false, ordering: .releasing)
    }

    /// The last message libmicrohttpd logged during start-up, if any.
    var startupMessage: String? {
        lastStartupMessage.withLock { $0 }
    }

    /// Routes one of libmicrohttpd's log lines to the logger.
    func logLibraryMessage(_ text: String) {
        if starting.load(ordering: .acquiring) {
            lastStartupMessage.withLock { $0 = text }
            logger.error("\(text)", metadata: ["source": "libmicrohttpd"])
        } else {
            logger.notice("\(text)", metadata: ["source": "libmicrohttpd"])
        }
    }

    init(
        configuration: HTTPServer.Configuration,
        logger: Logger,
        handler: @escaping @Sendable (HTTPRequest) -> HTTPResponse
    ) {
        self.handler = handler
        self.logger = logger
        self.allowedMethods = configuration.allowedMethods
        self.maxRequestBodySize = configuration.maxRequestBodySize
        self.tls = configuration.tls != nil
        self.headerDeadlines = configuration.headerTimeoutSeconds > 0
            ? HeaderDeadlines(limit: configuration.headerTimeoutSeconds, idleAllowance: Double(configuration.connectionTimeoutSeconds))
            : nil
        self.methodNotAllowed = HTTPResponse(
            status: 405,
            headers: [
                ("Allow", configuration.allowedMethods.joined(separator: ", ")),
                ("Content-Type", "text/plain; charset=utf-8"),
            ],
            body: cannedMethodNotAllowedBody
        )
    }

    /// Hands `response` to libmicrohttpd without copying its body: the body is retained until libmicrohttpd
    /// frees the response (after the last byte is sent, or when the connection dies).
    func queue(_ response: HTTPResponse, on connection: OpaquePointer) -> MHD_Result {
        // libmicrohttpd takes 100...999, but a 1xx status cannot be a final response.
        guard (200...999).contains(response.status) else {
            logger.error(
                "handler returned an invalid HTTP status; answering 500",
                metadata: ["status": "\(response.status)"]
            )
            return queue(
                HTTPResponse(status: 500, contentType: "text/plain; charset=utf-8", body: cannedInternalErrorBody),
                on: connection
            )
        }
        let body = response.body
        let retainedBody = CallbackContext.retain(body)
        guard
            let libraryResponse = MHD_create_response_from_buffer_with_free_callback_cls(
                body.count, body.baseAddressForLibrary, releaseResponseBody, retainedBody)
        else {
            CallbackContext.fromOpaque(retainedBody, as: ResponseBody.self).release()
            logger.error("libmicrohttpd could not create a response; closing the connection")
            return .NO
        }
        for (name, value) in response.headers where MHD_add_response_header(libraryResponse, name, value) == .NO {
            // Empty values, control characters, or a header libmicrohttpd sets itself (Content-Length).
            logger.error("dropped a response header libmicrohttpd refused", metadata: ["header": "\(name)"])
        }
        let result = MHD_queue_response(connection, UInt32(response.status), libraryResponse)
        MHD_destroy_response(libraryResponse)
        return result
    }
}

/// One request's progress through libmicrohttpd's repeated access-handler calls. Touched only by the worker
/// thread that owns the connection.
final class RequestState {
    enum Phase {
        /// Headers are in; the handler has not been called for this request yet.
        case new
        /// The first call returned; body bytes (if any) are being discarded.
        case receiving
        /// The handler deferred its answer; the connection is suspended until the responder resumes it.
        case suspended(Responder)
        /// A response is queued.
        case answered
    }

    var phase = Phase.new
    /// The raw query string, captured before libmicrohttpd splits and decodes it.
    let query: String
    /// The raw path (still percent-encoded), captured before libmicrohttpd decodes it: handlers decode it once,
    /// segment by segment (decoding twice would turn `%252A` into the wildcard `*`).
    let path: String?
    var discardedBodyBytes = 0

    init(query: String, path: String? = nil) {
        self.query = query
        self.path = path
    }
}

/// `MHD_OPTION_URI_LOG_CALLBACK`: runs once per request with the raw request target, before libmicrohttpd parses
/// it. Its return value becomes the request's context pointer, released in `requestCompleted`.
let requestStarted: @convention(c) (
    UnsafeMutableRawPointer?, UnsafePointer<CChar>?, OpaquePointer?
) -> UnsafeMutableRawPointer? = { _, uri, _ in
    var query = ""
    var path: String?
    if let uri {
        let target = String(cString: uri)
        if let mark = target.firstIndex(of: "?") {
            query = String(target[target.index(after: mark)...])
            path = String(target[..<mark])
        } else {
            path = target
        }
    }
    return CallbackContext.retain(RequestState(query: query, path: path))
}

/// `MHD_OPTION_NOTIFY_COMPLETED`: the request is over (answered, failed, or the connection closed).
let requestCompleted: MHD_RequestCompletedCallback = { cls, connection, requestContext, _ in
    if let cls, let connection {
        CallbackContext.fromOpaque(cls, as: ServerContext.self).takeUnretainedValue().headerDeadlines?.requestFinished(connection)
    }
    guard let requestContext, let pointer = requestContext.pointee else { return }
    requestContext.pointee = nil
    CallbackContext.fromOpaque(pointer, as: RequestState.self).release()
}

/// Frees the reference `ServerContext.queue` took on a response body.
let releaseResponseBody: MHD_ContentReaderFreeCallback = { pointer in
    guard let pointer else { return }
    CallbackContext.fromOpaque(pointer, as: ResponseBody.self).release()
}

/// `CMicroHTTPD_log_trampoline` delivers libmicrohttpd's formatted error log here.
let libraryLogSink: CMicroHTTPD_LogSink = { context, message in
    guard let context, let message else { return }
    let server = CallbackContext.fromOpaque(context, as: ServerContext.self).takeUnretainedValue()
    var text = String(cString: message)
    while text.last?.isNewline == true { text.removeLast() }
    server.logLibraryMessage(text)
}

/// The access handler. libmicrohttpd calls it at least twice per request: once when the headers are in, then once
/// per chunk of body, then once more with no data, when the request is complete. A response may be queued on the
/// first call (the body is then skipped and the connection closed) or on the last, never in between.
let accessHandler: MHD_AccessHandlerCallback = {
    cls, connection, url, method, _, _, uploadDataSize, requestContext in
    guard let cls, let connection, let url, let method, let uploadDataSize, let requestContext else {
        return .NO
    }
    let server = CallbackContext.fromOpaque(cls, as: ServerContext.self).takeUnretainedValue()
    let request: RequestState
    if let pointer = requestContext.pointee {
        request = CallbackContext.fromOpaque(pointer, as: RequestState.self).takeUnretainedValue()
    } else {
        // Not expected (requestStarted sets it), but libmicrohttpd's contract allows it.
        request = RequestState(query: "")
        requestContext.pointee = CallbackContext.retain(request)
    }

    switch request.phase {
    case .new:
        request.phase = .receiving
        server.headerDeadlines?.headComplete(connection)
        let methodName = String(cString: method)
        guard server.allowedMethods.contains(methodName) else {
            request.phase = .answered
            return server.queue(server.methodNotAllowed, on: connection)
        }
        return .YES

    case .receiving:
        let chunk = uploadDataSize.pointee
        if chunk > 0 {
            uploadDataSize.pointee = 0
            request.discardedBodyBytes += chunk
            if request.discardedBodyBytes > server.maxRequestBodySize {
                server.logger.debug(
                    "request body over the limit; closing the connection",
                    metadata: ["limit": "\(server.maxRequestBodySize)"]
                )
                return .NO
            }
            return .YES
        }
        request.phase = .answered
        let incoming = HTTPRequest(
            method: String(cString: method),
            path: String(cString: url),
            rawPath: request.path,
            query: request.query,
            headers: requestHeaders(connection),
            remoteAddress: CMicroHTTPD_client_address(connection).flatMap(socketAddressString),
            peerCertificates: server.tls ? peerCertificates(session: CMicroHTTPD_tls_session(connection)) : nil
        )
        let response = server.handler(incoming)
        guard let work = response.deferred else { return server.queue(response, on: connection) }
        let responder = Responder(server: server, connection: connection)
        guard server.suspend(connection, for: responder) else {
            request.phase = .answered
            return server.queue(.text("the server is shutting down\n", status: 503), on: connection)
        }
        request.phase = .suspended(responder)
        // Suspended before `work` runs, so a resume can never come first.
        work(responder)
        return .YES

    case .suspended(let responder):
        // Called again after the responder resumed the connection.
        guard let response = responder.takeResponse() else { return .YES }
        request.phase = .answered
        return server.queue(response, on: connection)

    case .answered:
        return .YES
    }
}

private func requestHeaders(_ connection: OpaquePointer) -> [(name: String, value: String)] {
    var headers: [(name: String, value: String)] = []
    headers.reserveCapacity(8)
    withUnsafeMutablePointer(to: &headers) { pointer in
        _ = MHD_get_connection_values(
            connection,
            .HEADER_KIND,
            { cls, _, key, value in
                guard let cls, let key else { return .YES }
                cls.assumingMemoryBound(to: [(name: String, value: String)].self).pointee.append(
                    (String(cString: key), value.map { String(cString: $0) } ?? "")
                )
                return .YES
            },
            pointer
        )
    }
    return headers
}

/// Answers a request whose handler returned ``HTTPResponse/later(_:)``. Thread-safe; only the first answer counts.
public final class Responder: Sendable {
    private let server: ServerContext
    /// Valid while the connection is suspended, that is until the first `respond` resumes it; never touched after.
    private nonisolated(unsafe) let connection: OpaquePointer
    private let state = Mutex<(answered: Bool, response: HTTPResponse?)>((false, nil))

    init(server: ServerContext, connection: OpaquePointer) {
        self.server = server
        self.connection = connection
    }

    /// Sends `response`; returns false (and sends nothing) when an answer was already given.
    @discardableResult
    public func respond(_ response: HTTPResponse) -> Bool {
        var answer = response
        answer.deferred = nil
        let first = state.withLock { state -> Bool in
            guard !state.answered else { return false }
            state = (true, answer)
            return true
        }
        guard first else { return false }
        _ = server.owed.withLock { $0.table.removeValue(forKey: ObjectIdentifier(self)) }
        MHD_resume_connection(connection)
        return true
    }

    /// The response, once, for the access handler's call after the resume.
    func takeResponse() -> HTTPResponse? {
        state.withLock { state in
            defer { state.response = nil }
            return state.response
        }
    }
}
