import ConfigYAML
public import CurlHTTP
/// What `--otlp.*` sets: where the pushes go, how, and how much may wait.
public struct OTLPConfiguration: Sendable, Equatable {
    /// `--otlp.protocol`; the raw values are the flag's spelling, OpenTelemetry's.
    public enum WireProtocol: String, Sendable, Equatable, CaseIterable {
        /// POST `<endpoint>/v1/metrics`, `application/x-protobuf`.
        case httpProtobuf = "http/protobuf"
        /// `opentelemetry.proto.collector.metrics.v1.MetricsService/Export` over HTTP/2.
        case grpc
    }

    /// `--otlp.endpoint`: for HTTP the base URL (`http://collector:4318`; `/v1/metrics` is added unless the path
    /// already ends with it), for gRPC `http(s)://host:port`.
    public var endpoint: String
    /// `--otlp.protocol`.
    public var wireProtocol: WireProtocol = .httpProtobuf
    /// `--otlp.interval`: seconds between pushes of the latest tick.
    public var intervalSeconds = 10.0
    /// `--otlp.timeout`: one export attempt's deadline, connection included.
    public var timeoutSeconds = 10.0
    /// `--otlp.header` and `$OTEL_EXPORTER_OTLP_HEADERS` (`Authorization=Bearer …`).
    public var headers: [(String, String)] = []
    /// `--otlp.compression gzip|none`.
    public var gzip = true
    /// `--otlp.tls.ca-file`: the collector's CA (PEM); nil: the system's trust store.
    public var caFile: String?
    /// `--otlp.tls.cert-file` and `--otlp.tls.key-file`: a client certificate, for collectors that require one.
    public var certificateFile: String?
    /// The client certificate's key (PEM); set together with ``certificateFile``.
    public var keyFile: String?
    /// `--otlp.tls.insecure-skip-verify`: accept any server certificate (tests, never production).
    public var insecureSkipVerify = false
    /// `--otlp.queue-size`: encoded pushes that may wait while the collector fails; the oldest goes first.
    public var queueBatches = 6
    /// Bytes the waiting pushes may hold together (a node's push is tens of KiB; the newest is kept even if larger).
    public var queueBytes = 1 << 20
    /// Retry backoff: doubles from `initialBackoffSeconds` to `maxBackoffSeconds`, with jitter; a `Retry-After` (or
    /// gRPC's `RetryInfo`-less UNAVAILABLE) waits at most `maxBackoffSeconds`.
    public var initialBackoffSeconds = 1.0
    /// The longest wait between retries; see ``initialBackoffSeconds``.
    public var maxBackoffSeconds = 30.0
    /// Extra resource attributes (`--otlp.resource-attribute`, `$OTEL_RESOURCE_ATTRIBUTES`).
    public var resourceAttributes: [(String, String)] = []
    /// `$HTTPS_PROXY`, `$HTTP_PROXY` and `$NO_PROXY`, as the OpenTelemetry Go SDK reads them: OTLP/HTTP takes the
    /// endpoint scheme's proxy, OTLP/gRPC `HTTPS_PROXY` in a tunnel; loopback and `NO_PROXY`'s hosts go directly.
    public var proxy: HTTPProxy = .direct

    /// Defaults everywhere else, nothing checked; the flags go through `make(endpoint:…)`, which checks them.
    public init(endpoint: String) {
        self.endpoint = endpoint
    }

    /// Field by field, headers and resource attributes in order (tuples are not `Equatable`).
    public static func == (a: OTLPConfiguration, b: OTLPConfiguration) -> Bool {
        a.endpoint == b.endpoint && a.wireProtocol == b.wireProtocol && a.intervalSeconds == b.intervalSeconds
            && a.timeoutSeconds == b.timeoutSeconds && a.headers.elementsEqual(b.headers, by: ==) && a.gzip == b.gzip
            && a.caFile == b.caFile && a.certificateFile == b.certificateFile && a.keyFile == b.keyFile
            && a.insecureSkipVerify == b.insecureSkipVerify && a.queueBatches == b.queueBatches && a.queueBytes == b.queueBytes
            && a.initialBackoffSeconds == b.initialBackoffSeconds && a.maxBackoffSeconds == b.maxBackoffSeconds
            && a.resourceAttributes.elementsEqual(b.resourceAttributes, by: ==) && a.proxy == b.proxy
    }

    /// `k=v,k2=v2` as the OpenTelemetry environment variables write headers and resource attributes: values are
    /// percent-decoded, blanks around keys and values dropped. A pair without `=` or with an empty key is an error.
    public static func parsePairs(_ text: String) throws(OTLPConfigurationError) -> [(String, String)] {
        var out: [(String, String)] = []
        for item in text.split(separator: ",", omittingEmptySubsequences: true) {
            guard let eq = item.firstIndex(of: "=") else { throw OTLPConfigurationError("\"\(item)\" is not key=value") }
            let key = item[..<eq].trimmingBlanks
            let value = PercentEncoding.decode(String(item[item.index(after: eq)...].trimmingBlanks))
            guard !key.isEmpty, let value else { throw OTLPConfigurationError("\"\(item)\" is not key=value") }
            out.append((String(key), value))
        }
        return out
    }

}

/// A flag, environment variable or TLS file that does not make a usable OTLP configuration, or a transport that does
/// not start.
public struct OTLPConfigurationError: Error, Sendable, CustomStringConvertible {
    /// A sentence naming the flag, variable or file at fault, shown to the operator as it is.
    public var description: String
    /// Takes the finished sentence; nothing is added to it.
    public init(_ description: String) { self.description = description }
}

extension Substring {
    fileprivate var trimmingBlanks: Substring {
        var s = self
        while s.first == " " || s.first == "\t" { s.removeFirst() }
        while s.last == " " || s.last == "\t" { s.removeLast() }
        return s
    }
}

extension OTLPConfiguration {
    /// The configuration `--otlp.*` flags describe, with the OpenTelemetry environment variables an operator sets
    /// from a Secret: `OTEL_EXPORTER_OTLP_HEADERS` and `OTEL_EXPORTER_OTLP_METRICS_HEADERS` (added after the
    /// flags' headers), `OTEL_RESOURCE_ATTRIBUTES` (before the flags' attributes, which win); and the proxy
    /// variables (``proxy``).
    public static func make(
        endpoint: String, wireProtocol: String, intervalSeconds: Double, timeoutSeconds: Double, headers: [String],
        compression: String, caFile: String?, certificateFile: String?, keyFile: String?, insecureSkipVerify: Bool,
        queueBatches: Int, resourceAttributes: [String], environment: [String: String]
    ) throws(OTLPConfigurationError) -> OTLPConfiguration {
        var config = OTLPConfiguration(endpoint: endpoint)
        guard let wire = WireProtocol(rawValue: wireProtocol) else {
            throw OTLPConfigurationError("--otlp.protocol: \"\(wireProtocol)\" is neither http/protobuf nor grpc")
        }
        config.wireProtocol = wire
        switch wire {
        case .httpProtobuf: _ = try HTTPTransport.metricsURL(endpoint)
        case .grpc:
            guard endpoint.hasPrefix("http://") || endpoint.hasPrefix("https://") else {
                throw OTLPConfigurationError("--otlp.endpoint \"\(endpoint)\": gRPC takes http://host:port or https://host:port")
            }
        }
        guard intervalSeconds >= 0.1 else { throw OTLPConfigurationError("--otlp.interval must be at least 100ms") }
        config.intervalSeconds = intervalSeconds
        guard timeoutSeconds > 0 else { throw OTLPConfigurationError("--otlp.timeout must be positive") }
        config.timeoutSeconds = timeoutSeconds
        for header in headers {
            let pairs = try parsePairs(header)
            guard pairs.count == 1 else { throw OTLPConfigurationError("--otlp.header takes one name=value, got \"\(header)\"") }
            config.headers += pairs
        }
        for name in ["OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_METRICS_HEADERS"] {
            if let text = environment[name], !text.isEmpty {
                do { config.headers += try parsePairs(text) } catch { throw OTLPConfigurationError("$\(name): \(error)") }
            }
        }
        for (name, _) in config.headers where !name.utf8.allSatisfy({ $0 > 32 && $0 < 127 && $0 != UInt8(ascii: ":") }) {
            throw OTLPConfigurationError("header name \"\(name)\" is not a token")
        }
        switch compression {
        case "gzip": config.gzip = true
        case "none": config.gzip = false
        default: throw OTLPConfigurationError("--otlp.compression: \"\(compression)\" is neither gzip nor none")
        }
        guard (certificateFile == nil) == (keyFile == nil) else {
            throw OTLPConfigurationError("--otlp.tls.cert-file and --otlp.tls.key-file go together")
        }
        config.caFile = caFile
        config.certificateFile = certificateFile
        config.keyFile = keyFile
        config.insecureSkipVerify = insecureSkipVerify
        guard queueBatches >= 1 && queueBatches <= 1000 else { throw OTLPConfigurationError("--otlp.queue-size must be 1 to 1000") }
        config.queueBatches = queueBatches
        if let text = environment["OTEL_RESOURCE_ATTRIBUTES"], !text.isEmpty {
            do { config.resourceAttributes += try parsePairs(text) } catch { throw OTLPConfigurationError("$OTEL_RESOURCE_ATTRIBUTES: \(error)") }
        }
        for attribute in resourceAttributes {
            let pairs = try parsePairs(attribute)
            config.resourceAttributes.removeAll { existing in pairs.contains { $0.0 == existing.0 } }
            config.resourceAttributes += pairs
        }
        config.proxy = .environment(environment)
        do {
            try config.proxy.validate()
        } catch {
            throw OTLPConfigurationError(error.message)
        }
        return config
    }
}
