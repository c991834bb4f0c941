/// The vendor-neutral reading of one accelerator at one tick, in base units.
///
/// Every source fills the same value; one renderer turns it into DESIGN.md's schema, so no vendor invents its own
/// names. An absent value is `nil` (or a missing key): hardware "not available" sentinels never become numbers.
public struct DeviceSample: Sendable, Equatable {
    /// Who the device is; its labels go on every series.
    public var identity: DeviceIdentity
    /// `false` when the device stopped answering this tick: the renderer then emits `accelerator_up 0` and nothing
    /// else for it but its info series.
    public var up: Bool

    /// 0–1: the main engine's busy share as the vendor reports it (NVML `nvmlDeviceGetUtilizationRates` `gpu`, amdgpu
    /// `gpu_busy_percent`, Gaudi `HL_INFO_DEVICE_UTILIZATION`, TPU duty cycle).
    public var utilizationRatio: Double?
    /// Keyed by DESIGN.md's `engine` vocabulary (`gfx`, `compute`, `copy`, `video_decode`, `video_encode`,
    /// `memory_controller`), plus `video` for engines that both decode and encode (Intel, AMD VCN) and `jpeg`.
    public var engineUtilizationRatio: [String: Double] = [:]
    /// Keyed by `memory` label (`vram`, `gtt`, `vis_vram`, `hbm`).
    public var memoryUsedBytes: [String: Double] = [:]
    /// Keyed by `memory`, as ``memoryUsedBytes``.
    public var memoryTotalBytes: [String: Double] = [:]
    /// Keyed by `sensor` (`edge`, `junction`, `memory`, `hbm0`…).
    public var temperatureCelsius: [String: Double] = [:]
    /// NVML `nvmlDeviceGetPowerUsage`, hwmon's first power channel (average, else input, else derived
    /// from its energy counter), or AMD gpu_metrics socket power.
    public var powerWatts: Double?
    /// The enforced cap: NVML `nvmlDeviceGetEnforcedPowerLimit`, hwmon `cap` (else `max`), Gaudi `max_power`.
    public var powerLimitWatts: Double?
    /// A counter: NVML `nvmlDeviceGetTotalEnergyConsumption`, AMD gpu_metrics' energy accumulator, or hwmon
    /// `energy*_input`.
    public var energyJoules: Double?
    /// Keyed by `clock` (`graphics`, `sm`, `memory`, `video`, `soc`, `fabric`).
    public var clockHertz: [String: Double] = [:]
    /// Clocks of parts with several GTs (Intel i915/xe: one frequency domain per GT, `gt0`, `gt1`…), rendered into
    /// `accelerator_clock_hertz` with a `gt` label next to `clock`.
    public var gtClockHertz: [GTClockKey: Double] = [:]
    /// Keyed by `sensor`.
    public var fanSpeedRatio: [String: Double] = [:]
    /// Keyed by `sensor`: hwmon and gpu_metrics report fan speed in RPM, not as a ratio.
    public var fanSpeedRPM: [String: Double] = [:]
    /// Keyed by `sensor` (hwmon voltage channel labels).
    public var voltageVolts: [String: Double] = [:]
    /// Current speed per lane: 16 GT/s is `16e9`.
    public var pcieLinkSpeedTransfersPerSecond: Double?
    /// Current lanes.
    public var pcieLinkWidth: Double?
    /// Keyed by `direction`: `rx`, `tx`, or `total` where the hardware gives only the sum (AMD gpu_metrics).
    public var pcieBandwidthBytesPerSecond: [String: Double] = [:]
    /// Cumulative bytes per link and direction (NVLink `nvlink0`…, AMD `xgmi0`…).
    public var interconnectBytes: [InterconnectKey: Double] = [:]
    /// Bytes per second per link and direction between the last two samples (NVIDIA GPM's NVLink rates; else from
    /// `interconnectBytes` where the hardware gives only counters); the conformance suite's name rules find
    /// interconnect bandwidth by this.
    public var interconnectBytesPerSecond: [InterconnectKey: Double] = [:]
    /// Saturation (NVIDIA GPM, Hopper and later), each averaged over the interval since the previous tick: the
    /// share of SMs busy, resident warps against the maximum, and device-memory bandwidth against its peak.
    public var smActiveRatio: Double?
    /// 0–1; see ``smActiveRatio``.
    public var smOccupancyRatio: Double?
    /// 0–1; see ``smActiveRatio``.
    public var memoryBandwidthUtilizationRatio: Double?
    /// Keyed by `pipe`: `tensor` (any), `tensor_hmma`, `tensor_imma`, `tensor_dfma`, `tensor_dmma`, `fp64`, `fp32`,
    /// `fp16`, `integer`.
    public var pipeActiveRatio: [String: Double] = [:]
    /// Keyed by `reason`; 1 while it holds, 0 otherwise.
    public var throttleActive: [String: Double] = [:]
    /// Keyed by `type`: lifetime (aggregate) counts that survive driver reloads.
    public var errors: [String: Double] = [:]
    /// Keyed by `type`: counts since the driver loaded (NVML "volatile" ECC), which reset; their own family so a
    /// `sum()` never adds them to the lifetime counts.
    public var volatileErrors: [String: Double] = [:]
    /// Keyed by `memory`: memory the driver and firmware reserve (NVML `_v2` memory info), not in `used`.
    public var memoryReservedBytes: [String: Double] = [:]
    /// 0 (P0, maximum performance) … 15 (minimum).
    public var performanceState: Double?
    /// 1 while a row remapping waits for a GPU reset; 1 once a remapping failed (the GPU needs service).
    public var rowRemapPending: Double?
    /// 1 once a remapping failed (the GPU needs service).
    public var rowRemapFailure: Double?
    /// 1 while retired pages wait for a driver reload (GPUs before row remapping).
    public var retiredPagesPending: Double?
    /// XID critical errors seen since the exporter started, keyed by the XID number.
    public var xidErrors: [String: Double] = [:]
    /// TPU (libtpu runtime metrics): HLO programs waiting in the chip's queue, summed over its cores.
    public var hloQueueSize: Double?
    /// TPU (libtpu runtime metrics): execution times of HLO programs (seconds), merged over the chip's cores.
    public var hloExecutionSeconds: DeviceHistogram?
    /// TPU (libtpu `tpu.runtime.hbm.utilization.percent` / 100) **[UNVERIFIED: bandwidth or capacity]**: kept out of
    /// `engineUtilizationRatio` and `memoryUsedBytes` until its meaning is confirmed on a device.
    public var hbmUtilizationRatio: Double?
    /// Processes using the device this tick (NVML compute and MPS processes with per-process utilization).
    /// Not exported per PID: the attribution layer maps them to pods.
    public var processes: [ProcessUsage] = []

    /// A sample with no readings yet; the source fills what the device reports.
    public init(identity: DeviceIdentity, up: Bool = true) {
        self.identity = identity
        self.up = up
    }

    /// One link and direction of ``interconnectBytes``.
    public struct InterconnectKey: Sendable, Hashable, Comparable {
        /// `nvlink0`, `xgmi0`, …
        public var link: String
        /// `rx` or `tx`.
        public var direction: String
        /// Unchecked.
        public init(link: String, direction: String) {
            self.link = link
            self.direction = direction
        }
        /// By link, then direction.
        public static func < (a: Self, b: Self) -> Bool { (a.link, a.direction) < (b.link, b.direction) }
    }

    /// One clock domain of one GT (``gtClockHertz``).
    public struct GTClockKey: Sendable, Hashable, Comparable {
        /// The `clock` label, as in ``clockHertz``.
        public var clock: String
        /// `gt0`, `gt1`, …
        public var gt: String
        /// Unchecked.
        public init(clock: String, gt: String) {
            self.clock = clock
            self.gt = gt
        }
        /// By clock, then GT.
        public static func < (a: Self, b: Self) -> Bool { (a.clock, a.gt) < (b.clock, b.gt) }
    }

    /// Drops every reading, keeping identity: what a device that stopped answering shows.
    public mutating func clearReadings() {
        self = DeviceSample(identity: identity, up: up)
    }
}

/// One process's use of one device in one tick.
public struct ProcessUsage: Sendable, Equatable {
    /// The NVML list the process came from: compute or MPS compute (no source reads graphics processes yet).
    public enum Kind: String, Sendable { case compute, mps, graphics }
    /// As NVML or DRM fdinfo reports it; resolved to a pod through `--path.procfs`.
    public var pid: Int32
    public var kind: Kind
    /// Device memory the process holds; nil when the driver reports it as not available.
    public var memoryUsedBytes: Double?
    /// Keyed by DESIGN.md's engine vocabulary: `compute` (SM), `memory_controller`, `video_encode`, `video_decode`.
    public var engineUtilizationRatio: [String: Double] = [:]

    /// Per-process readings, as the source got them.
    public init(pid: Int32, kind: Kind, memoryUsedBytes: Double? = nil, engineUtilizationRatio: [String: Double] = [:]) {
        self.pid = pid
        self.kind = kind
        self.memoryUsedBytes = memoryUsedBytes
        self.engineUtilizationRatio = engineUtilizationRatio
    }
}

/// Who a device is. `accelerator`, `vendor`, `model` and `pci_bus_id` go on every series; `info` only on `accelerator_info`.
/// Names by which device plugins, DRA drivers and CDI specs refer to a device, beyond its `accelerator` id and PCI
/// address: what a source knows and the attribution join may need.
public struct DeviceAliases: Sendable, Equatable, Hashable {
    /// DRM node names (`card1`, `renderD128`): Intel's device plugin names devices by card.
    public var cardNames: [String] = []
    /// NVIDIA `/dev/nvidia<N>` minor number: NVIDIA's DRA driver names full GPUs `gpu-<N>`.
    public var minorNumber: Int?
    /// Further exact ids (TPU chip index, Gaudi module id, AMD `unique_id`).
    public var otherIDs: [String] = []

    /// Each defaults to empty: no alias known.
    public init(cardNames: [String] = [], minorNumber: Int? = nil, otherIDs: [String] = []) {
        self.cardNames = cardNames
        self.minorNumber = minorNumber
        self.otherIDs = otherIDs
    }
}

/// Who a device is: the identity labels every series carries, and ``info`` for `accelerator_info`.
public struct DeviceIdentity: Sendable, Equatable, Hashable {
    /// Stable id: UUID for NVIDIA, `unique_id`/serial else PCI address for others.
    public var accelerator: String
    /// `nvidia`, `amd`, `intel`, `habana` or `google`.
    public var vendor: String
    /// The product name as the driver or library reports it.
    public var model: String
    /// PCI address (`0000:03:00.0`): the `pci_bus_id` label of every series of the device (a MIG slice's is its
    /// parent's), and the key that joins hwmon chips and pod-resources ids.
    public var pciAddress: String?
    /// Static facts for `accelerator_info` (`driver`, `vbios`, `serial`, …), without the identity labels.
    public var info: [(String, String)] {
        get { infoPairs.map { ($0.name, $0.value) } }
        set { infoPairs = newValue.map { InfoPair(name: $0.0, value: $0.1) } }
    }
    var infoPairs: [InfoPair] = []
    /// Other names the node uses for this device, for pod attribution only (never rendered as labels).
    public var aliases = DeviceAliases()

    struct InfoPair: Sendable, Hashable {
        var name: String
        var value: String
    }

    /// `info` pairs keep their order; aliases start empty.
    public init(accelerator: String, vendor: String, model: String, pciAddress: String? = nil, info: [(String, String)] = []) {
        self.accelerator = accelerator
        self.vendor = vendor
        self.model = model
        self.pciAddress = pciAddress
        self.info = info
    }
}
