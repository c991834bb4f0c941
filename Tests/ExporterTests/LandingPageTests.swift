import AcceleratorTestSupport
import Accelerators
@testable import Exporter
import Foundation
import Testing

@Suite struct LandingPageTests {
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

/// The page as a browser renders it: headless Chromium (Debian `chromium`) loads the running exporter's landing
/// page on the 8-GPU fixture and the DOM must hold every device, its readings and its charts.
@Suite(.serialized, .enabled(if: ExporterProcess.umockdevAvailable && FileManager.default.isExecutableFile(atPath: "/usr/bin/chromium")))
struct LandingPageBrowserTests {
    @Test func chromiumRendersDevicesAndCharts() throws {
        let exporter = try ExporterProcess(tree: FixtureNodes.mi300x8(), arguments: ["--collect.interval", "200ms"])
        defer { exporter.stop() }
        Thread.sleep(forTimeInterval: 1.0)  // a few ticks of history
        let (out, err, status) = try run(
            "/usr/bin/chromium",
            ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--dump-dom", "http://127.0.0.1:\(exporter.port)/"],
            timeout: 90)
        let dom = String(decoding: out, as: UTF8.self)
        #expect(status == 0, "\(err.suffix(500))")
        #expect(dom.contains("Accelerators (8)"))
        let historyTable = dom.components(separatedBy: "<table id=\"history\">").dropFirst().first?.components(separatedBy: "</table>").first ?? ""
        // A header row and one row per device, each with four charts.
        #expect(historyTable.components(separatedBy: "<tr>").count - 1 == 9)
        #expect(historyTable.components(separatedBy: "<svg").count - 1 == 32)
        #expect(historyTable.components(separatedBy: "<polyline").count - 1 >= 8)
        #expect(!dom.contains("<script"))
    }
}
