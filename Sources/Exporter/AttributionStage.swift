import Kubernetes
import Accelerators
import Attribution
import Exposition
import KubeletClient
import Logging
import MetricSchema

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
    private let podWatch: NodePodWatch?
    private let resourceSlices: ResourceSliceWatch?
    private let podLabels: [String]
    /// Filled each tick with the TPU pods' runtime-metrics endpoints (pod IP, chips held), for the TPU client.
    let tpuTargets: TPUPodTargets?
    private var attributor: Attributor
    private var lastUnmatched: (plugin: Int, dra: Int, allocatable: Int) = (0, 0, 0)

    /// `podWatch` (the node's pod watch) names pods for per-process attribution and carries the allow-listed
    /// `podLabels`; without it, `podDirectory` (the kubelet's pod log directories) names them. `resourceSlices`
    /// adds the DRA devices' attributes to the claim join.
    init(kubelet: PodResourcesClient, podWatch: NodePodWatch? = nil, podDirectory: (any PodDirectory)?,
         resourceSlices: ResourceSliceWatch? = nil, podLabels: [String] = [], tpuTargets: TPUPodTargets? = nil,
         processes: Bool, procfs: FileRoot, scanDRM: Bool, extraResourceNames: Set<String>, logger: Logger) {
        self.tpuTargets = tpuTargets
        self.kubelet = kubelet
        self.podWatch = podWatch
        self.resourceSlices = resourceSlices
        self.podLabels = podLabels
        self.podDirectory = podWatch ?? podDirectory
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
        // Up while a List is being served: the last one succeeded, or failed calls are still within the bound
        // for which the last good one stays valid.
        tick.extraFamilies.append(Self.upFamily(status.list != nil))
        guard let list = status.list else { return }
        let keys = tick.devices.map { AcceleratorKeys(identity: $0.identity) }
        var options = self.options
        options.allocatable = status.allocatable
        if let resourceSlices { options.resourceSliceAttributes = resourceSlices.attributionAttributes }
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
        if let tpuTargets, let podWatch {
            tpuTargets.set(TPUPodTargets.targets(table, devices: tick.devices, pods: podWatch.entries))
        }
        if let podWatch, !podLabels.isEmpty, let labels = Self.podLabelsFamily(table, pods: podWatch.entries, allowed: podLabels) {
            tick.extraFamilies.append(labels)
        }
        tick.extraFamilies += AttributionMetrics.diagnosticFamilies(allocations: table, shares: result.shares.diagnostics)
        logUnmatched(table, allocatable: status.allocatable, devices: keys)
    }

    static func upFamily(_ up: Bool) -> MetricFamily {
        Families.Exporter.attributionUp.family([Sample(labels: [], value: up ? 1 : 0)])
    }

    /// `accelerator_pod_labels{namespace,pod,label_<name>…} 1` for each pod holding an accelerator on this node, with
    /// the allow-listed pod labels (`--kubernetes.pod-labels`), as kube-state-metrics spells them: a join target for
    /// `accelerator_allocated` on (namespace, pod). Pods with none of the labels get no series.
    static func podLabelsFamily(_ table: AllocationTable, pods: [NodePodWatch.Entry], allowed: [String]) -> MetricFamily? {
        let holding = Set(table.allocations.map { "\($0.namespace)/\($0.pod)" })
        var family = Families.Pod.labels.family()
        for pod in pods where holding.contains("\(pod.namespace)/\(pod.name)") {
            var labels = [Label("namespace", pod.namespace), Label("pod", pod.name)]
            for name in allowed {
                if let value = pod.labels[name] { labels.append(Label(PodLabelNames.sanitized(name), value)) }
            }
            guard labels.count > 2 else { continue }
            family.samples.append(Sample(labels: labels, value: 1))
        }
        return family.samples.isEmpty ? nil : family
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

/// Pod label names as Prometheus label names: `label_` plus the name with every character outside `[a-zA-Z0-9_]`
/// replaced by `_` (`app.kubernetes.io/name` → `label_app_kubernetes_io_name`), as kube-state-metrics does.
public enum PodLabelNames {
    /// At most this many allow-listed labels: with `namespace` and `pod`, the schema's budget of 8 labels a series.
    public static let limit = 6

    /// The `accelerator_pod_labels` label name for pod label `name`. Distinct pod labels may map to one name; nothing
    /// here tells them apart.
    public static func sanitized(_ name: String) -> String {
        "label_" + String(name.unicodeScalars.map { s -> Character in
            s.isASCII && (s.properties.isAlphabetic || ("0"..."9").contains(s) || s == "_") ? Character(s) : "_"
        })
    }
}

/// The TPU workloads' runtime-metrics endpoints found through attribution and the pod watch: libtpu's port listens in
/// the workload's network namespace, so the exporter reaches it at the pod's IP, and a pod given some of a host's
/// chips numbers them from 0 in its own order — so each target carries the chips its pod holds.
final class TPUPodTargets: Sendable {
    /// libtpu's runtime-metrics port.
    static let port = 8431
    private let current = Locked<[TPURuntimeTarget]>([])

    var targets: [TPURuntimeTarget] { current.withLock { $0 } }
    func set(_ targets: [TPURuntimeTarget]) { current.withLock { $0 = targets } }

    /// One target per Running pod with an IP that holds TPU chips, its chips in PCI address order (the order libtpu
    /// numbers them in, **[UNVERIFIED]**, as in the TPU source).
    static func targets(_ table: AllocationTable, devices: [DeviceSample], pods: [NodePodWatch.Entry]) -> [TPURuntimeTarget] {
        var pci: [String: String] = [:]
        for d in devices where d.identity.vendor == "google" { pci[d.identity.accelerator] = d.identity.pciAddress ?? d.identity.accelerator }
        var chips: [String: Set<String>] = [:]
        for a in table.allocations {
            if let address = pci[a.accelerator] { chips["\(a.namespace)/\(a.pod)", default: []].insert(address) }
        }
        var out: [TPURuntimeTarget] = []
        for pod in pods where pod.phase == "Running" {
            let key = "\(pod.namespace)/\(pod.name)"
            guard let held = chips[key], let ip = pod.podIP, !ip.isEmpty else { continue }
            let host = ip.contains(":") ? "[\(ip)]" : ip
            out.append(TPURuntimeTarget(address: "\(host):\(port)", chips: held.sorted(), owner: key))
        }
        return out
    }
}
