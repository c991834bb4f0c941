public import Accelerators
public import Exposition
public import HTTPServer
import Synchronization

/// One tick, rendered: the bytes a scrape hands out without touching devices.
///
/// The formats scrapers asked for lately (``FormatDemand``) are rendered when the tick is, and handed out without a
/// lock. A format nobody asked for lately is rendered on its first request, once per snapshot, from the same tick and
/// self-metrics, so both formats always carry the same values. gzip variants are made on first request and cached
/// (a scraper that does not accept gzip never pays for it).
public final class Snapshot: Sendable {
    /// The tick the bytes were rendered from (the landing page and the health checks read it).
    public let tick: Sampler.Tick
    /// The exporter's own families as they were at this tick (kept so a late render shows the same values).
    private let selfFamilies: [MetricFamily]
    /// Rendered with the tick; never written afterwards.
    private let aheadText: ResponseBody?
    private let aheadOpenMetrics: ResponseBody?
    private let demand: FormatDemand?
    private let late = Mutex<LateBodies>(LateBodies())

    private struct LateBodies {
        var text: ResponseBody?
        var openMetrics: ResponseBody?
        var gzipText: ResponseBody?
        var gzipOpenMetrics: ResponseBody?
    }

    /// Made by ``SnapshotRenderer``. `text` and `openMetrics`, when given, must be `tick` plus `selfFamilies` rendered
    /// in that format; a format not given is rendered on its first request. Requests are recorded in `demand`.
    public init(tick: Sampler.Tick, selfFamilies: [MetricFamily] = [], text: ResponseBody? = nil, openMetrics: ResponseBody? = nil,
                demand: FormatDemand? = nil) {
        self.tick = tick
        self.selfFamilies = selfFamilies
        self.aheadText = text
        self.aheadOpenMetrics = openMetrics
        self.demand = demand
    }

    /// The bytes to send for `format`, and whether they are gzip-compressed.
    ///
    /// A format rendered with the tick comes back without a lock. Otherwise the first request renders it under a
    /// lock, so concurrent scrapes wait for one render rather than each doing it; gzip works the same way. With
    /// `gzip`, the bytes are plain when zlib fails.
    public func body(_ format: ExpositionFormat, gzip: Bool) -> (bytes: ResponseBody, gzipped: Bool) {
        demand?.record(format)
        let ahead = format == .openMetrics ? aheadOpenMetrics : aheadText
        if let ahead, !gzip { return (ahead, false) }
        return late.withLock { late in
            let plain: ResponseBody
            if let ahead {
                plain = ahead
            } else if let rendered = format == .openMetrics ? late.openMetrics : late.text {
                plain = rendered
            } else {
                var families = Schema.families(for: tick.devices)
                families += tick.extraFamilies
                families += selfFamilies
                var buffer: [UInt8] = []
                plain = SnapshotRenderer.encode(families, format, into: &buffer)
                if format == .openMetrics { late.openMetrics = plain } else { late.text = plain }
            }
            guard gzip else { return (plain, false) }
            if let hit = format == .openMetrics ? late.gzipOpenMetrics : late.gzipText { return (hit, hit !== plain) }
            let compressed = plain.withUnsafeBytes { raw in (try? Gzip.compress(raw)).map(ResponseBody.init) } ?? plain
            if format == .openMetrics { late.gzipOpenMetrics = compressed } else { late.gzipText = compressed }
            return (compressed, compressed !== plain)
        }
    }

    /// Whether `format` was rendered with the tick rather than on request.
    public func renderedAhead(_ format: ExpositionFormat) -> Bool {
        (format == .openMetrics ? aheadOpenMetrics : aheadText) != nil
    }
}

/// Which formats scrapers asked for lately, so that a tick renders only those ahead of its scrapes.
///
/// A Prometheus target is scraped in one format (OpenMetrics by default), so rendering both every tick would spend
/// the CPU and hold the memory of a body nobody reads. A format asked for within `windowSeconds` is rendered with each
/// tick; one not asked for since is rendered on its next request (``Snapshot/body(_:gzip:)``). Lock-free: the HTTP
/// threads record, the sampler thread reads.
public final class FormatDemand: Sendable {
    /// Longer than any scrape interval in practical use (Prometheus' default is 1 minute), so a steady scraper's
    /// format stays rendered ahead.
    public static let defaultWindowSeconds = 900.0

    /// Monotonic nanoseconds of the last request, plus one; 0: never asked for.
    private let lastText = Atomic<UInt64>(0)
    private let lastOpenMetrics = Atomic<UInt64>(0)
    private let windowNanoseconds: UInt64

    /// - Parameter windowSeconds: how long after its last request a format is still rendered ahead (at least 1 s).
    public init(windowSeconds: Double = FormatDemand.defaultWindowSeconds) {
        windowNanoseconds = UInt64(max(1, min(windowSeconds, 86_400 * 365)) * 1e9)
    }

    /// A scrape asked for `format` at `now`.
    public func record(_ format: ExpositionFormat, at now: MonotonicInstant = .now()) {
        switch format {
        case .text: Self.advance(lastText, to: now.nanoseconds &+ 1)
        case .openMetrics: Self.advance(lastOpenMetrics, to: now.nanoseconds &+ 1)
        }
    }

    /// The formats to render ahead at `now`: those asked for within the window (none before the first scrape).
    public func ahead(at now: MonotonicInstant = .now()) -> [ExpositionFormat] {
        ExpositionFormat.allCases.filter { format in
            let stamp = switch format {
            case .text: lastText.load(ordering: .relaxed)
            case .openMetrics: lastOpenMetrics.load(ordering: .relaxed)
            }
            guard stamp != 0 else { return false }
            let last = stamp - 1
            return now.nanoseconds < last || now.nanoseconds - last <= windowNanoseconds
        }
    }

    /// Moves `slot` forward to `stamp`, never back: concurrent scrapes may record out of order. A stamp less than a
    /// second newer is not written, so scrapes at a high rate only read the shared word.
    private static func advance(_ slot: borrowing Atomic<UInt64>, to stamp: UInt64) {
        var seen = slot.load(ordering: .relaxed)
        while seen < stamp, stamp - seen >= 1_000_000_000 || seen == 0 {
            let (exchanged, original) = slot.compareExchange(expected: seen, desired: stamp, ordering: .relaxed)
            if exchanged { return }
            seen = original
        }
    }
}

/// Turns ticks into snapshots, reusing its encode buffer from tick to tick.
///
/// Used from the sampler thread only. `@unchecked Sendable`: the buffer is touched only inside `render`, which the
/// single sampler thread calls.
public final class SnapshotRenderer: @unchecked Sendable {
    private var buffer: [UInt8] = []
    private let selfMetrics: SelfMetrics
    /// What the scrapes asked for; every snapshot records into it.
    public let demand: FormatDemand

    /// `selfMetrics`' families are added to every snapshot; `demand` picks the formats rendered with each tick.
    public init(selfMetrics: SelfMetrics, demand: FormatDemand = FormatDemand()) {
        self.selfMetrics = selfMetrics
        self.demand = demand
    }

    /// The snapshot of `tick`, with the formats asked for lately already rendered.
    /// - Parameter also: given the families the snapshot was encoded from (the OTLP push reads the same values).
    public func render(_ tick: Sampler.Tick, also: (([MetricFamily]) -> Void)? = nil) -> Snapshot {
        let selfFamilies = selfMetrics.families(for: tick)
        let formats = demand.ahead()
        guard !formats.isEmpty || also != nil else {
            return Snapshot(tick: tick, selfFamilies: selfFamilies, demand: demand)
        }
        var families = Schema.families(for: tick.devices)
        families += tick.extraFamilies
        families += selfFamilies
        also?(families)
        let text = formats.contains(.text) ? Self.encode(families, .text, into: &buffer) : nil
        let openMetrics = formats.contains(.openMetrics) ? Self.encode(families, .openMetrics, into: &buffer) : nil
        return Snapshot(tick: tick, selfFamilies: selfFamilies, text: text, openMetrics: openMetrics, demand: demand)
    }

    /// `families` in `format`, encoded in `buffer` (emptied first, capacity kept) and copied out.
    static func encode(_ families: [MetricFamily], _ format: ExpositionFormat, into buffer: inout [UInt8]) -> ResponseBody {
        buffer.removeAll(keepingCapacity: true)
        ExpositionEncoder.encode(families, format: format, into: &buffer)
        return ResponseBody(buffer)
    }
}
