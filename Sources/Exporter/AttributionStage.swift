import Accelerators
import Attribution
import Exposition
import KubeletClient
import Logging

/// Runs attribution on each tick before it is rendered: the kubelet client's latest allocation table (refreshed on
/// its own interval, read here without waiting) joined to the tick's devices, plus per-process shares when
/// `--collector.processes` is on. Adds `accelerator_allocated`, `accelerator_pod_*`, the attribution diagnostics
/// and the `kubelet` collector status to the tick.
///
/// Used from the sampler thread only. `@unchecked Sendable`: `attributor` and the log-once fields are touched only
/// inside `apply`, which the single sampler thread calls (ticks never overlap).
final class AttributionStage: @unchecked Sendable {
    let kubelet: PodResourcesClient
    private let podDirectory: (any PodDirectory)?
    private let processes: Bool
    private let options: AllocationOptions
    private let logger: Logger
    private var attributor: Attributor
    private var lastUnmatched: (plugin: Int, dra: Int, allocatable: Int) = (0, 0, 0)

    init(kubelet: PodResourcesClient, podDirectory: (any PodDirectory)?, processes: Bool, procfs: FileRoot,
         scanDRM: Bool, extraResourceNames: Set<String>, logger: Logger) {
        self.kubelet = kubelet
        self.podDirectory = podDirectory
        self.processes = processes
        self.options = AllocationOptions(extraResourceNames: extraResourceNames)
        self.logger = logger
        attributor = Attributor(procfs: procfs, scanDRM: processes && scanDRM)
    }

    func apply(to tick: inout Sampler.Tick) {
        let status = kubelet.status
        // No `_success` series before the first List finished: a 0 for the exporter's first tick would be a false alarm.
        if status.attempted {
            tick.collectors.append(Sampler.CollectorStatus(name: "kubelet", success: status.success,
                                                           durationSeconds: status.durationSeconds, error: status.error))
        }
        guard let list = status.list else { return }
        let keys = tick.devices.map { AcceleratorKeys(identity: $0.identity) }
        var options = self.options
        options.allocatable = status.allocatable
        let table = AllocationMapper.map(list, devices: keys, options: options)
        let devices: [DeviceSample]
        if processes {
            devices = tick.devices
        } else {
            // Without host PIDs a PID names nothing here: shared devices get no per-pod series (never a copy).
            devices = tick.devices.map { d in
                var d = d
                d.processes = []
                return d
            }
        }
        let pods = processes ? (podDirectory?.pods(at: tick.startedAt) ?? [:]) : [:]
        let result = attributor.tick(devices: devices, allocations: table, pods: pods, at: tick.startedAt)
        tick.extraFamilies += result.families
        tick.extraFamilies += AttributionMetrics.diagnosticFamilies(allocations: table, shares: result.shares.diagnostics)
        logUnmatched(table, allocatable: status.allocatable, devices: keys)
    }

    /// One line when the number of ids that name no accelerator changes (a plugin/exporter id mismatch), not per tick.
    private func logUnmatched(_ table: AllocationTable, allocatable: AllocatableResources?, devices: [AcceleratorKeys]) {
        let advertised = allocatable.map { AllocationMapper.unmatchedAllocatable($0, devices: devices, options: options) } ?? UnmatchedIDs()
        let now = (table.unknownDevicePluginIDs.count, table.unknownDRADevices.count, advertised.count)
        guard now != lastUnmatched else { return }
        lastUnmatched = now
        if now.0 + now.1 + now.2 > 0 {
            let examples = (table.unknownDevicePluginIDs.samples + table.unknownDRADevices.samples + advertised.samples).prefix(5)
            logger.warning("pod-resources ids that name no accelerator this exporter sees",
                           metadata: ["allocated_device_plugin_ids": "\(now.0)", "allocated_dra_devices": "\(now.1)",
                                      "advertised_ids": "\(now.2)", "examples": "\(examples.joined(separator: ","))"])
        }
    }
}
