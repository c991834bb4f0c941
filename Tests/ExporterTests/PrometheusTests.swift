import DeviceSimulation
import AccelMetricsTesting
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A real Prometheus (Debian `prometheus`) scrapes the real exporter; the fixture's values must come out of
/// Prometheus' HTTP API — content negotiation, OpenMetrics parsing and types as a real scraper sees them.
@Suite(.serialized, .enabled(if: ExporterProcess.umockdevAvailable && FileManager.default.isExecutableFile(atPath: "/usr/bin/prometheus")), .tags(.endToEnd), .endToEndEnabled)
struct PrometheusTests {
    @Test func prometheusScrapesTheFixtureValues() throws {
        let exporter = try ExporterProcess(tree: FixtureNodes.mi300x8(), arguments: ["--collector.hwmon.all"])
        defer { exporter.stop() }
        let port = try freePort()
        let dir = exporter.workdir.appendingPathComponent("prometheus")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let config = dir.appendingPathComponent("prometheus.yml")
        try """
        global:
          scrape_interval: 1s
        scrape_configs:
          - job_name: accel
            honor_labels: true
            static_configs:
              - targets: ['127.0.0.1:\(exporter.port)']
        """.write(to: config, atomically: false, encoding: .utf8)
        let prometheus = try ManagedProcess(
            "/usr/bin/prometheus",
            ["--config.file=\(config.path)", "--storage.tsdb.path=\(dir.path)/data", "--web.listen-address=127.0.0.1:\(port)", "--log.level=warn"],
            stdout: .discard)
        prometheus.stopSignal = SIGKILL
        defer { prometheus.stop() }

        func query(_ q: String) throws -> [[String: Any]] {
            let encoded = q.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            let (out, _, _) = try runProgramCapturingBytes("/usr/bin/curl", ["-s", "-m", "5", "http://127.0.0.1:\(port)/api/v1/query?query=\(encoded)"])
            guard let json = try? JSONSerialization.jsonObject(with: out) as? [String: Any],
                  let data = json["data"] as? [String: Any], let result = data["result"] as? [[String: Any]] else { return [] }
            return result
        }
        func number(_ sample: [String: Any]) -> Double? {
            (sample["value"] as? [Any])?.last.flatMap { $0 as? String }.flatMap(Double.init)
        }

        // Wait (bounded) for the first successful scrape.
        var up: [[String: Any]] = []
        _ = eventually(timeout: 40, pollInterval: 0.5) {
            up = (try? query("up{job=\"accel\"} == 1")) ?? []
            return !up.isEmpty && !((try? query("accelerator_up")) ?? []).isEmpty
        }
        try #require(!up.isEmpty, "Prometheus never scraped the exporter: \(prometheus.log)")

        let vram = try query("accelerator_memory_total_bytes{memory=\"vram\"}")
        #expect(vram.count == 8)
        #expect(vram.allSatisfy { number($0) == 206_141_652_992 })
        let info = try query("accelerator_info{model=\"MI300X\",node=\"test-node\"}")
        #expect(info.count == 8)
        let ids = Set(info.compactMap { ($0["metric"] as? [String: String])?["accelerator"] })
        #expect(ids == Set((0..<8).map { "4a2b00000000100\($0)" }))
        let upSeries = try query("sum(accelerator_up)")
        #expect(upSeries.first.flatMap(number) == 8)
        let energy = try query("accelerator_energy_joules_total{accelerator=\"4a2b000000001003\"}")
        #expect(energy.first.flatMap(number) == 1_003_000)
        let success = try query("min(accel_exporter_collector_success)")
        #expect(success.first.flatMap(number) == 1)
        let node = try query("hwmon_temperature_celsius{chip=\"nvme-pci-3d00\"}")
        #expect(node.first.flatMap(number) == 36.85)
        // Prometheus negotiated OpenMetrics with us (it asks for it first).
        let openMetricsScrapes = try exporter.waitForMetrics { (value($0, "accel_exporter_scrapes_total{format=\"openmetrics\"}") ?? 0) >= 1 }
        #expect((value(openMetricsScrapes, "accel_exporter_scrapes_total{format=\"openmetrics\"}") ?? 0) >= 1)
    }
}
