public import Exposition
import MetricSchema

/// DESIGN.md's attribution families (defined in `MetricSchema`). Labels: the device identity first (`accelerator`,
/// `vendor`, `model`, `pci_bus_id`, as on every device series), then `namespace`, `pod`, `container` and, for DRA
/// allocations only, `claim` — 8 at most.
public enum AttributionMetrics {
    /// Families with samples in a deterministic order (sorted by accelerator, namespace, pod, container, claim).
    /// Allocations and shares of accelerators not in `devices` are dropped: they have no vendor or model.
    public static func families(allocations: AllocationTable, shares: [PodShare], devices: [AcceleratorKeys]) -> [MetricFamily] {
        var identity: [String: [Label]] = [:]
        for d in devices where identity[d.accelerator] == nil {
            var labels = [Label(SchemaLabel.accelerator, d.accelerator), Label(SchemaLabel.vendor, d.vendor), Label(SchemaLabel.model, d.model)]
            if let pci = d.pciAddress, !pci.isEmpty { labels.append(Label(SchemaLabel.pciBusID, pci)) }
            identity[d.accelerator] = labels
        }
        func base(_ accelerator: String) -> [Label]? { identity[accelerator] }
        var allocated = Families.Pod.allocated.family()
        for a in allocations.allocations.sorted() {
            guard var labels = base(a.accelerator) else { continue }
            labels += [Label(SchemaLabel.namespace, a.namespace), Label(SchemaLabel.pod, a.pod), Label(SchemaLabel.container, a.container)]
            if let claim = a.claim { labels.append(Label(SchemaLabel.claim, claim)) }
            allocated.samples.append(Sample(labels: labels, value: 1))
        }
        var utilization = Families.Pod.utilization.family()
        var memory = Families.Pod.memoryUsed.family()
        for s in shares.sorted() {
            guard var labels = base(s.accelerator) else { continue }
            labels += [Label(SchemaLabel.namespace, s.holder.namespace), Label(SchemaLabel.pod, s.holder.pod), Label(SchemaLabel.container, s.holder.container)]
            if let u = s.utilizationRatio { utilization.samples.append(Sample(labels: labels, value: u)) }
            if let m = s.memoryUsedBytes { memory.samples.append(Sample(labels: labels, value: m)) }
        }
        return [allocated, memory, utilization].filter { !$0.samples.isEmpty }
    }

    /// The exporter's own view of what attribution could not place, for `accel_exporter_*` self-metrics: ids
    /// that named no accelerator (by `source`) and per-process records left out of per-pod shares (by `reason`).
    public static func diagnosticFamilies(allocations: AllocationTable, shares: ShareDiagnostics) -> [MetricFamily] {
        var unmatched = Families.Exporter.attributionUnmatchedDevices.family()
        unmatched.samples = [
            Sample(labels: [Label("source", "device_plugin")], value: Double(allocations.unknownDevicePluginIDs.count)),
            Sample(labels: [Label("source", "dra")], value: Double(allocations.unknownDRADevices.count)),
        ]
        var skipped = Families.Exporter.attributionSkippedProcesses.family()
        skipped.samples = [
            ("no_pod", shares.unattributedProcesses), ("unknown_pod", shares.unknownPodUIDs),
            ("not_allocated", shares.unallocatedProcesses), ("unmapped_drm_client", shares.unmappedDRMClients),
        ].map { Sample(labels: [Label("reason", $0.0)], value: Double($0.1)) }
        var noData = Families.Exporter.attributionSharedWithoutProcessData.family()
        noData.samples = [Sample(labels: [], value: Double(shares.sharedWithoutProcessData))]
        return [noData, skipped, unmatched]
    }
}
