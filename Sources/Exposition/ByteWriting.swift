/// Low-level appends into the caller's reused `[UInt8]`.
///
/// The encoder runs every scrape over thousands of series, so these write bytes in place: no `String` per line,
/// no interpolation, no per-value heap allocation.
extension Array where Element == UInt8 {
    @inline(__always)
    mutating func appendASCII(_ string: StaticString) {
        string.withUTF8Buffer { append(contentsOf: $0) }
    }

    @inline(__always)
    mutating func appendUTF8(_ string: String) {
        append(contentsOf: string.utf8)
    }

    /// Appends `string`, escaping `\` and newline always and `"` when `quotes` is set.
    ///
    /// Label values need all three in both formats; HELP text needs `"` only in OpenMetrics. Unescaped runs are
    /// copied in one go, so the common case (nothing to escape) is a single bulk append.
    mutating func appendEscaped(_ string: String, quotes: Bool) {
        let handled: Void? = string.utf8.withContiguousStorageIfAvailable { bytes in
            var runStart = 0
            for index in bytes.indices {
                guard let escape = Self.escape(for: bytes[index], quotes: quotes) else { continue }
                append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<index]))
                appendASCII(escape)
                runStart = index + 1
            }
            append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart...]))
        }
        if handled == nil {
            // Bridged or otherwise non-contiguous strings: rare, so byte at a time is fine.
            for byte in string.utf8 {
                if let escape = Self.escape(for: byte, quotes: quotes) { appendASCII(escape) } else { append(byte) }
            }
        }
    }

    @inline(__always)
    private static func escape(for byte: UInt8, quotes: Bool) -> StaticString? {
        switch byte {
        case UInt8(ascii: "\\"): "\\\\"
        case UInt8(ascii: "\n"): "\\n"
        case UInt8(ascii: "\"") where quotes: "\\\""
        default: nil
        }
    }

    /// Appends a decimal integer without going through `String`.
    mutating func appendInteger(_ value: Int64) {
        if value < 0 { append(UInt8(ascii: "-")) }
        appendDigits(value.magnitude)
    }

    /// Digits are produced least-significant first, then the appended run is reversed in place.
    mutating func appendDigits(_ value: UInt64) {
        let start = endIndex
        var remaining = value
        repeat {
            append(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: remaining % 10))
            remaining /= 10
        } while remaining > 0
        // Swap in place: `self[start...].reverse()` copies the slice first, one allocation per integer written.
        var low = start
        var high = endIndex - 1
        while low < high {
            swapAt(low, high)
            low += 1
            high -= 1
        }
    }

    /// Appends a sample value as both formats spell it.
    ///
    /// Integral values below 2^53 (every one exactly representable) are written as plain integers, so byte and
    /// energy counters read `80000000000` rather than `8e+10`; `-0.0` becomes `0`. Everything else uses Swift's
    /// shortest round-trip representation, which Go's `ParseFloat` and Python's `float` both read back exactly.
    mutating func appendValue(_ value: Double) {
        if value.isNaN {
            appendASCII("NaN")
        } else if value.isInfinite {
            appendASCII(value < 0 ? "-Inf" : "+Inf")
        } else if value.magnitude < 9_007_199_254_740_992, Double(Int64(value)) == value {
            // The magnitude check keeps the Int64 conversion in range; the round trip tests integrality without libm.
            appendInteger(Int64(value))
        } else {
            // Moved (not copied) into the sink and back: swapping arrays exchanges their storage pointers.
            var sink = DoubleSink()
            swap(&sink.bytes, &self)
            value.write(to: &sink)
            swap(&sink.bytes, &self)
        }
    }

    /// Appends an OpenMetrics timestamp: seconds with up to three decimals, trailing zeros dropped.
    mutating func appendSeconds(milliseconds: Int64) {
        if milliseconds < 0 { append(UInt8(ascii: "-")) }
        let magnitude = milliseconds.magnitude
        appendDigits(magnitude / 1000)
        var fraction = magnitude % 1000
        guard fraction != 0 else { return }
        append(UInt8(ascii: "."))
        var divisor: UInt64 = 100
        while fraction != 0 {
            append(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: fraction / divisor))
            fraction %= divisor
            divisor /= 10
        }
    }
}

/// Receives `Double.write(to:)` output without building a `String`.
///
/// The stdlib formats a double into a stack buffer and hands it to `_writeASCII`; the default implementation of
/// that requirement wraps it in a `String`, which costs a heap allocation for anything over 15 characters
/// (`86.31000000000001`), i.e. for a large share of real readings. Overriding it copies the digits straight in.
/// Should a future stdlib stop calling `_writeASCII`, `write(_:)` still produces the same bytes, only slower.
private struct DoubleSink: TextOutputStream {
    var bytes: [UInt8] = []

    mutating func write(_ string: String) {
        bytes.append(contentsOf: string.utf8)
    }

    mutating func _writeASCII(_ buffer: UnsafeBufferPointer<UInt8>) {
        bytes.append(contentsOf: buffer)
    }
}
