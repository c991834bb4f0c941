import Foundation
import HTTPServer
import Logging
import ScrapeClient
import Testing

/// A one-shot TCP server answering the first connection with canned bytes, for framings and faults the project's
/// HTTP server never produces.
final class CannedServer: @unchecked Sendable {
    // Safe: `fd` and `port` are set in init and only read afterwards; the thread owns the accepted socket.
    let fd: Int32
    let port: Int

    init(_ answer: [UInt8], delaySeconds: Double = 0) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        guard bound == 0, listen(fd, 4) == 0 else { throw CocoaError(.fileWriteUnknown) }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        port = Int(UInt16(bigEndian: address.sin_port))
        let listener = fd
        Thread.detachNewThread {
            let client = accept(listener, nil, nil)
            guard client >= 0 else { return }
            var request = [UInt8](repeating: 0, count: 4096)
            _ = recv(client, &request, request.count, 0)
            if delaySeconds > 0 { Thread.sleep(forTimeInterval: delaySeconds) }
            _ = answer.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            close(client)
        }
    }

    deinit { close(fd) }

    var url: ScrapeURL { ScrapeURL(host: "127.0.0.1", port: port, target: "/metrics") }
}

@Suite struct ScrapeClientTests {
    @Test(arguments: [
        ("http://10.0.0.5:8000/metrics", "10.0.0.5", 8000, "/metrics"),
        ("http://vllm.ml.svc/metrics?x=1", "vllm.ml.svc", 80, "/metrics?x=1"),
        ("http://[fd00::5]:9400", "fd00::5", 9400, "/"),
    ])
    func urls(text: String, host: String, port: Int, target: String) throws {
        let url = try ScrapeURL(parsing: text)
        #expect(url.host == host)
        #expect(url.port == port)
        #expect(url.target == target)
    }

    @Test(arguments: ["https://x/metrics", "http://:80/", "http://h:99999/", "http://u@h/", "http://[::1/"])
    func badURLs(text: String) {
        #expect(throws: ScrapeError.self) { try ScrapeURL(parsing: text) }
    }

    @Test func contentLengthBodiesFromTheProjectsServer() throws {
        let body = String(repeating: "vllm:num_requests_waiting 3\n", count: 2000)
        let server = HTTPServer(
            configuration: .init(host: "127.0.0.1", port: 0, threads: 1), logger: Logger(label: "t"),
            handler: { request in request.path == "/metrics" ? .text(body) : .notFound })
        try server.start()
        defer { server.stop() }
        let response = try ScrapeClient.get(ScrapeURL(host: "127.0.0.1", port: server.port), timeoutSeconds: 5, maxBytes: 1 << 20)
        #expect(response.status == 200)
        #expect(response.body == Array(body.utf8))
        #expect(response.header("Content-Type") == "text/plain; charset=utf-8")

        let missing = #expect(throws: ScrapeError.self) {
            try ScrapeClient.get(ScrapeURL(host: "127.0.0.1", port: server.port, target: "/nope"), timeoutSeconds: 5, maxBytes: 1 << 20)
        }
        #expect(missing?.code == .httpStatus)
        let small = #expect(throws: ScrapeError.self) {
            try ScrapeClient.get(ScrapeURL(host: "127.0.0.1", port: server.port), timeoutSeconds: 5, maxBytes: 1000)
        }
        #expect(small?.code == .tooLarge)
    }

    @Test func chunkedAndCloseDelimitedBodies() throws {
        let chunked = try CannedServer(Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\n\r\n".utf8))
        #expect(try ScrapeClient.get(chunked.url, timeoutSeconds: 5, maxBytes: 100).body == Array("hello world".utf8))
        let closing = try CannedServer(Array("HTTP/1.0 200 OK\nContent-Type: text/plain\n\nup 1\n".utf8))
        #expect(try ScrapeClient.get(closing.url, timeoutSeconds: 5, maxBytes: 100).body == Array("up 1\n".utf8))
    }

    @Test func faultsAreClassified() throws {
        let slow = try CannedServer(Array("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".utf8), delaySeconds: 3)
        let timeout = #expect(throws: ScrapeError.self) { try ScrapeClient.get(slow.url, timeoutSeconds: 0.3, maxBytes: 100) }
        #expect(timeout?.code == .timeout)

        let garbage = try CannedServer(Array("SSH-2.0-OpenSSH\r\n".utf8))
        let notHTTP = #expect(throws: ScrapeError.self) { try ScrapeClient.get(garbage.url, timeoutSeconds: 5, maxBytes: 100) }
        #expect(notHTTP?.code == .protocolError)

        let truncated = try CannedServer(Array("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort".utf8))
        let cut = #expect(throws: ScrapeError.self) { try ScrapeClient.get(truncated.url, timeoutSeconds: 5, maxBytes: 1000) }
        #expect(cut?.code == .protocolError)

        let huge = try CannedServer(Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFF\r\n".utf8))
        let tooBig = #expect(throws: ScrapeError.self) { try ScrapeClient.get(huge.url, timeoutSeconds: 5, maxBytes: 1000) }
        #expect(tooBig?.code == .tooLarge)

        // A hostile chunk size near 2^63 is refused as too large (it trapped on overflow), and one past Int.max is
        // not a chunk size at all.
        for (size, code) in [("7ffffffffffffff0", ScrapeError.Code.tooLarge), ("fffffffffffffffff", .protocolError)] {
            let hostile = try CannedServer(Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n\(size)\r\nx".utf8))
            let refused = #expect(throws: ScrapeError.self) { try ScrapeClient.get(hostile.url, timeoutSeconds: 5, maxBytes: 16 << 20) }
            #expect(refused?.code == code, "chunk size \(size)")
        }

        // A header line over 16 KiB is refused when it arrives in one read too, not only when it drips in (fuzz
        // finding: the cap was checked only before reading more).
        let longLine = "HTTP/1.1 200 OK\r\nX-Long: " + String(repeating: "a", count: 17000) + "\r\nContent-Length: 2\r\n\r\nok"
        let long = try CannedServer(Array(longLine.utf8))
        let overLong = #expect(throws: ScrapeError.self) { try ScrapeClient.get(long.url, timeoutSeconds: 5, maxBytes: 1 << 20) }
        #expect(overLong?.code == .protocolError)
        for pieceSize in [1, 7, 1 << 16] {
            let read = #expect(throws: ScrapeError.self) {
                try ScrapeClient.readResponse(from: Array(longLine.utf8), pieceSize: pieceSize, maxBytes: 1 << 20)
            }
            #expect(read?.message == "header line longer than 16 KiB", "pieces of \(pieceSize)")
        }

        // Nobody listens on a port that was bound and closed without listening (a canned server's accept thread
        // would keep its socket listening after close).
        let probe = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(probe, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(probe, $0, &length) } }
        let port = Int(UInt16(bigEndian: address.sin_port))
        close(probe)
        let refused = #expect(throws: ScrapeError.self) {
            try ScrapeClient.get(ScrapeURL(host: "127.0.0.1", port: port), timeoutSeconds: 5, maxBytes: 100)
        }
        #expect(refused?.code == .connect)
    }
}
