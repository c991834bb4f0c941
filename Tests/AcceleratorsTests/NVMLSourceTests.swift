@testable import Accelerators
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

    static var library: String {
        let runner = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var dir = runner.deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("libFakeNVML.so").path
            if FileManager.default.fileExists(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return "libFakeNVML.so"
    }

    static func fixture(_ name: String) throws -> String {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        return try String(contentsOf: root.appendingPathComponent("Fixtures/nvml/\(name).nvml"), encoding: .utf8)
    }

    /// Writes `text` as the machine (a new file renamed over the old, so the fake sees a new mtime and size).
    static func describe(_ text: String) throws {
        let temp = config.appendingPathExtension("new")
        try text.write(to: temp, atomically: false, encoding: .utf8)
        guard rename(temp.path, config.path) == 0 else { throw CocoaError(.fileWriteUnknown) }
    }

    static func source(processes: Bool = true) -> NVMLSource {
        NVMLSource(configuration: .init(libraryPath: library, nodeName: "n1", discoveryInterval: 0, processes: processes, xidEvents: false),
                   logger: Logger(label: "test"))
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
