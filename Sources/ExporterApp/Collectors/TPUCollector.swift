import Accelerators
import ArgumentParser
import CommandLineSupport
import Exporter
import Lifecycle
import Logging
import TPURuntimeClient

/// Google TPU chips on the PCI bus, with utilization, HBM and the HLO queue from a running workload's libtpu.
struct TPUCollector: Collector {
    static let name = "tpu"

    @Flag(name: .customLong("collector.tpu"), inversion: .prefixedNo,
          help: "Google TPU chips through PCI sysfs (vendor 0x1ae0), listed with or without a workload; utilization, HBM and the HLO queue from a running workload's libtpu runtime metrics.")
    var enabled = true

    @Option(name: .customLong("tpu.runtime-metrics-address"),
            help: "libtpu runtime-metrics gRPC endpoints (host:port, comma-separated), each standing for every TPU chip of the node; empty: chips only. The port listens in the workload's network namespace: localhost reaches host-network workloads.")
    var runtimeAddress = "localhost:8431"

    @Option(name: .customLong("tpu.runtime-metrics-interval"), help: "How often each libtpu endpoint is polled (never per scrape), e.g. 2s.")
    var runtimeInterval = "2s"

    func factory() throws -> CollectorFactory {
        let addresses = runtimeAddress.split(separator: ",").map { String($0).trimmingASCIIWhitespace() }.filter { !$0.isEmpty }
        for address in addresses {
            if case .failure(let error) = TPURuntimeAddress.parse(address) { throw ValidationError("--tpu.runtime-metrics-address: \(error)") }
        }
        let refresh = try CommandLineSupport.parseDuration(runtimeInterval, flag: "--tpu.runtime-metrics-interval", minimum: 0.1)
        return CollectorFactory(name: Self.name) { context in
            // Empty addresses: chips only, nothing polled. Otherwise the TPU pods' own endpoints (with pod
            // attribution and the pod watch) come first, the fixed addresses (host-network workloads) after them.
            guard !addresses.isEmpty else {
                return CollectorParts(sources: [TPUSource(sysfs: context.sysfs, nodeName: context.nodeName,
                                                          discoveryInterval: context.discoveryInterval, runtime: nil, logger: context.logger)])
            }
            let fixed = addresses.map { TPURuntimeTarget(address: $0) }
            let podTargets = context.tpuPodTargets
            var logger = context.logger
            logger[metadataKey: "collector"] = "tpu_runtime"
            // Each call's deadline: at most a second, and within the interval.
            let runtime = TPURuntimeClient(
                configuration: .init(targets: { (podTargets?() ?? []) + fixed }, refreshInterval: refresh, callTimeout: min(1, refresh)),
                logger: logger)
            return CollectorParts(
                sources: [TPUSource(sysfs: context.sysfs, nodeName: context.nodeName, discoveryInterval: context.discoveryInterval,
                                    runtime: runtime, logger: context.logger)],
                components: [Component("tpu-runtime", stop: { runtime.stop() })],
                // Only once the TPU source found a chip and started polling: other nodes show no tpu_runtime status.
                tickStep: { tick in if runtime.isActive { TPURuntimeStatus.apply(runtime.reports, to: &tick) } })
        }
    }
}
