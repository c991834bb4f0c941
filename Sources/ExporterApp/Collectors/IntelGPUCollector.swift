import Accelerators
import ArgumentParser
import Exporter

/// Intel GPUs (i915, xe) through sysfs, with engine use and VRAM from DRM fdinfo.
struct IntelGPUCollector: Collector {
    static let name = "intel"

    @Flag(name: .customLong("collector.intel"), inversion: .prefixedNo,
          help: "Intel GPUs (i915, xe) through sysfs; engine utilization and VRAM use from DRM fdinfo, which needs the host's processes under --path.procfs (hostPID or the host's /proc) and CAP_SYS_PTRACE.")
    var enabled = true

    func factory() throws -> CollectorFactory {
        CollectorFactory(name: Self.name) { context in
            CollectorParts(sources: [IntelGPUSource(sysfs: context.sysfs, procfs: context.procfs, nodeName: context.nodeName,
                                                    discoveryInterval: context.discoveryInterval, logger: context.logger)])
        }
    }
}
