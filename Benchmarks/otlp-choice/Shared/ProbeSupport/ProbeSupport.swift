#if canImport(Glibc)
import Glibc
#endif
public import Exposition

/// What both probes share, so that they differ only in how the node's values reach the receiver: the flags, the
/// node (a committed exposition, parsed once), each tick's values, and a one-second clock.
public struct ProbeOptions: Sendable {
    /// The OTLP/HTTP receiver's base URL; `/v1/metrics` is added by each probe's exporter.
    public var endpoint = "http://127.0.0.1:4318"
    /// The exposition that stands for the node (Tests/Fixtures/golden/nvml-h100x8.prom).
    public var fixture = ""
    /// No exporter at all: the same ticks, nothing pushed. Pushing minus idle is the push's own cost.
    public var idle = false
    /// gzip the pushed bodies (the generated probe only: swift-otel 1.6.0's OTLP/HTTP exporter sends them plain).
    public var gzip = true

    public static func parse(_ arguments: [String] = CommandLine.arguments) -> ProbeOptions {
        var options = ProbeOptions()
        var rest = arguments.dropFirst()[...]
        func value() -> String {
            guard let value = rest.popFirst() else { usage() }
            return value
        }
        while let flag = rest.popFirst() {
            switch flag {
            case "--endpoint": options.endpoint = value()
            case "--fixture": options.fixture = value()
            case "--idle": options.idle = true
            case "--no-gzip": options.gzip = false
            default: usage()
            }
        }
        if options.fixture.isEmpty { usage() }
        return options
    }

    static func usage() -> Never {
        print("usage: PROBE --fixture FILE.prom [--endpoint http://127.0.0.1:PORT] [--idle] [--no-gzip]")
        exit(2)
    }
}

public enum Node {
    /// The node's families, parsed from a Prometheus text exposition.
    public static func load(_ path: String) -> [MetricFamily] {
        guard let file = fopen(path, "rb") else { fail("cannot open \(path)") }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
            if n == 0 { break }
            bytes += chunk[..<n]
        }
        do { return try ExpositionParser.parse(bytes, format: .text) } catch { fail("\(path): \(error)") }
    }

    /// Tick `t`'s values: gauges alternate by one, counters grow by `t`. The same in both probes, so both push
    /// changing values and the swift-otel probe's counters really increment.
    public static func tick(_ families: [MetricFamily], _ t: Int) -> [MetricFamily] {
        families.map { family in
            var family = family
            for i in family.samples.indices {
                family.samples[i].value += family.kind == .counter ? Double(t) : Double(t % 2)
            }
            return family
        }
    }

    public static func series(_ families: [MetricFamily]) -> Int { families.reduce(0) { $0 + $1.samples.count } }

    /// Wall-clock seconds since the epoch (the points' time).
    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    public static func fail(_ message: String) -> Never {
        var line = "probe: \(message)\n"
        line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
        exit(1)
    }
}
