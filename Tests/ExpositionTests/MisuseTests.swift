import Exposition
import Testing

/// Misuse traps in debug builds instead of being quietly renamed. Exit tests run each body in a child process.
#if DEBUG
@Suite("Invalid families trap in debug builds")
struct MisuseTests {
    @Test func invalidMetricName() async {
        await #expect(processExitsWith: .failure) {
            var buffer: [UInt8] = []
            ExpositionEncoder.encode([MetricFamily(name: "gpu-temp", help: "", kind: .gauge)], format: .text, into: &buffer)
        }
    }

    @Test func reservedLabelName() async {
        await #expect(processExitsWith: .failure) {
            var buffer: [UInt8] = []
            let sample = Sample(labels: [Label("__name__", "x")], value: 1)
            ExpositionEncoder.encode(
                [MetricFamily(name: "m", help: "", kind: .gauge, samples: [sample])], format: .text, into: &buffer)
        }
    }

    @Test func counterNamedWithTotal() async {
        await #expect(processExitsWith: .failure) {
            var buffer: [UInt8] = []
            ExpositionEncoder.encode(
                [MetricFamily(name: "energy_joules_total", help: "", kind: .counter)], format: .text, into: &buffer)
        }
    }

    @Test func bucketWithoutLe() async {
        await #expect(processExitsWith: .failure) {
            var buffer: [UInt8] = []
            let sample = Sample(suffix: "_bucket", labels: [], value: 1)
            ExpositionEncoder.encode(
                [MetricFamily(name: "h", help: "", kind: .histogram, samples: [sample])], format: .text, into: &buffer)
        }
    }

    @Test func duplicateFamily() async {
        await #expect(processExitsWith: .failure) {
            var buffer: [UInt8] = []
            let family = MetricFamily(name: "m", help: "", kind: .gauge)
            ExpositionEncoder.encode([family, family], format: .text, into: &buffer)
        }
    }
}
#endif
