#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A TCP port on 127.0.0.1 that nobody listens on right now (bound to port 0, read back and released), for programs
/// that need a port on their command line. Another process may take it before the program binds it; on a test
/// machine that is rare enough. Prefer `:0` and reading the bound port back where the program allows it.
public func freePort() throws -> Int {
    let listener = try LoopbackListener(listening: false)
    defer { listener.close() }
    return listener.port
}

/// A TCP socket bound to 127.0.0.1 on a port the kernel picks, listening, and nothing more: the building block of
/// misbehaving peers — an API server that accepts and never answers (connections wait in the backlog), a server
/// that answers junk or drips a byte at a time (the test's own accept loop on `fd`).
public final class LoopbackListener: @unchecked Sendable {
    // Safe: `fd` and `port` are set in init and only read afterwards; `closed` is only touched by close() and deinit,
    // which the owning test calls from one thread.

    /// The listening socket, for the test's accept loop.
    public let fd: Int32

    /// The port the kernel picked.
    public let port: Int

    private var closed = false

    /// - Parameters:
    ///   - backlog: connections the kernel accepts before anyone calls accept(2).
    ///   - listening: false only binds (a port to hand out, see `freePort`).
    public init(backlog: Int32 = 64, listening: Bool = true) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket failed: errno \(errno)") }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound, !listening || listen(fd, backlog) == 0 else {
            let code = errno
            _ = SystemCalls.close(fd)
            throw HarnessError("cannot bind or listen on 127.0.0.1: errno \(code)")
        }
        self.fd = fd
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close() }

    /// Shuts the socket down (waking a thread blocked in accept) and closes it; idempotent.
    public func close() {
        guard !closed else { return }
        closed = true
        shutdown(fd, Int32(SHUT_RDWR))
        _ = SystemCalls.close(fd)
    }
}

/// Whether a TCP connection to 127.0.0.1:`port` is accepted right now.
public func canConnect(toLoopbackPort port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
    }
}

/// The C library's close(2), which `LoopbackListener.close()` shadows.
enum SystemCalls {
    static func close(_ fd: Int32) -> Int32 {
        #if canImport(Glibc)
        Glibc.close(fd)
        #else
        Musl.close(fd)
        #endif
    }
}
