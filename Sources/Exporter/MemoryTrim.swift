#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Gives back the pages of code and read-only data that only start-up touched.
///
/// The exporter's static binary holds the Swift runtime and standard library: about 13 MB of code, of which the
/// kernel maps 6 MB at start-up (dynamic linking, metadata registration, fault-around read-ahead), although a
/// steady-state tick uses far less. After a warm-up, this asks the kernel (`MADV_PAGEOUT`, Linux 5.4+) to reclaim
/// the process's read-only file-backed pages; pages still in use fault back in on the next tick, from the page cache.
/// The kernel skips pages other processes map too, so shared libraries stay resident for them. On kernels without
/// `MADV_PAGEOUT` nothing happens.
public enum MemoryTrim {
    /// `MADV_PAGEOUT` from linux/mman.h (Glibc does not export it everywhere).
    static let pageOut: Int32 = 21

    /// Advises every private, non-writable, file-backed mapping of this process. Returns how many mappings the
    /// kernel accepted the advice for.
    @discardableResult
    public static func pageOutReadOnlyFileMappings() -> Int {
        guard let file = fopen("/proc/self/maps", "r") else { return 0 }
        defer { fclose(file) }
        var accepted = 0
        var line = [CChar](repeating: 0, count: 1024)
        while fgets(&line, Int32(line.count), file) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            guard let mapping = Mapping(text), mapping.isReadOnlyPrivateFile else { continue }
            guard let start = UnsafeMutableRawPointer(bitPattern: mapping.start) else { continue }
            if madvise(start, Int(mapping.end - mapping.start), pageOut) == 0 { accepted += 1 }
        }
        return accepted
    }

    /// One `/proc/self/maps` line: `start-end perms offset dev inode [path]`.
    struct Mapping: Equatable {
        var start: UInt
        var end: UInt
        var permissions: String
        var path: String

        init?(_ line: String) {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 5 else { return nil }
            let range = fields[0].split(separator: "-")
            guard range.count == 2, let start = UInt(range[0], radix: 16), let end = UInt(range[1], radix: 16), end > start
            else { return nil }
            self.start = start
            self.end = end
            permissions = String(fields[1])
            path = fields.count > 5 ? fields[5...].joined(separator: " ").trimmingNewline() : ""
        }

        /// `r--p` or `r-xp` with a file path: code and constants, never data the process wrote.
        var isReadOnlyPrivateFile: Bool {
            let flags = Array(permissions.utf8)
            return flags.count == 4 && flags[0] == UInt8(ascii: "r") && flags[1] == UInt8(ascii: "-")
                && flags[3] == UInt8(ascii: "p") && path.hasPrefix("/")
        }
    }
}

extension String {
    fileprivate func trimmingNewline() -> String {
        var copy = self
        while copy.last == "\n" || copy.last == "\r" { copy.removeLast() }
        return copy
    }
}
