/// A parser that takes outside bytes, driven from one input: by libFuzzer (`Fuzz/`, `make fuzz`) and by the corpus
/// replay of `make test` (`Tests/FuzzCorpusTests`).
///
/// A target calls the real entry point, never a copy of it. Rejecting the input is fine; crashing, hanging, growing
/// memory out of proportion to the input, or breaking an invariant the code promises (a canonical form parses back,
/// limits refuse rather than truncate) is a finding: the body throws ``FuzzFinding`` for a broken invariant, and the
/// libFuzzer entry point turns it into a crash so libFuzzer keeps the input.
public struct FuzzTarget: Sendable {
    /// The corpus folder's name (`Fuzz/Corpus/<name>`) and `FUZZ_TARGET`'s value.
    public let name: String
    /// libFuzzer's `-max_len`: past the parser's own line or size limit where it has one, so that the limit is hit.
    public let maxLength: Int
    let body: @Sendable (UnsafeRawBufferPointer) throws(FuzzFinding) -> Void

    init(_ name: String, maxLength: Int, _ body: @escaping @Sendable (UnsafeRawBufferPointer) throws(FuzzFinding) -> Void) {
        self.name = name
        self.maxLength = maxLength
        self.body = body
    }

    /// Runs one input.
    public func run(_ bytes: UnsafeRawBufferPointer) throws(FuzzFinding) {
        try body(bytes)
    }

    /// Runs one input held in an array.
    public func run(_ bytes: [UInt8]) throws(FuzzFinding) {
        let result = bytes.withUnsafeBytes { raw in Result { () throws(FuzzFinding) in try body(raw) } }
        try result.get()
    }
}

/// An invariant the input broke.
public struct FuzzFinding: Error, Sendable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

/// Throws a finding unless `condition` holds.
func check(_ condition: Bool, _ message: @autoclosure () -> String) throws(FuzzFinding) {
    if !condition { throw FuzzFinding(message()) }
}

/// At most `limit` bytes of `text`, for a finding's message.
func excerpt(_ text: String, _ limit: Int = 300) -> String {
    text.utf8.count <= limit ? text : String(decoding: text.utf8.prefix(limit), as: UTF8.self) + "…"
}

public enum FuzzTargets {
    /// Every target, in `make fuzz`'s order.
    public static let all: [FuzzTarget] = [
        httpResponse, exposition, labelSelector, metricsRoute, quantity, inferenceNormalizer, metricsConfig, webConfig,
        kubeconfig, tpuRuntime, identityHeaders,
    ]

    public static func named(_ name: String) -> FuzzTarget? {
        all.first { $0.name == name }
    }
}
