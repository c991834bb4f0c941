#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

// Kept out of Exporter.swift: that file imports the kubelet client, whose dependencies bring CoreFoundation's copy of
// `struct stat` into scope, and member-import visibility then rejects the Glibc one.
extension Exporter {
    /// Inode, size and modification time of `path` (`[0]` when it cannot be read): a change means "reload".
    static func fingerprint(_ path: String) -> [Int] {
        var info = stat()
        guard stat(path, &info) == 0 else { return [0] }
        return [Int(info.st_ino), Int(info.st_size), Int(info.st_mtim.tv_sec) * 1_000_000_000 + Int(info.st_mtim.tv_nsec)]
    }
}
