import HTTPServer
import Testing

@Suite("Listen addresses")
struct ListenAddressTests {
    @Test(
        "Valid listen addresses",
        arguments: [
            (":9445", "", 9445),
            ("0.0.0.0:9445", "0.0.0.0", 9445),
            ("127.0.0.1:80", "127.0.0.1", 80),
            ("[::1]:9445", "::1", 9445),
            ("[::]:9445", "::", 9445),
            ("[fe80::1%eth0]:9445", "fe80::1%eth0", 9445),
            ("localhost:9445", "localhost", 9445),
            ("node-1.example.com:65535", "node-1.example.com", 65535),
            (":0", "", 0),
        ]
    )
    func valid(address: String, host: String, port: Int) throws {
        let parsed = try HTTPServer.Configuration.parseListenAddress(address)
        #expect(parsed.host == host)
        #expect(parsed.port == port)
    }

    @Test(
        "Invalid listen addresses are rejected with a message naming the problem",
        arguments: [
            ("", "missing ':' and port"),
            ("9445", "missing ':' and port"),
            ("localhost", "missing ':' and port"),
            ("localhost:", "missing port"),
            (":http", "port must be a number"),
            (":65536", "port must be a number"),
            (":-1", "port must be a number"),
            (":+80", "port must be a number"),
            (":0009445", "port must be a number"),
            ("::1:9445", "must be written in brackets"),
            ("[::1]", "expected ':' and a port"),
            ("[::1]9445", "expected ':' and a port"),
            ("[::1:9445", "missing ']'"),
            ("[]:9445", "brackets must hold an IPv6 address"),
            ("[127.0.0.1]:9445", "brackets must hold an IPv6 address"),
            ("local host:9445", "the host may hold only"),
            ("http://localhost:9445", "must be written in brackets"),
            ("user@host:9445", "the host may hold only"),
        ]
    )
    func invalid(address: String, reason: String) throws {
        let error = try #require(throws: HTTPServerError.self) {
            try HTTPServer.Configuration.parseListenAddress(address)
        }
        #expect(error.code == .invalidListenAddress)
        #expect(error.message.contains(reason), "\(error.message)")
        #expect(error.message.contains("\"\(address)\""))
    }

    @Test("Configuration(listenAddress:) keeps the defaults")
    func configurationFromAddress() throws {
        let configuration = try HTTPServer.Configuration(listenAddress: "[::1]:9445")
        #expect(configuration.host == "::1")
        #expect(configuration.port == 9445)
        #expect(configuration.threads == 2)
        #expect(configuration.connectionLimit == 512)
        #expect(configuration.perIPConnectionLimit == 0)
        #expect(configuration.connectionTimeoutSeconds == 10)
        #expect(configuration.allowedMethods == ["GET", "HEAD"])
        #expect(configuration.tls == nil)
    }
}

@Suite("Values")
struct ValueTests {
    @Test("Request headers are looked up without regard to case; the first value wins")
    func headerLookup() {
        let request = HTTPRequest(
            method: "GET", path: "/", headers: [("Accept-Encoding", "gzip"), ("accept-encoding", "br")])
        #expect(request.header("accept-encoding") == "gzip")
        #expect(request.header("ACCEPT-ENCODING") == "gzip")
        #expect(request.header("Accept-Encodin") == nil)
        #expect(request.header("Accept-Encodingg") == nil)
    }

    @Test("ResponseBody keeps exactly the bytes it was given")
    func responseBody() throws {
        #expect(ResponseBody.empty.count == 0)
        #expect(ResponseBody(string: "héllo").bytes == Array("héllo".utf8))
        #expect(ResponseBody([1, 2, 3]).count == 3)
        let written = ResponseBody(unsafeUninitializedCapacity: 10) { buffer in
            buffer.copyBytes(from: [7, 8])
            return 2
        }
        #expect(written.bytes == [7, 8])
        struct Failure: Error {}
        #expect(throws: Failure.self) {
            _ = try ResponseBody(unsafeUninitializedCapacity: 4) { _ in throw Failure() }
        }
    }

    @Test("Router dispatches exact paths and answers 404 otherwise")
    func router() {
        var router = Router()
        router.add("/a") { _ in .text("a") }
        router.add("/b") { _ in .html("<b>b</b>") }
        #expect(router.paths == ["/a", "/b"])
        #expect(router.handle(HTTPRequest(method: "GET", path: "/a")).body.bytes == Array("a".utf8))
        let html = router.handle(HTTPRequest(method: "GET", path: "/b"))
        #expect(html.headers.first?.value == "text/html; charset=utf-8")
        #expect(router.handle(HTTPRequest(method: "GET", path: "/a/")).status == 404)
        #expect(router.handle(HTTPRequest(method: "GET", path: "/")).status == 404)
    }

    @Test("HTTPServerError describes code, message, operation and errno")
    func errorDescription() {
        let error = HTTPServerError(
            code: .bindFailed, message: "cannot listen on 0.0.0.0:80", systemErrno: 13, operation: "bind")
        #expect(error.description.contains("bindFailed"))
        #expect(error.description.contains("cannot listen on 0.0.0.0:80"))
        #expect(error.description.contains("bind: "))
        #expect(error.description.contains("errno 13"))
    }
}
