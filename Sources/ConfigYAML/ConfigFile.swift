#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Reading a configuration or credential file whole, bounded: what both programs' file-based settings share.
public enum ConfigFile {
    /// Why a file could not be read: the path, the system's reason, and `errno` where there was one.
    public struct ReadError: Error, Sendable, CustomStringConvertible, Equatable {
        /// As given, not resolved.
        public var path: String
        /// The `strerror` text, or the size-limit message.
        public var reason: String
        /// Nil when no system call failed (the file was over the limit).
        public var errno: Int32?

        /// `cannot read PATH: REASON`.
        public var description: String { "cannot read \(path): \(reason)" }
    }

    /// The file's bytes; a file over `limit` bytes is an error, never truncated.
    public static func read(_ path: String, limit: Int = 16 << 20) throws(ReadError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { let code = errno; throw ReadError(path: path, reason: String(cString: strerror(code)), errno: code) }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                let code = errno
                if code == EINTR { continue }
                throw ReadError(path: path, reason: String(cString: strerror(code)), errno: code)
            }
            if count == 0 { return out }
            out.append(contentsOf: chunk[0..<count])
            guard out.count <= limit else { throw ReadError(path: path, reason: "larger than \(limit) bytes", errno: nil) }
        }
    }
}
