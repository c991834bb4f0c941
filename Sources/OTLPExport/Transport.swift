
/// What one export attempt came to.
public enum ExportOutcome: Sendable, Equatable {
    /// Accepted; `rejectedPoints` > 0 when the receiver took the request but refused some points (OTLP partial
    /// success), which retrying would not change.
    case success(rejectedPoints: Int64, message: String)
    /// Worth another try: 429, 502, 503, 504 (gRPC: UNAVAILABLE, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED…), no
    /// connection, or no answer within the timeout. `retryAfter`: what the receiver asked for, in seconds.
    case retryable(reason: String, retryAfter: Double?)
    /// Refused for good (400, 401, 413…): retrying the same bytes would be refused again.
    case failed(reason: String)
}

/// One way of carrying an encoded `ExportMetricsServiceRequest` to a receiver.
///
/// `body` is the serialized request, gzip-compressed when `compressed` (the transport says so on the wire).
/// Called on the pusher's own thread, which it blocks; an implementation must return within the configured timeout,
/// whatever the peer does.
public protocol OTLPTransport: Sendable {
    func export(_ body: [UInt8], compressed: Bool) -> ExportOutcome
    /// Releases connections and threads; no export runs after it.
    func shutdown()
}
