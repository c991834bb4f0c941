import DeviceSimulation
import AccelMetricsTesting
import Foundation
import Testing

/// The real binary under umockdev against the checked-in fixture nodes: golden output, linters, faults.
@Suite("accel-exporter end to end (umockdev)", .serialized, .enabled(if: ExporterProcess.umockdevAvailable), .tags(.endToEnd), .endToEndEnabled)
struct EndToEndTests {
    static let promtool = "/usr/bin/promtool"

    @Test("golden /metrics for each fixture node", arguments: FixtureNodes.names)
    func golden(node: String) throws {
        let exporter = try ExporterProcess(tree: FixtureNodes.tree(named: node)!, arguments: ["--collector.hwmon.all"])
        defer { exporter.stop() }
        // pcie_bw is read off the sampler: its first round may land a tick after the first sample; XGMI rates need
        // two samples.
        if node == "mi300x-8" || node == "mi325x-8" { _ = try exporter.waitForMetrics { $0.contains("direction=\"rx\"") } }
        if node.hasPrefix("mi3") { _ = try exporter.waitForMetrics { $0.contains("accelerator_interconnect_bandwidth_bytes_per_second{") } }
        let response = try exporter.get("/metrics")
        #expect(response.status == 200)
        #expect(response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8")
        let devices = deviceFamilies(response.text)
        try expectMatchesGolden(devices, "Tests/Fixtures/golden/\(node).prom", what: "golden mismatch for \(node)")
        #expect(response.text.contains("accel_exporter_collector_success{collector=\"amdgpu\"} 1"))
        #expect(response.text.contains("accel_exporter_collector_success{collector=\"hwmon\"} 1"))
    }

    @Test("every text exposition passes promtool", arguments: FixtureNodes.names)
    func promtoolAcceptsText(node: String) throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.promtool), "promtool missing: apt-get install prometheus")
        let exporter = try ExporterProcess(tree: FixtureNodes.tree(named: node)!, arguments: ["--collector.hwmon.all"])
        defer { exporter.stop() }
        let body = try exporter.get("/metrics").body
        let (out, err, status) = try runProgramCapturingBytes(Self.promtool, ["check", "metrics"], stdin: body)
        #expect(status == 0, "promtool: \(String(decoding: out, as: UTF8.self)) \(err)")
    }

    @Test("every OpenMetrics exposition passes a strict parser", arguments: FixtureNodes.names)
    func strictOpenMetrics(node: String) throws {
        let exporter = try ExporterProcess(tree: FixtureNodes.tree(named: node)!, arguments: ["--collector.hwmon.all"])
        defer { exporter.stop() }
        let prometheusAccept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        let response = try exporter.get("/metrics", headers: ["Accept": prometheusAccept])
        #expect(response.headers["content-type"] == "application/openmetrics-text; version=1.0.0; charset=utf-8")
        #expect(response.text.hasSuffix("# EOF\n"))
        let script = PackagePaths.file("scripts/check-openmetrics.py").path
        let (out, err, status) = try runProgramCapturingBytes("/usr/bin/env", ["python3", script], stdin: response.body)
        #expect(status == 0, "OpenMetrics parser: \(err)")
        #expect(String(decoding: out, as: UTF8.self).contains("families"))
        // Same device values in both formats.
        let text = try exporter.get("/metrics").text
        for line in deviceFamilies(text).split(separator: "\n") where line.hasPrefix("accelerator_memory_total_bytes{") {
            #expect(response.text.contains(line), "\(line) missing from OpenMetrics")
        }
    }

    @Test func sensorsConfigLabelsIgnoresAndComputeLinesApply() throws {
        let config = FileManager.default.temporaryDirectory.appendingPathComponent("sensors-\(UUID().uuidString).conf")
        try """
        chip "amdgpu-pci-0500"
            label temp2 "hotspot"
            ignore in0
            compute power1 @*2, @/2
        chip "nvme-*"
            ignore temp1
        """.write(to: config, atomically: false, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: config) }
        let exporter = try ExporterProcess(tree: FixtureNodes.mi300x8(), arguments: ["--collector.hwmon.all", "--collector.hwmon.config", config.path])
        defer { exporter.stop() }
        let text = try exporter.get("/metrics").text
        let card = "accelerator=\"4a2b000000001000\",vendor=\"amd\",model=\"MI300X\""
        let other = "accelerator=\"4a2b000000001001\",vendor=\"amd\",model=\"MI300X\""
        // label: the junction sensor is now called hotspot on the configured chip only. (gpu_metrics still fills
        // its own `junction` key: precedence is per key, and a relabel makes a new key.)
        #expect(value(text, "accelerator_temperature_celsius{\(card),sensor=\"hotspot\"}") == 62.5)
        #expect(value(text, "accelerator_temperature_celsius{\(other),sensor=\"junction\"}") != nil)
        // ignore: no voltage from in0 on that card; compute: power doubled (420 W in the fixture).
        #expect(value(text, "accelerator_voltage_volts{\(card),sensor=\"vddgfx\"}") == nil)
        #expect(value(text, "accelerator_voltage_volts{\(other),sensor=\"vddgfx\"}") != nil)
        #expect(value(text, "accelerator_power_watts{\(card)}") == 840)
        #expect(value(text, "accelerator_power_watts{\(other)}") == 601)
        #expect(!text.contains("hwmon_temperature_celsius{chip=\"nvme"))
    }

    @Test func aBrokenSensorsConfigFailsOnlyTheHwmonCollector() throws {
        let config = FileManager.default.temporaryDirectory.appendingPathComponent("sensors-\(UUID().uuidString).conf")
        try "chip \"amdgpu-*\"\n    compute power1 @*\n".write(to: config, atomically: false, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: config) }
        let exporter = try ExporterProcess(tree: FixtureNodes.mi300x8(), arguments: ["--collector.hwmon.config", config.path])
        defer { exporter.stop() }
        let text = try exporter.get("/metrics").text
        #expect(value(text, "accel_exporter_collector_success{collector=\"hwmon\"}") == 0)
        #expect(value(text, "accel_exporter_collector_success{collector=\"amdgpu\"}") == 1)
        #expect(text.contains("accelerator_utilization_ratio{"))
        #expect(exporter.log.contains("sensors_init failed"))
        #expect(try exporter.get("/readyz").status == 200)
    }

    @Test func gzipWhenAcceptedAndIdenticalContent() throws {
        let exporter = try ExporterProcess(tree: FixtureNodes.mi300x8(), arguments: ["--collect.interval", "10s"])
        defer { exporter.stop() }
        // The two scrapes must see one tick: wait for the tick that has pcie_bw (read off the sampler, it lands a
        // tick after the first) and the XGMI rates (two samples), after which nothing changes for 10 s.
        _ = try exporter.waitForMetrics(timeout: 15) {
            $0.contains("direction=\"rx\"") && $0.contains("accelerator_interconnect_bandwidth_bytes_per_second{")
        }
        let plain = try exporter.get("/metrics")
        let zipped = try exporter.get("/metrics", headers: ["Accept-Encoding": "gzip"])
        #expect(zipped.headers["content-encoding"] == "gzip")
        #expect(plain.headers["content-encoding"] == nil)
        #expect(zipped.body.count < plain.body.count / 3)
        let (unzipped, _, status) = try runProgramCapturingBytes("/bin/gzip", ["-dc"], stdin: zipped.body)
        #expect(status == 0)
        #expect(deviceFamilies(String(decoding: unzipped, as: UTF8.self)) == deviceFamilies(plain.text))
    }

    @Test func healthReadinessLandingPageAndErrors() throws {
        let exporter = try ExporterProcess(tree: FixtureNodes.mi300x8())
        defer { exporter.stop() }
        #expect(try exporter.get("/healthz").status == 200)
        let ready = try exporter.get("/readyz")
        #expect(ready.status == 200)
        #expect(ready.text.contains("8 accelerators"))
        let page = try exporter.get("/")
        #expect(page.status == 200)
        #expect(page.headers["content-type"]?.hasPrefix("text/html") == true)
        #expect(page.text.contains("4a2b000000001000"))
        #expect(page.text.contains("MI300X"))
        #expect(page.text.contains("href=\"/metrics\""))
        #expect(try exporter.get("/nope").status == 404)
        let post = try exporter.get("/metrics", method: "POST")
        #expect(post.status == 405)
        #expect(post.headers["allow"] == "GET, HEAD")
        let head = try exporter.get("/metrics", method: "HEAD")
        #expect(head.status == 200)
    }

    @Test func aNodeWithoutAcceleratorsIsReadyAndServes() throws {
        let exporter = try ExporterProcess(tree: FixtureTree(devices: []))
        defer { exporter.stop() }
        #expect(try exporter.get("/readyz").status == 200)
        let text = try exporter.get("/metrics").text
        #expect(!text.contains("accelerator_up"))
        #expect(text.contains("accel_exporter_build_info"))
    }

    @Test func thousandsOfConcurrentScrapesAllAnswered() throws {
        let exporter = try ExporterProcess(tree: FixtureNodes.mi300x8())
        defer { exporter.stop() }
        let url = "http://127.0.0.1:\(exporter.port)/metrics"
        let config = exporter.workdir.appendingPathComponent("curl.cfg")
        try String(repeating: "url = \"\(url)\"\noutput = \"/dev/null\"\nwrite-out = \"%{http_code}\\n\"\n", count: 2000)
            .write(to: config, atomically: false, encoding: .utf8)
        let (out, err, status) = try runProgramCapturingBytes("/usr/bin/curl", ["-s", "-m", "60", "--parallel", "--parallel-max", "100", "-K", config.path])
        #expect(status == 0, "\(err)")
        let codes = String(decoding: out, as: UTF8.self).split(separator: "\n")
        #expect(codes.count == 2000)
        #expect(codes.allSatisfy { $0 == "200" })
        #expect(try exporter.get("/healthz").status == 200)
    }
}
