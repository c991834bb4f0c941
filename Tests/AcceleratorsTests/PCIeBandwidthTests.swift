@testable import Accelerators
import DeviceSimulation
import AccelMetricsTesting
import Foundation
import Testing

/// amdgpu's `pcie_bw` (packets received and sent in one second, and the maximum payload size) and gpu_metrics'
/// `pcie_bandwidth_inst` (both directions together) become `accelerator_pcie_bandwidth_bytes_per_second`.
@Suite struct PCIeBandwidthTests {
    @Test(arguments: [
        ("1000 500 256\n", 256_000.0, 128_000.0),
        ("0 0 128", 0.0, 0.0),
    ])
    func parsesTheDriversLine(text: String, received: Double, sent: Double) {
        let parsed = PCIeBandwidthReader.parse(text)
        #expect(parsed?.received == received)
        #expect(parsed?.sent == sent)
    }

    @Test(arguments: ["", "1 2", "a b c", "1 2 0", "1 2 8192", "18446744073709551615 1 256", "-1 2 128", "1 2 3 4"])
    func refusesAnythingElse(text: String) {
        #expect(PCIeBandwidthReader.parse(text) == nil)
    }

    /// Every MI300-class layout carries `pcie_bandwidth_inst`, at the offset each struct gives it (the encoder
    /// counts them field by field; the decoder derives them from the XGMI accumulators).
    @Test(arguments: [UInt8(4), 5, 6, 7, 8])
    func gpuMetricsCarriesTheSum(content: UInt8) throws {
        var m = GPUMetrics(formatRevision: 1, contentRevision: content)
        m.pcieBandwidthBytesPerSecond = 24e9
        m.xgmiReadBytes = [1024, nil, 2048, nil, nil, nil, nil, nil]
        let parsed = try GPUMetrics.parse(GPUMetricsEncoder.encode(m))
        #expect(parsed.pcieBandwidthBytesPerSecond == 24e9)
        #expect(parsed.xgmiReadBytes?[2] == 2048)
        var sample = DeviceSample(identity: DeviceIdentity(accelerator: "a", vendor: "amd", model: "MI300X"))
        AMDGPUSource.fill(&sample, from: parsed)
        #expect(sample.pcieBandwidthBytesPerSecond == ["total": 24e9])
    }

    @Test func aReaderFollowsTheFileOffTheSampler() throws {
        let root = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("pcie-bw-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        for card in ["card1", "card9"] {
            try FileManager.default.createDirectory(at: root.appendingPathComponent("class/drm/\(card)/device"), withIntermediateDirectories: true)
        }
        try "100 50 256\n".write(to: root.appendingPathComponent("class/drm/card1/device/pcie_bw"), atomically: false, encoding: .utf8)
        // card9 has no file (an APU, or an older kernel): it is left alone.
        let reader = PCIeBandwidthReader(sysfs: FileRoot(root.path), interval: 0.05)
        reader.setCards(["card1", "card9"])
        var reading: PCIeBandwidthReader.Reading?
        _ = eventually(timeout: 5, pollInterval: 0.02) {
            reading = reader.latest("card1", now: .now(), maxAge: 5)
            return reading != nil
        }
        #expect(reading?.receivedBytesPerSecond == 25_600)
        #expect(reading?.sentBytesPerSecond == 12_800)
        #expect(reader.latest("card9", now: .now(), maxAge: 5) == nil)
        // A reading older than the bound is not served.
        let later = MonotonicInstant(nanoseconds: MonotonicInstant.now().nanoseconds + 60_000_000_000)
        #expect(reader.latest("card1", now: later, maxAge: 5) == nil)
    }
}
