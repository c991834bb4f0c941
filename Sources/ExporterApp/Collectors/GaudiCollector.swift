import Accelerators
import ArgumentParser
import Exporter

/// Intel Gaudi devices through habanalabs sysfs and the driver's INFO ioctls.
struct GaudiCollector: Collector {
    static let name = "habana"

    @Flag(name: .customLong("collector.habana"), inversion: .prefixedNo, help: "Intel Gaudi devices through habanalabs sysfs.")
    var enabled = true

    func factory() throws -> CollectorFactory {
        CollectorFactory(name: Self.name) { context in
            CollectorParts(sources: [GaudiSource(sysfs: context.sysfs, nodeName: context.nodeName, discoveryInterval: context.discoveryInterval,
                                                 logger: context.logger)])
        }
    }
}
