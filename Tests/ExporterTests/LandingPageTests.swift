import DeviceSimulation
import Accelerators
import AccelMetricsTesting
@testable import Exporter
@testable import LandingPage
import Exposition
import Foundation
import HTTPServer
import MetricSchema
import Testing

@Suite struct LandingPageTests {
    /// A tick whose attribution holds pods of `namespaces` (one `accelerator_allocated` series each).
    static func snapshot(podNamespaces namespaces: [String]) -> Snapshot {
        let allocated = MetricFamily(
            name: Families.Pod.allocated.name, help: "", kind: .gauge,
            samples: namespaces.enumerated().map { index, namespace in
                Sample(labels: [Label("accelerator", "a\(index)"), Label("namespace", namespace), Label("pod", "p\(index)")], value: 1)
            })
        let tick = Sampler.Tick(
            devices: [DeviceSample(identity: DeviceIdentity(accelerator: "a0", vendor: "amd", model: "MI300X"), up: true)],
            extraFamilies: [allocated], collectors: [], startedAt: MonotonicInstant(nanoseconds: 0), durationSeconds: 0)
        return Snapshot(tick: tick)
    }

    @Test func linksToTheAdapterPathsAnHPAReads() throws {
        var configuration = Exporter.Configuration()
        configuration.nodeName = "demo-node"
        configuration.adapterURL = "http://127.0.0.1:9446"
        let html = LandingPage.render(snapshot: Self.snapshot(podNamespaces: ["ml", "demo", "ml"]), configuration: configuration)
        let base = "http://127.0.0.1:9446/apis/custom.metrics.k8s.io/v1beta2"
        #expect(html.contains(#"<a href="\#(base)/nodes/demo-node/gpu_utilization">"#))
        // One link per namespace holding an accelerator, sorted.
        let demo = try #require(html.range(of: #"<a href="\#(base)/namespaces/demo/pods/*/gpu_utilization">"#))
        let ml = try #require(html.range(of: #"<a href="\#(base)/namespaces/ml/pods/*/gpu_utilization">"#))
        #expect(demo.lowerBound < ml.lowerBound)
        #expect(html.components(separatedBy: "/namespaces/ml/").count == 2)
        #expect(!html.contains("No pod holds an accelerator"))
    }

    @Test func withoutPodsOnlyTheNodeIsLinkedAndWithoutTheFlagNothing() {
        var configuration = Exporter.Configuration()
        configuration.nodeName = "node a&b"
        configuration.adapterURL = "https://adapter.example"
        let html = LandingPage.render(snapshot: Self.snapshot(podNamespaces: []), configuration: configuration)
        // The node name is one escaped path segment.
        #expect(html.contains(#"href="https://adapter.example/apis/custom.metrics.k8s.io/v1beta2/nodes/node%20a%26b/gpu_utilization""#))
        #expect(!html.contains("/pods/"))
        #expect(html.contains("No pod holds an accelerator here"))

        configuration.adapterURL = nil
        let plain = LandingPage.render(snapshot: Self.snapshot(podNamespaces: ["ml"]), configuration: configuration)
        #expect(!plain.contains("custom.metrics.k8s.io"))
        #expect(!plain.contains("Autoscaling"))
    }

    @Test(arguments: [
        ("http://127.0.0.1:9446", "http://127.0.0.1:9446"),
        ("http://localhost:9446//", "http://localhost:9446"),
        ("https://adapter.example/prefix/", "https://adapter.example/prefix"),
        ("127.0.0.1:9446", nil),
        ("ftp://host", nil),
        ("http://", nil),
        ("http:///path", nil),
        ("http://host/?q=1", nil),
        ("http://ho st", nil),
    ] as [(String, String?)])
    func adapterURLFlag(text: String, expected: String?) {
        #expect(Exporter.Configuration.normalizedAdapterURL(text) == expected)
    }
}

/// The page as a browser renders it: headless Chromium (Debian `chromium`) loads the running exporter's landing
/// page on the 8-GPU fixture and the DOM must hold every device, its readings and its charts.
@Suite(.serialized, .enabled(if: ExporterProcess.umockdevAvailable && FileManager.default.isExecutableFile(atPath: "/usr/bin/chromium")), .tags(.endToEnd), .endToEndEnabled)
struct LandingPageBrowserTests {
    @Test func chromiumRendersDevicesAndCharts() throws {
        let exporter = try ExporterProcess(tree: FixtureNodes.mi300x8(), arguments: ["--collect.interval", "200ms"])
        defer { exporter.stop() }
        try exporter.waitForTicks(5)  // a few ticks of history
        let (out, err, status) = try runProgramCapturingBytes(
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
