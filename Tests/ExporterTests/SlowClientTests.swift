import AccelMetricsTesting
import Foundation
import Testing

/// Issue 15, case 4: 600 connections from one client, each trickling header bytes, must not stop another client's
/// scrape (node_exporter answers in milliseconds under the same load). One client address gets its share
/// (`--web.max-connections-per-ip`), the rest of the server stays open to everyone else.
@Suite(.serialized, .tags(.endToEnd), .endToEndEnabled) struct SlowClientTests {
    /// A TCP connection to 127.0.0.1:`port` from `source` (any 127/8 address is loopback).
    static func connect(from source: String, port: Int) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        local.sin_addr.s_addr = inet_addr(source)
        _ = withUnsafePointer(to: &local) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var remote = sockaddr_in()
        remote.sin_family = sa_family_t(AF_INET)
        remote.sin_port = in_port_t(UInt16(port).bigEndian)
        remote.sin_addr.s_addr = inet_addr("127.0.0.1")
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        _ = withUnsafePointer(to: &remote) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        return fd
    }

    /// GET `path` from `source`; the status line, or nil when nothing complete came back within `timeout`.
    static func get(_ path: String, from source: String, port: Int, timeout: Double) -> String? {
        let fd = connect(from: source, port: port)
        defer { close(fd) }
        let deadline = Date().addingTimeInterval(timeout)
        var writable = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        guard poll(&writable, 1, Int32(timeout * 1000)) > 0 else { return nil }
        let request = Array("GET \(path) HTTP/1.0\r\nHost: x\r\n\r\n".utf8)
        guard send(fd, request, request.count, Int32(MSG_NOSIGNAL)) == request.count else { return nil }
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while Date() < deadline {
            var readable = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&readable, 1, Int32(max(1, deadline.timeIntervalSinceNow * 1000))) > 0 else { break }
            let count = recv(fd, &buffer, buffer.count, 0)
            if count <= 0 { break }
            answer += buffer[0..<count]
        }
        let text = String(decoding: answer, as: UTF8.self)
        return text.hasPrefix("HTTP/1.") ? text.components(separatedBy: "\r\n").first : nil
    }

    @Test func trickleClientsDoNotStarveOthers() throws {
        let exporter = try ExporterProcess(
            tree: nil, arguments: ["--no-collector.amdgpu", "--no-collector.hwmon", "--no-collector.nvidia", "--collect.interval", "200ms"])
        defer { exporter.stop() }
        // 600 connections from 127.0.0.1, each with a request line and then one header byte at a time.
        var attackers: [Int32] = []
        defer { for fd in attackers { close(fd) } }
        for _ in 0..<600 {
            let fd = Self.connect(from: "127.0.0.1", port: exporter.port)
            attackers.append(fd)
        }
        Thread.sleep(forTimeInterval: 0.3)
        let start = Array("GET /metrics HTTP/1.1\r\nX-Slow: ".utf8)
        for fd in attackers { _ = send(fd, start, start.count, Int32(MSG_NOSIGNAL)) }
        // Every scrape from another address is answered at once, while the trickle goes on.
        for round in 0..<5 {
            for fd in attackers { _ = send(fd, [UInt8(ascii: "a")], 1, Int32(MSG_NOSIGNAL)) }
            let began = Date()
            #expect(Self.get("/metrics", from: "127.0.0.2", port: exporter.port, timeout: 2) == "HTTP/1.1 200 OK", "round \(round)")
            #expect(Self.get("/healthz", from: "127.0.0.3", port: exporter.port, timeout: 2) == "HTTP/1.1 200 OK", "round \(round)")
            #expect(Date().timeIntervalSince(began) < 2)
            Thread.sleep(forTimeInterval: 0.5)
        }
    }
}
