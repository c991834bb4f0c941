import Glibc

/// What went wrong talking to the server under test.
enum ClientError: Error, Equatable {
    /// A socket timeout expired (the bound on every wait).
    case timeout
    /// The server closed the connection (EOF or reset) before a full response arrived.
    case closed
    case malformed(String)
    case system(String, Int32)
}

/// A parsed HTTP/1.1 response.
struct ClientResponse {
    var status: Int
    var headers: [(name: String, value: String)]
    var body: [UInt8]

    func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    var text: String { String(decoding: body, as: UTF8.self) }
}

/// A deliberately small blocking HTTP/1.1 client: one TCP connection, socket timeouts on every read and write so
/// no test can hang, no SIGPIPE on writes to a closed connection.
final class TestClient {
    let fd: Int32
    private var buffer: [UInt8] = []

    /// Connects to `host:port` (an IPv4 or IPv6 literal); every later read or write waits at most `timeout` seconds.
    init(host: String = "127.0.0.1", port: Int, timeout: Double = 5) throws {
        let family = host.contains(":") ? AF_INET6 : AF_INET
        fd = socket(family, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ClientError.system("socket", errno) }
        setTimeout(timeout)
        let status: Int32
        if family == AF_INET6 {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = in_port_t(UInt16(port).bigEndian)
            inet_pton(AF_INET6, host, &address.sin6_addr)
            status = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size))
                }
            }
        } else {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            inet_pton(AF_INET, host, &address.sin_addr)
            status = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        guard status == 0 else {
            let code = errno
            close(fd)
            throw ClientError.system("connect", code)
        }
    }

    deinit {
        close(fd)
    }

    /// Sets the receive and send timeouts.
    func setTimeout(_ seconds: Double) {
        var value = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
    }

    func send(_ text: String) throws {
        try send(Array(text.utf8))
    }

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes.withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL))
            }
            if sent < 0 {
                let code = errno
                if code == EINTR { continue }
                if code == EAGAIN || code == EWOULDBLOCK { throw ClientError.timeout }
                if code == EPIPE || code == ECONNRESET { throw ClientError.closed }
                throw ClientError.system("send", code)
            }
            offset += sent
        }
    }

    /// Reads more bytes into the buffer; returns false at EOF.
    private func fill() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                buffer.append(contentsOf: chunk[0..<count])
                return true
            }
            if count == 0 { return false }
            let code = errno
            if code == EINTR { continue }
            if code == EAGAIN || code == EWOULDBLOCK { throw ClientError.timeout }
            if code == ECONNRESET { throw ClientError.closed }
            throw ClientError.system("recv", code)
        }
    }

    /// Reads one response. `bodyExpected: false` for HEAD, whose response announces a length but has no body.
    func readResponse(bodyExpected: Bool = true) throws -> ClientResponse {
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        var headerEnd: Int?
        while headerEnd == nil {
            headerEnd = buffer.firstRange(of: separator)?.lowerBound
            if headerEnd == nil, try !fill() { throw ClientError.closed }
        }
        let head = String(decoding: buffer[0..<headerEnd!], as: UTF8.self)
        buffer.removeFirst(headerEnd! + separator.count)
        var lines = head.split(separator: "\r\n", omittingEmptySubsequences: false).map(String.init)
        let statusLine = lines.removeFirst()
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            throw ClientError.malformed(statusLine)
        }
        var headers: [(name: String, value: String)] = []
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { throw ClientError.malformed(line) }
            headers.append(
                (String(line[..<colon]), String(line[line.index(after: colon)...].drop(while: { $0 == " " }))))
        }
        var response = ClientResponse(status: status, headers: headers, body: [])
        guard bodyExpected else { return response }
        if let lengthText = response.header("Content-Length") {
            guard let length = Int(lengthText) else { throw ClientError.malformed(lengthText) }
            while buffer.count < length {
                if try !fill() { throw ClientError.closed }
            }
            response.body = Array(buffer[0..<length])
            buffer.removeFirst(length)
        } else {
            while try fill() {}
            response.body = buffer
            buffer.removeAll()
        }
        return response
    }

    /// How a wait for the server to close the connection ended.
    enum CloseOutcome: Equatable {
        case closed
        case timedOut
        case receivedData
    }

    /// Waits (at most the socket timeout) for the server to close the connection.
    func waitForClose() -> CloseOutcome {
        if !buffer.isEmpty { return .receivedData }
        do {
            return try fill() ? .receivedData : .closed
        } catch ClientError.timeout {
            return .timedOut
        } catch {
            return .closed
        }
    }
}

/// One request on a fresh connection.
func request(
    _ method: String = "GET",
    _ target: String,
    port: Int,
    headers: [String] = [],
    body: [UInt8] = [],
    timeout: Double = 5
) throws -> ClientResponse {
    let client = try TestClient(port: port, timeout: timeout)
    var head = "\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    for header in headers { head += header + "\r\n" }
    if !body.isEmpty { head += "Content-Length: \(body.count)\r\n" }
    try client.send(head + "\r\n")
    if !body.isEmpty { try client.send(body) }
    return try client.readResponse(bodyExpected: method != "HEAD")
}

/// Whether this machine can bind IPv6 loopback (some containers have no IPv6).
let ipv6LoopbackAvailable: Bool = {
    let fd = socket(AF_INET6, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var address = sockaddr_in6()
    address.sin6_family = sa_family_t(AF_INET6)
    address.sin6_addr = in6addr_loopback
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) == 0
        }
    }
}()
