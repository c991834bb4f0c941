/// Protocol-buffers wire format for the few OTLP messages the push sends, written straight into bytes.
///
/// The push encodes every point of every tick; building SwiftProtobuf message values first would allocate a value
/// per attribute, per point and per metric (about 2 MiB for an 8-GPU node) only to serialize them at once. The
/// layout follows Protos/opentelemetry field for field; tests decode what this writes with the generated messages
/// (Sources/OTLPProto) and with Python's opentelemetry-proto.
struct ProtobufWriter {
    private(set) var bytes: [UInt8] = []

    init(reserving capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    enum WireType: UInt64 {
        case varint = 0
        case fixed64 = 1
        case lengthDelimited = 2
    }

    mutating func removeAll() { bytes.removeAll(keepingCapacity: true) }

    /// Bytes already encoded (a nested message's fields whose length was written before).
    mutating func append(_ encoded: [UInt8]) { bytes.append(contentsOf: encoded) }

    mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    mutating func tag(_ field: Int, _ type: WireType) { varint(UInt64(field) << 3 | type.rawValue) }

    mutating func fixed64(_ field: Int, _ value: UInt64) {
        tag(field, .fixed64)
        rawFixed64(value)
    }

    mutating func rawFixed64(_ value: UInt64) {
        var v = value.littleEndian
        withUnsafeBytes(of: &v) { bytes.append(contentsOf: $0) }
    }

    mutating func double(_ field: Int, _ value: Double) { fixed64(field, value.bitPattern) }

    mutating func string(_ field: Int, _ value: String) {
        tag(field, .lengthDelimited)
        varint(UInt64(value.utf8.count))
        bytes.append(contentsOf: value.utf8)
    }

    mutating func message(_ field: Int, _ encoded: [UInt8]) {
        tag(field, .lengthDelimited)
        varint(UInt64(encoded.count))
        bytes.append(contentsOf: encoded)
    }

    /// A nested message written in place: `body` writes its fields into a scratch writer, then its length and bytes
    /// follow the tag here.
    mutating func message(_ field: Int, _ body: (inout ProtobufWriter) -> Void) {
        var nested = ProtobufWriter()
        body(&nested)
        message(field, nested.bytes)
    }

    /// `KeyValue { key = 1; value = 2 { string_value = 1 } }`.
    mutating func attribute(_ field: Int, _ key: String, _ value: String) {
        let valueLength = 1 + Self.varintSize(UInt64(value.utf8.count)) + value.utf8.count
        let length = 1 + Self.varintSize(UInt64(key.utf8.count)) + key.utf8.count + 1 + Self.varintSize(UInt64(valueLength)) + valueLength
        tag(field, .lengthDelimited)
        varint(UInt64(length))
        string(1, key)
        tag(2, .lengthDelimited)
        varint(UInt64(valueLength))
        string(1, value)
    }

    static func varintSize(_ value: UInt64) -> Int {
        var v = value
        var n = 1
        while v >= 0x80 {
            v >>= 7
            n += 1
        }
        return n
    }
}
