#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Rewrites attribute files in a live umockdev testbed (`$UMOCKDEV_DIR`) so the exporter sees readings move.
///
/// Each file is written to a temporary name and renamed over the old one: a reader never sees half a value.
/// Writes go to the real testbed directory, so this must not itself run under the umockdev preload.
public struct TestbedWriter {
    public let root: String
    private var last: [String: [UInt8]] = [:]

    public init(root: String) { self.root = root }

    /// Writes every attribute whose content changed since the last call; returns how many were written.
    @discardableResult
    public mutating func update(_ tree: FixtureTree) throws -> Int {
        var written = 0
        for (path, bytes) in tree.attributeFiles() where last[path] != bytes {
            try Self.writeAtomically(root + "/" + path, bytes)
            last[path] = bytes
            written += 1
        }
        return written
    }

    public static func writeAtomically(_ path: String, _ bytes: [UInt8]) throws {
        let temporary = path + ".tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw WriteError(path: temporary, errno: errno) }
        let ok = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == bytes.count
        close(fd)
        guard ok else { throw WriteError(path: temporary, errno: errno) }
        guard rename(temporary, path) == 0 else { throw WriteError(path: path, errno: errno) }
    }

    public struct WriteError: Error, CustomStringConvertible {
        public var path: String
        public var errno: Int32
        public init(path: String, errno: Int32) {
            self.path = path
            self.errno = errno
        }
        public var description: String { "\(path): \(String(cString: strerror(errno)))" }
    }
}
