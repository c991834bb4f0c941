import CMicroHTTPD  // its headers define `struct sockaddr` for this module, so member lookups need the import
import Glibc

/// `strerror` text with the number, for error messages and logs.
func errnoDescription(_ code: Int32) -> String {
    // glibc's strerror returns static strings for known codes and a thread-local buffer otherwise.
    "\(String(cString: strerror(code))) (errno \(code))"
}

/// Opens, binds and listens on the server's socket before libmicrohttpd sees it, so that a taken port or a host
/// that does not resolve surfaces as an `HTTPServerError` carrying `errno`, rather than as a line in the log.
enum ListenSocket {
    /// Backlog for `listen(2)`: the kernel caps it at `net.core.somaxconn`.
    static let backlog: Int32 = 4096

    /// A listening, non-blocking, close-on-exec TCP socket for `host:port`.
    ///
    /// An empty host or `::` listens on every interface, IPv6 and IPv4 alike (one dual-stack socket; IPv4 only
    /// where the kernel has no IPv6). Any other host is resolved and the first address that binds wins.
    static func open(host: String, port: Int) throws -> Int32 {
        if host.isEmpty || host == "::" {
            return try openWildcard(port: port, explicitIPv6: host == "::")
        }
        return try openResolved(host: host, port: port)
    }

    private static func openWildcard(port: Int, explicitIPv6: Bool) throws -> Int32 {
        var address6 = sockaddr_in6()
        address6.sin6_family = sa_family_t(AF_INET6)
        address6.sin6_port = in_port_t(UInt16(port).bigEndian)
        address6.sin6_addr = in6addr_any
        do {
            return try withUnsafeBytes(of: &address6) { raw in
                try bindAndListen(
                    family: AF_INET6,
                    address: raw.baseAddress!.assumingMemoryBound(to: sockaddr.self),
                    length: socklen_t(MemoryLayout<sockaddr_in6>.size),
                    dualStack: true,
                    display: "[::]:\(port)"
                )
            }
        } catch let error as HTTPServerError
            where !explicitIPv6 && error.operation == "socket" && error.systemErrno == EAFNOSUPPORT
        {
            // A kernel without IPv6: all interfaces means all IPv4 interfaces.
            var address4 = sockaddr_in()
            address4.sin_family = sa_family_t(AF_INET)
            address4.sin_port = in_port_t(UInt16(port).bigEndian)
            address4.sin_addr = in_addr(s_addr: INADDR_ANY.bigEndian)
            return try withUnsafeBytes(of: &address4) { raw in
                try bindAndListen(
                    family: AF_INET,
                    address: raw.baseAddress!.assumingMemoryBound(to: sockaddr.self),
                    length: socklen_t(MemoryLayout<sockaddr_in>.size),
                    dualStack: false,
                    display: "0.0.0.0:\(port)"
                )
            }
        }
    }

    private static func openResolved(host: String, port: Int) throws -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let list else {
            var error = HTTPServerError(
                code: .addressResolution,
                message: "cannot resolve listen host \"\(host)\": \(String(cString: gai_strerror(status)))",
                operation: "getaddrinfo"
            )
            if status == EAI_SYSTEM { error.systemErrno = errno }
            throw error
        }
        defer { freeaddrinfo(list) }

        var lastError: HTTPServerError?
        var entry: UnsafeMutablePointer<addrinfo>? = list
        while let current = entry {
            entry = current.pointee.ai_next
            guard let address = current.pointee.ai_addr,
                current.pointee.ai_family == AF_INET || current.pointee.ai_family == AF_INET6
            else { continue }
            do {
                return try bindAndListen(
                    family: current.pointee.ai_family,
                    address: address,
                    length: current.pointee.ai_addrlen,
                    dualStack: false,
                    display: "\(socketAddressString(address) ?? host):\(port)"
                )
            } catch let error as HTTPServerError {
                lastError = error
            }
        }
        throw lastError
            ?? HTTPServerError(
                code: .addressResolution,
                message: "listen host \"\(host)\" has no IPv4 or IPv6 address",
                operation: "getaddrinfo"
            )
    }

    private static func bindAndListen(
        family: Int32,
        address: UnsafePointer<sockaddr>,
        length: socklen_t,
        dualStack: Bool,
        display: String
    ) throws -> Int32 {
        let fd = socket(family, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue | SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else {
            throw HTTPServerError(
                code: .bindFailed,
                message: "cannot create a socket to listen on \(display)",
                systemErrno: errno,
                operation: "socket"
            )
        }
        var one: Int32 = 1
        // A restarted exporter must get its port back while old connections sit in TIME_WAIT.
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        if family == AF_INET6 {
            // Dual-stack for the wildcard; a specific IPv6 address is IPv6 only anyway.
            var v6Only: Int32 = dualStack ? 0 : 1
            _ = setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &v6Only, socklen_t(MemoryLayout<Int32>.size))
        }
        if bind(fd, address, length) != 0 {
            let code = errno
            close(fd)
            throw HTTPServerError(
                code: .bindFailed,
                message: "cannot listen on \(display)",
                systemErrno: code,
                operation: "bind"
            )
        }
        if listen(fd, backlog) != 0 {
            let code = errno
            close(fd)
            throw HTTPServerError(
                code: .bindFailed,
                message: "cannot listen on \(display)",
                systemErrno: code,
                operation: "listen"
            )
        }
        return fd
    }

    /// The port a listening socket is bound to, or 0.
    static func boundPort(_ fd: Int32) -> Int {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let status = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard status == 0 else { return 0 }
        return withUnsafePointer(to: &storage) { pointer in
            switch Int32(pointer.pointee.ss_family) {
            case AF_INET:
                pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                    Int(UInt16(bigEndian: $0.pointee.sin_port))
                }
            case AF_INET6:
                pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
                    Int(UInt16(bigEndian: $0.pointee.sin6_port))
                }
            default:
                0
            }
        }
    }
}

/// The numeric host of an IPv4 or IPv6 socket address (IPv4-mapped IPv6 addresses in dotted form, as a dual-stack
/// socket reports IPv4 peers), or nil for other families.
func socketAddressString(_ address: UnsafePointer<sockaddr>) -> String? {
    // INET6_ADDRSTRLEN is 46; one buffer serves both families.
    withUnsafeTemporaryAllocation(of: CChar.self, capacity: 64) { buffer -> String? in
        switch Int32(address.pointee.sa_family) {
        case AF_INET:
            return address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { v4 in
                var raw = v4.pointee.sin_addr
                guard inet_ntop(AF_INET, &raw, buffer.baseAddress, socklen_t(buffer.count)) != nil else { return nil }
                return String(cString: buffer.baseAddress!)
            }
        case AF_INET6:
            return address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { v6 in
                var raw = v6.pointee.sin6_addr
                let mappedIPv4 = withUnsafeBytes(of: &raw) { bytes -> String? in
                    guard bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF else {
                        return nil
                    }
                    return "\(bytes[12]).\(bytes[13]).\(bytes[14]).\(bytes[15])"
                }
                if let mappedIPv4 { return mappedIPv4 }
                guard inet_ntop(AF_INET6, &raw, buffer.baseAddress, socklen_t(buffer.count)) != nil else { return nil }
                return String(cString: buffer.baseAddress!)
            }
        default:
            return nil
        }
    }
}
