public import AdapterStore
import AsyncHTTPClient
import ConfigYAML
public import CurlHTTP
import Exposition
import Foundation
public import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPCompression
import NIOSSL
import Synchronization
import MetricSchema

/// How the Prometheus source reaches Prometheus (or Thanos Query, Mimir, VictoriaMetrics: the same HTTP API).
public struct PrometheusSettings: Sendable {
    /// Base URL, e.g. `http://prometheus.monitoring:9090` or `https://mimir/prometheus`.
    public var url: String
    /// How often the families are pulled.
    public var intervalSeconds: Double = 5
    public var timeoutSeconds: Double = 10
    /// Extra matchers added to every query, e.g. `job="accel-exporter"`, to pick this fleet's series.
    public var seriesSelector: String = ""
    /// The label that tells exporters apart (Prometheus' target label).
    public var instanceLabel: String = "instance"
    public var caFile: String?
    public var bearerTokenFile: String?
    public var maxBytes: Int = 256 << 20
    /// `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY`, read as Go reads them (``HTTPProxy``): the URL's scheme picks the
    /// proxy, and a loopback Prometheus or one `NO_PROXY` names is reached directly. An `http://` proxy carries the
    /// queries in a `CONNECT` tunnel, a `socks5://` one without credentials as SOCKS; an `https://` proxy is refused.
    public var proxy: HTTPProxy = .direct

    public init(url: String) {
        self.url = url
    }
}

/// The source for fleets that outgrow direct scraping: Prometheus scrapes the exporters; the adapter pulls the few
/// families its metrics read, one instant query per family with no per-pod matcher (so no giant `pod=~"a|b|…"`
/// regex, whatever the number of pods), rebuilds each exporter's data from the `instance` label, and answers
/// from the same store as the direct source. Both sources give the same answers for the same readings.
public final class PrometheusSource: Sendable {
    private let store: MetricStore
    private let catalog: MetricCatalog
    private let metrics: AdapterMetrics
    private let settings: PrometheusSettings
    private let logger: Logger
    private let client: HTTPClient
    private let state = Mutex(State())

    private struct State {
        var known: Set<String> = []
        var failing = false
        var task: Task<Void, Never>?
    }

    public init(
        store: MetricStore, catalog: MetricCatalog, metrics: AdapterMetrics, settings: PrometheusSettings, logger: Logger
    ) throws {
        guard settings.url.hasPrefix("http://") || settings.url.hasPrefix("https://") else {
            throw AdapterError(
                code: .invalidConfiguration, message: "--prometheus.url must start with http:// or https://")
        }
        self.store = store
        self.catalog = catalog
        self.metrics = metrics
        self.settings = settings
        self.logger = logger
        var configuration = HTTPClient.Configuration()
        var tls = TLSConfiguration.makeClientConfiguration()
        if let caFile = settings.caFile { tls.trustRoots = .file(caFile) }
        configuration.tlsConfiguration = tls
        configuration.decompression = .enabled(limit: .size(settings.maxBytes))
        if let through = settings.proxy.route(for: settings.url) {
            configuration.proxy = try Self.clientProxy(through)
            logger.info("Prometheus queries go through a proxy", metadata: ["proxy": "\(HTTPProxy.redacted(through))"])
        }
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// AsyncHTTPClient's form of a proxy URL: an HTTP proxy (its user information as basic authorization) or SOCKS 5.
    static func clientProxy(_ url: String) throws(AdapterError) -> HTTPClient.Configuration.Proxy {
        func refuse(_ why: String) -> AdapterError {
            AdapterError(code: .invalidConfiguration, message: "the proxy \(HTTPProxy.redacted(url)) for --prometheus.url: \(why)")
        }
        guard let endpoint = HTTPProxy.endpoint(url) else { throw refuse("not a URL with a host and a port") }
        switch endpoint.scheme {
        case "http":
            guard let userInfo = endpoint.userInfo else { return .server(host: endpoint.host, port: endpoint.port) }
            let parts = userInfo.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard let user = PercentEncoding.decode(parts[0]), let password = PercentEncoding.decode(parts.count > 1 ? parts[1] : "")
            else { throw refuse("its user information is not percent-encoded text") }
            return .server(host: endpoint.host, port: endpoint.port, authorization: .basic(username: user, password: password))
        case "socks5", "socks5h":
            guard endpoint.userInfo == nil else { throw refuse("AsyncHTTPClient cannot authenticate to a SOCKS proxy") }
            return .socksServer(host: endpoint.host, port: endpoint.port)
        default:
            throw refuse("AsyncHTTPClient speaks plain HTTP or SOCKS 5 to a proxy, not TLS")
        }
    }

    public func start() {
        state.withLock { state in
            guard state.task == nil else { return }
            state.task = Task { [self] in
                while !Task.isCancelled {
                    let started = monotonicSeconds()
                    await refresh()
                    let wait = settings.intervalSeconds - (monotonicSeconds() - started)
                    if wait > 0 { try? await Task.sleep(for: .milliseconds(Int64(wait * 1000))) }
                }
            }
        }
    }

    public func shutdown() async {
        let task = state.withLock { state in
            defer { state.task = nil }
            return state.task
        }
        task?.cancel()
        await task?.value
        try? await client.shutdown()
    }

    /// Pulls every family once and replaces the store's view. Public for tests.
    public func refresh() async {
        let started = monotonicSeconds()
        let families = catalog.families.filter { !$0.hasSuffix(RateTracker.suffix) }.union([
            TargetData.infoSeries, Families.Pod.allocated.name, TargetData.sampleTimestampFamily,
        ]).sorted()
        var perInstance: [String: [MetricFamily]] = [:]
        do {
            try await withThrowingTaskGroup(of: (String, [[String: String]], [Double]).self) { group in
                for family in families {
                    group.addTask { [self] in
                        let (labels, values) = try await query(family)
                        return (family, labels, values)
                    }
                }
                for try await (family, labelSets, values) in group {
                    var byInstance: [String: [Sample]] = [:]
                    for (labels, value) in zip(labelSets, values) {
                        let instance = labels[settings.instanceLabel] ?? ""
                        let kept = labels.filter { $0.key != "__name__" && $0.key != settings.instanceLabel && $0.key != "job" }
                        byInstance[instance, default: []].append(
                            Sample(labels: kept.map { Label($0.key, $0.value) }.sorted { $0.name < $1.name }, value: value))
                    }
                    for (instance, samples) in byInstance {
                        perInstance[instance, default: []].append(
                            MetricFamily(name: family, help: "", kind: .gauge, samples: samples))
                    }
                }
            }
        } catch {
            metrics.observeScrape(result: "prometheus_error", seconds: monotonicSeconds() - started)
            let wasFailing = state.withLock { state in
                defer { state.failing = true }
                return state.failing
            }
            if !wasFailing {
                logger.warning("Prometheus query failed", metadata: ["url": "\(settings.url)", "error": "\(error)"])
            }
            return
        }
        let now = unixTimeNow()
        let keep = catalog.families
        let counters = catalog.rateCounters
        for (instance, parsed) in perInstance {
            store.update(
                TargetData(target: instance, parsed: parsed, keeping: keep, scrapeTime: now, fallbackNode: nil),
                rateCounters: counters)
        }
        let gone: Set<String> = state.withLock { state in
            let current = Set(perInstance.keys)
            defer {
                state.known = current
                if state.failing { state.failing = false }
            }
            return state.known.subtracting(current)
        }
        for instance in gone { store.remove(target: instance) }
        metrics.observeScrape(result: "success", seconds: monotonicSeconds() - started)
        metrics.setTargets(up: perInstance.count, total: perInstance.count, achievedIntervalSeconds: settings.intervalSeconds)
    }

    /// The PromQL sent for one family: the family with the configured matchers, nothing per pod.
    func promQL(_ family: String) -> String {
        let selector = settings.seriesSelector.trimmingCharacters(in: .whitespaces)
        return selector.isEmpty ? family : "\(family){\(selector)}"
    }

    private struct QueryResponse: Decodable {
        struct Data: Decodable {
            struct Series: Decodable {
                var metric: [String: String]
                var value: [ValueField]
            }
            var resultType: String
            var result: [Series]
        }
        var status: String
        var data: Data?
        var error: String?
    }

    /// `[1700000000.123, "42"]`: a number then a string.
    private enum ValueField: Decodable {
        case number(Double)
        case text(String)
        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let number = try? container.decode(Double.self) {
                self = .number(number)
            } else {
                self = .text(try container.decode(String.self))
            }
        }
    }

    private func query(_ family: String) async throws -> ([[String: String]], [Double]) {
        var components = URLComponents(string: settings.url.hasSuffix("/") ? String(settings.url.dropLast()) : settings.url)
        components?.path += "/api/v1/query"
        components?.queryItems = [URLQueryItem(name: "query", value: promQL(family))]
        guard let url = components?.url?.absoluteString else {
            throw AdapterError(code: .invalidConfiguration, message: "cannot build a query URL from \(settings.url)")
        }
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Accept", value: "application/json")
        if let tokenFile = settings.bearerTokenFile {
            request.headers.add(name: "Authorization", value: "Bearer " + (try readSecretFile(tokenFile)))
        }
        let response = try await client.execute(request, timeout: .milliseconds(Int64(settings.timeoutSeconds * 1000)))
        let body = try await response.body.collect(upTo: settings.maxBytes)
        let decoded: QueryResponse
        do {
            decoded = try JSONDecoder().decode(QueryResponse.self, from: Data(body.readableBytesView))
        } catch {
            throw AdapterError(
                code: .backendFailed, message: "Prometheus answered HTTP \(response.status.code) with no query result")
        }
        guard decoded.status == "success", let data = decoded.data else {
            throw AdapterError(
                code: .backendFailed, message: "Prometheus query \(promQL(family)) failed: \(decoded.error ?? "unknown error")")
        }
        guard data.resultType == "vector" else {
            throw AdapterError(code: .backendFailed, message: "Prometheus answered a \(data.resultType), not a vector")
        }
        var labels: [[String: String]] = []
        var values: [Double] = []
        labels.reserveCapacity(data.result.count)
        for series in data.result {
            guard series.value.count == 2, case .text(let text) = series.value[1], let value = Double(text) else { continue }
            labels.append(series.metric)
            values.append(value)
        }
        return (labels, values)
    }
}
