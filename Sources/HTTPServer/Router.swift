/// Exact-path routing: `/metrics`, `/healthz`, `/`. Anything else is 404.
///
/// Method filtering happens in the server before routing (405 with `Allow`), so a route answers every allowed
/// method; HEAD needs no special case because the server sends only the headers of the response.
public struct Router: Sendable {
    /// Called on a libmicrohttpd worker thread, possibly several at once; slow work answers with
    /// ``HTTPResponse/later(_:)`` instead of holding the thread.
    public typealias Handler = @Sendable (HTTPRequest) -> HTTPResponse

    private var routes: [String: Handler] = [:]

    /// No routes: every request is 404 until ``add(_:_:)``.
    public init() {}

    /// Routes requests for exactly `path` to `handler`. Registering a path twice is a programming error.
    public mutating func add(_ path: String, _ handler: @escaping Handler) {
        precondition(path.hasPrefix("/"), "route \"\(path)\" must start with '/'")
        precondition(routes[path] == nil, "route \"\(path)\" is registered twice")
        routes[path] = handler
    }

    /// The paths that have a handler, sorted.
    public var paths: [String] { routes.keys.sorted() }

    /// Answers `request` with its route's handler, or 404.
    public func handle(_ request: HTTPRequest) -> HTTPResponse {
        guard let handler = routes[request.path] else { return .notFound }
        return handler(request)
    }
}
