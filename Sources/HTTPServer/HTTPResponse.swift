/// What a handler answers. The server adds `Content-Length` (from the body), `Date` and `Connection` itself; a
/// `Content-Length` given here is refused by libmicrohttpd and dropped.
public struct HTTPResponse: Sendable {
    /// Status code, 200–999; anything else is answered as 500 and logged.
    public var status: Int
    /// Response headers in order; names are sent as given.
    public var headers: [(name: String, value: String)]
    /// The body; for a HEAD request only its length is sent.
    public var body: ResponseBody
    /// Set by ``later(_:)``: the real response comes through a ``Responder``.
    public internal(set) var deferred: (@Sendable (Responder) -> Void)?

    /// Headers as given; the server adds `Content-Length`, `Date` and `Connection` itself.
    public init(status: Int = 200, headers: [(name: String, value: String)] = [], body: ResponseBody = .empty) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A response with the given body and `Content-Type`.
    public init(status: Int = 200, contentType: String, body: ResponseBody) {
        self.init(status: status, headers: [("Content-Type", contentType)], body: body)
    }

    /// `text/plain; charset=utf-8`.
    public static func text(_ text: String, status: Int = 200) -> HTTPResponse {
        HTTPResponse(status: status, contentType: "text/plain; charset=utf-8", body: ResponseBody(string: text))
    }

    /// `text/html; charset=utf-8`.
    public static func html(_ html: String, status: Int = 200) -> HTTPResponse {
        HTTPResponse(status: status, contentType: "text/html; charset=utf-8", body: ResponseBody(string: html))
    }

    /// 404 with a short plain-text body.
    public static let notFound = HTTPResponse(
        status: 404, contentType: "text/plain; charset=utf-8", body: cannedNotFoundBody)

    /// A response given later, from any thread: the worker thread goes back to serving other connections at once
    /// (libmicrohttpd suspends this one), and `work` runs, on the worker thread, with the ``Responder`` that
    /// answers. `work` must return at once (start a `Task`, or dispatch); the responder must be called once. A
    /// suspended connection has no idle timeout, so whoever defers owns the deadline. When the server stops, the
    /// connections still owed a response are resumed (with a 503 that libmicrohttpd may not get to send) and closed.
    public static func later(_ work: @escaping @Sendable (Responder) -> Void) -> HTTPResponse {
        var response = HTTPResponse(status: 503)
        response.deferred = work
        return response
    }

    /// Adds a header and returns the response, for building responses in one expression.
    public func withHeader(_ name: String, _ value: String) -> HTTPResponse {
        var copy = self
        copy.headers.append((name, value))
        return copy
    }
}

/// Bodies of the server's own answers, allocated once.
let cannedNotFoundBody = ResponseBody(string: "404 page not found\n")
let cannedMethodNotAllowedBody = ResponseBody(string: "405 method not allowed\n")
let cannedInternalErrorBody = ResponseBody(string: "500 internal server error\n")
