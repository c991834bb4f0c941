import Accelerators
import ArgumentParser
import Exporter

/// Accelerator sensors (and, on request, the node's other chips) through libsensors.
struct HwmonCollector: Collector {
    static let name = "hwmon"

    @Flag(name: .customLong("collector.hwmon"), inversion: .prefixedNo, help: "Accelerator sensors through libsensors (hwmon).")
    var enabled = true

    @Flag(name: .customLong("collector.hwmon.all"), help: "Also export the node's non-accelerator hwmon chips.")
    var allChips = false

    @Option(name: .customLong("collector.hwmon.config"), help: "libsensors configuration file (default: the system's sensors3.conf).")
    var configPath: String?

    func factory() throws -> CollectorFactory {
        let (configPath, allChips) = (configPath, allChips)
        return CollectorFactory(name: Self.name) { context in
            CollectorParts(sources: [HwmonSource(configPath: configPath, includeAllChips: allChips,
                                                 discoveryInterval: context.discoveryInterval, logger: context.logger)])
        }
    }
}
