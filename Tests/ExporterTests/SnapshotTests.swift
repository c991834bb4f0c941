import Accelerators
@testable import Exporter
import Dispatch
import Exposition
import HTTPServer
import Synchronization
import Testing

/// Rendering a tick: the formats scrapers asked for lately are rendered with it, any other on its first request.
@Suite struct SnapshotTests {
    func tick(_ ids: [String] = ["a"]) -> Sampler.Tick {
        Sampler.Tick(devices: ids.map { device($0) }, extraFamilies: [], collectors: [], startedAt: .now(), durationSeconds: 0.001)
    }

    func string(_ body: ResponseBody) -> String { String(decoding: body.bytes, as: UTF8.self) }

    /// The value of the one sample named `name` (no labels) in a body.
    func value(_ name: String, in body: ResponseBody) -> String? {
        string(body).split(separator: "\n").first { $0.hasPrefix(name + " ") }.map { String($0.dropFirst(name.count + 1)) }
    }

    @Test func beforeAnyScrapeNothingIsRenderedAheadAndTheFirstRequestRendersOnce() throws {
        let renderer = SnapshotRenderer(selfMetrics: SelfMetrics())
        let snapshot = renderer.render(tick())
        #expect(!snapshot.renderedAhead(.text))
        #expect(!snapshot.renderedAhead(.openMetrics))
        let (text, textGzipped) = snapshot.body(.text, gzip: false)
        #expect(!textGzipped)
        #expect(string(text).contains("accelerator_utilization_ratio{accelerator=\"a\",vendor=\"amd\",model=\"MI300X\"} 0.5"))
        #expect(snapshot.body(.text, gzip: false).bytes === text, "rendered once per snapshot, then handed out")
        let openMetrics = snapshot.body(.openMetrics, gzip: false).bytes
        #expect(string(openMetrics).hasSuffix("# EOF\n"))
        #expect(!string(text).contains("# EOF"))
    }

    @Test func aFormatAskedForIsRenderedWithTheNextTicksAndTheOtherIsNot() throws {
        let renderer = SnapshotRenderer(selfMetrics: SelfMetrics())
        _ = renderer.render(tick()).body(.openMetrics, gzip: false)
        let next = renderer.render(tick(["a", "b"]))
        #expect(next.renderedAhead(.openMetrics))
        #expect(!next.renderedAhead(.text))
        let openMetrics = next.body(.openMetrics, gzip: false).bytes
        #expect(string(openMetrics).contains("accelerator=\"b\""))
        #expect(next.body(.openMetrics, gzip: false).bytes === openMetrics)
        // The text rendered late shows the same tick and the same self-metrics as the OpenMetrics rendered ahead, though
        // the tick counter moved on in between.
        _ = renderer.render(tick())
        let text = next.body(.text, gzip: false).bytes
        #expect(string(text).contains("accelerator=\"b\""))
        let samples = try #require(value("accel_exporter_samples_total", in: openMetrics))
        #expect(value("accel_exporter_samples_total", in: text) == samples)
        #expect(samples == "2")
        // Both formats asked for: both rendered with the next tick.
        let both = renderer.render(tick())
        #expect(both.renderedAhead(.text) && both.renderedAhead(.openMetrics))
    }

    @Test func gzipIsMadeOnceForBothRenderedAheadAndLateFormats() {
        let renderer = SnapshotRenderer(selfMetrics: SelfMetrics())
        _ = renderer.render(tick()).body(.text, gzip: false)
        let snapshot = renderer.render(tick())
        for format in ExpositionFormat.allCases {
            let (first, gzipped) = snapshot.body(format, gzip: true)
            #expect(gzipped)
            #expect(first.bytes.prefix(2) == [0x1f, 0x8b])
            #expect(snapshot.body(format, gzip: true).bytes === first)
            #expect(snapshot.body(format, gzip: false).bytes !== first)
        }
    }

    @Test func concurrentFirstRequestsShareOneLateRender() {
        let renderer = SnapshotRenderer(selfMetrics: SelfMetrics())
        let snapshot = renderer.render(tick((0..<64).map { "gpu\($0)" }))
        let bodies = Mutex<[ObjectIdentifier]>([])
        DispatchQueue.concurrentPerform(iterations: 32) { _ in
            let body = snapshot.body(.text, gzip: false).bytes
            bodies.withLock { $0.append(ObjectIdentifier(body)) }
        }
        let seen = bodies.withLock { $0 }
        #expect(seen.count == 32)
        #expect(Set(seen).count == 1)
    }

    @Test func demandLastsItsWindowAndNeverMovesBack() {
        let demand = FormatDemand(windowSeconds: 60)
        let start = MonotonicInstant(nanoseconds: 1_000_000_000_000)
        func at(_ seconds: UInt64) -> MonotonicInstant { MonotonicInstant(nanoseconds: start.nanoseconds + seconds * 1_000_000_000) }
        #expect(demand.ahead(at: start).isEmpty)
        demand.record(.text, at: at(10))
        #expect(demand.ahead(at: at(10)) == [.text])
        #expect(demand.ahead(at: at(70)) == [.text])
        #expect(demand.ahead(at: at(71)).isEmpty)
        // A scrape recorded late with an earlier instant does not shorten the window.
        demand.record(.openMetrics, at: at(100))
        demand.record(.openMetrics, at: at(50))
        #expect(demand.ahead(at: at(150)) == [.openMetrics])
        #expect(demand.ahead(at: at(161)).isEmpty)
        // An instant before the last request (another thread's clock read) counts as within the window.
        #expect(demand.ahead(at: at(99)) == [.openMetrics])
        // Requests less than a second apart leave the first stamp (scrapes at a high rate only read it): the window
        // is precise to a second.
        demand.record(.text, at: at(200))
        demand.record(.text, at: MonotonicInstant(nanoseconds: at(200).nanoseconds + 900_000_000))
        #expect(demand.ahead(at: MonotonicInstant(nanoseconds: at(260).nanoseconds + 500_000_000)) == [])
        demand.record(.text, at: at(201))
        #expect(demand.ahead(at: MonotonicInstant(nanoseconds: at(260).nanoseconds + 500_000_000)) == [.text])
    }
}
