import AdapterApp
import AdapterStore
import ArgumentParser
import CommandLineSupport

/// accel-metrics-adapter: the flags (AdapterApp's `AdapterFlags`) and one call; the program lives in AdapterApp.
@main
struct AccelMetricsAdapter: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "accel-metrics-adapter",
        abstract: "Kubernetes custom and external metrics API for accelerators, fed by accel-exporter.",
        version: AdapterVersion.version
    )

    @OptionGroup var flags: AdapterFlags

    func run() async throws { try await flags.run() }

    static func main() async { await CommandLineSupport.main(Self.self, program: "accel-metrics-adapter") }
}
