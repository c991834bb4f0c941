import Accelerators
public import Exposition
public import HTTPServer
import Synchronization

/// One tick, rendered: the bytes a scrape hands out without touching devices or re-encoding.
///
/// Immutable once built; gzip variants are made on first request and cached (a scraper that does not accept gzip
/// never pays for it).
public final class Snapshot: Sendable {
    /// The tick the bytes were rendered from (the landing page and the health checks read it).
    public let tick: Sampler.Tick
    /// Prometheus text format 0.0.4.
    public let text: ResponseBody
    /// OpenMetrics 1.0.0 text, `# EOF` included.
    public let openMetrics: ResponseBody
    private let gzipCache = Mutex<(text: ResponseBody?, openMetrics: ResponseBody?)>((nil, nil))

    /// Made by ``SnapshotRenderer``; the bodies must be `tick` rendered in each format.
    public init(tick: Sampler.Tick, text: ResponseBody, openMetrics: ResponseBody) {
        self.tick = tick
        self.text = text
        self.openMetrics = openMetrics
    }

    /// The bytes to send; with `gzip`, compressed once per snapshot and format under a lock, so concurrent scrapes wait
    /// for one compression rather than each doing it. Plain bytes when zlib fails (see ``isCompressed(_:_:)``).
    public func body(_ format: ExpositionFormat, gzip: Bool) -> ResponseBody {
        let plain = format == .openMetrics ? openMetrics : text
        guard gzip else { return plain }
        return gzipCache.withLock { cache in
            if let hit = format == .openMetrics ? cache.openMetrics : cache.text { return hit }
            let compressed = plain.withUnsafeBytes { raw in (try? Gzip.compress(raw)).map(ResponseBody.init) } ?? plain
            if format == .openMetrics { cache.openMetrics = compressed } else { cache.text = compressed }
            return compressed
        }
    }

    /// Whether `body(_:gzip:)` really compressed (it falls back to plain bytes if zlib failed).
    public func isCompressed(_ body: ResponseBody, _ format: ExpositionFormat) -> Bool {
        body !== (format == .openMetrics ? openMetrics : text)
    }
}

/// Turns ticks into snapshots, reusing its encode buffer from tick to tick.
///
/// Used from the sampler thread only. `@unchecked Sendable`: the buffer is touched only inside `render`, which the
/// single sampler thread calls.
public final class SnapshotRenderer: @unchecked Sendable {
    private var buffer: [UInt8] = []
    private let selfMetrics: SelfMetrics

    /// `selfMetrics`' families are added to every snapshot.
    public init(selfMetrics: SelfMetrics) {
        self.selfMetrics = selfMetrics
    }

    /// - Parameter also: given the families the snapshot was encoded from (the OTLP push reads the same values).
    public func render(_ tick: Sampler.Tick, also: (([MetricFamily]) -> Void)? = nil) -> Snapshot {
        var families = Schema.families(for: tick.devices)
        families += tick.extraFamilies
        families += selfMetrics.families(for: tick)
        also?(families)
        buffer.removeAll(keepingCapacity: true)
        ExpositionEncoder.encode(families, format: .text, into: &buffer)
        let text = ResponseBody(buffer)
        buffer.removeAll(keepingCapacity: true)
        ExpositionEncoder.encode(families, format: .openMetrics, into: &buffer)
        let openMetrics = ResponseBody(buffer)
        return Snapshot(tick: tick, text: text, openMetrics: openMetrics)
    }
}
