import Accelerators
public import Exposition
import Synchronization
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
    public static let version = "0.1.0"

    private let scrapesText = Atomic<Int>(0)
    private let scrapesOpenMetrics = Atomic<Int>(0)
    private let ticks = Atomic<Int>(0)
    private let startTimeSeconds: Double

    public init() {
        startTimeSeconds = Double(wallClockMilliseconds()) / 1000
    }

    public func recordScrape(_ format: ExpositionFormat) {
        switch format {
        case .text: scrapesText.add(1, ordering: .relaxed)
        case .openMetrics: scrapesOpenMetrics.add(1, ordering: .relaxed)
        }
    }

    public var scrapeCount: Int { scrapesText.load(ordering: .relaxed) + scrapesOpenMetrics.load(ordering: .relaxed) }

    func families(for tick: Sampler.Tick) -> [MetricFamily] {
        let tickNumber = ticks.add(1, ordering: .relaxed).newValue
        var out: [MetricFamily] = [
            MetricFamily(name: "accel_exporter_build", help: "Build information of accel-exporter; value 1.", kind: .info,
                         samples: [Sample(labels: [Label("version", Self.version)], value: 1)]),
            MetricFamily(name: "accel_exporter_collector_success", help: "1 if the collector's last sample succeeded, else 0.", kind: .gauge,
                         samples: tick.collectors.map { Sample(labels: [Label("collector", $0.name)], value: $0.success ? 1 : 0) }),
            MetricFamily(name: "accel_exporter_collector_duration_seconds", help: "Time the collector's last sample took.", kind: .gauge, unit: "seconds",
                         samples: tick.collectors.map { Sample(labels: [Label("collector", $0.name)], value: $0.durationSeconds) }),
            MetricFamily(name: "accel_exporter_sample_duration_seconds", help: "Time the last sample tick took, all collectors together.", kind: .gauge, unit: "seconds",
                         samples: [Sample(labels: [], value: tick.durationSeconds)]),
            MetricFamily(name: "accel_exporter_last_sample_timestamp_seconds", help: "When the sample tick these values come from began, in seconds since the Unix epoch.", kind: .gauge, unit: "seconds",
                         samples: [Sample(labels: [], value: tick.wallClockSeconds)]),
            MetricFamily(name: "accel_exporter_samples", help: "Sample ticks completed since the exporter started.", kind: .counter,
                         samples: [Sample(labels: [], value: Double(tickNumber))]),
            MetricFamily(name: "accel_exporter_scrapes", help: "Scrapes of the metrics endpoint served, by format.", kind: .counter,
                         samples: [
                            Sample(labels: [Label("format", "openmetrics")], value: Double(scrapesOpenMetrics.load(ordering: .relaxed))),
                            Sample(labels: [Label("format", "text")], value: Double(scrapesText.load(ordering: .relaxed))),
                         ]),
            MetricFamily(name: "process_start_time_seconds", help: "Start time of the process since the Unix epoch.", kind: .gauge, unit: "seconds",
                         samples: [Sample(labels: [], value: startTimeSeconds)]),
        ]
        out += ProcessStats.read()
        return out
    }
}

/// `process_*` figures from the exporter's own /proc/self (not `--path.procfs`, which may be the host's).
enum ProcessStats {
    static func read() -> [MetricFamily] {
        var out: [MetricFamily] = []
        var usage = rusage()
        if getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage) == 0 {
            let cpu = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
                + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
            out.append(MetricFamily(name: "process_cpu_seconds", help: "User and system CPU time spent.", kind: .counter, unit: "seconds",
                                    samples: [Sample(labels: [], value: cpu)]))
        }
        if let statm = try? FileRoot("/proc").readString("self/statm") {
            let fields = statm.split(separator: " ")
            if fields.count > 1, let pages = Double(fields[1]) {
                let rss = pages * Double(sysconf(Int32(_SC_PAGESIZE)))
                out.append(MetricFamily(name: "process_resident_memory_bytes", help: "Resident memory size.", kind: .gauge, unit: "bytes",
                                        samples: [Sample(labels: [], value: rss)]))
            }
            if let pages = fields.first.flatMap({ Double($0) }) {
                out.append(MetricFamily(name: "process_virtual_memory_bytes", help: "Virtual memory size.", kind: .gauge, unit: "bytes",
                                        samples: [Sample(labels: [], value: pages * Double(sysconf(Int32(_SC_PAGESIZE))))]))
            }
        }
        if let fds = try? FileRoot("/proc").list("self/fd") {
            out.append(MetricFamily(name: "process_open_fds", help: "Open file descriptors.", kind: .gauge,
                                    samples: [Sample(labels: [], value: Double(fds.count))]))
        }
        return out
    }
}
