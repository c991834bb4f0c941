import DeviceSimulation
@testable import Accelerators
import AccelMetricsTesting
import Exposition
import Logging
import Synchronization
import Testing

/// Runtime readings set by the test, in place of the gRPC client.
final class ScriptedTPURuntime: TPURuntimeReadings {
    private let state = Mutex<(activations: Int, reports: [TPURuntimeReport])>((0, []))

    func activate() { state.withLock { $0.activations += 1 } }
    var reports: [TPURuntimeReport] { state.withLock { $0.reports } }
    var activations: Int { state.withLock { $0.activations } }
    func set(_ reports: [TPURuntimeReport]) { state.withLock { $0.reports = reports } }
}

/// A histogram over a fixed layout of two bounds (three buckets, seconds).
func tpuHistogram(_ counts: [Double], bounds: [Double] = [0.001, 0.01], sum: Double = 0.5) -> DeviceHistogram {
    DeviceHistogram(upperBounds: bounds, bucketCounts: counts, sum: sum, count: counts.reduce(0, +))!
}

@Suite("TPU source on materialized sysfs trees")
struct TPUSourceTests {
    func source(_ dir: TemporaryDirectory, runtime: ScriptedTPURuntime? = nil) -> TPUSource {
        TPUSource(sysfs: FileRoot(dir.path), nodeName: "tpu-node", runtime: runtime, logger: Logger(label: "test"))
    }

    func info(_ sample: DeviceSample) -> [String: String] {
        Dictionary(sample.identity.info.map { ($0.0, $0.1) }, uniquingKeysWith: { a, _ in a })
    }

    @Test func v5eHostListsItsEightChipsWithoutAWorkload() throws {
        let dir = TemporaryDirectory()
        try FixtureNodes.tpuV5e8().materialize(at: dir.path)
        let runtime = ScriptedTPURuntime()
        let result = source(dir, runtime: runtime).sample(now: .now())
        #expect(result.error == nil)
        // Eight chips, not the gVNIC that shares Google's vendor id.
        #expect(result.devices.map(\.identity.accelerator) == (4..<12).map { "0000:00:" + String($0, radix: 16).leftPadded(2) + ".0" })
        for (i, chip) in result.devices.enumerated() {
            #expect(chip.up)
            #expect(chip.identity.vendor == "google")
            #expect(chip.identity.model == "TPU v5e")
            #expect(chip.identity.pciAddress == chip.identity.accelerator)
            #expect(info(chip) == ["driver": "vfio-pci", "node": "tpu-node",
                                   "chip_index": "\(i)", "device_node": "/dev/vfio/\(i)"])
            #expect(chip.identity.aliases.otherIDs == ["\(i)", "/dev/vfio/\(i)"])
            #expect(chip.pcieLinkSpeedTransfersPerSecond == 16e9)
            #expect(chip.pcieLinkWidth == 8)
            // No workload: nothing from the runtime.
            #expect(chip.utilizationRatio == nil && chip.memoryUsedBytes.isEmpty && chip.hloQueueSize == nil)
        }
        #expect(runtime.activations == 1)
        let names = Schema.families(for: result.devices).map(\.name)
        #expect(names == ["accelerator", "accelerator_pcie_link_speed_transfers_per_second", "accelerator_pcie_link_width", "accelerator_up"])
    }

    @Test func v4HostNamesItsAccelNodes() throws {
        let dir = TemporaryDirectory()
        try FixtureNodes.tpuV4x4().materialize(at: dir.path)
        let result = source(dir).sample(now: .now())
        #expect(result.devices.count == 4)
        for (i, chip) in result.devices.enumerated() {
            #expect(chip.identity.model == "TPU v4")
            // No driver link in the fixture: no driver label rather than a guess.
            #expect(chip.identity.pciAddress == chip.identity.accelerator)
            #expect(info(chip) == ["node": "tpu-node", "chip_index": "\(i)",
                                   "device_node": "/dev/accel\(i)"])
            #expect(chip.identity.aliases.cardNames == ["accel\(i)"])
            #expect(chip.pcieLinkSpeedTransfersPerSecond == 8e9)
        }
    }

    @Test(arguments: [
        (0x0027, 0x004e, "TPU v2", 2), (0x0027, 0x004f, "TPU v3", 2), (0x0027, 0x1234, "TPU v2/v3", 2), (0x005e, 0, "TPU v4", 1),
        (0x0063, 0, "TPU v5e", 1), (0x0062, 0, "TPU v5p", 1), (0x006f, 0, "TPU v6e", 1), (0x0076, 0, "TPU7x", 2),
    ] as [(UInt32, UInt32, String, Int)])
    func generations(device: UInt32, subsystem: UInt32, model: String, devicesPerChip: Int) {
        let generation = TPUGeneration.from(deviceID: device, subsystemDeviceID: subsystem)
        #expect(generation?.model == model)
        #expect(generation?.devicesPerChip == devicesPerChip)
    }

    @Test func otherGoogleDevicesAreNotTPUs() {
        #expect(TPUGeneration.from(deviceID: 0x0042, subsystemDeviceID: 0x0058) == nil)  // gVNIC
        #expect(TPUGeneration.from(deviceID: 0x0000, subsystemDeviceID: nil) == nil)
        #expect(TPUGeneration.parseHexID("0x1ae0") == 0x1ae0)
        #expect(TPUGeneration.parseHexID("1AE0") == 0x1ae0)
        for garbage in ["", "0x", "zz", "0x1ae0 0x1", "0x123456789"] { #expect(TPUGeneration.parseHexID(garbage) == nil) }
    }

    @Test func noChipsNoPolling() throws {
        let dir = TemporaryDirectory()
        try FixtureNodes.tpuV5e8().materialize(at: dir.path)
        for i in 4..<12 { dir.remove("bus/pci/devices/0000:00:" + String(i, radix: 16).leftPadded(2) + ".0") }
        let runtime = ScriptedTPURuntime()
        let result = source(dir, runtime: runtime).sample(now: .now())
        #expect(result.devices.isEmpty && result.error == nil)
        #expect(runtime.activations == 0)
        // A sysfs without a PCI bus at all is a node without TPUs, not a failing collector.
        let empty = TemporaryDirectory()
        let bare = source(empty, runtime: runtime).sample(now: .now())
        #expect(bare.devices.isEmpty && bare.error == nil)
    }

    @Test func garbageSysfsIsNeverATPU() throws {
        let dir = TemporaryDirectory()
        try FixtureNodes.tpuV5e8().materialize(at: dir.path)
        let base = "devices/pci0000:00/0000:00:0"
        try dir.write(base + "4.0/vendor", "0x1ae0garbage\n")   // not Google's: not listed
        try dir.write(base + "5.0/device", "\u{1}\u{2}binary\n")  // Google's but no device id: not listed
        dir.remove(base + "6.0/device")                          // unreadable device id
        try dir.write(base + "7.0/current_link_speed", "Unknown\n")
        try dir.write(base + "7.0/current_link_width", "255\n")
        try dir.write(base + "8.0/subsystem_device", "garbage\n")  // only v2/v3 read it: still a v5e
        let result = source(dir).sample(now: .now())
        #expect(result.error == nil)
        #expect(result.devices.map(\.identity.accelerator) == ["0000:00:07.0", "0000:00:08.0", "0000:00:09.0", "0000:00:0a.0", "0000:00:0b.0"])
        let seven = result.devices[0]
        #expect(seven.up && seven.pcieLinkSpeedTransfersPerSecond == nil && seven.pcieLinkWidth == nil)
        // Indices follow the chips that are listed.
        #expect(info(seven)["chip_index"] == "0")
    }

    @Test func aChipThatVanishesGoesDownThenLeaves() throws {
        let dir = TemporaryDirectory()
        try FixtureNodes.tpuV4x4().materialize(at: dir.path)
        let tpu = source(dir)
        let start = MonotonicInstant.now()
        let first = tpu.sample(now: start)
        #expect(first.devices.allSatisfy { $0.up })
        // The function's files go (hot unplug, a reset in progress): down at once, readings gone.
        dir.remove("devices/pci0000:00/0000:00:06.0/vendor")
        let down = tpu.sample(now: start.adding(seconds: 1))
        #expect(down.devices.count == 4)
        #expect(down.devices.filter { !$0.up }.map(\.identity.accelerator) == ["0000:00:06.0"])
        #expect(down.devices.first { !$0.up }?.pcieLinkWidth == nil)
        // The next tick re-runs discovery: it left.
        dir.remove("bus/pci/devices/0000:00:06.0")
        let after = tpu.sample(now: start.adding(seconds: 2))
        #expect(after.devices.map(\.identity.accelerator) == ["0000:00:05.0", "0000:00:07.0", "0000:00:08.0"])
    }

    // MARK: Runtime values onto chips

    func v5eSnapshot() -> TPURuntimeSnapshot {
        var s = TPURuntimeSnapshot()
        for d in 0..<8 {
            s.hbmUsedBytes[d] = Double(d + 1) * 1_000_000_000
            s.hbmTotalBytes[d] = 17_179_869_184
            s.dutyCyclePercent[d] = Double(10 * d)
            s.hloQueueSize[d] = Double(d % 3)
            s.hloExecutionSeconds[d] = tpuHistogram([1, Double(d), 2])
        }
        s.hbmUsedBytes[9] = 5  // an ordinal beyond the host's devices: dropped
        return s
    }

    @Test func runtimeValuesLandOnTheirChips() throws {
        let dir = TemporaryDirectory()
        try FixtureNodes.tpuV5e8().materialize(at: dir.path)
        let runtime = ScriptedTPURuntime()
        runtime.set([TPURuntimeReport(target: TPURuntimeTarget(address: "localhost:8431"), state: .answering, snapshot: v5eSnapshot())])
        let result = source(dir, runtime: runtime).sample(now: .now())
        let chip3 = result.devices[3]
        #expect(chip3.identity.accelerator == "0000:00:07.0")
        #expect(chip3.memoryUsedBytes == ["hbm": 4e9])
        #expect(chip3.memoryTotalBytes == ["hbm": 17_179_869_184])
        #expect(chip3.utilizationRatio == 0.3)
        #expect(chip3.hloQueueSize == 0)
        #expect(chip3.hloExecutionSeconds == tpuHistogram([1, 3, 2]))
        #expect(result.devices[7].utilizationRatio == 0.7)
        #expect(result.devices.allSatisfy { $0.hbmUtilizationRatio == nil })
    }

    @Test func twoCoreChipsCombineTheirCores() throws {
        let dir = TemporaryDirectory()
        try FixtureNodes.tpu7x2().materialize(at: dir.path)
        let runtime = ScriptedTPURuntime()
        let tpu = source(dir, runtime: runtime)
        var s = TPURuntimeSnapshot()
        for d in 0..<4 {
            s.hbmUsedBytes[d] = 1e9 * Double(d + 1)
            s.hbmTotalBytes[d] = 96e9
            s.hloQueueSize[d] = 1
            s.hloExecutionSeconds[d] = tpuHistogram([1, 1, Double(d)])
        }
        s.dutyCyclePercent = [0: 50, 1: 100]          // per chip, as the reference has it
        s.hbmUtilizationPercent = [0: 10, 1: 30, 2: 50, 3: 70]  // one per core: averaged per chip
        runtime.set([TPURuntimeReport(target: TPURuntimeTarget(address: "localhost:8431"), state: .answering, snapshot: s)])
        var result = tpu.sample(now: .now())
        #expect(result.devices.map(\.identity.model) == ["TPU7x", "TPU7x"])
        #expect(result.devices[0].memoryUsedBytes == ["hbm": 3e9])     // cores 0 and 1
        #expect(result.devices[1].memoryUsedBytes == ["hbm": 7e9])     // cores 2 and 3
        #expect(result.devices[1].memoryTotalBytes == ["hbm": 192e9])
        #expect(result.devices[0].utilizationRatio == 0.5)
        #expect(result.devices[1].utilizationRatio == 1)
        #expect(result.devices[0].hbmUtilizationRatio == 0.2)
        #expect(result.devices[1].hbmUtilizationRatio == 0.6)
        #expect(result.devices[1].hloQueueSize == 2)
        #expect(result.devices[1].hloExecutionSeconds == tpuHistogram([2, 2, 5], sum: 1))

        // One core's memory missing: the chip's sum would understate, so it is absent; the other chip is whole.
        // Per-core duty cycles (more values than chips) are averaged. Differing layouts cannot be added.
        s.hbmUsedBytes[3] = nil
        s.dutyCyclePercent = [0: 20, 1: 40, 2: 60, 3: 100]
        s.hloExecutionSeconds[2] = tpuHistogram([1, 1, 1], bounds: [0.5, 1])
        runtime.set([TPURuntimeReport(target: TPURuntimeTarget(address: "localhost:8431"), state: .answering, snapshot: s)])
        result = tpu.sample(now: .now())
        #expect(result.devices[1].memoryUsedBytes.isEmpty)
        #expect(result.devices[1].memoryTotalBytes == ["hbm": 192e9])
        #expect(result.devices[0].utilizationRatio == 0.3)
        #expect(result.devices[1].utilizationRatio == 0.8)
        #expect(result.devices[1].hloExecutionSeconds == nil)
        #expect(result.devices[0].hloExecutionSeconds != nil)
    }

    @Test func workloadsHoldingPartsOfTheHostMapByTheirChips() throws {
        let dir = TemporaryDirectory()
        try FixtureNodes.tpuV5e8().materialize(at: dir.path)
        let runtime = ScriptedTPURuntime()
        let pci = (4..<12).map { "0000:00:" + String($0, radix: 16).leftPadded(2) + ".0" }
        func snapshot(_ base: Double) -> TPURuntimeSnapshot {
            var s = TPURuntimeSnapshot()
            for d in 0..<4 { s.hbmUsedBytes[d] = base + Double(d) }
            s.dutyCyclePercent = [0: base / 1e9]
            return s
        }
        // Two pods, four chips each, each numbering its chips from 0; a third claims a chip the first has.
        runtime.set([
            TPURuntimeReport(target: TPURuntimeTarget(address: "10.0.0.1:8431", chips: [pci[6], pci[4], pci[5], pci[7]], owner: "ml/a"),
                             state: .answering, snapshot: snapshot(1e9)),
            TPURuntimeReport(target: TPURuntimeTarget(address: "10.0.0.2:8431", chips: Array(pci[0..<4]), owner: "ml/b"),
                             state: .answering, snapshot: snapshot(2e9)),
            TPURuntimeReport(target: TPURuntimeTarget(address: "10.0.0.3:8431", chips: [pci[6], "0000:99:00.0"], owner: "ml/c"),
                             state: .answering, snapshot: snapshot(3e9)),
            // A workload that stopped answering long ago: no snapshot, no values.
            TPURuntimeReport(target: TPURuntimeTarget(address: "10.0.0.4:8431"), state: .noWorkload("connection refused"), snapshot: nil),
        ])
        let result = source(dir, runtime: runtime).sample(now: .now())
        let used = result.devices.map { $0.memoryUsedBytes["hbm"] }
        let expected: [Double?] = [2e9, 2_000_000_001, 2_000_000_002, 2_000_000_003, 1_000_000_001, 1_000_000_002, 1e9, 1_000_000_003]
        #expect(used == expected)
        #expect(result.devices[6].utilizationRatio == 0.01)  // pod a's chip 0
        #expect(result.devices[0].utilizationRatio == 0.02)  // pod b's chip 0
    }

    @Test func noWorkloadLeavesChipsListedWithoutRuntimeValues() throws {
        let dir = TemporaryDirectory()
        try FixtureNodes.tpuV4x4().materialize(at: dir.path)
        let runtime = ScriptedTPURuntime()
        runtime.set([TPURuntimeReport(target: TPURuntimeTarget(address: "localhost:8431"), state: .noWorkload("connection refused"), snapshot: nil)])
        let result = source(dir, runtime: runtime).sample(now: .now())
        #expect(result.error == nil)
        #expect(result.devices.count == 4 && result.devices.allSatisfy { $0.up && $0.memoryUsedBytes.isEmpty && $0.utilizationRatio == nil })
    }

    // MARK: Rendering

    @Test func histogramsRenderCumulativeWithInfSumAndCount() throws {
        var sample = DeviceSample(identity: DeviceIdentity(accelerator: "0000:00:04.0", vendor: "google", model: "TPU v5e"))
        sample.hloExecutionSeconds = DeviceHistogram(upperBounds: [0.000512, 0.001024, 2], bucketCounts: [3, 0, 5, 2], sum: 1.5, count: 10)
        sample.hloQueueSize = 4
        let families = Schema.families(for: [sample])
        let histogram = try #require(families.first { $0.name == "accelerator_tpu_hlo_execution_seconds" })
        #expect(histogram.kind == .histogram && histogram.unit == "seconds")
        let lines = histogram.samples.map { s in
            s.suffix + "{" + s.labels.dropFirst(3).map { "\($0.name)=\($0.value)" }.joined() + "} \(s.value)"
        }
        #expect(lines == ["_bucket{le=0.000512} 3.0", "_bucket{le=0.001024} 3.0", "_bucket{le=2.0} 8.0", "_bucket{le=+Inf} 10.0",
                          "_sum{} 1.5", "_count{} 10.0"])
        var text: [UInt8] = []
        ExpositionEncoder.encode(families, format: .text, into: &text)
        let rendered = String(decoding: text, as: UTF8.self)
        #expect(rendered.contains("# TYPE accelerator_tpu_hlo_execution_seconds histogram\n"))
        #expect(rendered.contains("accelerator_tpu_hlo_queue_size{accelerator=\"0000:00:04.0\",vendor=\"google\",model=\"TPU v5e\"} 4\n"))
    }

    @Test func histogramPartsMustAgree() {
        #expect(DeviceHistogram(upperBounds: [1, 2], bucketCounts: [1, 1], sum: 1, count: 2) == nil)        // one count short
        #expect(DeviceHistogram(upperBounds: [2, 1], bucketCounts: [1, 1, 0], sum: 1, count: 2) == nil)     // bounds decrease
        #expect(DeviceHistogram(upperBounds: [1, 2], bucketCounts: [1, 1, 0], sum: 1, count: 3) == nil)     // counts ≠ count
        #expect(DeviceHistogram(upperBounds: [1, .infinity], bucketCounts: [1, 1, 0], sum: 1, count: 2) == nil)
        #expect(DeviceHistogram(upperBounds: [1, 2], bucketCounts: [1, -1, 2], sum: 1, count: 2) == nil)
        #expect(DeviceHistogram(upperBounds: [1, 2], bucketCounts: [1, 1, 0], sum: .nan, count: 2) == nil)
        let a = tpuHistogram([1, 2, 3]), b = tpuHistogram([1, 1, 1], bounds: [1, 2])
        #expect(a.adding(b) == nil)
        #expect(a.adding(a) == tpuHistogram([2, 4, 6], sum: 1))
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
