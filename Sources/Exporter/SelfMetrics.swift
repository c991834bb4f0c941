import Accelerators
public import Exposition
import Synchronization
import MetricSchema
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The exporter's own metrics: build info, per-collector success and duration, scrape counts, process figures.
///
/// Scrape counters are atomics bumped by the HTTP threads; they are read when a tick renders, so the exposed
/// count lags by at most one interval (the scrape path never renders).
public final class SelfMetrics: Sendable {
    /// `accel_exporter_build_info{version}`, the landing page's title and OTLP's `service.version`.
    public static let version = "0.1.0"

    private let scrapesText = Atomic<Int>(0)
    private let scrapesOpenMetrics = Atomic<Int>(0)
    private let ticks = Atomic<Int>(0)
    private let startTimeSeconds: Double

    /// Records the process start time (wall clock) for `process_start_time_seconds`.
    public init() {
        startTimeSeconds = Double(wallClockMilliseconds()) / 1000
    }

    /// Counts one scrape of `/metrics` in `format`; called by the HTTP threads, lock-free.
    public func recordScrape(_ format: ExpositionFormat) {
        switch format {
        case .text: scrapesText.add(1, ordering: .relaxed)
        case .openMetrics: scrapesOpenMetrics.add(1, ordering: .relaxed)
        }
    }

    func families(for tick: Sampler.Tick) -> [MetricFamily] {
        let tickNumber = ticks.add(1, ordering: .relaxed).newValue
        var out: [MetricFamily] = [
            F.build.family([Sample(labels: [Label("version", Self.version)], value: 1)]),
            F.collectorSuccess.family(tick.collectors.map { Sample(labels: [Label("collector", $0.name)], value: $0.success ? 1 : 0) }),
            F.collectorDuration.family(tick.collectors.map { Sample(labels: [Label("collector", $0.name)], value: $0.durationSeconds) }),
            F.sampleDuration.family([Sample(labels: [], value: tick.durationSeconds)]),
            F.lastSampleTimestamp.family([Sample(labels: [], value: tick.wallClockSeconds)]),
            F.samples.family([Sample(labels: [], value: Double(tickNumber))]),
            F.scrapes.family([
                            Sample(labels: [Label("format", "openmetrics")], value: Double(scrapesOpenMetrics.load(ordering: .relaxed))),
                            Sample(labels: [Label("format", "text")], value: Double(scrapesText.load(ordering: .relaxed))),
                         ]),
            Families.Process.startTime.family([Sample(labels: [], value: startTimeSeconds)]),
        ]
        out += ProcessStats.read()
        return out
    }
}

private typealias F = Families.Exporter

/// `process_*` figures from the exporter's own /proc/self (not `--path.procfs`, which may be the host's).
enum ProcessStats {
    static func read() -> [MetricFamily] {
        var out: [MetricFamily] = []
        var usage = rusage()
        if getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage) == 0 {
            let cpu = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
                + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
            out.append(Families.Process.cpu.family([Sample(labels: [], value: cpu)]))
        }
        if let statm = try? FileRoot("/proc").readString("self/statm") {
            let fields = statm.split(separator: " ")
            if fields.count > 1, let pages = Double(fields[1]) {
                let rss = pages * Double(sysconf(Int32(_SC_PAGESIZE)))
                out.append(Families.Process.residentMemory.family([Sample(labels: [], value: rss)]))
            }
            if let pages = fields.first.flatMap({ Double($0) }) {
                out.append(Families.Process.virtualMemory.family([Sample(labels: [], value: pages * Double(sysconf(Int32(_SC_PAGESIZE))))]))
            }
        }
        if let fds = try? FileRoot("/proc").list("self/fd") {
            out.append(Families.Process.openFDs.family([Sample(labels: [], value: Double(fds.count))]))
        }
        return out
    }
}
