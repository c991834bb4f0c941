#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import OTLPProto
import SwiftProtobuf
import Synchronization

/// OTLP/gRPC: `opentelemetry.proto.collector.metrics.v1.MetricsService/Export` over HTTP/2, through the same
/// grpc-swift client the kubelet pod-resources client uses (no new dependency).
///
/// The queued bytes go on the wire as they are (a pass-through serializer; no second encode). Compression is gRPC's
/// own gzip (`grpc-encoding`). One long-lived client runs its connections in a task of its own; each call has the
/// configured deadline.
public final class GRPCTransport: OTLPTransport {
    private let client: GRPCClient<HTTP2ClientTransport.Posix>
    private let runner: Task<Void, Never>
    private let options: CallOptions
    private let metadata: Metadata
    private let timeoutSeconds: Double

    /// Starts the client's connection task. Throws for an endpoint that is not `http(s)://host[:port]` (port 4317 when
    /// none) or a transport that does not start.
    public init(configuration: OTLPConfiguration) throws(OTLPConfigurationError) {
        guard let url = URL(string: configuration.endpoint), let scheme = url.scheme?.lowercased(),
              scheme == "http" || scheme == "https", let host = url.host, !host.isEmpty
        else {
            throw OTLPConfigurationError("--otlp.endpoint \"\(configuration.endpoint)\" is not http://host:port or https://host:port")
        }
        let port = url.port ?? 4317
        let security: HTTP2ClientTransport.Posix.TransportSecurity
        if scheme == "https" {
            var tls = HTTP2ClientTransport.Posix.TransportSecurity.TLS.defaults()
            if let ca = configuration.caFile { tls.trustRoots = .certificates([.file(path: ca, format: .pem)]) }
            if let certificate = configuration.certificateFile, let key = configuration.keyFile {
                tls.certificateChain = [.file(path: certificate, format: .pem)]
                tls.privateKey = .file(path: key, format: .pem)
            }
            if configuration.insecureSkipVerify { tls.serverCertificateVerification = .noVerification }
            security = .tls(tls)
        } else {
            security = .plaintext
        }
        let transport: HTTP2ClientTransport.Posix
        do {
            transport = try HTTP2ClientTransport.Posix(
                target: .dns(host: host, port: port), transportSecurity: security,
                config: .defaults { config in
                    config.backoff = .init(initial: .milliseconds(500), max: .seconds(10), multiplier: 1.6, jitter: 0.2)
                    config.compression = .init(algorithm: configuration.gzip ? .gzip : .none,
                                               enabledAlgorithms: configuration.gzip ? [.gzip] : .none)
                })
        } catch {
            throw OTLPConfigurationError("the OTLP gRPC transport does not start: \(error)")
        }
        let client = GRPCClient(transport: transport)
        self.client = client
        runner = Task { try? await client.runConnections() }
        var options = CallOptions.defaults
        options.timeout = .milliseconds(Int64(configuration.timeoutSeconds * 1000))
        options.waitForReady = false
        options.compression = configuration.gzip ? .gzip : CompressionAlgorithm.none
        self.options = options
        var metadata = Metadata()
        for (name, value) in configuration.headers { metadata.addString(value, forKey: name.lowercased()) }
        self.metadata = metadata
        timeoutSeconds = configuration.timeoutSeconds
    }

    /// Ignores `compressed`: the pusher queues plain bytes for gRPC and the client gzips them itself when configured.
    /// Gives up one second after the configured timeout, whatever the connection does.
    public func export(_ body: [UInt8], compressed: Bool) -> ExportOutcome {
        let client = self.client
        let request = ClientRequest(message: body, metadata: metadata)
        let options = self.options
        // The call's own deadline covers the RPC; the outer one also covers a connection that never comes up.
        let outcome = waitFor(timeoutSeconds + 1) { () async -> ExportOutcome in
            do {
                return try await client.unary(
                    request: request, descriptor: Opentelemetry_Proto_Collector_Metrics_V1_MetricsService.Method.Export.descriptor,
                    serializer: PassThroughSerializer(), deserializer: ResponseDeserializer(), options: options
                ) { response in
                    let message = try response.message
                    if message.hasPartialSuccess {
                        return .success(rejectedPoints: message.partialSuccess.rejectedDataPoints, message: message.partialSuccess.errorMessage)
                    }
                    return .success(rejectedPoints: 0, message: "")
                }
            } catch let error as RPCError {
                return Self.outcome(error.code, message: error.message)
            } catch {
                return .retryable(reason: "\(error)", retryAfter: nil)
            }
        }
        return outcome ?? .retryable(reason: "no answer within \(timeoutSeconds)s", retryAfter: nil)
    }

    /// OTLP/gRPC's retryable codes; the rest are refusals.
    static func outcome(_ code: RPCError.Code, message: String) -> ExportOutcome {
        switch code {
        case .cancelled, .deadlineExceeded, .resourceExhausted, .aborted, .outOfRange, .unavailable, .dataLoss:
            .retryable(reason: "gRPC \(code): \(message)", retryAfter: nil)
        default:
            .failed(reason: "gRPC \(code): \(message)")
        }
    }

    /// Begins the client's graceful shutdown and waits (at most 5 s) for its connection task to end.
    public func shutdown() {
        client.beginGracefulShutdown()
        runner.cancel()
        let runner = self.runner
        _ = waitFor(5) { await runner.value }
    }
}

/// The queued request bytes, as they are.
private struct PassThroughSerializer: MessageSerializer {
    func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes { Bytes(message) }
}

private struct ResponseDeserializer: MessageDeserializer {
    func deserialize<Bytes: GRPCContiguousBytes>(_ bytes: Bytes) throws -> Opentelemetry_Proto_Collector_Metrics_V1_ExportMetricsServiceResponse {
        guard bytes.count <= HTTPTransport.maxResponseBytes else { return .init() }
        return try bytes.withUnsafeBytes { try .init(serializedBytes: Array($0)) }
    }
}
