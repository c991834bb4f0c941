public import AdapterSources
import ArgumentParser
import CommandLineSupport
import CurlHTTP
public import LineLogging
public import Logging

/// What the adapter's flags mean once checked: where its values come from, how fresh they must be, and how it logs.
/// ``AdapterFlags/configuration()`` makes it without starting anything, so tests check the option mapping in process.
public struct AdapterConfiguration: Sendable {
    /// Where the adapter reads values.
    public enum Source: Sendable {
        /// Scrape the exporters: these settings, these fixed targets, and/or the exporters' Service (namespace,
        /// name) followed through its EndpointSlices.
        case exporters(ScrapeSettings, targets: [ExporterTarget], service: (namespace: String, name: String)?)
        /// Query Prometheus.
        case prometheus(PrometheusSettings)
    }

    /// `--source` with its settings.
    public var source: Source
    /// `--metric-resolution` in seconds: 1 s for exporters, 5 s for Prometheus unless given.
    public var resolutionSeconds: Double
    /// `--metrics-max-age` in seconds: values older than this are not served (default 5 × the resolution, at least
    /// 10 s; 120 s with Prometheus).
    public var maxAgeSeconds: Double
    /// `--log.level`.
    public var logLevel: Logger.Level
    /// `--log.format`.
    public var logFormat: LineLogHandler.Format
    /// `--authorization-mode=Delegated` (SubjectAccessReview), else every authenticated request is allowed.
    public var delegatedAuthorization: Bool

    /// `--source` as given (`exporters` or `prometheus`), for the start line.
    public var sourceName: String {
        if case .prometheus = source { return "prometheus" }
        return "exporters"
    }
}

extension AdapterFlags {
    /// Checks the flags and maps them to an ``AdapterConfiguration``; a mistake throws a `ValidationError` that
    /// names the flag. Reads no file and opens no connection; of `environment`, only the proxy variables.
    public func configuration(environment: [String: String]) throws -> AdapterConfiguration {
        let level = try CommandLineSupport.parseLevel(logLevel)
        guard let format = LineLogHandler.Format(rawValue: logFormat) else {
            throw ValidationError("--log.format must be logfmt or json, not \"\(logFormat)\"")
        }
        guard source == "exporters" || source == "prometheus" else {
            throw ValidationError("--source must be exporters or prometheus, not \"\(source)\"")
        }
        let usePrometheus = source == "prometheus"
        let resolution = try CommandLineSupport.parseDuration(
            metricResolution ?? (usePrometheus ? "5s" : "1s"), flag: "--metric-resolution", minimum: 0.1)
        let maxAge = try metricsMaxAge.map { try CommandLineSupport.parseDuration($0, flag: "--metrics-max-age", minimum: 0.1) }
            ?? (usePrometheus ? 120 : max(10, 5 * resolution))

        let chosen: AdapterConfiguration.Source
        if usePrometheus {
            guard let prometheusURL else { throw ValidationError("--source=prometheus needs --prometheus.url") }
            var settings = PrometheusSettings(url: prometheusURL)
            settings.intervalSeconds = resolution
            settings.seriesSelector = prometheusSelector
            settings.caFile = prometheusCAFile
            settings.bearerTokenFile = prometheusTokenFile
            settings.proxy = .environment(environment)
            do {
                try settings.proxy.validate()
            } catch {
                throw ValidationError(error.message)
            }
            chosen = .prometheus(settings)
        } else {
            var settings = ScrapeSettings()
            guard exporterScheme == "http" || exporterScheme == "https" else {
                throw ValidationError("--exporters.scheme must be http or https, not \"\(exporterScheme)\"")
            }
            settings.scheme = exporterScheme
            guard exporterPath.hasPrefix("/") else { throw ValidationError("--exporters.path must start with /") }
            settings.path = exporterPath
            settings.intervalSeconds = resolution
            settings.timeoutSeconds = try CommandLineSupport.parseDuration(exporterTimeout, flag: "--exporters.timeout", minimum: 0.05)
            guard exporterConcurrency > 0 else { throw ValidationError("--exporters.concurrency must be positive") }
            settings.concurrency = exporterConcurrency
            settings.caFile = exporterCAFile
            guard (exporterCertFile == nil) == (exporterKeyFile == nil) else {
                throw ValidationError("--exporters.cert-file and --exporters.key-file go together")
            }
            settings.certFile = exporterCertFile
            settings.keyFile = exporterKeyFile
            settings.username = exporterUsername
            settings.passwordFile = exporterPasswordFile
            settings.bearerTokenFile = exporterTokenFile
            let targets: [ExporterTarget]
            do {
                targets = try ExporterTarget.parseList(exporterTargets ?? "")
            } catch {
                throw ValidationError("--exporters.targets: \(error)")
            }
            var service: (namespace: String, name: String)?
            if let exporterService {
                let parts = exporterService.split(separator: "/", omittingEmptySubsequences: false)
                guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                    throw ValidationError("--exporters.service must be namespace/name, not \"\(exporterService)\"")
                }
                service = (String(parts[0]), String(parts[1]))
            }
            guard !targets.isEmpty || service != nil else {
                throw ValidationError("give the exporters: --exporters.service=namespace/name or --exporters.targets=host:port,…")
            }
            chosen = .exporters(settings, targets: targets, service: service)
        }
        guard authorizationMode == "Delegated" || authorizationMode == "AlwaysAllow" else {
            throw ValidationError("--authorization-mode must be Delegated or AlwaysAllow, not \"\(authorizationMode)\"")
        }
        guard (tlsCertFile == nil) == (tlsKeyFile == nil) else {
            throw ValidationError("--tls-cert-file and --tls-private-key-file go together")
        }
        return AdapterConfiguration(
            source: chosen, resolutionSeconds: resolution, maxAgeSeconds: maxAge, logLevel: level, logFormat: format,
            delegatedAuthorization: authorizationMode == "Delegated")
    }
}
