#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A plain-HTTP URL of a metrics endpoint: `http://host:port/path`.
public struct ScrapeURL: Sendable, Hashable, CustomStringConvertible {
    /// A name or an IP literal; IPv6 without brackets.
    public var host: String
    /// 1–65535; 80 when the URL gives none.
    public var port: Int
    /// Path and query, starting with `/`.
    public var target: String

    /// Unchecked: ``init(parsing:)`` is where text is validated.
    public init(host: String, port: Int, target: String = "/metrics") {
        self.host = host
        self.port = port
        self.target = target
    }

    /// Parses `http://host[:port][/path]`; IPv6 hosts in brackets. HTTPS is not supported here.
    public init(parsing text: String) throws(ScrapeError) {
        guard text.hasPrefix("http://") else {
            throw ScrapeError(code: .invalidURL, message: "\"\(text)\": only http:// URLs can be scraped")
        }
        let rest = text.dropFirst("http://".count)
        let authority = rest.prefix { $0 != "/" && $0 != "?" }
        let path = rest.dropFirst(authority.count)
        var host: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else {
                throw ScrapeError(code: .invalidURL, message: "\"\(text)\": missing ']' after the IPv6 address")
            }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if after.first == ":" { portText = after.dropFirst() } else if !after.isEmpty {
                throw ScrapeError(code: .invalidURL, message: "\"\(text)\": unexpected text after the IPv6 address")
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
        } else {
            host = authority
        }
        guard !host.isEmpty, !host.contains("@") else {
            throw ScrapeError(code: .invalidURL, message: "\"\(text)\": missing host (user info is not supported)")
        }
        var port = 80
        if let portText {
            guard let value = Int(portText), (1...65535).contains(value) else {
                throw ScrapeError(code: .invalidURL, message: "\"\(text)\": the port must be 1–65535")
            }
            port = value
        }
        self.init(host: String(host), port: port, target: path.isEmpty ? "/" : String(path))
    }

    /// The URL again, IPv6 hosts in brackets and the port always spelled out.
    public var description: String {
        let shownHost = host.contains(":") ? "[\(host)]" : host
        return "http://\(shownHost):\(port)\(target)"
    }
}

/// Why a scrape failed.
public struct ScrapeError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The failure's kind; `description` is a snake_case name (`invalid_url`, `too_large`, …) fit for logs and labels.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        let name: String
        public var description: String { name }
        /// Not an `http://host[:port][/path]` URL.
        public static let invalidURL = Code(name: "invalid_url")
        /// `getaddrinfo` found no address.
        public static let resolve = Code(name: "resolve")
        /// The connection was refused or failed, or a send or receive failed on it.
        public static let connect = Code(name: "connect")
        /// The deadline passed before the connection, the request or the whole answer.
        public static let timeout = Code(name: "timeout")
        /// The answer was over `maxBytes`.
        public static let tooLarge = Code(name: "too_large")
        /// Not a well-formed HTTP/1.x answer.
        public static let protocolError = Code(name: "protocol")
        /// A status outside 2xx.
        public static let httpStatus = Code(name: "http_status")
    }

    public var code: Code
    /// Names the URL or the step that failed, with the system's reason where there is one.
    public var message: String
    /// The `errno` of a failed connect, send or receive; nil for every other failure.
    public var systemErrno: Int32?

    /// Also thrown by callers for their own URL lists (inference targets) with ``Code/invalidURL``.
    public init(code: Code, message: String, systemErrno: Int32? = nil) {
        self.code = code
        self.message = message
        self.systemErrno = systemErrno
    }

    /// ``message`` alone; the kind is in ``code``.
    public var description: String { message }
}

/// A small blocking HTTP/1.1 client: GET for scraping model servers and exporters on the node or the pod network,
/// POST for the OTLP push over plain HTTP.
///
/// The exporter runs on every GPU node under a tight memory budget, so it does not carry an event-loop HTTP client:
/// each scrape is one connection on the calling (collector) thread, bounded in time (one deadline for connect,
/// send and the whole answer) and in size. Content-Length, chunked and close-delimited bodies are read;
/// compression is not asked for.
public enum ScrapeClient {
    /// An answer: from ``get(_:timeoutSeconds:maxBytes:accept:userAgent:)`` always 2xx, from
    /// ``post(_:body:headers:timeoutSeconds:maxBytes:userAgent:)`` whatever the peer said.
    public struct Response: Sendable {
        /// 200–299 from `get` (anything else throws); any status from `post`.
        public var status: Int
        /// Header names lowercased.
        public var headers: [(name: String, value: String)]
        /// At most `maxBytes`, with any chunked encoding removed; never compressed (`Accept-Encoding: identity` is
        /// sent).
        public var body: [UInt8]

        /// The first header of that name, matched case-insensitively; nil when absent.
        public func header(_ name: String) -> String? {
            let lower = name.lowercased()
            return headers.first { $0.name == lower }?.value
        }
    }

    /// GETs `url`. A non-2xx status is an error with the status in the message.
    public static func get(
        _ url: ScrapeURL, timeoutSeconds: Double, maxBytes: Int, accept: String = "text/plain;version=0.0.4;q=1,*/*;q=0.1",
        userAgent: String = "accel-exporter"
    ) throws(ScrapeError) -> Response {
        let deadline = monotonicNow() + timeoutSeconds
        let fd = try connect(url, deadline: deadline)
        defer { close(fd) }
        let hostHeader = url.host.contains(":") ? "[\(url.host)]" : url.host
        let request =
            "GET \(url.target) HTTP/1.1\r\nHost: \(hostHeader):\(url.port)\r\nAccept: \(accept)\r\n"
            + "Accept-Encoding: identity\r\nUser-Agent: \(userAgent)\r\nConnection: close\r\n\r\n"
        try send(Array(request.utf8), fd: fd, deadline: deadline)
        var reader = Reader(source: SocketSource(fd: fd, deadline: deadline), maxBytes: maxBytes)
        let response = try reader.readResponse()
        guard (200..<300).contains(response.status) else {
            throw ScrapeError(code: .httpStatus, message: "\(url) answered HTTP \(response.status)")
        }
        return response
    }

    /// POSTs `body` to `url` and returns the answer whatever its status (the caller decides what a status means).
    /// One connection, one deadline for connect, send and the whole answer; the answer's body is read up to
    /// `maxBytes`. `headers` are sent as given (names and values must not hold CR or LF).
    public static func post(
        _ url: ScrapeURL, body: [UInt8], headers: [(String, String)], timeoutSeconds: Double, maxBytes: Int,
        userAgent: String = "accel-exporter"
    ) throws(ScrapeError) -> Response {
        for (name, value) in headers where (name + value).contains(where: { $0 == "\r" || $0 == "\n" }) {
            throw ScrapeError(code: .invalidURL, message: "header \(name) holds a line break")
        }
        let deadline = monotonicNow() + timeoutSeconds
        let fd = try connect(url, deadline: deadline)
        defer { close(fd) }
        let hostHeader = url.host.contains(":") ? "[\(url.host)]" : url.host
        var head = "POST \(url.target) HTTP/1.1\r\nHost: \(hostHeader):\(url.port)\r\nUser-Agent: \(userAgent)\r\n"
            + "Accept-Encoding: identity\r\nContent-Length: \(body.count)\r\nConnection: close\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        head += "\r\n"
        try send(Array(head.utf8) + body, fd: fd, deadline: deadline)
        var reader = Reader(source: SocketSource(fd: fd, deadline: deadline), maxBytes: maxBytes)
        return try reader.readResponse()
    }

    private static func connect(_ url: ScrapeURL, deadline: Double) throws(ScrapeError) -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(url.host, String(url.port), &hints, &list)
        guard status == 0, let first = list else {
            throw ScrapeError(code: .resolve, message: "cannot resolve \(url.host): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(list) }
        var lastErrno: Int32 = 0
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let info = entry {
            entry = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            guard fd >= 0 else {
                lastErrno = errno
                continue
            }
            if Glibc.connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 { return fd }
            guard errno == EINPROGRESS else {
                lastErrno = errno
                close(fd)
                continue
            }
            guard wait(fd, events: Int16(POLLOUT), deadline: deadline) else {
                close(fd)
                throw ScrapeError(code: .timeout, message: "\(url): no connection before the deadline")
            }
            var soError: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &length)
            if soError == 0 { return fd }
            lastErrno = soError
            close(fd)
        }
        throw ScrapeError(
            code: .connect, message: "\(url): cannot connect: \(String(cString: strerror(lastErrno)))", systemErrno: lastErrno)
    }

    private static func send(_ bytes: [UInt8], fd: Int32, deadline: Double) throws(ScrapeError) {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if sent > 0 {
                offset += sent
                continue
            }
            if sent < 0 && (errno == EAGAIN || errno == EINTR) {
                guard wait(fd, events: Int16(POLLOUT), deadline: deadline) else {
                    throw ScrapeError(code: .timeout, message: "request not sent before the deadline")
                }
                continue
            }
            throw ScrapeError(code: .connect, message: "send failed: \(String(cString: strerror(errno)))", systemErrno: errno)
        }
    }

    /// Waits for `events` until the deadline; false on timeout.
    static func wait(_ fd: Int32, events: Int16, deadline: Double) -> Bool {
        while true {
            let remaining = deadline - monotonicNow()
            guard remaining > 0 else { return false }
            var entry = pollfd(fd: fd, events: events, revents: 0)
            let result = poll(&entry, 1, Int32(min(remaining * 1000, 60_000).rounded(.up)))
            if result > 0 { return true }
            if result < 0 && errno != EINTR { return true }  // let the next call report the error
        }
    }

    static func monotonicNow() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }

    /// Reads one response from bytes already in memory, handed over at most `pieceSize` at a time as a socket would:
    /// the code path of ``get(_:timeoutSeconds:maxBytes:accept:userAgent:)`` after its request is sent, for the fuzz
    /// target and tests. The status is not checked.
    package static func readResponse(from bytes: some Collection<UInt8>, pieceSize: Int, maxBytes: Int) throws(ScrapeError) -> Response {
        var reader = Reader(source: MemorySource(bytes: Array(bytes), piece: max(1, pieceSize)), maxBytes: maxBytes)
        return try reader.readResponse()
    }

    /// Where a response's bytes come from: the socket, or memory.
    protocol ByteSource {
        /// Reads at most `buffer.count` bytes into `buffer`; 0 at the end of the stream.
        mutating func receive(into buffer: UnsafeMutableRawBufferPointer) throws(ScrapeError) -> Int
    }

    /// The connected socket, waiting for readiness until the deadline.
    struct SocketSource: ByteSource {
        let fd: Int32
        let deadline: Double

        mutating func receive(into buffer: UnsafeMutableRawBufferPointer) throws(ScrapeError) -> Int {
            while true {
                let count = recv(fd, buffer.baseAddress, buffer.count, 0)
                if count >= 0 { return count }
                if errno == EAGAIN || errno == EINTR {
                    guard ScrapeClient.wait(fd, events: Int16(POLLIN), deadline: deadline) else {
                        throw ScrapeError(code: .timeout, message: "no complete answer before the deadline")
                    }
                    continue
                }
                throw ScrapeError(code: .connect, message: "receive failed: \(String(cString: strerror(errno)))", systemErrno: errno)
            }
        }
    }

    /// Bytes in memory, at most `piece` per read.
    struct MemorySource: ByteSource {
        let bytes: [UInt8]
        let piece: Int
        var offset = 0

        mutating func receive(into buffer: UnsafeMutableRawBufferPointer) throws(ScrapeError) -> Int {
            let count = min(piece, buffer.count, bytes.count - offset)
            guard count > 0 else { return 0 }
            bytes.withUnsafeBytes { all in
                buffer.baseAddress!.copyMemory(from: all.baseAddress! + offset, byteCount: count)
            }
            offset += count
            return count
        }
    }

    /// Buffered reading of one response.
    struct Reader<Source: ByteSource> {
        var source: Source
        let maxBytes: Int
        var buffer: [UInt8] = []
        var position = 0
        /// Where the search for the current line's end resumes: bytes already searched are not searched again.
        var scanned = 0
        var eof = false
        var received = 0
        /// One receive area for every read: a peer sending a byte at a time costs a byte's work per read.
        var chunk = [UInt8](repeating: 0, count: 65536)

        init(source: Source, maxBytes: Int) {
            self.source = source
            self.maxBytes = maxBytes
        }

        /// Reads more bytes; false at end of stream.
        mutating func fill() throws(ScrapeError) -> Bool {
            if eof { return false }
            if position > 65536 {
                buffer.removeFirst(position)
                scanned -= position
                position = 0
            }
            // Taken out of `self` while the source writes into it (no copy: the array stays uniquely referenced).
            var area: [UInt8] = []
            swap(&area, &chunk)
            defer { swap(&area, &chunk) }
            let read = area.withUnsafeMutableBytes { raw in Result { () throws(ScrapeError) in try source.receive(into: raw) } }
            let count = try read.get()
            if count == 0 {
                eof = true
                return false
            }
            received += count
            // Headers and chunk framing count too: a bound on what we read, not only on the body.
            guard received - 65536 <= maxBytes else {
                throw ScrapeError(code: .tooLarge, message: "answer larger than \(maxBytes) bytes")
            }
            buffer.append(contentsOf: area[0..<count])
            return true
        }

        /// One line without its CRLF (LF alone accepted); lines are capped at 16 KiB.
        mutating func line() throws(ScrapeError) -> String {
            while true {
                if let newline = buffer[max(position, scanned)...].firstIndex(of: UInt8(ascii: "\n")) {
                    // The cap holds however the line arrived: in one read as well as a few bytes at a time.
                    guard newline - position < 16384 else {
                        throw ScrapeError(code: .protocolError, message: "header line longer than 16 KiB")
                    }
                    var end = newline
                    if end > position, buffer[end - 1] == UInt8(ascii: "\r") { end -= 1 }
                    let text = String(decoding: buffer[position..<end], as: UTF8.self)
                    position = newline + 1
                    return text
                }
                guard buffer.count - position < 16384 else {
                    throw ScrapeError(code: .protocolError, message: "header line longer than 16 KiB")
                }
                scanned = buffer.count
                guard try fill() else { throw ScrapeError(code: .protocolError, message: "connection closed in the headers") }
            }
        }

        /// The next `count` bytes in an array of exactly that size, moved out of the buffer as they arrive, so the
        /// buffer stays at a chunk or two. Reading a large body through the growing buffer and copying it out held
        /// about 2.5 times the body at once (its capacity doubling, then the copy); see Benchmarks/ceilings.sh.
        mutating func ownedBytes(_ count: Int) throws(ScrapeError) -> [UInt8] {
            var out: [UInt8] = []
            out.reserveCapacity(count)
            while out.count < count {
                if position == buffer.count {
                    guard try fill() else { throw ScrapeError(code: .protocolError, message: "connection closed in the body") }
                }
                let take = min(count - out.count, buffer.count - position)
                out += buffer[position..<position + take]
                position += take
            }
            return out
        }

        mutating func bytes(_ count: Int) throws(ScrapeError) -> ArraySlice<UInt8> {
            while buffer.count - position < count {
                guard try fill() else { throw ScrapeError(code: .protocolError, message: "connection closed in the body") }
            }
            defer { position += count }
            return buffer[position..<position + count]
        }

        mutating func readResponse() throws(ScrapeError) -> Response {
            let statusLine = try line()
            let parts = statusLine.split(separator: " ", maxSplits: 2)
            guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
                throw ScrapeError(code: .protocolError, message: "not an HTTP/1.x answer: \(statusLine.prefix(80))")
            }
            var headers: [(name: String, value: String)] = []
            while true {
                let text = try line()
                if text.isEmpty { break }
                guard headers.count < 100, let colon = text.firstIndex(of: ":") else {
                    throw ScrapeError(code: .protocolError, message: "malformed header line")
                }
                let name = text[..<colon].lowercased()
                let value = String(text[text.index(after: colon)...].drop { $0 == " " || $0 == "\t" })
                headers.append((name, value))
            }
            let response = Response(status: status, headers: headers, body: [])
            var body: [UInt8] = []
            if let encoding = response.header("transfer-encoding"), encoding.lowercased().contains("chunked") {
                while true {
                    let sizeLine = try line()
                    let hex = sizeLine.prefix { $0 != ";" }.trimmingCharacters()
                    guard let size = Int(hex, radix: 16), size >= 0 else {
                        throw ScrapeError(code: .protocolError, message: "bad chunk size \"\(sizeLine.prefix(20))\"")
                    }
                    if size == 0 { break }
                    // body.count never exceeds maxBytes, so the subtraction cannot overflow where `body.count + size`
                    // did (a chunk size near 2^63 trapped the exporter).
                    guard size <= maxBytes - body.count else {
                        throw ScrapeError(code: .tooLarge, message: "answer larger than \(maxBytes) bytes")
                    }
                    body += try bytes(size)
                    _ = try line()
                }
            } else if let lengthText = response.header("content-length") {
                guard let length = Int(lengthText), length >= 0 else {
                    throw ScrapeError(code: .protocolError, message: "bad Content-Length \"\(lengthText.prefix(20))\"")
                }
                guard length <= maxBytes else {
                    throw ScrapeError(code: .tooLarge, message: "answer of \(length) bytes, larger than \(maxBytes)")
                }
                body = try ownedBytes(length)
            } else {
                while try fill() {}
                body = Array(buffer[position...])
                guard body.count <= maxBytes else {
                    throw ScrapeError(code: .tooLarge, message: "answer larger than \(maxBytes) bytes")
                }
            }
            return Response(status: status, headers: headers, body: body)
        }
    }
}

extension Substring {
    fileprivate func trimmingCharacters() -> String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
