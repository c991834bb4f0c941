import Accelerators
import ArgumentParser
import Exporter

/// NVIDIA GPUs and MIG devices through NVML, loaded with dlopen at run time.
struct NVIDIACollector: Collector {
    static let name = "nvidia"

    @Flag(name: .customLong("collector.nvidia"), inversion: .prefixedNo, help: "NVIDIA GPUs and MIG devices through NVML (loaded at run time).")
    var enabled = true

    @Flag(name: .customLong("collector.nvidia.processes"), inversion: .prefixedNo, help: "Read NVIDIA per-process memory and utilization (for pod attribution).")
    var processes = true

    @Flag(name: .customLong("collector.nvidia.xid"), inversion: .prefixedNo, help: "Count NVIDIA XID critical errors (an NVML event thread).")
    var xid = true

    @Option(name: .customLong("nvml.library"), help: "NVML library to dlopen (default: libnvidia-ml.so.1 from the loader's search path).")
    var library: String?

    func factory() throws -> CollectorFactory {
        let (library, processes, xid) = (library, processes, xid)
        return CollectorFactory(name: Self.name) { context in
            let configuration = NVMLSource.Configuration(libraryPath: library, nodeName: context.nodeName,
                                                         discoveryInterval: context.discoveryInterval, processes: processes, xidEvents: xid)
            return CollectorParts(sources: [NVMLSource(configuration: configuration, logger: context.logger)])
        }
    }
}
