import AccelMetricsTesting
@testable import CurlHTTP
import Foundation
import Synchronization
import Testing

/// Which proxy an exchange goes through, by Go's rules (client-go and the OpenTelemetry Go SDK read the same
/// variables the same way), and what the exchange looks like through one: a scripted proxy for the request's shape and
/// for hostile proxies, Debian's tinyproxy for a real one.
@Suite("HTTP client on libcurl: forward proxies")
struct HTTPProxyTests {
    // MARK: The rules

    @Test func theEnvironmentIsReadAsGoReadsIt() {
        let read = HTTPProxy.environment([
            "HTTP_PROXY": "", "http_proxy": "proxy.corp:3128", "HTTPS_PROXY": " https://user:secret@secure.corp ",
            "https_proxy": "http://ignored:1", "no_proxy": ".svc,10.0.0.0/8", "ALL_PROXY": "socks5://all:1080",
        ])
        // An empty upper-case value counts as unset; a bare host:port is http://; a port is added where none is given.
        #expect(read.http == "http://proxy.corp:3128")
        #expect(read.https == "https://user:secret@secure.corp:443")
        #expect(read.noProxy == ".svc,10.0.0.0/8")
        #expect(read.bypassesLoopback)
        // Passwords stay out of logs.
        #expect(!read.description.contains("secret") && read.description.contains("https://***@secure.corp:443"))
        // ALL_PROXY is curl's, not Go's: with nothing else set, requests go directly.
        #expect(HTTPProxy.environment(["ALL_PROXY": "socks5://all:1080"]).isDirect)
        #expect(HTTPProxy.environment([:]) == .direct)
    }

    @Test(arguments: [
        // The scheme picks the proxy; neither falls back to the other.
        ("", "http://collector.example:4318/v1/metrics", false, "http"),
        ("", "https://api.example:6443/api", false, "https"),
        // gRPC, even in cleartext, goes through HTTPS_PROXY (grpc-go's rule).
        ("", "http://collector.example:4317/svc/Method", true, "https"),
        // Loopback is reached directly.
        ("", "http://localhost:8080/", false, nil), ("", "http://127.0.0.5:8080/", false, nil), ("", "https://[::1]:6443/", false, nil),
        ("", "http://[::ffff:127.0.0.1]:80/", false, nil),
        // NO_PROXY: everything, domains with or without their subdomains, addresses, ranges, ports, any case.
        ("*", "https://api.example:6443/", false, nil),
        ("example.com", "http://example.com/", false, nil), ("example.com", "http://api.example.com/", false, nil),
        ("example.com", "http://notexample.com/", false, "http"),
        (".example.com", "http://example.com/", false, "http"), (".example.com", "http://a.example.com/", false, nil),
        ("*.example.com", "http://example.com/", false, "http"), ("*.example.com", "http://a.b.example.com/", false, nil),
        ("10.0.0.0/8", "https://10.96.0.1/", false, nil), ("10.0.0.0/8", "https://11.0.0.1/", false, "https"),
        ("10.0.0.0/8", "https://ten.example/", false, "https"), ("fd00::/8", "https://[fd00::1]:6443/", false, nil),
        ("10.96.0.1", "https://10.96.0.1/", false, nil), ("10.96.0.1:443", "https://10.96.0.1/", false, nil),
        ("10.96.0.1:443", "https://10.96.0.1:6443/", false, "https"), ("example.com:8443", "https://example.com:8443/", false, nil),
        ("example.com:8443", "https://example.com/", false, "https"), ("EXAMPLE.com", "http://Api.Example.COM/", false, nil),
        (" a.example , b.example ", "http://b.example/", false, nil), ("a.example,,", "http://c.example/", false, "http"),
    ] as [(String, String, Bool, String?)])
    func theRouteFollowsGosRules(noProxy: String, url: String, tunnelled: Bool, expected: String?) {
        let proxy = HTTPProxy(http: "http://plain:3128", https: "http://tunnel:3128", noProxy: noProxy)
        let route = proxy.route(for: url, tunnelled: tunnelled)
        #expect(route == expected.map { $0 == "http" ? "http://plain:3128" : "http://tunnel:3128" })
    }

    @Test func aKubeconfigProxyURLTakesLoopbackToo() {
        let all = HTTPProxy(all: "http://127.0.0.1:3128")
        #expect(all.route(for: "https://127.0.0.1:6443/api") == "http://127.0.0.1:3128")
        #expect(all.route(for: "http://localhost/") == "http://127.0.0.1:3128")
        #expect(HTTPProxy(http: "p:1").route(for: "https://a.example/") == nil)
    }

    @Test(arguments: ["ftp://proxy:21", "http://", "http://proxy:0", "http://proxy:99999", "http://proxy:", "proxy:port"])
    func anUnusableProxyIsRefusedAtTheStart(value: String) {
        let proxy = HTTPProxy.environment(["HTTPS_PROXY": value])
        #expect(throws: HTTPTransferError.self) { try proxy.validate() }
        #expect { _ = try HTTPConnection(proxy: proxy) } throws: { ($0 as? HTTPTransferError)?.kind == .configuration }
        #expect(throws: Never.self) { try HTTPProxy.environment(["HTTPS_PROXY": "socks5h://proxy"]).validate() }
    }

    // MARK: Through a scripted proxy

    @Test func anHTTPRequestGoesToTheProxyWithItsWholeURL() throws {
        let proxy = try ScriptedPeer([.send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")])
        defer { proxy.close() }
        let connection = try HTTPConnection(proxy: HTTPProxy(http: "127.0.0.1:\(proxy.port)"))
        // A name nothing resolves: only the proxy could have answered.
        let response = try connection.perform(HTTPRequest(url: "http://collector.invalid:4318/v1/metrics", timeout: 5, connectTimeout: 2))
        #expect(response.body == Array("ok".utf8))
        #expect(proxy.firstRequest.hasPrefix("GET http://collector.invalid:4318/v1/metrics HTTP/1.1\r\n"))
    }

    @Test func anHTTPSRequestAsksForATunnelAndARefusalSaysSo() throws {
        let proxy = try ScriptedPeer([.send("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")])
        defer { proxy.close() }
        let connection = try HTTPConnection(proxy: HTTPProxy(https: "http://127.0.0.1:\(proxy.port)"))
        #expect {
            try connection.perform(HTTPRequest(url: "https://api.invalid:6443/api", timeout: 5, connectTimeout: 2))
        } throws: { error in
            let message = (error as? HTTPTransferError)?.message ?? ""
            return message.contains("403") && message.contains("through proxy http://127.0.0.1:\(proxy.port)")
        }
        #expect(proxy.firstRequest.hasPrefix("CONNECT api.invalid:6443 HTTP/1.1\r\n"))
    }

    @Test func gRPCInCleartextIsTunnelledToo() throws {
        let proxy = try ScriptedPeer([.send("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")])
        defer { proxy.close() }
        let connection = try HTTPConnection(proxy: HTTPProxy(http: "http://127.0.0.1:1", https: "http://127.0.0.1:\(proxy.port)"))
        let request = HTTPRequest(method: "POST", url: "http://collector.invalid:4317/svc/Export", body: [0, 0, 0, 0, 0], timeout: 5,
                                  connectTimeout: 2, version: .http2Only)
        #expect(throws: HTTPTransferError.self) { try connection.perform(request) }
        #expect(proxy.firstRequest.hasPrefix("CONNECT collector.invalid:4317 HTTP/1.1\r\n"))
    }

    @Test func aHostNoProxyNamesIsReachedDirectly() throws {
        let proxy = try ScriptedPeer([.send("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nproxy")])
        defer { proxy.close() }
        let server = try ScriptedPeer([.send("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nserver")])
        defer { server.close() }
        let url = "http://127.0.0.1:\(server.port)/"
        // Loopback is taken through the proxy here (as a kubeconfig's proxy-url does), unless NO_PROXY names it.
        let through = try HTTPConnection(proxy: HTTPProxy(http: "127.0.0.1:\(proxy.port)", bypassesLoopback: false))
        #expect(try through.perform(HTTPRequest(url: url, timeout: 5, connectTimeout: 2)).body == Array("proxy".utf8))
        let direct = try HTTPConnection(proxy: HTTPProxy(http: "127.0.0.1:\(proxy.port)", noProxy: "127.0.0.0/8", bypassesLoopback: false))
        #expect(try direct.perform(HTTPRequest(url: url, timeout: 5, connectTimeout: 2)).body == Array("server".utf8))
        #expect(server.firstRequest.hasPrefix("GET / HTTP/1.1\r\n"))
    }

    @Test func aUnixSocketExchangeNeverGoesThroughTheProxy() throws {
        let directory = TemporaryDirectory(prefix: "accel-proxy-unix")
        defer { directory.remove() }
        let socketPath = directory.path("kubelet.sock")
        let server = try UnixSocketPeer(path: socketPath, answer: "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nunix")
        defer { server.close() }
        let proxy = try ScriptedPeer([.send("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nproxy")])
        defer { proxy.close() }
        let connection = try HTTPConnection(proxy: HTTPProxy(all: "http://127.0.0.1:\(proxy.port)"))
        let request = HTTPRequest(url: "http://kubelet.invalid/pods", unixSocketPath: socketPath, timeout: 5, connectTimeout: 2)
        #expect(try connection.perform(request).body == Array("unix".utf8))
        // Origin form: curl would send a proxy's absolute form down the socket too.
        #expect(server.firstRequest.hasPrefix("GET /pods HTTP/1.1\r\n"))
        #expect(proxy.firstRequest.isEmpty)
    }

    // MARK: Hostile proxies

    @Test func aProxyThatNeverAnswersTheTunnelMissesTheDeadline() throws {
        let proxy = try ScriptedPeer([.hold])
        defer { proxy.close() }
        let connection = try HTTPConnection(proxy: HTTPProxy(https: "127.0.0.1:\(proxy.port)"))
        let started = ContinuousClock.now
        #expect {
            try connection.perform(HTTPRequest(url: "https://api.invalid/api", timeout: 2, connectTimeout: 1))
        } throws: { ($0 as? HTTPTransferError)?.kind == .timeout }
        #expect(ContinuousClock.now - started < .seconds(10))
    }

    @Test func aStreamThroughAProxyThatGoesSilentHitsItsIdleDeadline() throws {
        // A watch has no overall deadline; the tunnel opens, the answer starts, then nothing.
        let proxy = try ScriptedPeer([.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"), .hold])
        defer { proxy.close() }
        let connection = try HTTPConnection(proxy: HTTPProxy(http: "127.0.0.1:\(proxy.port)"))
        let started = ContinuousClock.now
        #expect {
            try connection.perform(HTTPRequest(url: "http://api.invalid/watch", timeout: nil, connectTimeout: 2, idleTimeout: 1)) { _ in true }
        } throws: { ($0 as? HTTPTransferError)?.kind == .timeout }
        #expect(ContinuousClock.now - started < .seconds(10))
    }

    @Test func endlessTunnelHeadersAreCutNotCollected() throws {
        let line = "X-Padding: " + String(repeating: "p", count: 1000) + "\r\n"
        let proxy = try ScriptedPeer([.send("HTTP/1.1 200 Connection established\r\n" + String(repeating: line, count: 1000)), .hold])
        defer { proxy.close() }
        let connection = try HTTPConnection(proxy: HTTPProxy(https: "127.0.0.1:\(proxy.port)"))
        let started = ContinuousClock.now
        #expect {
            try connection.perform(HTTPRequest(url: "https://api.invalid/api", timeout: 8, connectTimeout: 8))
        } throws: { ($0 as? HTTPTransferError).map { $0.kind != .timeout } ?? false }
        #expect(ContinuousClock.now - started < .seconds(8))
    }

    // MARK: Through a real proxy

    @Test(.tags(.endToEnd), .endToEndEnabled) func tinyproxyForwardsPlainRequests() throws {
        let tinyproxy = try Tinyproxy()
        defer { tinyproxy.stop() }
        let server = try ScriptedPeer([.send("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nserver")])
        defer { server.close() }
        let connection = try HTTPConnection(proxy: HTTPProxy(all: tinyproxy.url))
        let url = "http://127.0.0.1:\(server.port)/v1/metrics"
        let request = HTTPRequest(method: "POST", url: url, body: Array("body".utf8), timeout: 10, connectTimeout: 5)
        #expect(try connection.perform(request).body == Array("server".utf8))
        #expect(server.firstRequest.hasPrefix("POST /v1/metrics HTTP/1.1\r\n"))
        #expect(eventually(timeout: 5) { tinyproxy.requests.contains("POST \(url) HTTP/1.1") }, "\(tinyproxy.process.log)")
    }
}

/// A unix-socket server that answers each connection with `answer` and closes it.
final class UnixSocketPeer: @unchecked Sendable {
    private let path: String
    private final class Flag: Sendable {
        let raised = Atomic<Bool>(false)
        let requests = Mutex<[String]>([])
    }

    private let stopping = Flag()

    init(path: String, answer: String) throws {
        self.path = path
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket: errno \(errno)") }
        guard Self.withAddress(path, { bind(fd, $0, $1) == 0 }), listen(fd, 8) == 0 else {
            Glibc.close(fd)
            throw HarnessError("cannot listen on \(path): errno \(errno)")
        }
        let stopping = self.stopping
        // The thread closes the socket itself once told to stop (see ScriptedPeer: no descriptor number reused early).
        Thread {
            defer { Glibc.close(fd) }
            while true {
                let client = accept(fd, nil, nil)
                guard client >= 0, !stopping.raised.load(ordering: .relaxed) else {
                    if client >= 0 { Glibc.close(client) }
                    return
                }
                var buffer = [UInt8](repeating: 0, count: 4096)
                let n = recv(client, &buffer, buffer.count, 0)
                stopping.requests.withLock { $0.append(String(decoding: buffer[..<max(0, n)], as: UTF8.self)) }
                _ = answer.withCString { send(client, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
                Glibc.close(client)
            }
        }.start()
    }

    /// The first request's head ("" before one arrived).
    var firstRequest: String { stopping.requests.withLock { $0.first ?? "" } }

    /// Stops the accept loop: sets the flag, then wakes accept with one last connection.
    func close() {
        stopping.raised.store(true, ordering: .relaxed)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return }
        _ = Self.withAddress(path) { connect(fd, $0, $1) == 0 }
        Glibc.close(fd)
    }

    private static func withAddress(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Bool) -> Bool {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (i, byte) in path.utf8.prefix(buffer.count - 1).enumerated() { buffer[i] = byte }
        }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }
}
