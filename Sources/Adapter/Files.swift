#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Reads a whole file (configuration, credentials) with POSIX calls; at most `limit` bytes.
func readWholeFile(_ path: String, limit: Int = 16 << 20) throws(AdapterError) -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else {
        let code = errno
        throw AdapterError(
            code: .fileUnreadable, message: "cannot open \(path): \(String(cString: strerror(code)))",
            systemErrno: code)
    }
    defer { close(fd) }
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if count < 0 {
            let code = errno
            if code == EINTR { continue }
            throw AdapterError(
                code: .fileUnreadable, message: "cannot read \(path): \(String(cString: strerror(code)))",
                systemErrno: code)
        }
        if count == 0 { break }
        out.append(contentsOf: chunk[0..<count])
        guard out.count <= limit else {
            throw AdapterError(code: .fileUnreadable, message: "\(path) is larger than \(limit) bytes")
        }
    }
    return out
}
