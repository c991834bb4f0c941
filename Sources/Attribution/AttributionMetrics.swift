public import Exposition

/// DESIGN.md's attribution families. Labels: `accelerator`, `vendor`, `model` first (as on every device series),
/// then `namespace`, `pod`, `container` and, for DRA allocations only, `claim` — 7 at most.
public enum AttributionMetrics {
    public static let definitions: [String: (help: String, unit: String?)] = [
        "accelerator_allocated": ("1 for each container an accelerator is allocated to (device plugin or DRA claim).", nil),
        "accelerator_pod_utilization_ratio":
            ("The container's share of the accelerator's main engine busy time (0-1): the device's own figure when allocated exclusively, the measured share when shared.", "ratio"),
        "accelerator_pod_memory_used_bytes":
            ("Device memory the container uses: the device's own figure when allocated exclusively, the measured share when shared.", "bytes"),
    ]

    /// Families with samples in a deterministic order (sorted by accelerator, namespace, pod, container, claim).
    /// Allocations and shares of accelerators not in `devices` are dropped: they have no vendor or model.
    public static func families(allocations: AllocationTable, shares: [PodShare], devices: [AcceleratorKeys]) -> [MetricFamily] {
        var identity: [String: (vendor: String, model: String)] = [:]
        for d in devices where identity[d.accelerator] == nil { identity[d.accelerator] = (d.vendor, d.model) }
        func base(_ accelerator: String) -> [Label]? {
            guard let id = identity[accelerator] else { return nil }
            return [Label("accelerator", accelerator), Label("vendor", id.vendor), Label("model", id.model)]
        }
        var allocated = family("accelerator_allocated")
        for a in allocations.allocations.sorted() {
            guard var labels = base(a.accelerator) else { continue }
            labels += [Label("namespace", a.namespace), Label("pod", a.pod), Label("container", a.container)]
            if let claim = a.claim { labels.append(Label("claim", claim)) }
            allocated.samples.append(Sample(labels: labels, value: 1))
        }
        var utilization = family("accelerator_pod_utilization_ratio")
        var memory = family("accelerator_pod_memory_used_bytes")
        for s in shares.sorted() {
            guard var labels = base(s.accelerator) else { continue }
            labels += [Label("namespace", s.holder.namespace), Label("pod", s.holder.pod), Label("container", s.holder.container)]
            if let u = s.utilizationRatio { utilization.samples.append(Sample(labels: labels, value: u)) }
            if let m = s.memoryUsedBytes { memory.samples.append(Sample(labels: labels, value: m)) }
        }
        return [allocated, memory, utilization].filter { !$0.samples.isEmpty }
    }

    /// The exporter's own view of what attribution could not place, for `accel_exporter_*` self-metrics: ids
    /// that named no accelerator (by `source`) and per-process records left out of per-pod shares (by `reason`).
    public static func diagnosticFamilies(allocations: AllocationTable, shares: ShareDiagnostics) -> [MetricFamily] {
        var unmatched = MetricFamily(name: "accel_exporter_attribution_unmatched_devices",
                                     help: "Device-plugin ids and DRA devices in the last pod-resources List that named no known accelerator.",
                                     kind: .gauge)
        unmatched.samples = [
            Sample(labels: [Label("source", "device_plugin")], value: Double(allocations.unknownDevicePluginIDs.count)),
            Sample(labels: [Label("source", "dra")], value: Double(allocations.unknownDRADevices.count)),
        ]
        var skipped = MetricFamily(name: "accel_exporter_attribution_skipped_processes",
                                   help: "Per-process usage records left out of per-pod shares in the last tick, by reason.",
                                   kind: .gauge)
        skipped.samples = [
            ("no_pod", shares.unattributedProcesses), ("unknown_pod", shares.unknownPodUIDs),
            ("not_allocated", shares.unallocatedProcesses), ("unmapped_drm_client", shares.unmappedDRMClients),
        ].map { Sample(labels: [Label("reason", $0.0)], value: Double($0.1)) }
        var noData = MetricFamily(name: "accel_exporter_attribution_shared_without_process_data",
                                  help: "Shared accelerators whose per-pod series are absent because no per-process usage was available.",
                                  kind: .gauge)
        noData.samples = [Sample(labels: [], value: Double(shares.sharedWithoutProcessData))]
        return [noData, skipped, unmatched]
    }

    static func family(_ name: String) -> MetricFamily {
        let d = definitions[name]!
        return MetricFamily(name: name, help: d.help, kind: .gauge, unit: d.unit)
    }
}
