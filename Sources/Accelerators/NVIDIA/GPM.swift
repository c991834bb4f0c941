internal import CNVML

/// NVML GPU Performance Monitoring (Hopper and later): profiling-grade activity without DCGM.
///
/// GPM values are averages over the time between two samples. Each device (a GPU, or a MIG slice sampled through
/// its GPU with `nvmlGpmMigSampleGet`) owns two sample buffers that the collector's own tick fills in turn: the
/// buffer filled this tick is `sample2`, last tick's is `sample1`. Nothing sleeps; the first tick after a start (or
/// after a sample that failed) has no values.
enum GPM {
    /// Where a metric's value goes in `DeviceSample`.
    enum Target: Sendable {
        case graphicsEngine, smActive, smOccupancy, memoryBandwidth
        case pipe(String)
        case pcie(direction: String)
        case nvlink(link: Int, direction: String)
    }

    struct Metric: Sendable {
        let id: UInt32
        let target: Target
        /// The value's name for the log and for `NVMLSource`'s set of values a device lacks.
        let name: String
    }

    /// The header and pynvml document the `*_PER_SEC` metrics in MiB/s. **UNVERIFIED** on hardware: docs/metrics.md
    /// says so until scripts/device-check.sh has compared GPM's PCIe rates with nvmlDeviceGetPcieThroughput's.
    static let bytesPerRateUnit: Double = 1_048_576

    /// Metrics every supported GPU and MIG slice is asked for (ids from pynvml 13.615.71). There is no FP8-only
    /// metric: FP8 tensor work counts in ANY_TENSOR_UTIL.
    static let activity: [Metric] = [
        Metric(id: 1, target: .graphicsEngine, name: "gpm graphics"),
        Metric(id: 2, target: .smActive, name: "gpm sm"),
        Metric(id: 3, target: .smOccupancy, name: "gpm sm occupancy"),
        Metric(id: 4, target: .pipe("integer"), name: "gpm integer"),
        Metric(id: 5, target: .pipe("tensor"), name: "gpm tensor"),
        Metric(id: 6, target: .pipe("tensor_dfma"), name: "gpm tensor dfma"),
        Metric(id: 7, target: .pipe("tensor_hmma"), name: "gpm tensor hmma"),
        Metric(id: 8, target: .pipe("tensor_dmma"), name: "gpm tensor dmma"),
        Metric(id: 9, target: .pipe("tensor_imma"), name: "gpm tensor imma"),
        Metric(id: 10, target: .memoryBandwidth, name: "gpm dram bandwidth"),
        Metric(id: 11, target: .pipe("fp64"), name: "gpm fp64"),
        Metric(id: 12, target: .pipe("fp32"), name: "gpm fp32"),
        Metric(id: 13, target: .pipe("fp16"), name: "gpm fp16"),
    ]

    /// The physical GPU's PCIe traffic (not asked of MIG slices).
    static let pcie: [Metric] = [
        Metric(id: 20, target: .pcie(direction: "tx"), name: "gpm pcie tx"),
        Metric(id: 21, target: .pcie(direction: "rx"), name: "gpm pcie rx"),
    ]

    /// Per-link NVLink rates, for links 0 ..< NVML_NVLINK_MAX_LINKS: RX = 62 + 2L and TX = 63 + 2L for links 0–17,
    /// 212 + 2(L − 18) and 213 + 2(L − 18) for links 18–35 (pynvml; UNVERIFIED on hardware, like their unit).
    static let nvlink: [[Metric]] = (0..<NVLinks.maxLinks).map { link in
        let rx = link < 18 ? 62 + 2 * link : 212 + 2 * (link - 18)
        return [Metric(id: UInt32(rx), target: .nvlink(link: link, direction: "rx"), name: "gpm nvlink \(link) rx"),
                Metric(id: UInt32(rx + 1), target: .nvlink(link: link, direction: "tx"), name: "gpm nvlink \(link) tx")]
    }

    /// The most metrics one nvmlGpmMetricsGet may carry: an R5xx driver's NVML_GPM_METRIC_MAX (98), which the
    /// largest request here (13 + 2 + 2 × 36 = 87) stays under.
    static let maxMetricsPerCall = 98

    /// `value` as this schema's unit: percent → ratio (0…1), MiB/s → bytes/s; nil for NaN, negatives and the like.
    static func convert(_ value: Double, _ target: Target) -> Double? {
        guard value.isFinite, value >= 0 else { return nil }
        switch target {
        case .pcie, .nvlink: return value * bytesPerRateUnit
        default: return min(value, 100) / 100
        }
    }

    static func store(_ value: Double, _ target: Target, into s: inout DeviceSample) {
        switch target {
        case .graphicsEngine: s.engineUtilizationRatio["gfx"] = value
        case .smActive: s.smActiveRatio = value
        case .smOccupancy: s.smOccupancyRatio = value
        case .memoryBandwidth: s.memoryBandwidthUtilizationRatio = value
        case .pipe(let pipe): s.pipeActiveRatio[pipe] = value
        case .pcie(let direction): s.pcieBandwidthBytesPerSecond[direction] = value
        case .nvlink(let link, let direction):
            s.interconnectBytesPerSecond[DeviceSample.InterconnectKey(link: NVLinks.labels[link], direction: direction)] = value
        }
    }
}

/// One device's GPM state: its two sample buffers and the metrics it answers.
///
/// The buffers are freed when this goes (the device left discovery, was lost, or the source went away); NVML is
/// never unloaded, so the free function stays valid.
final class GPMDevice {
    /// The MIG slice's GPU instance id (sampled through its GPU), or nil for a whole GPU.
    let gpuInstance: UInt32?
    private let free: @convention(c) (nvmlGpmSample_t?) -> nvmlReturn_t
    /// Allocated together on first use; nil while allocation fails.
    private(set) var buffers: (nvmlGpmSample_t, nvmlGpmSample_t)?
    /// The buffer this tick fills (0 or 1); the other holds last tick's sample when `previousValid`.
    var next = 0
    var previousValid = false
    /// The metrics asked for: the base set (activity, plus PCIe for a GPU) and NVLink for the active links,
    /// without those the device refused as not supported.
    private(set) var metrics: [GPM.Metric]
    private let base: [GPM.Metric]
    private(set) var refused: Set<UInt32> = []

    init(gpuInstance: UInt32?, free: @escaping @convention(c) (nvmlGpmSample_t?) -> nvmlReturn_t) {
        self.gpuInstance = gpuInstance
        self.free = free
        base = gpuInstance == nil ? GPM.activity + GPM.pcie : GPM.activity
        metrics = base
    }

    deinit {
        if let buffers {
            _ = free(buffers.0)
            _ = free(buffers.1)
        }
    }

    func adopt(_ a: nvmlGpmSample_t, _ b: nvmlGpmSample_t) { buffers = (a, b) }

    /// Asks for the NVLink rates of these links from now on.
    func setLinks(_ links: [Int]) {
        metrics = (base + links.flatMap { GPM.nvlink[$0] }).filter { !refused.contains($0.id) }
    }

    /// The device answered NOT_SUPPORTED (or the like) for this metric: never asked again.
    func refuse(_ id: UInt32) {
        refused.insert(id)
        metrics.removeAll { $0.id == id }
    }

    /// The next sample has nothing to pair with (after a failure or a lost device).
    func reset() { previousValid = false }
}
