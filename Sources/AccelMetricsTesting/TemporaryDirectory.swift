public import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A fresh directory in the temporary folder (`$TMPDIR`, else /tmp), removed with everything in it when the last
/// reference goes (or on `remove()`), so a test run leaves nothing behind, failing tests included.
///
/// Made with `mkdtemp`, never with Foundation's `.itemReplacementDirectory`, which on Linux leaves the
/// `TemporaryDirectory.*` folders that SwiftPM's own runs leave too.
public final class TemporaryDirectory: @unchecked Sendable {
    // Safe: `url` and `path` are immutable; the files under them are the test's business.

    /// The directory itself.
    public let url: URL

    /// `url.path`, for APIs that take strings (file roots, umockdev testbeds).
    public var path: String { url.path }

    /// `prefix` names the folder (`<prefix>-XXXXXX`) so a stray one says which test made it; `base` overrides the
    /// temporary folder (`/tmp` where a unix socket path must stay short).
    public init(prefix: String = "accel-test", in base: String? = nil) {
        let base = base ?? ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array("\(base.hasSuffix("/") ? String(base.dropLast()) : base)/\(prefix)-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(made != nil, "mkdtemp in \(base) failed: errno \(errno)")
        url = URL(fileURLWithPath: String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }

    deinit { remove() }

    /// Removes the directory now (idempotent); `deinit` does it otherwise.
    public func remove() {
        try? FileManager.default.removeItem(at: url)
    }

    /// A path inside the directory (nothing is created).
    public func url(_ relative: String) -> URL { url.appendingPathComponent(relative) }

    /// A path inside the directory, as a string.
    public func path(_ relative: String) -> String { url(relative).path }

    /// Writes `text` to `relative`, making its parent directories. The write is atomic (a temporary file renamed
    /// over the target, as a sysfs attribute changes under a reader), so a concurrent reader sees old or new.
    @discardableResult
    public func write(_ relative: String, _ text: String) throws -> URL {
        try write(relative, bytes: Array(text.utf8))
    }

    /// Writes `bytes` to `relative` (atomically, making parent directories).
    @discardableResult
    public func write(_ relative: String, bytes: [UInt8]) throws -> URL {
        let target = url(relative)
        try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
        let scratch = target.deletingLastPathComponent().appendingPathComponent(".\(target.lastPathComponent).\(UUID().uuidString)")
        guard FileManager.default.createFile(atPath: scratch.path, contents: Data(bytes)) else {
            throw HarnessError("cannot write \(scratch.path): errno \(errno)")
        }
        guard rename(scratch.path, target.path) == 0 else {
            let code = errno
            unlink(scratch.path)
            throw HarnessError("cannot rename \(scratch.path) to \(target.path): errno \(code)")
        }
        return target
    }

    /// Writes a JSON document (a seed, a configuration) to `relative`.
    @discardableResult
    public func writeJSON(_ relative: String, _ object: Any) throws -> URL {
        try write(relative, bytes: Array(try JSONSerialization.data(withJSONObject: object)))
    }

    /// Makes a directory (and its parents) inside this one.
    @discardableResult
    public func makeDirectory(_ relative: String) throws -> URL {
        let target = url(relative)
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
        return target
    }

    /// Makes `relative` a symbolic link to `target`, making its parent directories.
    public func link(_ relative: String, to target: String) throws {
        let link = url(relative)
        try FileManager.default.createDirectory(at: link.deletingLastPathComponent(), withIntermediateDirectories: true)
        guard symlink(target, link.path) == 0 else { throw HarnessError("symlink \(link.path) failed: errno \(errno)") }
    }

    /// Removes `relative` (a file or a tree) if it exists.
    public func remove(_ relative: String) {
        try? FileManager.default.removeItem(at: url(relative))
    }
}
