#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Every file the sysfs sources read goes through a root (`--path.sysfs`, `--path.procfs`), never a hard-coded
/// `/sys`, so tests and the demo can point the real code at a fixture tree.
///
/// Plain POSIX calls only: umockdev's LD_PRELOAD library redirects `open`, `opendir`, `readlink` and friends, so the
/// same code reads a umockdev testbed unchanged.
public struct FileRoot: Sendable {
    /// The root directory, without trailing slashes (`/` stays `/`).
    public let path: String

    /// Trailing slashes are dropped; the directory is not checked until something is read.
    public init(_ path: String) {
        var p = path
        while p.count > 1 && p.hasSuffix("/") { p.removeLast() }
        self.path = p
    }

    /// Absolute path of `relative` (which must not start with `/`) under this root.
    public func resolve(_ relative: String) -> String {
        path == "/" ? "/" + relative : path + "/" + relative
    }

    /// Reads a whole small file. sysfs attributes are at most a page; `limit` bounds a garbage file.
    public func readBytes(_ relative: String, limit: Int = 65536) throws(ReadError) -> [UInt8] {
        let full = resolve(relative)
        let fd = open(full, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw ReadError(path: full, errno: errno) }
        defer { close(fd) }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while result.count < limit {
            let want = min(chunk.count, limit - result.count)
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, want) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ReadError(path: full, errno: errno)
            }
            if n == 0 { break }
            result.append(contentsOf: chunk[0..<n])
        }
        return result
    }

    /// The file's text with surrounding whitespace (the kernel's trailing `\n`) removed.
    public func readString(_ relative: String) throws(ReadError) -> String {
        let bytes = try readBytes(relative, limit: 16384)
        return String(decoding: bytes, as: UTF8.self).trimmingWhitespace()
    }

    /// A decimal integer attribute. Garbage, empty or out-of-range text is a parse error, never a guess.
    public func readInteger(_ relative: String) throws(ReadError) -> Int64 {
        let text = try readString(relative)
        guard let value = Int64(text) else { throw ReadError(path: resolve(relative), parse: text) }
        return value
    }

    /// Names in a directory, without `.` and `..`, sorted so discovery is deterministic.
    public func list(_ relative: String) throws(ReadError) -> [String] {
        let full = resolve(relative)
        guard let dir = opendir(full) else { throw ReadError(path: full, errno: errno) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// Target of a symlink (as written, usually relative).
    public func readLink(_ relative: String) throws(ReadError) -> String {
        let full = resolve(relative)
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink(full, &buffer, buffer.count - 1)
        if n < 0 { throw ReadError(path: full, errno: errno) }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Whether `relative` exists under the root (`access(F_OK)`); never throws.
    public func exists(_ relative: String) -> Bool {
        access(resolve(relative), F_OK) == 0
    }
}

/// Why a file could not be read or understood. Carries the path and errno so the log line says exactly what failed.
public struct ReadError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure: callers treat a vanished device differently from a garbage file.
    public enum Code: Sendable, Equatable {
        /// The file or directory is gone (ENOENT, ENODEV, ENXIO): the device may have left.
        case notFound
        /// The kernel refused or failed the read (EIO, ENODATA, EPERM, EACCES, EISDIR, …).
        case io
        /// The read worked but the content is garbage or out of range.
        case parse
    }

    /// The kind of failure.
    public var code: Code
    /// The full path, root included.
    public var path: String
    /// The system call's `errno`; nil for a parse failure.
    public var errno: Int32?
    /// `strerror` text, or what the content was (cut at 40 characters).
    public var message: String

    /// A failed system call; the code follows from `errno`.
    public init(path: String, errno: Int32) {
        self.path = path
        self.errno = errno
        switch errno {
        case ENOENT, ENODEV, ENXIO, ENOTDIR: code = .notFound
        default: code = .io
        }
        message = String(cString: strerror(errno))
    }

    /// A file that read but did not parse; `text` is shown in the message.
    public init(path: String, parse text: String) {
        self.path = path
        self.errno = nil
        self.code = .parse
        let shown = text.count > 40 ? String(text.prefix(40)) + "…" : text
        message = "unparseable content \"\(shown)\""
    }

    /// `PATH: MESSAGE`.
    public var description: String { "\(path): \(message)" }
}

extension String {
    func trimmingWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" || $0 == "\0" }
        guard let start = firstIndex(where: { !isSpace($0) }) else { return "" }
        let end = lastIndex(where: { !isSpace($0) })!
        return String(self[start...end])
    }
}
