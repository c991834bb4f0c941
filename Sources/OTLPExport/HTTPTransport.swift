import AsyncHTTPClient
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import NIOCore
import NIOHTTP1
import NIOSSL
import OTLPProto
import SwiftProtobuf

/// OTLP/HTTP with binary protobuf over `https://`: POST `<endpoint>/v1/metrics` through AsyncHTTPClient (TLS from
/// swift-nio-ssl, which the exporter's API client already uses). Plain `http://` goes through ``PlainHTTPTransport``.
///
/// The response body is read up to 64 KiB (a partial-success message is a few bytes); a bigger one is not an error,
/// only not decoded. The whole attempt, response body included, has one deadline.
public final class HTTPTransport: OTLPTransport {
    /// 64 KiB; also the limit on a gRPC response that is decoded.
    public static let maxResponseBytes = 64 << 10

    private let client: HTTPClient
    /// The endpoint with `/v1/metrics` added unless it already ends with it.
    public let url: String
    private let headers: [(String, String)]
    private let timeoutSeconds: Double

    /// Reads the TLS files now: an endpoint that is not an `http(s)://` URL with a host, or a CA, certificate or key
    /// file that does not load, throws. Redirects are not followed.
    public init(configuration: OTLPConfiguration) throws(OTLPConfigurationError) {
        url = try Self.metricsURL(configuration.endpoint)
        headers = configuration.headers
        timeoutSeconds = configuration.timeoutSeconds
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        do {
            if let ca = configuration.caFile {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(ca))
            }
            if let certificate = configuration.certificateFile, let key = configuration.keyFile {
                tls.certificateChain = try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) }
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
            }
        } catch {
            throw OTLPConfigurationError("the OTLP TLS files do not load: \(error)")
        }
        if configuration.insecureSkipVerify { tls.certificateVerification = .none }
        var clientConfiguration = HTTPClient.Configuration(tlsConfiguration: tls)
        clientConfiguration.redirectConfiguration = .disallow
        clientConfiguration.timeout = .init(connect: .milliseconds(Int64(configuration.timeoutSeconds * 1000)))
        // One connection is enough for one push every few seconds; a second would only hold memory.
        clientConfiguration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 1)
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: clientConfiguration)
    }

    /// `http://collector:4318` → `http://collector:4318/v1/metrics`; a URL already ending in `/v1/metrics` is kept.
    static func metricsURL(_ endpoint: String) throws(OTLPConfigurationError) -> String {
        guard let url = URL(string: endpoint), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = url.host, !host.isEmpty
        else {
            throw OTLPConfigurationError("--otlp.endpoint \"\(endpoint)\" is not an http:// or https:// URL with a host")
        }
        if url.path.hasSuffix("/v1/metrics") { return endpoint }
        return endpoint.hasSuffix("/") ? endpoint + "v1/metrics" : endpoint + "/v1/metrics"
    }

    /// `compressed` adds `Content-Encoding: gzip`; the configured headers follow ours.
    public func export(_ body: [UInt8], compressed: Bool) -> ExportOutcome {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-protobuf")
        request.headers.add(name: "User-Agent", value: "accel-exporter")
        if compressed { request.headers.add(name: "Content-Encoding", value: "gzip") }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(bytes: body))
        let prepared = request
        let client = self.client
        let timeout = timeoutSeconds
        let outcome = waitFor(timeout) { () async -> ExportOutcome in
            do {
                let response = try await client.execute(prepared, timeout: .milliseconds(Int64(timeout * 1000)))
                var collected: ByteBuffer?
                do {
                    collected = try await response.body.collect(upTo: Self.maxResponseBytes)
                } catch is NIOTooManyBytesError {
                    collected = nil
                }
                return Self.outcome(status: Int(response.status.code), retryAfter: response.headers.first(name: "Retry-After"),
                                    body: collected.map { Array($0.readableBytesView) })
            } catch {
                return .retryable(reason: Self.describe(error), retryAfter: nil)
            }
        }
        return outcome ?? .retryable(reason: "no answer within \(timeout)s", retryAfter: nil)
    }

    /// OTLP/HTTP's rules: 2xx accepted (with a possible partial success in the body), 429/502/503/504 retryable
    /// (honouring `Retry-After` in seconds), anything else refused for good.
    static func outcome(status: Int, retryAfter: String?, body: [UInt8]?) -> ExportOutcome {
        switch status {
        case 200..<300:
            if let body, !body.isEmpty,
               let response = try? Opentelemetry_Proto_Collector_Metrics_V1_ExportMetricsServiceResponse(serializedBytes: body),
               response.hasPartialSuccess {
                return .success(rejectedPoints: response.partialSuccess.rejectedDataPoints, message: response.partialSuccess.errorMessage)
            }
            return .success(rejectedPoints: 0, message: "")
        case 429, 502, 503, 504:
            let after = retryAfter.flatMap { Double($0.filter { $0 != " " && $0 != "\t" }) }.flatMap { $0.isFinite && $0 >= 0 ? $0 : nil }
            return .retryable(reason: "HTTP \(status)", retryAfter: after)
        default:
            return .failed(reason: "HTTP \(status)")
        }
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout, .connectTimeout: return "timeout"
            default: return "\(error)"
            }
        }
        return "\(error)"
    }

    /// Shuts the HTTP client down (waiting at most 5 s); errors are ignored.
    public func shutdown() {
        let client = self.client
        _ = waitFor(5) { try? await client.shutdown() }
    }
}
