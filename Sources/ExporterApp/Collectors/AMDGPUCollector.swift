import Accelerators
import ArgumentParser
import CommandLineSupport
import Exporter

/// AMD GPUs through amdgpu sysfs and `gpu_metrics`.
struct AMDGPUCollector: Collector {
    static let name = "amdgpu"

    @Flag(name: .customLong("collector.amdgpu"), inversion: .prefixedNo, help: "AMD GPUs through amdgpu sysfs and gpu_metrics.")
    var enabled = true

    @Option(name: .customLong("amdgpu.pcie-bw-interval"), help: "How often amdgpu's pcie_bw is read for PCIe traffic per direction, off the sampler (each read blocks a second per card in the driver); 0 turns it off.")
    var pcieBandwidthInterval = "15s"

    func factory() throws -> CollectorFactory {
        let seconds = try CommandLineSupport.parseDuration(pcieBandwidthInterval, flag: "--amdgpu.pcie-bw-interval", minimum: 0)
        let interval = seconds > 0 ? seconds : nil
        return CollectorFactory(name: Self.name) { context in
            CollectorParts(sources: [AMDGPUSource(sysfs: context.sysfs, nodeName: context.nodeName, discoveryInterval: context.discoveryInterval,
                                                  pcieBandwidthInterval: interval, logger: context.logger)])
        }
    }
}
