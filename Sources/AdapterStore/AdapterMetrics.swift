public import Exposition
import MetricSchema
import Synchronization

/// The adapter's own metrics, on its `/metrics`. Names are documented in docs/adapter.md (the dashboards use them).
public final class AdapterMetrics: Sendable {
    /// Request latency buckets in seconds: the HPA's calls are sub-millisecond here; the aggregator times out at 30 s.
    static let latencyBuckets: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]
    static let scrapeBuckets: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    private struct Histogram {
        var buckets: [UInt64]
        var count: UInt64 = 0
        var sum: Double = 0

        init(bounds: Int) { buckets = Array(repeating: 0, count: bounds) }

        mutating func observe(_ value: Double, bounds: [Double]) {
            for (index, bound) in bounds.enumerated() where value <= bound { buckets[index] += 1 }
            count += 1
            sum += value
        }
    }

    private struct State {
        /// (kind, code) → count and latency.
        var requests: [RequestKey: Histogram] = [:]
        /// result → count.
        var scrapes: [String: UInt64] = [:]
        var scrapeDuration = Histogram(bounds: AdapterMetrics.scrapeBuckets.count)
        var targetsUp = 0
        var targetsTotal = 0
        var achievedIntervalSeconds: Double = 0
        var configReloads: [String: UInt64] = [:]
        var configLastSuccess: Double = 0
        var authentications: [String: UInt64] = [:]
        var authorizations: [String: UInt64] = [:]
    }

    struct RequestKey: Hashable {
        var kind: String
        var code: Int
    }

    private let state = Mutex(State())
    private let startTime: Double

    /// `startTime` (Unix seconds) is served as `process_start_time_seconds`.
    public init(startTime: Double = unixTimeNow()) {
        self.startTime = startTime
    }

    /// One API request answered. `kind`: `discovery`, `custom`, `external`, `health`, `openapi`, `metrics`, `other`.
    public func observeRequest(kind: String, code: Int, seconds: Double) {
        state.withLock {
            $0.requests[RequestKey(kind: kind, code: code), default: Histogram(bounds: Self.latencyBuckets.count)]
                .observe(seconds, bounds: Self.latencyBuckets)
        }
    }

    /// One exporter scrape. `result`: `success`, `timeout`, `http_error`, `connect_error`, `parse_error`, `too_large`.
    public func observeScrape(result: String, seconds: Double) {
        state.withLock {
            $0.scrapes[result, default: 0] += 1
            $0.scrapeDuration.observe(seconds, bounds: Self.scrapeBuckets)
        }
    }

    /// The sources' figures after each round: targets whose last scrape succeeded, all targets, and the mean time
    /// between successive scrapes of a target, in seconds. The Prometheus source reports every instance as up.
    public func setTargets(up: Int, total: Int, achievedIntervalSeconds: Double) {
        state.withLock {
            $0.targetsUp = up
            $0.targetsTotal = total
            $0.achievedIntervalSeconds = achievedIntervalSeconds
        }
    }

    /// One `--metrics-config` load; a success also sets the last-success timestamp (Unix seconds) to `time`.
    public func observeConfigReload(success: Bool, at time: Double = unixTimeNow()) {
        state.withLock {
            $0.configReloads[success ? "success" : "failure", default: 0] += 1
            if success { $0.configLastSuccess = time }
        }
    }

    /// One request authenticated; `result`: `success`, `failure` or `error` (the review could not be made).
    public func observeAuthentication(result: String) {
        state.withLock { $0.authentications[result, default: 0] += 1 }
    }

    /// One request authorized; `result`: `allowed`, `denied` or `error`.
    public func observeAuthorization(result: String) {
        state.withLock { $0.authorizations[result, default: 0] += 1 }
    }

    /// Families for the exposition, store figures included.
    public func families(store: MetricStore) -> [MetricFamily] {
        let state = self.state.withLock { $0 }
        var out: [MetricFamily] = []

        var requestSamples: [Sample] = []
        for (key, histogram) in state.requests.sorted(by: { ($0.key.kind, $0.key.code) < ($1.key.kind, $1.key.code) }) {
            let labels = [Label("code", String(key.code)), Label("kind", key.kind)]
            requestSamples += Self.histogramSamples(histogram, bounds: Self.latencyBuckets, labels: labels)
        }
        out.append(
            MetricFamily(
                name: "accel_metrics_adapter_request_duration_seconds",
                help: "Time to answer API requests, by kind of request and status code.", kind: .histogram,
                unit: "seconds", samples: requestSamples))
        out.append(
            MetricFamily(
                name: "accel_metrics_adapter_scrapes", help: "Exporter scrapes by result.", kind: .counter,
                samples: state.scrapes.sorted { $0.key < $1.key }.map {
                    Sample(labels: [Label("result", $0.key)], value: Double($0.value))
                }))
        out.append(
            MetricFamily(
                name: "accel_metrics_adapter_scrape_duration_seconds", help: "Duration of exporter scrapes.",
                kind: .histogram, unit: "seconds",
                samples: Self.histogramSamples(state.scrapeDuration, bounds: Self.scrapeBuckets, labels: [])))
        out.append(
            MetricFamily(
                name: "accel_metrics_adapter_targets", help: "Exporter targets, by whether the last scrape succeeded.",
                kind: .gauge,
                samples: [
                    Sample(labels: [Label("state", "down")], value: Double(state.targetsTotal - state.targetsUp)),
                    Sample(labels: [Label("state", "up")], value: Double(state.targetsUp)),
                ]))
        out.append(
            MetricFamily(
                name: "accel_metrics_adapter_scrape_interval_seconds",
                help: "Mean time between two scrapes of the same exporter over the last round: the resolution reached.",
                kind: .gauge, unit: "seconds", samples: [Sample(labels: [], value: state.achievedIntervalSeconds)]))
        out.append(
            MetricFamily(
                name: "accel_metrics_adapter_store_targets", help: "Exporters with data in the store.", kind: .gauge,
                samples: [Sample(labels: [], value: Double(store.targetCount))]))
        out.append(
            MetricFamily(
                name: "accel_metrics_adapter_store_pods", help: "Pods with fresh data in the store.", kind: .gauge,
                samples: [Sample(labels: [], value: Double(store.pods(in: nil).count))]))
        out.append(
            MetricFamily(
                name: "accel_metrics_adapter_config_reloads", help: "Metrics configuration reloads by result.",
                kind: .counter,
                samples: state.configReloads.sorted { $0.key < $1.key }.map {
                    Sample(labels: [Label("result", $0.key)], value: Double($0.value))
                }))
        out.append(
            MetricFamily(
                name: "accel_metrics_adapter_config_last_reload_success_timestamp_seconds",
                help: "When the metrics configuration last loaded successfully.", kind: .gauge, unit: "seconds",
                samples: [Sample(labels: [], value: state.configLastSuccess)]))
        out.append(
            MetricFamily(
                name: "accel_metrics_adapter_authentications", help: "Request authentications by result.",
                kind: .counter,
                samples: state.authentications.sorted { $0.key < $1.key }.map {
                    Sample(labels: [Label("result", $0.key)], value: Double($0.value))
                }))
        out.append(
            MetricFamily(
                name: "accel_metrics_adapter_authorizations", help: "Request authorizations by result.",
                kind: .counter,
                samples: state.authorizations.sorted { $0.key < $1.key }.map {
                    Sample(labels: [Label("result", $0.key)], value: Double($0.value))
                }))
        out.append(
            Families.Process.startTime.family([Sample(labels: [], value: startTime)]))
        return out.filter { !$0.samples.isEmpty }
    }

    private static func histogramSamples(_ histogram: Histogram, bounds: [Double], labels: [Label]) -> [Sample] {
        var samples: [Sample] = []
        for (index, bound) in bounds.enumerated() {
            samples.append(
                Sample(
                    suffix: "_bucket", labels: labels + [Label("le", formatBound(bound))],
                    value: Double(histogram.buckets[index])))
        }
        samples.append(Sample(suffix: "_bucket", labels: labels + [Label("le", "+Inf")], value: Double(histogram.count)))
        samples.append(Sample(suffix: "_sum", labels: labels, value: histogram.sum))
        samples.append(Sample(suffix: "_count", labels: labels, value: Double(histogram.count)))
        return samples
    }

    private static func formatBound(_ bound: Double) -> String {
        bound == bound.rounded() ? "\(Int(bound)).0" : "\(bound)"
    }
}
