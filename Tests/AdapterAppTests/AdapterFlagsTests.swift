import AdapterApp
import AdapterSources
import ArgumentParser
import CurlHTTP
import LineLogging
import Logging
import Testing

/// Flags → configuration, in process: the adapter's option mapping and every refusal, without starting anything.
@Suite struct AdapterFlagsTests {
    static func configuration(_ arguments: [String], environment: [String: String] = [:]) throws -> AdapterConfiguration {
        try AdapterFlags.parse(arguments).configuration(environment: environment)
    }

    /// The message of the `ValidationError` the arguments give.
    static func refusal(_ arguments: [String], environment: [String: String] = [:]) -> String? {
        do {
            _ = try configuration(arguments, environment: environment)
            return nil
        } catch let error as ValidationError {
            return error.message
        } catch {
            return "\(error)"
        }
    }

    @Test func exportersByDefaultWithTheirDefaults() throws {
        let config = try Self.configuration(["--exporters.targets", "10.0.0.1:9445,10.0.0.2:9445"])
        guard case .exporters(let settings, let targets, let service) = config.source else {
            Issue.record("not the exporters source")
            return
        }
        #expect(targets.map(\.address) == ["10.0.0.1:9445", "10.0.0.2:9445"])
        #expect(service == nil)
        #expect(settings.scheme == "http" && settings.path == "/metrics")
        #expect(settings.intervalSeconds == 1 && settings.timeoutSeconds == 2 && settings.concurrency == 64)
        #expect(config.resolutionSeconds == 1)
        #expect(config.maxAgeSeconds == 10)
        #expect(config.delegatedAuthorization)
        #expect(config.logLevel == .info)
        #expect(config.sourceName == "exporters")
    }

    @Test func exporterSettingsFollowTheirFlags() throws {
        let config = try Self.configuration([
            "--exporters.service", "monitoring/accel-exporter", "--exporters.scheme", "https", "--exporters.path", "/m",
            "--exporters.timeout", "500ms", "--exporters.concurrency", "8", "--exporters.ca-file", "/ca.pem",
            "--exporters.cert-file", "/c.pem", "--exporters.key-file", "/k.pem", "--metric-resolution", "3s",
            "--authorization-mode", "AlwaysAllow", "--log.level", "debug", "--log.format", "json",
        ])
        guard case .exporters(let settings, let targets, let service) = config.source else {
            Issue.record("not the exporters source")
            return
        }
        #expect(targets.isEmpty)
        #expect(service?.namespace == "monitoring" && service?.name == "accel-exporter")
        #expect(settings.scheme == "https" && settings.path == "/m" && settings.timeoutSeconds == 0.5 && settings.concurrency == 8)
        #expect(settings.caFile == "/ca.pem" && settings.certFile == "/c.pem" && settings.keyFile == "/k.pem")
        #expect(settings.intervalSeconds == 3)
        // Five resolutions, at least 10 s.
        #expect(config.maxAgeSeconds == 15)
        #expect(!config.delegatedAuthorization)
        #expect(config.logLevel == .debug && config.logFormat == .json)
    }

    @Test func prometheusHasItsOwnDefaults() throws {
        let config = try Self.configuration([
            "--source", "prometheus", "--prometheus.url", "http://prometheus:9090", "--prometheus.series-selector", "{job=\"accel\"}",
        ])
        guard case .prometheus(let settings) = config.source else {
            Issue.record("not the Prometheus source")
            return
        }
        #expect(settings.url == "http://prometheus:9090")
        #expect(settings.seriesSelector == "{job=\"accel\"}")
        #expect(settings.intervalSeconds == 5)
        #expect(config.resolutionSeconds == 5 && config.maxAgeSeconds == 120)
        #expect(config.sourceName == "prometheus")
        #expect(try Self.configuration(["--source", "prometheus", "--prometheus.url", "http://p", "--metrics-max-age", "1m"]).maxAgeSeconds == 60)
    }

    /// Go's proxy variables reach the Prometheus source (the exporters, on pod IPs, are always scraped directly).
    @Test func prometheusBehindAProxy() throws {
        let config = try Self.configuration(
            ["--source", "prometheus", "--prometheus.url", "https://mimir.example/prometheus"],
            environment: ["HTTPS_PROXY": "proxy.corp:3128", "NO_PROXY": "prometheus.monitoring.svc"])
        guard case .prometheus(let settings) = config.source else {
            Issue.record("not the Prometheus source")
            return
        }
        #expect(settings.proxy.route(for: settings.url) == "http://proxy.corp:3128")
        #expect(settings.proxy.route(for: "http://prometheus.monitoring.svc:9090") == nil)
        let refusal = Self.refusal(["--source", "prometheus", "--prometheus.url", "http://p"], environment: ["HTTP_PROXY": "ftp://proxy.corp"])
        #expect(refusal?.contains("HTTP_PROXY") == true, "\(refusal ?? "accepted")")
    }

    @Test(arguments: [
        (["--source", "graphite"], "--source must be exporters or prometheus"),
        (["--source", "prometheus"], "needs --prometheus.url"),
        ([], "give the exporters"),
        (["--exporters.service", "just-a-name"], "--exporters.service must be namespace/name"),
        (["--exporters.service", "/name"], "--exporters.service must be namespace/name"),
        (["--exporters.targets", "a:1", "--exporters.scheme", "ftp"], "--exporters.scheme must be http or https"),
        (["--exporters.targets", "a:1", "--exporters.path", "metrics"], "--exporters.path must start with /"),
        (["--exporters.targets", "a:1", "--exporters.concurrency", "0"], "--exporters.concurrency must be positive"),
        (["--exporters.targets", "a:1", "--exporters.cert-file", "/c.pem"], "go together"),
        (["--exporters.targets", "a:1", "--exporters.timeout", "soon"], "--exporters.timeout"),
        (["--exporters.targets", "a:1", "--metric-resolution", "0s"], "--metric-resolution"),
        (["--exporters.targets", "a:1", "--authorization-mode", "RBAC"], "--authorization-mode must be Delegated or AlwaysAllow"),
        (["--exporters.targets", "a:1", "--tls-cert-file", "/c.pem"], "--tls-cert-file and --tls-private-key-file go together"),
        (["--exporters.targets", "a:1", "--log.format", "xml"], "--log.format must be logfmt or json"),
        (["--exporters.targets", "a:1", "--log.level", "loud"], "loud"),
    ])
    func mistakesAreRefusedNamingTheFlag(arguments: [String], expected: String) {
        let message = Self.refusal(arguments)
        #expect(message?.contains(expected) == true, "\(arguments): \(message ?? "accepted")")
    }
}
