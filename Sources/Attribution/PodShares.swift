public import Accelerators

/// What the pod watch knows about one pod, keyed by pod UID in the inputs.
public struct PodInfo: Sendable, Equatable {
    /// The pod's namespace and name, the per-pod series' `namespace` and `pod`.
    public var namespace: String
    public var name: String
    /// Runtime container id → container name, from `status.containerStatuses[].containerID` (`containerd://<id>`,
    /// `cri-o://<id>`, `docker://<id>` or a bare id).
    public var containers: [String: String]

    /// Container ids may carry a runtime prefix (`containerd://`); they are stored bare and lower-cased.
    public init(namespace: String, name: String, containers: [String: String] = [:]) {
        self.namespace = namespace
        self.name = name
        self.containers = [:]
        for (id, container) in containers { self.containers[Self.bareID(id)] = container }
    }

    static func bareID(_ id: String) -> String {
        if let r = id.firstRange(of: "://") { return String(id[r.upperBound...]).lowercased() }
        return id.lowercased()
    }
}

/// One container's share of one accelerator: one `accelerator_pod_*` series pair.
public struct PodShare: Sendable, Equatable, Comparable {
    public var accelerator: String
    public var holder: Holder
    /// 0–1; nil when it cannot be told (see ``PodShareCalculator``).
    public var utilizationRatio: Double?
    /// Nil when it cannot be told (see ``PodShareCalculator``).
    public var memoryUsedBytes: Double?
    /// `true`: the device's own figures (exclusive allocation); `false`: summed from per-process usage.
    public var exclusive: Bool

    /// Built by ``PodShareCalculator``; tests build them by hand.
    public init(accelerator: String, holder: Holder, utilizationRatio: Double?, memoryUsedBytes: Double?, exclusive: Bool) {
        self.accelerator = accelerator
        self.holder = holder
        self.utilizationRatio = utilizationRatio
        self.memoryUsedBytes = memoryUsedBytes
        self.exclusive = exclusive
    }

    /// By accelerator, then holder.
    public static func < (a: Self, b: Self) -> Bool { (a.accelerator, a.holder) < (b.accelerator, b.holder) }
}

/// Counts for logs and self-metrics: what could not be attributed, and why.
public struct ShareDiagnostics: Sendable, Equatable {
    /// Processes on a shared, allocated device whose pod could not be told (not in a pod, gone, unreadable cgroup).
    public var unattributedProcesses = 0
    /// Processes in pods the pod watch does not know (yet): skipped, since a UID alone names no holder.
    public var unknownPodUIDs = 0
    /// Processes in a known pod that holds no allocation of the device they use (e.g. `NVIDIA_VISIBLE_DEVICES=all`).
    public var unallocatedProcesses = 0
    /// DRM clients whose `drm-pdev` is missing or names no known accelerator.
    public var unmappedDRMClients = 0
    /// Shared devices with holders but no per-process data: their per-pod series are absent.
    public var sharedWithoutProcessData = 0

    /// All counts 0.
    public init() {}
}

/// One tick's shares, sorted, and what could not be attributed.
public struct PodShareResult: Sendable, Equatable {
    public var shares: [PodShare]
    public var diagnostics: ShareDiagnostics
}

/// DESIGN.md's rule for `accelerator_pod_utilization_ratio` / `accelerator_pod_memory_used_bytes`:
/// - a device allocated to exactly one container and not handed out as shares → the device's own figures;
/// - a shared device with per-process data (NVML processes, DRM fdinfo clients) → each holder's measured sum;
///   a holder with no processes gets 0 only when every process on the device was attributed, else nothing;
/// - a shared device without per-process data → nothing: the device figure is never copied to every sharer.
///
/// Processes whose pod UID the pod watch does not know (yet) are skipped, not exported under their UID: the
/// schema has no `uid` label and a UID-only series would churn once the watch catches up. They are counted in
/// `ShareDiagnostics.unknownPodUIDs`, and they make the device's attribution incomplete, so idle holders then get no
/// series rather than a 0 that may be wrong.
public enum PodShareCalculator {
    /// - Parameters:
    ///   - devices: this tick's samples (device figures and NVML `processes`).
    ///   - drmUsage: DRM clients over the last interval (`DRMUsageTracker`), joined to devices by `drm-pdev`.
    ///   - processPods: PID → pod for the PIDs in `processes` and `drmUsage` (`ProcessPodResolver`).
    ///   - pods: pod UID → namespace/name/containers (the pod watch).
    ///   - perProcessCapable: accelerators whose per-process source answered this tick, so that an empty process
    ///     list means "nobody is using it" (shares of 0) rather than "no data".
    public static func compute(devices: [DeviceSample], allocations: AllocationTable, drmUsage: [DRMClientUsage] = [],
                               processPods: [Int32: ProcessPod], pods: [String: PodInfo],
                               perProcessCapable: Set<String> = []) -> PodShareResult {
        var diagnostics = ShareDiagnostics()
        var holdersByDevice: [String: Set<Holder>] = [:]
        for a in allocations.allocations { holdersByDevice[a.accelerator, default: []].insert(a.holder) }

        // Per-process records per accelerator.
        var records: [String: [Record]] = [:]
        for d in devices where d.up {
            var seen: Set<Int32> = []
            for p in d.processes where seen.insert(p.pid).inserted {
                records[d.identity.accelerator, default: []].append(
                    Record(pids: [p.pid], utilization: p.engineUtilizationRatio["compute"], memory: p.memoryUsedBytes))
            }
        }
        let index = DeviceIndex(devices.map { AcceleratorKeys(identity: $0.identity) })
        for client in drmUsage {
            guard !client.key.pdev.isEmpty, let i = index.lookupPCI(client.key.pdev) else {
                diagnostics.unmappedDRMClients += 1
                continue
            }
            records[index.devices[i].accelerator, default: []].append(
                Record(pids: client.pids, utilization: client.utilization, memory: client.deviceMemoryBytes))
        }

        var shares: [PodShare] = []
        for d in devices where d.up {
            let accelerator = d.identity.accelerator
            guard let holders = holdersByDevice[accelerator], !holders.isEmpty else { continue }
            if holders.count == 1 && !allocations.shared.contains(accelerator) {
                let memory = d.memoryUsedBytes["vram"] ?? d.memoryUsedBytes["hbm"]
                if d.utilizationRatio != nil || memory != nil {
                    shares.append(PodShare(accelerator: accelerator, holder: holders.first!, utilizationRatio: d.utilizationRatio,
                                           memoryUsedBytes: memory, exclusive: true))
                }
                continue
            }
            let list = records[accelerator] ?? []
            guard !list.isEmpty || perProcessCapable.contains(accelerator) else {
                diagnostics.sharedWithoutProcessData += 1
                continue
            }
            let utilizationMeasured = list.isEmpty || list.contains { $0.utilization != nil }
            let memoryMeasured = list.isEmpty || list.contains { $0.memory != nil }
            var utilization: [Holder: Double] = [:]
            var memory: [Holder: Double] = [:]
            var complete = true
            for r in list {
                switch holder(of: r, holders: holders, processPods: processPods, pods: pods) {
                case .holder(let h):
                    utilization[h, default: 0] += r.utilization ?? 0
                    memory[h, default: 0] += r.memory ?? 0
                case .notAHolder:
                    diagnostics.unallocatedProcesses += 1
                case .unknownPod:
                    diagnostics.unknownPodUIDs += 1
                    complete = false
                case .unattributed:
                    diagnostics.unattributedProcesses += 1
                    complete = false
                }
            }
            for h in holders.sorted() {
                let measured = utilization[h] != nil
                guard measured || complete else { continue }
                let u = utilizationMeasured ? min(1, utilization[h] ?? 0) : nil
                let m = memoryMeasured ? (memory[h] ?? 0) : nil
                if u != nil || m != nil {
                    shares.append(PodShare(accelerator: accelerator, holder: h, utilizationRatio: u, memoryUsedBytes: m, exclusive: false))
                }
            }
        }
        shares.sort()
        return PodShareResult(shares: shares, diagnostics: diagnostics)
    }

    struct Record {
        var pids: [Int32]
        var utilization: Double?
        var memory: Double?
    }

    enum Owner { case holder(Holder), notAHolder, unknownPod, unattributed }

    /// The holder a record's processes belong to: the first PID that resolves to a pod decides.
    static func holder(of r: Record, holders: Set<Holder>, processPods: [Int32: ProcessPod], pods: [String: PodInfo]) -> Owner {
        guard let pp = r.pids.lazy.compactMap({ processPods[$0] }).first else { return .unattributed }
        guard let pod = pods[pp.podUID] else { return .unknownPod }
        let inPod = holders.filter { $0.namespace == pod.namespace && $0.pod == pod.name }
        if let id = pp.containerID, let name = pod.containers[id] {
            let h = Holder(namespace: pod.namespace, pod: pod.name, container: name)
            return inPod.contains(h) ? .holder(h) : .notAHolder
        }
        // Container not known to the watch yet: unambiguous only if one container of the pod holds the device.
        if inPod.count == 1 { return .holder(inPod.first!) }
        return inPod.isEmpty ? .notAHolder : .unattributed
    }
}
