/// Turns counters into per-second rates at ingest time: for each counter family a metric reads as
/// `<family>:rate`, the store keeps a short history per target and adds a `<family>:rate` series beside the
/// counter, so rates are evaluated like any gauge. Counter resets (a value going down: a restarted server) count
/// from zero, as Prometheus' `rate()` does.
package struct RateTracker {
    /// Put after a counter family's name to read its per-second rate.
    package static let suffix = ":rate"

    private struct Snapshot {
        var time: Double
        /// series key → value.
        var values: [String: Double]
    }

    let windowSeconds: Double
    /// target → snapshots, oldest first.
    private var history: [String: [Snapshot]] = [:]

    /// `windowSeconds`: how far back a rate may reach for its earlier sample; the store passes its rate window.
    package init(windowSeconds: Double) {
        self.windowSeconds = windowSeconds
    }

    /// The counter families behind `:rate` series that `families` asks for.
    static func counters(in families: Set<String>) -> Set<String> {
        Set(families.filter { $0.hasSuffix(suffix) }.map { String($0.dropLast(suffix.count)) })
    }

    /// Drops `target`'s history, when the store drops the target.
    package mutating func forget(target: String) {
        history[target] = nil
    }

    /// Adds `:rate` series for `counters` to `data` (when two samples of the series lie within the window).
    package mutating func apply(to data: inout TargetData, counters: Set<String>) {
        guard !counters.isEmpty else { return }
        var current: [String: Double] = [:]
        func key(_ family: String, _ point: SeriesPoint) -> String {
            family + "{" + point.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",") + "}"
        }
        for (_, families) in data.podSeries {
            for family in counters { for point in families[family] ?? [] { current[key(family, point)] = point.value } }
        }
        for (_, families) in data.deviceSeries {
            for family in counters { for point in families[family] ?? [] { current[key(family, point)] = point.value } }
        }
        var snapshots = history[data.target] ?? []
        // The same sample seen again (Prometheus not having scraped anew) adds nothing.
        if let last = snapshots.last, last.time >= data.sampleTime {
            if last.time > data.sampleTime { snapshots = [] }  // time went backwards: start over
        } else {
            snapshots.append(Snapshot(time: data.sampleTime, values: current))
        }
        snapshots.removeAll { $0.time < data.sampleTime - windowSeconds }
        history[data.target] = snapshots
        guard snapshots.count >= 2 else { return }
        /// Increase over the series' own first and last sample in the window.
        func rate(_ seriesKey: String) -> Double? {
            var increase = 0.0
            var previous: Double?
            var firstTime: Double?
            var lastTime = 0.0
            for snapshot in snapshots {
                guard let value = snapshot.values[seriesKey] else { continue }
                if let previous { increase += value >= previous ? value - previous : value }
                if firstTime == nil { firstTime = snapshot.time }
                lastTime = snapshot.time
                previous = value
            }
            guard let firstTime, lastTime > firstTime else { return nil }
            return increase / (lastTime - firstTime)
        }
        for (pod, families) in data.podSeries {
            for family in counters {
                let points = (families[family] ?? []).compactMap { point -> SeriesPoint? in
                    rate(key(family, point)).map { SeriesPoint(labels: point.labels, value: $0) }
                }
                if !points.isEmpty { data.podSeries[pod]?[family + Self.suffix] = points }
            }
        }
        for (accelerator, families) in data.deviceSeries {
            for family in counters {
                let points = (families[family] ?? []).compactMap { point -> SeriesPoint? in
                    rate(key(family, point)).map { SeriesPoint(labels: point.labels, value: $0) }
                }
                if !points.isEmpty { data.deviceSeries[accelerator]?[family + Self.suffix] = points }
            }
        }
    }
}
