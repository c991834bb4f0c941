import Accelerators
@testable import LandingPage
import Testing

/// The page's own parts, without an exporter: the SVG charts and the reading history they draw from.
@Suite struct SparklineAndHistoryTests {
    @Test func sparklinesScaleAndBreakOnGaps() {
        let svg = Sparkline.svg([0, 0.5, .nan, 1], maximum: 1, width: 12, height: 12, color: "#000", label: "u")
        // Two segments: x = 1 + i × (10 / 3); y = 11 − v × 10.
        #expect(svg.contains(#"points="1.0,11.0 4.3,6.0""#))
        #expect(svg.contains(#"points="11.0,1.0""#))
        #expect(!svg.contains("script"))
        let empty = Sparkline.svg([.nan, .nan], maximum: 1, color: "#000", label: "u")
        #expect(empty.contains("no data"))
        // Values above the maximum stay inside the box.
        #expect(Sparkline.svg([2], maximum: 1, width: 12, height: 12, color: "#000", label: "u").contains(#"points="1.0,1.0""#))
    }

    @Test func historyKeepsTheLastTicksAndForgetsDevicesThatLeave() {
        let history = ReadingHistory(capacity: 3)
        func device(_ id: String, _ utilization: Double) -> DeviceSample {
            var sample = DeviceSample(identity: DeviceIdentity(accelerator: id, vendor: "amd", model: "MI300X"), up: true)
            sample.utilizationRatio = utilization
            return sample
        }
        for value in [0.1, 0.2, 0.3, 0.4] { history.record([device("a", value), device("b", value * 2)]) }
        #expect(history.points(for: "a").map(\.utilization) == [0.2, 0.3, 0.4])
        history.record([device("a", 0.5)])
        #expect(history.points(for: "b").isEmpty)
        #expect(history.points(for: "a").map(\.utilization) == [0.3, 0.4, 0.5])
    }
}
