import CurlHTTP
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import OTLPProto
import SwiftProtobuf

/// OTLP/HTTP with binary protobuf over `https://`: POST `<endpoint>/v1/metrics` through libcurl with GnuTLS
/// (``CurlHTTP``, as the exporter's API client). Plain `http://` goes through ``PlainHTTPTransport``.
///
/// The response body is read up to 64 KiB (a partial-success message is a few bytes); a bigger one is not an error,
/// only not decoded. The whole attempt, response body included, has one deadline. Attempts run one at a time on the
/// pusher's thread, over one kept-open connection.
public final class HTTPTransport: OTLPTransport {
    /// 64 KiB; also the limit on a gRPC response that is decoded.
    public static let maxResponseBytes = 64 << 10
    private let connection: HTTPConnection
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
        connection = try Self.connection(configuration, label: "accel-exporter.otlp")
    }

    /// A connection with the configuration's TLS files, checked now.
    static func tls(_ configuration: OTLPConfiguration) throws(OTLPConfigurationError) -> TLSMaterial {
        do {
            var certificate: TLSMaterial.Source?
            var key: TLSMaterial.Source?
            if let certificateFile = configuration.certificateFile, let keyFile = configuration.keyFile {
                certificate = .file(certificateFile)
                key = .file(keyFile)
            }
            return try TLSMaterial(ca: configuration.caFile.map { .file($0) }, certificate: certificate, key: key,
                                   insecureSkipVerify: configuration.insecureSkipVerify)
        } catch {
            throw OTLPConfigurationError("the OTLP TLS files do not load: \(error.message)")
        }
    }

    private static func connection(_ configuration: OTLPConfiguration, label: String) throws(OTLPConfigurationError) -> HTTPConnection {
        do {
            return try HTTPConnection(tls: try tls(configuration), proxy: configuration.proxy, label: label)
        } catch let error as OTLPConfigurationError {
            throw error
        } catch {
            throw OTLPConfigurationError("the OTLP transport does not start: \(error)")
        }
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
        var sent = [("Content-Type", "application/x-protobuf"), ("User-Agent", "accel-exporter")]
        if compressed { sent.append(("Content-Encoding", "gzip")) }
        sent += headers
        let request = HTTPRequest(
            method: "POST", url: url, headers: sent, body: body, timeout: timeoutSeconds, connectTimeout: timeoutSeconds,
            maxResponseBytes: Self.maxResponseBytes, version: .http1)
        // A 2xx body is kept up to the limit and otherwise only not decoded; an error answer's body is not needed.
        let kept = KeptBody()
        do {
            let response = try connection.perform(request) { chunk in
                if kept.whole, chunk.count <= Self.maxResponseBytes - kept.bytes.count {
                    kept.bytes += chunk
                } else {
                    kept.whole = false
                }
                return true
            }
            return Self.outcome(status: response.status, retryAfter: response.header("Retry-After"), body: kept.whole ? kept.bytes : nil)
        } catch {
            return .retryable(reason: error.kind == .timeout ? "timeout" : error.message, retryAfter: nil)
        }
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

    /// Stops an attempt under way (within about a second); the connection closes when the transport goes.
    public func shutdown() {
        connection.cancel()
    }
}

private final class KeptBody {
    var bytes: [UInt8] = []
    var whole = true
}
