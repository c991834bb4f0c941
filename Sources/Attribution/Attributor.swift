public import Accelerators
public import Exposition

/// The per-tick attribution pass the sampler runs: scan DRM fdinfo, resolve PIDs to pods, compute shares, build
/// families. The allocation table comes from the pod-resources refresh (its own interval, never per scrape).
public struct Attributor: Sendable {
    /// The PID → pod cache, exposed so its size can be checked (``ProcessPodResolver/cachedCount``).
    public private(set) var resolver: ProcessPodResolver
    private var drmTracker = DRMUsageTracker()
    private let drmScanner: DRMFdinfoScanner?

    /// `scanDRM: false` on nodes without DRM accelerators (NVIDIA only) saves the /proc walk.
    public init(procfs: FileRoot, scanDRM: Bool = true) {
        resolver = ProcessPodResolver(procfs: procfs)
        drmScanner = scanDRM ? DRMFdinfoScanner(procfs: procfs) : nil
    }

    /// One tick's shares (with what could not be attributed) and the per-pod families built from them.
    public struct TickResult: Sendable {
        public var shares: PodShareResult
        public var families: [MetricFamily]
    }

    /// Runs once per sample tick on the sampler thread, after the devices are sampled; `pods` is keyed by pod
    /// UID and `perProcessCapable` names the accelerators whose per-process source answered this tick (see
    /// ``PodShareCalculator/compute(devices:allocations:drmUsage:processPods:pods:perProcessCapable:)``).
    public mutating func tick(devices: [DeviceSample], allocations: AllocationTable, pods: [String: PodInfo],
                              perProcessCapable: Set<String> = [], at now: MonotonicInstant) -> TickResult {
        let drm = drmScanner.map { drmTracker.update($0.scan(at: now)) } ?? []
        var pids: [Int32] = []
        for d in devices { pids += d.processes.map(\.pid) }
        for c in drm { pids += c.pids }
        let processPods = resolver.resolve(pids)
        let shares = PodShareCalculator.compute(devices: devices, allocations: allocations, drmUsage: drm,
                                                processPods: processPods, pods: pods, perProcessCapable: perProcessCapable)
        let keys = devices.map { AcceleratorKeys(identity: $0.identity) }
        return TickResult(shares: shares, families: AttributionMetrics.families(allocations: allocations, shares: shares.shares, devices: keys))
    }
}
