import CZlib
import Exposition
import Testing

@Suite("gzip")
struct GzipTests {
    static let exposition: [UInt8] = {
        var buffer: [UInt8] = []
        let samples = (0..<10_000).map { i in
            Sample(labels: [Label("gpu", String(i / 100)), Label("core", String(i % 100))], value: Double(i) * 1.5)
        }
        ExpositionEncoder.encode(
            [MetricFamily(name: "accelerator_core_clock_hertz", help: "Clock.", kind: .gauge, samples: samples)],
            format: .text, into: &buffer)
        return buffer
    }()

    /// Named, so test output lists "incompressible" rather than 200,000 bytes.
    enum Input: String, CaseIterable, Sendable {
        case empty, tiny, exposition
        /// Random bytes: the output is larger than the input and must still fit.
        case incompressible

        var bytes: [UInt8] {
            switch self {
            case .empty: []
            case .tiny: Array("# EOF\n".utf8)
            case .exposition: GzipTests.exposition
            case .incompressible:
                (0..<200_000).map { _ in UInt8.random(in: .min ... .max) }
            }
        }
    }

    @Test("round trips through zlib's inflate", arguments: Input.allCases, [1, 6, 9] as [Int32])
    func roundTrip(_ input: Input, level: Int32) throws {
        let bytes = input.bytes
        let compressed = try Gzip.compress(bytes, level: level)
        #expect(compressed.starts(with: [0x1f, 0x8b, 8]), "gzip magic and deflate method")
        #expect(try gunzip(compressed) == bytes)
    }

    @Test("the raw-buffer overload produces the same bytes")
    func rawBufferOverload() throws {
        let viaArray = try Gzip.compress(Self.exposition)
        let viaPointer = try Self.exposition.withUnsafeBytes { try Gzip.compress($0) }
        #expect(viaArray == viaPointer)
    }

    @Test("an exposition shrinks several-fold at the default level")
    func compresses() throws {
        let compressed = try Gzip.compress(Self.exposition)
        #expect(compressed.count * 4 < Self.exposition.count)
    }

    @Test("zlib's refusal is reported as a GzipError with code and message")
    func invalidLevel() {
        #expect {
            _ = try Gzip.compress(Array("x".utf8), level: 42)
        } throws: { error in
            guard let error = error as? GzipError else { return false }
            return error.code == Z_STREAM_ERROR && error.operation == "deflateInit2" && !error.message.isEmpty
        }
    }
}

/// Inflates one gzip member with zlib itself (windowBits 31 = gzip wrapper), independent of the code under test.
private func gunzip(_ compressed: [UInt8]) throws -> [UInt8] {
    struct InflateFailed: Error { var code: Int32 }
    // Heap-allocated: zlib checks that every call passes the address the stream was initialised at.
    let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    stream.initialize(to: z_stream())
    defer { stream.deallocate() }
    // inflateInit2 is a macro; this is the function it expands to.
    let status = inflateInit2_(stream, 31, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
    guard status == Z_OK else { throw InflateFailed(code: status) }
    defer { inflateEnd(stream) }
    var input = compressed
    var output: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    return try input.withUnsafeMutableBufferPointer { input in
        stream.pointee.next_in = input.baseAddress
        stream.pointee.avail_in = uInt(input.count)
        while true {
            let (result, produced) = chunk.withUnsafeMutableBufferPointer { out in
                stream.pointee.next_out = out.baseAddress
                stream.pointee.avail_out = uInt(out.count)
                let result = inflate(stream, Z_NO_FLUSH)
                return (result, out.count - Int(stream.pointee.avail_out))
            }
            output.append(contentsOf: chunk[..<produced])
            if result == Z_STREAM_END { return output }
            guard result == Z_OK else { throw InflateFailed(code: result) }
        }
    }
}
