#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension Exporter {
    /// The fingerprints of `path` and of each of `files`, in order.
    static func fingerprint(_ path: String, files: [String]) -> [Int] {
        ([path] + files).flatMap { fingerprint($0) + [-1] }
    }

    /// The length and an FNV-1a hash of `path`'s first MiB (`[0]` when it cannot be read): a change means "reload".
    /// Content rather than `stat`: a file rewritten in place within one mtime tick, or a ConfigMap's symlink swap,
    /// is seen all the same.
    static func fingerprint(_ path: String) -> [Int] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return [0] }
        defer { close(fd) }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        var total = 0
        var buffer = [UInt8](repeating: 0, count: 16 << 10)
        while total < 1 << 20 {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            for byte in buffer[..<n] {
                hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
            }
            total += n
        }
        return [total + 1, Int(truncatingIfNeeded: hash)]
    }
}
