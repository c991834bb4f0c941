import CZlib

/// gzip compression for scrape responses.
///
/// Prometheus always sends `Accept-Encoding: gzip`, and a 10k-series exposition shrinks roughly tenfold, which
/// matters more than the CPU at level 1 (the default: nearly all of the gain at a fraction of level 6's cost).
public enum Gzip {
    /// Compresses `bytes` into one gzip member (RFC 1952 header and trailer, as `Content-Encoding: gzip` needs).
    ///
    /// Throws `GzipError` when zlib refuses (bad level, out of memory); input is never a reason to fail.
    public static func compress(_ bytes: UnsafeRawBufferPointer, level: Int32 = 1) throws(GzipError) -> [UInt8] {
        // zlib keeps a pointer back to the z_stream and rejects calls made with any other address, so the stream
        // lives at one heap address rather than in a Swift variable whose inout address is not promised to be stable.
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        defer { stream.deallocate() }
        // windowBits 15 + 16 selects the gzip wrapper; memLevel 8 is zlib's default.
        let status = CZlib_deflateInit2(stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY)
        guard status == Z_OK else { throw GzipError(code: status, operation: "deflateInit2", stream: stream.pointee) }
        defer { deflateEnd(stream) }

        // deflateBound covers the gzip header and trailer, so one deflate call normally finishes. The loop is for
        // the cases it does not: inputs beyond zlib's 32-bit counters are fed in parts, and output grows if needed.
        var output = [UInt8](repeating: 0, count: Int(deflateBound(stream, uLong(bytes.count))))
        var written = 0
        var consumed = 0
        while true {
            let feed = min(bytes.count - consumed, Int(uInt.max))
            stream.pointee.next_in = UnsafeMutablePointer(
                mutating: bytes.baseAddress?.advanced(by: consumed).assumingMemoryBound(to: Bytef.self))
            stream.pointee.avail_in = uInt(feed)
            let flush = consumed + feed == bytes.count ? Z_FINISH : Z_NO_FLUSH
            if written == output.count {
                output.append(contentsOf: repeatElement(0, count: max(output.count / 2, 64)))
            }
            let status = output.withUnsafeMutableBufferPointer { out in
                stream.pointee.next_out = out.baseAddress! + written
                stream.pointee.avail_out = uInt(min(out.count - written, Int(uInt.max)))
                let room = stream.pointee.avail_out
                defer { written += Int(room - stream.pointee.avail_out) }
                return deflate(stream, flush)
            }
            consumed += feed - Int(stream.pointee.avail_in)
            switch status {
            case Z_STREAM_END:
                output.removeLast(output.count - written)
                return output
            case Z_OK:
                continue  // more input to feed, or the output filled up and grows on the next pass
            default:
                // Z_BUF_ERROR cannot happen: every pass has input or Z_FINISH pending and free output space.
                throw GzipError(code: status, operation: "deflate", stream: stream.pointee)
            }
        }
    }

    /// Convenience for callers holding an array (tests, small bodies).
    public static func compress(_ bytes: [UInt8], level: Int32 = 1) throws(GzipError) -> [UInt8] {
        // withUnsafeBytes is rethrows, not typed-throws, so carry the outcome out as a Result.
        let result = bytes.withUnsafeBytes { raw in Result { () throws(GzipError) in try compress(raw, level: level) } }
        return try result.get()
    }
}

/// A zlib failure: its return code, zlib's message, and which call failed.
///
/// A struct rather than an enum so new failure sites do not break callers that switch over errors.
public struct GzipError: Error, Sendable, Equatable, CustomStringConvertible {
    /// zlib's return code (`Z_STREAM_ERROR`, `Z_MEM_ERROR`, …).
    public var code: Int32
    /// `z_stream.msg` when zlib set one, else `zError(code)`.
    public var message: String
    /// The zlib function that failed, e.g. `deflateInit2`.
    public var operation: String

    /// Thrown by ``Gzip``.
    public init(code: Int32, message: String, operation: String) {
        self.code = code
        self.message = message
        self.operation = operation
    }

    init(code: Int32, operation: String, stream: z_stream) {
        let text = stream.msg.map { String(cString: $0) } ?? zError(code).map { String(cString: $0) } ?? "unknown"
        self.init(code: code, message: text, operation: operation)
    }

    /// `gzip: OPERATION failed with CODE: MESSAGE`.
    public var description: String { "gzip: \(operation) failed with \(code): \(message)" }
}
