@testable import Accelerators
import AccelMetricsTesting
import Foundation
import Logging
import Testing

/// NVMLSource in process, against the fake NVML built by this package (the same dlopen path as production).
///
/// NVML is process-global, so the fake is loaded once with one description path (FAKE_NVML_CONFIG) and each test
/// writes that file; the fake re-reads it when it changes. The suite is serialized for that reason.
@Suite("NVML source (fake NVML, in process)", .serialized)
struct NVMLSourceTests {
    static let config: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("accel-nvml-\(getpid()).nvml")
        setenv("FAKE_NVML_CONFIG", url.path, 1)
        // The description outlives every test (NVML stays loaded); it goes when the test process exits.
        atexit { unlink(NVMLSourceTests.config.path) }
        return url
    }()

    static var library: String { PackagePaths.product("libFakeNVML.so") }

    static func fixture(_ name: String) throws -> String {
        try String(contentsOf: PackagePaths.file("Tests/Fixtures/nvml/\(name).nvml"), encoding: .utf8)
    }

    /// Writes `text` as the machine (a new file renamed over the old, so the fake sees a new mtime and size).
    static func describe(_ text: String) throws {
        let temp = config.appendingPathExtension("new")
        try text.write(to: temp, atomically: false, encoding: .utf8)
        guard rename(temp.path, config.path) == 0 else { throw CocoaError(.fileWriteUnknown) }
    }

    static func source(processes: Bool = true, logger: Logger = Logger(label: "test")) -> NVMLSource {
        NVMLSource(configuration: .init(libraryPath: library, nodeName: "n1", discoveryInterval: 0, processes: processes, xidEvents: false),
                   logger: logger)
    }

    /// A small machine: one GPU with two time-sliced processes and their utilization samples, one with MPS clients.
    static let twoGPUs = """
    driver_version 550.54.15
    cuda_version 12040
    device
    uuid GPU-11111111-2222-3333-4444-555555555555
    name NVIDIA H100 80GB HBM3
    pci 00000000:1A:00.0
    utilization 40 10
    memory 85520809984 2147483648
    temperature 45
    power 250000
    process 101 1073741824
    process 102 536870912
    process_util 101 30 5 0 0
    process_util 102 10 2 0 0
    device
    uuid GPU-66666666-7777-8888-9999-000000000000
    name NVIDIA H100 80GB HBM3
    pci 00000000:1B:00.0
    memory 85520809984 3221225472
    process 201 1073741824 mps
    process 202 2147483648 mps
    """

    @Test("identity: UUID as the key, PCI address in sysfs form, model without the vendor prefix")
    func identity() throws {
        try Self.describe(Self.twoGPUs)
        let result = Self.source().sample(now: .now())
        #expect(result.error == nil)
        let first = try #require(result.devices.first)
        #expect(first.identity.accelerator == "GPU-11111111-2222-3333-4444-555555555555")
        #expect(first.identity.model == "H100 80GB HBM3")
        #expect(first.identity.pciAddress == "0000:1a:00.0")
        #expect(!first.identity.info.contains { $0.0 == "pci_bus_id" }, "an identity label, not an info fact")
        #expect(first.utilizationRatio == 0.4)
        #expect(first.powerWatts == 250)
        // Not described: NOT_SUPPORTED, so absent rather than zero.
        #expect(first.powerLimitWatts == nil)
        #expect(first.energyJoules == nil)
    }

    @Test("time-sliced and MPS processes with memory and incremental utilization samples")
    func processes() throws {
        try Self.describe(Self.twoGPUs)
        let source = Self.source()
        let first = source.sample(now: .now()).devices
        let sliced = first[0].processes.sorted { $0.pid < $1.pid }
        #expect(sliced.map(\.pid) == [101, 102])
        #expect(sliced.allSatisfy { $0.kind == .compute })
        #expect(sliced[0].memoryUsedBytes == 1073741824)
        #expect(sliced[0].engineUtilizationRatio["compute"] == 0.3)
        #expect(sliced[1].engineUtilizationRatio["memory_controller"] == 0.02)
        let mps = first[1].processes
        #expect(mps.count == 2)
        #expect(mps.allSatisfy { $0.kind == .mps })
        // The same samples are not counted twice: the next tick asks only for newer ones.
        let second = source.sample(now: .now()).devices
        #expect(second[0].processes.count == 2)
        #expect(second[0].processes.allSatisfy { $0.engineUtilizationRatio.isEmpty })
        // Processes off: no per-process calls at all.
        #expect(Self.source(processes: false).sample(now: .now()).devices[0].processes.isEmpty)
    }

    @Test("MIG devices: memory and processes per slice, parent without a utilization figure")
    func mig() throws {
        try Self.describe(try Self.fixture("a100-mig"))
        let devices = Self.source().sample(now: .now()).devices
        let slices = devices.filter { $0.identity.accelerator.hasPrefix("MIG-") }
        #expect(slices.count == 4)
        for slice in slices {
            #expect(slice.memoryTotalBytes["vram"] != nil)
            #expect(slice.identity.info.contains { $0.0 == "parent" })
        }
        #expect(slices.contains { !$0.processes.isEmpty })
        let parent = try #require(devices.first { $0.identity.accelerator == slices[0].identity.info.first { $0.0 == "parent" }?.1 })
        #expect(parent.utilizationRatio == nil)
        #expect(parent.up)
    }

    @Test("a lost GPU is down without readings; the other keeps reporting; it returns when it answers")
    func lost() throws {
        try Self.describe(Self.twoGPUs)
        let source = Self.source()
        let before = source.sample(now: .now()).devices.filter { !$0.up }
        #expect(before.isEmpty)
        try Self.describe(Self.twoGPUs.replacingOccurrences(of: "pci 00000000:1B:00.0", with: "pci 00000000:1B:00.0\nfail * GPU_IS_LOST"))
        let down = source.sample(now: .now()).devices
        #expect(down.count == 2)
        #expect(down[0].up)
        #expect(!down[1].up)
        #expect(down[1].memoryUsedBytes.isEmpty)
        #expect(down[1].processes.isEmpty)
        try Self.describe(Self.twoGPUs)
        let back = source.sample(now: .now()).devices
        #expect(back.count == 2)
        let stillDown = back.filter { !$0.up }
        #expect(stillDown.isEmpty)
        #expect(back[1].memoryUsedBytes["vram"] == 3221225472)
    }

    @Test("a GPU whose UUID answers while its readings fail stays lost, logged once, until a whole read succeeds")
    func halfAnswering() throws {
        try Self.describe(Self.twoGPUs)
        let log = CapturedLog()
        let source = Self.source(logger: log.logger())
        #expect(source.sample(now: .now()).devices.allSatisfy { $0.up })
        // The memory reading fails as lost; nvmlDeviceGetUUID, the re-probe, still answers.
        try Self.describe(Self.twoGPUs.replacingOccurrences(of: "pci 00000000:1B:00.0",
                                                            with: "pci 00000000:1B:00.0\nfail nvmlDeviceGetMemoryInfo GPU_IS_LOST"))
        for _ in 0..<4 {
            let devices = source.sample(now: .now()).devices
            #expect(devices.count == 2)
            #expect(devices[0].up)
            #expect(!devices[1].up)
        }
        #expect(log.count("accelerator lost", level: .error) == 1, "\(log.all)")
        #expect(log.count("accelerator answers again") == 0, "\(log.all)")
        try Self.describe(Self.twoGPUs)
        let back = source.sample(now: .now()).devices
        #expect(back.allSatisfy { $0.up })
        #expect(back[1].memoryUsedBytes["vram"] == 3221225472)
        #expect(log.count("accelerator answers again", level: .info) == 1, "\(log.all)")
        #expect(log.count("accelerator lost") == 1)
    }

    /// GPM sample buffers the fake has handed out and not got back (its test hook, resolved like NVML's names).
    static func gpmSamplesAllocated() throws -> Int {
        let handle = try #require(dlopen(library, RTLD_NOW), "the fake NVML loads")
        let symbol = try #require(dlsym(handle, "fakeNvmlGpmSamplesAllocated"))
        return Int(unsafeBitCast(symbol, to: (@convention(c) () -> Int32).self)())
    }

    static func at(_ seconds: Double) -> MonotonicInstant { MonotonicInstant(nanoseconds: UInt64(1_000_000_000 + seconds * 1e9)) }

    @Test("GPM on an H100: nothing on the first tick, then saturation, pipes, PCIe and NVLink rates; buffers freed")
    func gpm() throws {
        try Self.describe(try Self.fixture("h100x8"))
        let before = try Self.gpmSamplesAllocated()
        do {
            let source = Self.source()
            let first = source.sample(now: Self.at(0)).devices[0]
            // Two buffers per GPU, and no GPM value before there are two samples.
            #expect(try Self.gpmSamplesAllocated() - before == 16)
            #expect(first.smActiveRatio == nil)
            #expect(first.pipeActiveRatio.isEmpty)
            #expect(first.interconnectBytesPerSecond.isEmpty)
            // PCIe from nvmlDeviceGetPcieThroughput meanwhile (KB/s).
            #expect(first.pcieBandwidthBytesPerSecond["tx"] == 28415.0 * 1024)
            #expect(first.interconnectBytes.count == 36)
            #expect(first.interconnectBytes[.init(link: "17", direction: "tx")] == 7340155456.0 * 1024)

            let second = source.sample(now: Self.at(1)).devices[0]
            #expect(second.smActiveRatio == 0.88)
            #expect(second.smOccupancyRatio == 0.44)
            #expect(second.memoryBandwidthUtilizationRatio == 0.49)
            #expect(second.engineUtilizationRatio["gfx"] == 0.98)
            #expect(second.pipeActiveRatio == ["tensor": 0.58, "tensor_hmma": 0.53, "tensor_dfma": 0, "tensor_dmma": 0,
                                               "tensor_imma": 0, "fp64": 0, "fp32": 0.14, "fp16": 0.04, "integer": 0.07])
            // GPM's MiB/s (27.7490234375 MiB/s is the same 28415 KB/s).
            #expect(second.pcieBandwidthBytesPerSecond == ["tx": 28415.0 * 1024, "rx": 143201.0 * 1024])
            #expect(second.interconnectBytesPerSecond.count == 36)
            #expect(second.interconnectBytesPerSecond[.init(link: "5", direction: "rx")] == 7840.0 * 1_048_576)
            #expect(second.errors["nvlink_replay"] == 0)
            #expect(second.errors["nvlink_down"] == 0)
            let third = source.sample(now: Self.at(2)).devices
            #expect(third[2].errors["nvlink_replay"] == 3)
            #expect(third.allSatisfy { $0.smActiveRatio != nil })
            #expect(third[7].smActiveRatio == 0)
            #expect(try Self.gpmSamplesAllocated() - before == 16, "the same two buffers each tick")
        }
        #expect(try Self.gpmSamplesAllocated() == before, "freed with the source")
    }

    @Test("GPM on MIG: each slice sampled through its GPU instance; a refused metric is absent, the rest stays")
    func gpmMIG() throws {
        try Self.describe(try Self.fixture("h100-mig"))
        let source = Self.source()
        _ = source.sample(now: Self.at(0))
        let devices = source.sample(now: Self.at(1)).devices
        let byID = Dictionary(uniqueKeysWithValues: devices.map { ($0.identity.accelerator, $0) })
        let big = try #require(byID["MIG-4a7d2e91-0c35-5b68-9f14-2e8a6c3b7d05"])
        #expect(big.smActiveRatio == 0.86)
        #expect(big.pipeActiveRatio["tensor"] == 0.77)
        #expect(big.memoryBandwidthUtilizationRatio == 0.62)
        // PCIe and NVLink belong to the GPU, not a slice.
        #expect(big.pcieBandwidthBytesPerSecond.isEmpty)
        #expect(byID["MIG-b81f5c06-7e2a-5d49-a3c8-5f0e1d9b2c74"]?.smActiveRatio == 0.09)
        // The MIG-enabled GPU itself: the whole GPU's figures.
        let parent = try #require(byID["GPU-3c1e9a57-2b84-4f06-9d3a-7e5b1c2d4f60"])
        #expect(parent.smActiveRatio == 0.61)
        #expect(parent.utilizationRatio == nil)
        // GPU 1 refuses the tensor metric: only that value is absent.
        let other = try #require(byID["GPU-e5a0c8d3-6f17-4b92-8e4d-1a3c5b7d9f02"])
        #expect(other.pipeActiveRatio["tensor"] == nil)
        #expect(other.pipeActiveRatio["fp32"] == 0.09)
        #expect(other.smActiveRatio == 0.47)
        #expect(other.interconnectBytes.isEmpty, "no NVLink on this GPU")
        #expect(source.sample(now: Self.at(2)).devices.first { $0.identity.accelerator == other.identity.accelerator }?.smActiveRatio == 0.47)
    }

    @Test("a GPM sample that fails leaves only the GPM values absent, and they return two ticks after it succeeds")
    func gpmSampleFails() throws {
        let healthy = try Self.fixture("h100x8")
        try Self.describe(healthy)
        let source = Self.source()
        _ = source.sample(now: Self.at(0))
        #expect(source.sample(now: Self.at(1)).devices[1].smActiveRatio == 0.87)
        // A profiler attached to GPU 1.
        try Self.describe(healthy.replacingOccurrences(of: "pci 00000000:2A:00.0", with: "pci 00000000:2A:00.0\nfail nvmlGpmSampleGet IN_USE"))
        let failing = source.sample(now: Self.at(2)).devices
        #expect(failing[1].up)
        #expect(failing[1].smActiveRatio == nil)
        #expect(failing[1].powerWatts != nil)
        #expect(failing[1].pcieBandwidthBytesPerSecond["tx"] == 27012.0 * 1024, "PCIe falls back to nvmlDeviceGetPcieThroughput")
        #expect(failing[0].smActiveRatio == 0.88, "the other GPUs keep theirs")
        try Self.describe(healthy)
        #expect(source.sample(now: Self.at(3)).devices[1].smActiveRatio == nil, "a first sample again: nothing to pair")
        #expect(source.sample(now: Self.at(4)).devices[1].smActiveRatio == 0.87)
    }

    @Test("NVLink without GPM (A100): counters per active link, rates from their change, errors and links going down")
    func nvlinkWithoutGPM() throws {
        let machine = try Self.fixture("a100-mig")
        try Self.describe(machine)
        let source = Self.source()
        let first = source.sample(now: Self.at(0)).devices.filter { $0.identity.accelerator.hasPrefix("GPU-") }
        #expect(first.count == 2)
        #expect(first[0].interconnectBytes.count == 24)
        #expect(first[0].interconnectBytes[.init(link: "0", direction: "rx")] == 48234496456.0 * 1024)
        // GPU 1's link 11 is inactive: not read, and not a fault.
        #expect(first[1].interconnectBytes.count == 22)
        #expect(first[1].errors["nvlink_down"] == 0)
        #expect(first[1].errors["nvlink_replay"] == 14)
        #expect(first[1].errors["nvlink_crc_flit"] == 2)
        #expect(first.allSatisfy { $0.interconnectBytesPerSecond.isEmpty && $0.smActiveRatio == nil })

        // 2 MiB more sent on GPU 0's link 3 over 2 seconds: 1 MiB/s; the other links moved nothing.
        try Self.describe(machine.replacingOccurrences(of: "nvlink_errors 0 0 0 0", with: "nvlink 3 1 52428802171 48234496456\nnvlink_errors 0 0 0 0"))
        let second = source.sample(now: Self.at(2)).devices.filter { $0.identity.accelerator.hasPrefix("GPU-") }
        #expect(second[0].interconnectBytesPerSecond[.init(link: "3", direction: "tx")] == 1_048_576)
        #expect(second[0].interconnectBytesPerSecond[.init(link: "4", direction: "tx")] == 0)
        #expect(second[0].interconnectBytesPerSecond.count == 24)

        // Link 5 of GPU 1 goes down: counted once, and no longer read.
        try Self.describe(machine.replacingOccurrences(of: "nvlink 11 0", with: "nvlink 11 0\nnvlink 5 0"))
        _ = source.sample(now: Self.at(3))
        let down = source.sample(now: Self.at(4)).devices.filter { $0.identity.accelerator.hasPrefix("GPU-") }
        #expect(down[1].errors["nvlink_down"] == 1)
        #expect(down[1].interconnectBytes[.init(link: "5", direction: "tx")] == nil)
        #expect(down[1].interconnectBytes.count == 20)
        #expect(down[0].errors["nvlink_down"] == 0)
    }

    @Test("conversions: PCI bus ids, MIG profiles, models and NVML sentinels")
    func conversions() {
        #expect(NVMLSource.normalizePCI("00000000:18:00.0") == "0000:18:00.0")
        #expect(NVMLSource.normalizePCI("00000001:AB:1F.7") == "0001:ab:1f.7")
        #expect(NVMLSource.normalizePCI("0000:5:00.0") == "0000:05:00.0")
        #expect(NVMLSource.normalizePCI("garbage") == nil)
        #expect(NVMLSource.migProfile(fromName: "NVIDIA A100-SXM4-40GB MIG 3g.20gb") == "3g.20gb")
        #expect(NVMLSource.migProfile(fromName: "NVIDIA H100 80GB HBM3") == nil)
        #expect(NVMLSource.model(fromName: "NVIDIA GeForce RTX 4090") == "GeForce RTX 4090")
        #expect(NVMLSource.valid(UInt32.max) == nil)
        #expect(NVMLSource.valid(UInt64.max) == nil)
        #expect(NVMLSource.valid(UInt64(9223372036854775794)) == nil)
        #expect(NVMLSource.valid(UInt64(12345)) == 12345)
    }
}
