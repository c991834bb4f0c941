import DeviceSimulation
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

    // NVML: the fake library (Sources/FakeNVML) through the real dlopen path, describing 8 H100s whose values
    // change on every call (`vary 1`), with per-process reads on. Time and allocations per tick, with GPM and 18
    // NVLinks per GPU (vary.nvml as it is), and the same node without them: the difference is what GPM (one sample
    // and one metrics read per GPU, 51 metrics) and the NVLink counters (36 more field values) cost a tick.
    let nvidia = FakeNVMLNode()
    Benchmark("nvidia sample tick (8 GPUs, fake NVML, GPM + NVLink)") { benchmark in
        let source = nvidia.source(.gpm)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(source.sample(now: .now()))
        }
    }
    Benchmark("nvidia sample tick (8 GPUs, fake NVML, no GPM or NVLink)") { benchmark in
        let source = nvidia.source(.plain)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(source.sample(now: .now()))
        }
    }

    // 1000 ticks with changing values and processes: every allocation a tick makes is freed again. The malloc
    // interposer counts mallocs minus frees (`mallocFreeDelta`) and requested bytes not freed
    // (`memoryLeakedBytes`) inside the measurement; the thresholds make any leak fail the run.
    Benchmark(
        "nvidia 1000 ticks, varying values (leak check)",
        configuration: .init(
            metrics: [.mallocCountTotal, .mallocFreeDelta, .memoryLeakedBytes],
            maxIterations: 5,
            thresholds: [.mallocFreeDelta: .init(absolute: [.p100: 0]), .memoryLeakedBytes: .init(absolute: [.p100: 0])]
        )
    ) { benchmark in
        let source = nvidia.source(.gpm)
        benchmark.startMeasurement()
        for _ in 0..<1000 {
            blackHole(source.sample(now: .now()))
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
        let root = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
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

/// The fake NVML library built beside this executable, describing `Tests/Fixtures/nvml/vary.nvml` (8 H100s with
/// GPM and NVLink) or the same node without GPM support and NVLink (`plain`).
///
/// NVML is process-global and reads one description file: this writes the variant a benchmark needs into a file
/// of its own (the fake re-reads it when it changes). One NVMLSource per variant, created on first use and warmed
/// with ticks (discovery, the first-time "not supported" bookkeeping, a GPM pair) so measured ticks are steady.
final class FakeNVMLNode {
    enum Variant { case gpm, plain }
    private var cached: [Variant: NVMLSource] = [:]
    private var current: Variant?
    private var path: String?
    private var text = ""

    func source(_ variant: Variant) -> NVMLSource {
        if path == nil { prepare() }
        if current != variant { write(variant) }
        let source = cached[variant] ?? make()
        cached[variant] = source
        for _ in 0..<2 { _ = source.sample(now: .now()) }
        return source
    }

    private func prepare() {
        let root = String(#filePath.split(separator: "/").dropLast(4).joined(separator: "/"))
        guard let file = fopen("/\(root)/Tests/Fixtures/nvml/vary.nvml", "r") else { fatalError("cannot read vary.nvml") }
        var buffer = [CChar](repeating: 0, count: 4096)
        while fgets(&buffer, Int32(buffer.count), file) != nil {
            text += String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        fclose(file)
        path = "/tmp/accel-bench-nvml-\(getpid()).nvml"
        setenv("FAKE_NVML_CONFIG", path!, 1)
        atexit { unlink("/tmp/accel-bench-nvml-\(getpid()).nvml") }
    }

    private func write(_ variant: Variant) {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).compactMap { line -> Substring? in
            guard variant == .plain else { return line }
            if line.hasPrefix("gpm_support ") { return "gpm_support 0" }
            return line.hasPrefix("nvlink") ? nil : line
        }
        let temp = path! + ".new"
        guard let file = fopen(temp, "w") else { fatalError("cannot write \(temp)") }
        fputs(lines.joined(separator: "\n"), file)
        fclose(file)
        rename(temp, path!)
        current = variant
    }

    private func make() -> NVMLSource {
        // This executable's directory (argv[0] may be a bare name): the fake is built beside it.
        var exe = [CChar](repeating: 0, count: 4096)
        let length = readlink("/proc/self/exe", &exe, exe.count - 1)
        precondition(length > 0, "readlink /proc/self/exe failed")
        let executable = String(decoding: exe.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let library = executable.split(separator: "/").dropLast().joined(separator: "/")
        let source = NVMLSource(
            configuration: .init(libraryPath: "/\(library)/libFakeNVML.so", nodeName: "bench", discoveryInterval: 1e9,
                                 processes: true, xidEvents: false),
            logger: Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() })
        )
        let result = source.sample(now: .now())
        guard result.error == nil, result.devices.count == 8, result.devices.allSatisfy(\.up) else {
            // fatalError, not precondition: optimized builds drop precondition messages.
            fatalError("fake NVML did not load from /\(library): \(result.error ?? "no error"), \(result.devices.count) devices")
        }
        let gpm = source.sample(now: .now()).devices.allSatisfy { $0.smActiveRatio != nil }
        guard gpm == (current == .gpm) else { fatalError("the \(current!) variant has GPM values: \(gpm)") }
        return source
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
