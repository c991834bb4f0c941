import AcceleratorTestSupport
import Accelerators
import Benchmark
import Exposition
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// The work behind one sample tick and one scrape on an 8-GPU node, piece by piece, and the renderer at 10k series.
///
/// The hwmon source needs libsensors under umockdev, so it is left out here; `compare-node-exporter.sh` measures the
/// whole exporter, hwmon included, end to end.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .cpuTotal, .mallocCountTotal, .peakMemoryResident],
        maxDuration: .seconds(3)
    )

    // Written to disk before each benchmark and removed after it, so `benchmark list` leaves nothing in /tmp.
    let node = EightGPUNode()
    Benchmark.setup = { node.load() }
    Benchmark.teardown = { node.unload() }

    // package-benchmark measures the whole closure, once per sample: anything not part of the measured work is set
    // up outside it (captured) or before `startMeasurement()`. The encode buffers live across samples and keep their
    // capacity, as SnapshotRenderer's buffer does from tick to tick, so the numbers are steady-state scrapes.

    Benchmark("amdgpu sample tick (8 GPUs)") { benchmark in
        let source = node.source!
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(source.sample(now: .now()))
        }
    }

    for (format, title) in [(ExpositionFormat.text, "text"), (.openMetrics, "OpenMetrics")] {
        var buffer: [UInt8] = []
        Benchmark("Render 8-GPU snapshot (\(title))") { benchmark in
            let devices = node.devices
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                buffer.removeAll(keepingCapacity: true)
                ExpositionEncoder.encode(Schema.families(for: devices), format: format, into: &buffer)
                blackHole(buffer)
            }
        }
    }

    // Text format; 100 families x 100 series x 4 labels, built once, outside the measurement.
    let tenThousand = syntheticFamilies(families: 100, seriesPerFamily: 100)
    var tenThousandBuffer: [UInt8] = []
    Benchmark("Render 10k series") { benchmark in
        for _ in benchmark.scaledIterations {
            tenThousandBuffer.removeAll(keepingCapacity: true)
            ExpositionEncoder.encode(tenThousand, format: .text, into: &tenThousandBuffer)
            blackHole(tenThousandBuffer)
        }
    }

    // What the exporter does once per tick for `Accept-Encoding: gzip` (Snapshot.swift): level 1 over the text body.
    Benchmark("Gzip 8-GPU exposition") { benchmark in
        var exposition: [UInt8] = []
        ExpositionEncoder.encode(Schema.families(for: node.devices), format: .text, into: &exposition)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(exposition.withUnsafeBytes { try? Gzip.compress($0) })
        }
    }
}

/// `FixtureNodes.mi300x8()` materialized under /tmp and read once through the real amdgpu source.
///
/// Benchmarks run one at a time on one thread, and the setup/teardown hooks run around each of them on that
/// same sequence, so plain stored properties are enough.
final class EightGPUNode {
    private(set) var root: String?
    private(set) var source: AMDGPUSource?
    private(set) var devices: [DeviceSample] = []

    func load() {
        guard root == nil else { return }
        var template = Array("/tmp/accel-bench-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(made != nil, "mkdtemp failed: errno \(errno)")
        let root = String(cString: template)
        self.root = root
        do {
            try FixtureNodes.mi300x8().materialize(at: root)
        } catch {
            fatalError("cannot write the fixture tree under \(root): \(error)")
        }
        // A discovery interval longer than any run: every measured tick is a steady-state tick over known cards.
        let source = AMDGPUSource(
            sysfs: FileRoot(root), nodeName: "bench", discoveryInterval: 1e9,
            logger: Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() })
        )
        let result = source.sample(now: .now())
        precondition(result.error == nil, "amdgpu source failed on the fixture: \(result.error ?? "")")
        precondition(result.devices.count == 8 && result.devices.allSatisfy(\.up),
                     "fixture tree did not load: \(result.devices.count) devices")
        self.source = source
        devices = result.devices
    }

    func unload() {
        guard let root else { return }
        _ = system("rm -rf '\(root)'")
        self.root = nil
        source = nil
        devices = []
    }
}

/// Families shaped like device metrics: every sample carries four labels, one of them unique within its family.
func syntheticFamilies(families: Int, seriesPerFamily: Int) -> [MetricFamily] {
    (0..<families).map { f in
        MetricFamily(
            name: "bench_family_\(f)_bytes", help: "Synthetic family \(f).", kind: .gauge, unit: "bytes",
            samples: (0..<seriesPerFamily).map { s in
                Sample(
                    labels: [
                        Label("accelerator", "4a2b00000000\(1000 + s % 8)"), Label("vendor", "amd"),
                        Label("model", "AMD Instinct MI300X"), Label("series", "\(s)"),
                    ],
                    value: Double(s) * 1024.5
                )
            }
        )
    }
}
