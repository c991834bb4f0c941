import ArgumentParser
import Exporter
import ExporterApp

/// accel-exporter: the flags (ExporterApp's `ExporterFlags`) and one call; the program lives in ExporterApp.
@main
struct AccelExporter: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "accel-exporter",
        abstract: "Prometheus exporter for the accelerators (GPUs, TPUs, Gaudi) of one node.",
        version: SelfMetrics.version
    )

    @OptionGroup var flags: ExporterFlags

    func run() async throws { try await ExporterApp.run(flags) }

    static func main() async { await ExporterApp.main(Self.self) }
}
