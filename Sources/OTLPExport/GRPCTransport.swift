#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import CurlHTTP
import OTLPProto
import SwiftProtobuf
import UnaryGRPC

/// OTLP/gRPC: `opentelemetry.proto.collector.metrics.v1.MetricsService/Export` over HTTP/2, through the same unary
/// gRPC channel the kubelet and libtpu clients use (``UnaryGRPC``, libcurl with GnuTLS; no gRPC framework).
///
/// The queued bytes go on the wire as they are (no second encode); when gzip is on the pusher queues them
/// compressed and the call says `grpc-encoding: gzip`. Attempts run one at a time on the pusher's thread, each on a
/// connection of its own (see ``GRPCChannel``) and with the configured deadline.
public final class GRPCTransport: OTLPTransport {
    static let method = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
    private let channel: GRPCChannel
    private let timeoutSeconds: Double

    /// Throws for an endpoint that is not `http(s)://host[:port]` (port 4317 when none), or TLS files that do not load.
    public init(configuration: OTLPConfiguration) throws(OTLPConfigurationError) {
        guard let url = URL(string: configuration.endpoint), let scheme = url.scheme?.lowercased(),
              scheme == "http" || scheme == "https", let host = url.host, !host.isEmpty
        else {
            throw OTLPConfigurationError("--otlp.endpoint \"\(configuration.endpoint)\" is not http://host:port or https://host:port")
        }
        let tls = scheme == "https" ? try HTTPTransport.tls(configuration) : nil
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        do {
            channel = try GRPCChannel(target: .host(bare, port: url.port ?? 4317), tls: tls, proxy: configuration.proxy,
                                      metadata: configuration.headers, label: "accel-exporter.otlp")
        } catch {
            throw OTLPConfigurationError("the OTLP gRPC transport does not start: \(error.message)")
        }
        timeoutSeconds = configuration.timeoutSeconds
    }

    /// `compressed`: the bytes are gzip, sent with the frame's compressed flag.
    public func export(_ body: [UInt8], compressed: Bool) -> ExportOutcome {
        do {
            let answer = try channel.unaryBytes(Self.method, message: body, compressed: compressed, timeout: timeoutSeconds,
                                                maxResponseBytes: HTTPTransport.maxResponseBytes)
            if let message = try? Opentelemetry_Proto_Collector_Metrics_V1_ExportMetricsServiceResponse(serializedBytes: answer),
               message.hasPartialSuccess {
                return .success(rejectedPoints: message.partialSuccess.rejectedDataPoints, message: message.partialSuccess.errorMessage)
            }
            return .success(rejectedPoints: 0, message: "")
        } catch {
            return Self.outcome(error.code, message: error.message)
        }
    }

    /// OTLP/gRPC's retryable codes; the rest are refusals.
    static func outcome(_ code: GRPCStatusError.Code, message: String) -> ExportOutcome {
        switch code {
        case .cancelled, .deadlineExceeded, .resourceExhausted, .aborted, .outOfRange, .unavailable, .dataLoss:
            .retryable(reason: "gRPC \(code): \(message)", retryAfter: nil)
        default:
            .failed(reason: "gRPC \(code): \(message)")
        }
    }

    /// Stops an attempt under way (within about a second); the connection closes when the transport goes.
    public func shutdown() { channel.cancel() }
}
