import AcceleratorTestSupport
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A real Prometheus (Debian `prometheus`) scrapes the real exporter; the fixture's values must come out of
/// Prometheus' HTTP API — content negotiation, OpenMetrics parsing and types as a real scraper sees them.
@Suite(.serialized, .enabled(if: ExporterProcess.umockdevAvailable && FileManager.default.isExecutableFile(atPath: "/usr/bin/prometheus")))
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
        let prometheus = Process()
        prometheus.executableURL = URL(fileURLWithPath: "/usr/bin/prometheus")
        prometheus.arguments = ["--config.file=\(config.path)", "--storage.tsdb.path=\(dir.path)/data",
                                "--web.listen-address=127.0.0.1:\(port)", "--log.level=warn"]
        let log = dir.appendingPathComponent("prometheus.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        prometheus.standardError = try FileHandle(forWritingTo: log)
        prometheus.standardOutput = FileHandle.nullDevice
        try prometheus.run()
        defer {
            kill(prometheus.processIdentifier, SIGKILL)
            prometheus.waitUntilExit()
        }

        func query(_ q: String) throws -> [[String: Any]] {
            let encoded = q.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            let (out, _, _) = try run("/usr/bin/curl", ["-s", "-m", "5", "http://127.0.0.1:\(port)/api/v1/query?query=\(encoded)"])
            guard let json = try? JSONSerialization.jsonObject(with: out) as? [String: Any],
                  let data = json["data"] as? [String: Any], let result = data["result"] as? [[String: Any]] else { return [] }
            return result
        }
        func number(_ sample: [String: Any]) -> Double? {
            (sample["value"] as? [Any])?.last.flatMap { $0 as? String }.flatMap(Double.init)
        }

        // Wait (bounded) for the first successful scrape.
        let deadline = Date().addingTimeInterval(40)
        var up: [[String: Any]] = []
        while Date() < deadline {
            up = (try? query("up{job=\"accel\"} == 1")) ?? []
            if !up.isEmpty, !((try? query("accelerator_up")) ?? []).isEmpty { break }
            Thread.sleep(forTimeInterval: 0.5)
        }
        try #require(!up.isEmpty, "Prometheus never scraped the exporter: \((try? String(contentsOf: log, encoding: .utf8)) ?? "")")

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

    func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard bound else { throw HarnessError("cannot find a free port") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }
}
