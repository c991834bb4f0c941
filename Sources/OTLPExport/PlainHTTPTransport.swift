import OTLPProto
import ScrapeClient

/// OTLP/HTTP over plain `http://`: one blocking POST per attempt on the pusher's thread, through the same small client
/// that scrapes model servers. No event loop, no TLS library, no extra threads: the push costs the exporter little
/// memory (`https://` goes through ``HTTPTransport``).
public final class PlainHTTPTransport: OTLPTransport {
    private let url: ScrapeURL
    private let headers: [(String, String)]
    private let timeoutSeconds: Double

    public init(configuration: OTLPConfiguration) throws(OTLPConfigurationError) {
        let text = try HTTPTransport.metricsURL(configuration.endpoint)
        do {
            url = try ScrapeURL(parsing: text)
        } catch {
            throw OTLPConfigurationError("--otlp.endpoint \"\(configuration.endpoint)\": \(error)")
        }
        headers = configuration.headers
        timeoutSeconds = configuration.timeoutSeconds
    }

    public func export(_ body: [UInt8], compressed: Bool) -> ExportOutcome {
        var sent = [("Content-Type", "application/x-protobuf")]
        if compressed { sent.append(("Content-Encoding", "gzip")) }
        sent += headers
        do {
            let response = try ScrapeClient.post(url, body: body, headers: sent, timeoutSeconds: timeoutSeconds,
                                                 maxBytes: HTTPTransport.maxResponseBytes)
            return HTTPTransport.outcome(status: response.status, retryAfter: response.header("Retry-After"), body: response.body)
        } catch {
            return .retryable(reason: error.code == .timeout ? "timeout" : error.description, retryAfter: nil)
        }
    }

    public func shutdown() {}
}
