import DeviceSimulation
import AccelMetricsTesting
import Foundation
import Testing

@Suite(.tags(.endToEnd), .endToEndEnabled) struct CommandLineTests {
    @Test(arguments: [
        (["--collect.interval", "bogus"], "--collect.interval"),
        (["--web.listen-address", "nope"], "--web.listen-address"),
        (["--log.level", "loud"], "--log.level"),
        (["--log.format", "xml"], "--log.format"),
        (["--path.sysfs", "/does/not/exist"], "--path.sysfs"),
        (["--kubelet.refresh-interval", "often"], "--kubelet.refresh-interval"),
        (["--web.adapter-url", "localhost:9446"], "--web.adapter-url"),
        (["--no-such-flag"], "no-such-flag"),
    ])
    func badFlagsPrintOneClearLineAndExitNonZero(arguments: [String], mentions: String) throws {
        let (out, err, status) = try runProgramCapturingBytes(PackagePaths.product("accel-exporter"), arguments)
        #expect(status != 0)
        #expect(out.isEmpty)
        let lines = err.split(separator: "\n")
        #expect(lines.count == 1, "stderr: \(err)")
        #expect(err.contains(mentions))
    }

    @Test func anAddressInUseIsAClearError() throws {
        let blocker = try ExporterProcess(tree: .init(devices: []))
        defer { blocker.stop() }
        let (_, err, status) = try runProgramCapturingBytes(PackagePaths.product("accel-exporter"),
                                       ["--web.listen-address", "127.0.0.1:\(blocker.port)", "--path.sysfs", "/tmp"])
        #expect(status != 0)
        #expect(err.contains("cannot start"))
    }

    @Test func helpListsTheExporterFlags() throws {
        let (out, _, status) = try runProgramCapturingBytes(PackagePaths.product("accel-exporter"), ["--help"])
        #expect(status == 0)
        let help = String(decoding: out, as: UTF8.self)
        for flag in ["--web.listen-address", "--web.telemetry-path", "--path.sysfs", "--path.procfs", "--collect.interval",
                     "--collector.amdgpu", "--no-collector.hwmon", "--collector.hwmon.all", "--log.level", "--log.format",
                     "--collector.kubelet", "--kubelet.pod-resources-socket", "--kubelet.refresh-interval",
                     "--kubelet.resource-names", "--kubelet.pod-logs-path", "--collector.processes", "--web.adapter-url"] {
            #expect(help.contains(flag), "\(flag) missing from --help")
        }
    }
}
