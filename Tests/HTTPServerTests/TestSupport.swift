import AccelMetricsTesting
import HTTPServer

/// A handler shared by most tests: a fixed /metrics body, an echo of the request, and a route that misbehaves.
let metricsText = "# HELP up Whether up.\n# TYPE up gauge\nup 1\n"
let metricsContentType = "text/plain; version=0.0.4; charset=utf-8"

func testRouter() -> Router {
    let metricsBody = ResponseBody(string: metricsText)
    var router = Router()
    router.add("/metrics") { _ in HTTPResponse(contentType: metricsContentType, body: metricsBody) }
    router.add("/echo") { request in
        .text(
            """
            method=\(request.method)
            path=\(request.path)
            query=\(request.query)
            x-test=\(request.header("x-TEST") ?? "-")
            remote=\(request.remoteAddress ?? "-")
            """
        )
    }
    router.add("/bad-status") { _ in HTTPResponse(status: 42) }
    router.add("/bad-headers") { _ in
        HTTPResponse.text("body").withHeader("X-Split", "a\r\nInjected: yes").withHeader("Content-Length", "1")
            .withHeader("X-Fine", "kept")
    }
    return router
}

/// Starts a server on 127.0.0.1 with a kernel-chosen port, runs `body`, and stops it whatever happens.
func withServer<Result>(
    _ configure: (inout HTTPServer.Configuration) -> Void = { _ in },
    logs: CapturedLog = CapturedLog(),
    router: Router = testRouter(),
    _ body: (HTTPServer) throws -> Result
) throws -> Result {
    var configuration = HTTPServer.Configuration(host: "127.0.0.1", port: 0)
    configure(&configuration)
    let server = HTTPServer(configuration: configuration, logger: logs.logger(), router: router)
    try server.start()
    defer { server.stop() }
    return try body(server)
}
