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

extension MemoryTrim {
    /// Bounds what glibc's allocator keeps after large, short-lived allocations: a model server's answer (up to
    /// 16 MiB, read and parsed once a tick) is freed at once, but by default glibc then raises its mmap threshold
    /// to that size and serves the next one from a per-thread arena, which keeps the pages. Scrapes run on whichever
    /// Dispatch worker is free, so more than one arena can come to hold a copy (with one 100k-series server and 64
    /// GPUs, 45 MiB on one run and 68 MiB on a busier one, against the DaemonSet's 64Mi; Benchmarks/ceilings.sh).
    /// A fixed threshold of
    /// 1 MiB returns large blocks to the kernel when freed, and two arenas bound the rest. Applied once, before any
    /// thread starts; `mallopt` is looked up, not linked (it is glibc's: elsewhere nothing happens).
    public static func boundAllocatorRetention() {
        #if canImport(Glibc)
        typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
        guard let symbol = dlsym(nil, "mallopt") else { return }
        let mallopt = unsafeBitCast(symbol, to: Mallopt.self)
        let arenaMax: Int32 = -8       // M_ARENA_MAX, malloc.h
        let mmapThreshold: Int32 = -3  // M_MMAP_THRESHOLD, malloc.h (setting it also stops its dynamic growth)
        _ = mallopt(arenaMax, 2)
        _ = mallopt(mmapThreshold, 1 << 20)
        #endif
    }
}

extension String {
    fileprivate func trimmingNewline() -> String {
        var copy = self
        while copy.last == "\n" || copy.last == "\r" { copy.removeLast() }
        return copy
    }
}
