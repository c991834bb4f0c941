internal import CNVML
import Exposition
public import Logging
import Synchronization
import MetricSchema

/// NVIDIA GPUs and MIG devices through NVML, loaded with dlopen.
///
/// Discovery (every `discoveryInterval`, and at once after a GPU is lost) keys devices on their UUID, never the
/// enumeration index, and probes GPM support and NVLink link state. Per tick each GPU costs about twenty NVML
/// calls, plus two for GPM where the GPU supports it (one sample, one metrics read; see `GPM`); a value the device
/// does not support is asked for once, logged once and then left out. A GPU that answers `GPU_IS_LOST` shows
/// `accelerator_up 0` and is re-probed every tick until it answers again. XID errors arrive on `XIDWatcher`'s
/// thread.
public final class NVMLSource: AcceleratorSource {
    /// The `collector` label and the `--collector.nvidia` flag.
    public let name = "nvidia"
    /// The soname loaded through the dynamic loader's search path when no `--nvml.library` is given.
    public static let defaultLibrary = "libnvidia-ml.so.1"

    /// The `--nvml.*` and related collector settings.
    public struct Configuration: Sendable {
        /// `--nvml.library`; nil loads `libnvidia-ml.so.1` through the dynamic loader's search path.
        public var libraryPath: String?
        /// The node name for `accelerator_info`'s `node` label; nil leaves it out.
        public var nodeName: String?
        /// Seconds between rediscoveries, and between attempts to load NVML while it is missing.
        public var discoveryInterval: Double
        /// Running processes and per-process utilization (for the attribution layer).
        public var processes: Bool
        /// Whether to watch NVML XID events (`accelerator_xid_errors_total`) on a thread of their own.
        public var xidEvents: Bool

        /// Defaults: the library from the loader's search path, processes and XID events on, rediscovery every 10 s.
        public init(libraryPath: String? = nil, nodeName: String? = nil, discoveryInterval: Double = 10,
                    processes: Bool = true, xidEvents: Bool = true) {
            self.libraryPath = libraryPath
            self.nodeName = nodeName
            self.discoveryInterval = discoveryInterval
            self.processes = processes
            self.xidEvents = xidEvents
        }
    }

    private let configuration: Configuration
    private let logger: Logger
    private let problems: ProblemLog
    private var library: NVMLLibrary?
    private var lastLoadAttempt: MonotonicInstant?
    private var xid: XIDWatcher?
    private var driverFamily: MetricFamily?
    private var gpus: [GPU] = []
    private var lastDiscovery: MonotonicInstant?
    private var rediscover = true
    /// Values a device does not have (NOT_SUPPORTED, NO_PERMISSION, missing symbol): not asked for again.
    private var unavailable: Set<ValueKey> = []
    /// The nvmlGpmMetricsGet request (19 KB with pynvml's NVML_GPM_METRIC_MAX), made once and reused: the source
    /// samples from one thread.
    private var gpmRequest: UnsafeMutablePointer<nvmlGpmMetricsGet_t>?

    /// A device and one of its values. Two strings that already exist (the UUID and a literal or table name), so
    /// checking it on every call allocates nothing.
    struct ValueKey: Hashable {
        var uuid: String
        var what: String
    }

    final class GPU {
        let uuid: String
        var handle: nvmlDevice_t?
        var identity: DeviceIdentity
        var migEnabled = false
        var mig: [MIGDevice] = []
        var lost = false
        /// GPM state when the GPU supports it (nil otherwise, and while it is lost); `gpmProbed` once the support
        /// query answered.
        var gpm: GPMDevice?
        var gpmProbed = false
        var nvlinks = NVLinks()
        /// Newest process-utilization sample seen (NVML's CPU timestamp, µs): each call asks only for newer ones.
        var lastProcessSample: UInt64 = 0

        init(uuid: String, handle: nvmlDevice_t?, identity: DeviceIdentity) {
            self.uuid = uuid
            self.handle = handle
            self.identity = identity
        }
    }

    final class MIGDevice {
        let uuid: String
        var handle: nvmlDevice_t
        var identity: DeviceIdentity
        var lastProcessSample: UInt64 = 0
        /// The slice's GPU instance id: what nvmlGpmMigSampleGet takes, with the GPU's handle.
        let gpuInstance: UInt32?
        var gpm: GPMDevice?
        init(uuid: String, handle: nvmlDevice_t, identity: DeviceIdentity, gpuInstance: UInt32?) {
            self.uuid = uuid
            self.handle = handle
            self.identity = identity
            self.gpuInstance = gpuInstance
        }
    }

    /// The device stopped answering (GPU_IS_LOST, GPU_NOT_FOUND, RESET_REQUIRED).
    struct Lost: Error { var code: NVMLReturn }

    /// NVML is not loaded here: the first ``sample(now:)`` loads it.
    public init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.problems = ProblemLog(logger: logger)
    }

    deinit {
        xid?.stop()
        // The GPUs' GPM sample buffers are freed as the GPUs go, right after this.
        gpmRequest?.deallocate()
    }

    /// Loads NVML when due, rediscovers when due, then reads every GPU and MIG device. A node without the
    /// library or driver gives an empty result without an error (unless `--nvml.library` named one); any other
    /// load failure is the collector's error.
    public func sample(now: MonotonicInstant) -> SourceResult {
        defer { problems.endTick() }
        guard let library = loadIfDue(now: now) else {
            return unavailableResult()
        }
        if rediscover || lastDiscovery.map({ now.seconds(since: $0) >= configuration.discoveryInterval }) ?? true {
            if let error = discover(library) {
                problems.report("discovery", "NVML discovery failed: \(error)")
                return SourceResult(devices: gpus.map { DeviceSample(identity: $0.identity, up: false) },
                                    families: driverFamily.map { [$0] } ?? [], error: "NVML discovery failed: \(error)")
            }
            lastDiscovery = now
            rediscover = false
        }
        var devices: [DeviceSample] = []
        devices.reserveCapacity(gpus.count * 2)
        for gpu in gpus { read(gpu, library, now: now, into: &devices) }
        return SourceResult(devices: devices, families: driverFamily.map { [$0] } ?? [])
    }

    // MARK: Loading

    private var loadError: NVMLLibrary.LoadError?

    private func loadIfDue(now: MonotonicInstant) -> NVMLLibrary? {
        if let library { return library }
        if let last = lastLoadAttempt, now.seconds(since: last) < configuration.discoveryInterval { return nil }
        lastLoadAttempt = now
        let path = configuration.libraryPath ?? Self.defaultLibrary
        do {
            let library = try NVMLLibrary.shared(path: path)
            self.library = library
            loadError = nil
            var metadata: Logger.Metadata = ["library": "\(path)"]
            if !library.missingSymbols.isEmpty { metadata["missing"] = "\(library.missingSymbols.joined(separator: ","))" }
            logger.info("NVML loaded", metadata: metadata)
            driverFamily = driverInfo(library)
            if configuration.xidEvents { xid = XIDWatcher(library: library, logger: logger) }
            return library
        } catch {
            loadError = error
            // Not an NVIDIA node (no library, no driver): say so once. Anything else is a fault.
            let absent = error.isAbsent && configuration.libraryPath == nil
            problems.report("load", absent ? "NVIDIA collector unavailable: \(error) (retrying every \(configuration.discoveryInterval) s)" : "\(error)",
                            level: absent ? .info : .error)
            return nil
        }
    }

    private func unavailableResult() -> SourceResult {
        problems.report("load", problems.activeProblems["load"] ?? "", level: .trace)
        guard let loadError else { return SourceResult() }
        if loadError.isAbsent && configuration.libraryPath == nil { return SourceResult() }
        return SourceResult(error: "\(loadError)")
    }

    private func driverInfo(_ library: NVMLLibrary) -> MetricFamily? {
        var labels = [Label("vendor", "nvidia")]
        if let get = library.fn.nvmlSystemGetDriverVersion, case (_, let v?) = library.string({ get($0, $1) }, capacity: 80) {
            labels.append(Label("version", v))
        }
        var cuda: Int32 = 0
        if let get = library.fn.nvmlSystemGetCudaDriverVersion_v2, NVMLReturn(get(&cuda)) == .success, cuda > 0 {
            labels.append(Label("cuda_version", "\(cuda / 1000).\((cuda % 1000) / 10)"))
        }
        if let node = configuration.nodeName { labels.append(Label("node", node)) }
        return Families.Device.driver.family([Sample(labels: labels, value: 1)])
    }

    // MARK: Discovery

    /// Re-enumerates GPUs (and their MIG devices); nil on success, else why enumeration failed.
    private func discover(_ library: NVMLLibrary) -> String? {
        let fn = library.fn
        var count: UInt32 = 0
        let rc = NVMLReturn(fn.nvmlDeviceGetCount_v2!(&count))
        guard rc == .success else { return "nvmlDeviceGetCount_v2: \(rc) (\(library.errorString(rc)))" }
        var found: [GPU] = []
        for index in 0..<count {
            var handle: nvmlDevice_t?
            let rc = NVMLReturn(fn.nvmlDeviceGetHandleByIndex_v2!(index, &handle))
            guard rc == .success, let handle else {
                problems.report("index\(index)", "nvmlDeviceGetHandleByIndex_v2(\(index)): \(rc)")
                continue
            }
            let (uuidRC, uuid) = library.string({ fn.nvmlDeviceGetUUID!(handle, $0, $1) })
            guard let uuid else {
                problems.report("index\(index)", "nvmlDeviceGetUUID(index \(index)): \(uuidRC)")
                continue
            }
            let gpu: GPU
            if let known = gpus.first(where: { $0.uuid == uuid }) {
                gpu = known
                gpu.handle = handle
            } else {
                gpu = GPU(uuid: uuid, handle: handle, identity: identity(library, handle, uuid: uuid))
                logger.info("accelerator discovered", metadata: ["accelerator": "\(uuid)", "collector": "nvidia", "index": "\(index)"])
            }
            probeGPM(library, gpu)
            discoverMIG(library, gpu)
            discoverNVLinks(library, gpu)
            if let xid, let handle = gpu.handle {
                let rc = xid.register(handle, uuid: uuid)
                if rc != .success { noteUnavailable(uuid, "XID events", rc) }
            }
            found.append(gpu)
        }
        // A GPU seen before but not enumerated now fell off the bus: keep it, down, so `accelerator_up == 0` alerts.
        for gone in gpus where !found.contains(where: { $0 === gone }) {
            if !gone.lost { logger.error("accelerator no longer enumerated by NVML", metadata: ["accelerator": "\(gone.uuid)"]) }
            gone.handle = nil
            gone.lost = true
            forgetGPM(gone)
            found.append(gone)
        }
        gpus = found
        return nil
    }

    private func identity(_ library: NVMLLibrary, _ handle: nvmlDevice_t, uuid: String) -> DeviceIdentity {
        let fn = library.fn
        let name = fn.nvmlDeviceGetName.flatMap { get in library.string({ get(handle, $0, $1) }).1 } ?? "unknown"
        var pci: String?
        if let get = fn.nvmlDeviceGetPciInfo_v3 {
            var info = nvmlPciInfo_t()
            if NVMLReturn(get(handle, &info)) == .success {
                pci = withUnsafeBytes(of: info.busId) { Self.normalizePCI(String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)) }
            }
        }
        var info: [(String, String)] = []
        info.append(("driver", "nvidia"))
        if let node = configuration.nodeName { info.append(("node", node)) }
        if let get = fn.nvmlDeviceGetVbiosVersion, let v = library.string({ get(handle, $0, $1) }, capacity: 32).1 { info.append(("vbios", v)) }
        if let get = fn.nvmlDeviceGetSerial, let s = library.string({ get(handle, $0, $1) }, capacity: 30).1 { info.append(("serial", s)) }
        var identity = DeviceIdentity(accelerator: uuid, vendor: "nvidia", model: Self.model(fromName: name), pciAddress: pci, info: info)
        var minor: UInt32 = 0
        if let get = fn.nvmlDeviceGetMinorNumber, NVMLReturn(get(handle, &minor)) == .success { identity.aliases.minorNumber = Int(minor) }
        return identity
    }

    private func discoverMIG(_ library: NVMLLibrary, _ gpu: GPU) {
        let fn = library.fn
        guard let handle = gpu.handle, let getMode = fn.nvmlDeviceGetMigMode, !unavailable.contains(ValueKey(uuid: gpu.uuid, what: "MIG mode")) else {
            gpu.migEnabled = false
            gpu.mig = []
            return
        }
        var current: UInt32 = 0, pending: UInt32 = 0
        let rc = NVMLReturn(getMode(handle, &current, &pending))
        guard rc == .success, current == 1 else {
            if rc != .success { noteUnavailable(gpu.uuid, "MIG mode", rc) }
            gpu.migEnabled = false
            gpu.mig = []
            return
        }
        gpu.migEnabled = true
        var maxCount: UInt32 = 0
        guard let getMax = fn.nvmlDeviceGetMaxMigDeviceCount, let byIndex = fn.nvmlDeviceGetMigDeviceHandleByIndex,
              NVMLReturn(getMax(handle, &maxCount)) == .success else { return }
        var found: [MIGDevice] = []
        for index in 0..<min(maxCount, 64) {
            var migHandle: nvmlDevice_t?
            guard NVMLReturn(byIndex(handle, index, &migHandle)) == .success, let migHandle,
                  let uuid = library.string({ fn.nvmlDeviceGetUUID!(migHandle, $0, $1) }).1 else { continue }
            if let known = gpu.mig.first(where: { $0.uuid == uuid }) {
                known.handle = migHandle
                if known.gpm == nil, gpu.gpm != nil, let gi = known.gpuInstance { known.gpm = makeGPM(library, gpuInstance: gi) }
                found.append(known)
                continue
            }
            let name = fn.nvmlDeviceGetName.flatMap { get in library.string({ get(migHandle, $0, $1) }).1 } ?? ""
            var info: [(String, String)] = [("parent", gpu.uuid)]
            var gi: UInt32 = 0, ci: UInt32 = 0
            var gpuInstance: UInt32?
            if let get = fn.nvmlDeviceGetGpuInstanceId, NVMLReturn(get(migHandle, &gi)) == .success {
                info.append(("gpu_instance_id", "\(gi)"))
                gpuInstance = gi
            }
            if let get = fn.nvmlDeviceGetComputeInstanceId, NVMLReturn(get(migHandle, &ci)) == .success { info.append(("compute_instance_id", "\(ci)")) }
            if let profile = Self.migProfile(fromName: name) { info.append(("mig_profile", profile)) }
            // No `node` here: the parent's info carries it, and a MIG info series stays within the 8-label budget
            // with the parent's `pci_bus_id`.
            let identity = DeviceIdentity(accelerator: uuid, vendor: "nvidia", model: gpu.identity.model,
                                          pciAddress: gpu.identity.pciAddress, info: info)
            logger.info("accelerator discovered", metadata: ["accelerator": "\(uuid)", "collector": "nvidia", "parent": "\(gpu.uuid)"])
            let device = MIGDevice(uuid: uuid, handle: migHandle, identity: identity, gpuInstance: gpuInstance)
            // A slice is sampled through its GPU: only where the GPU has GPM.
            if gpu.gpm != nil, let gpuInstance { device.gpm = makeGPM(library, gpuInstance: gpuInstance) }
            found.append(device)
        }
        gpu.mig = found  // slices that went free their GPM buffers
    }

    // MARK: GPM and NVLink discovery

    /// Asks once whether the GPU has GPM (Hopper and later); where it does, it gets its sample buffers' owner.
    private func probeGPM(_ library: NVMLLibrary, _ gpu: GPU) {
        let fn = library.fn
        guard !gpu.gpmProbed, let handle = gpu.handle, let query = fn.nvmlGpmQueryDeviceSupport,
              fn.nvmlGpmSampleGet != nil, fn.nvmlGpmMetricsGet != nil else { return }
        var support = nvmlGpmSupport_t()
        support.version = UInt32(NVML_GPM_SUPPORT_VERSION)
        let rc = NVMLReturn(query(handle, &support))
        guard rc == .success else {
            // Anything but "not supported" is asked again at the next discovery.
            if rc.meansUnavailable {
                gpu.gpmProbed = true
                noteUnavailable(gpu.uuid, "gpm", rc)
            } else {
                logger.debug("GPM support query failed", metadata: ["accelerator": "\(gpu.uuid)", "nvml": "\(rc)"])
            }
            return
        }
        gpu.gpmProbed = true
        guard support.isSupportedDevice != 0, let gpm = makeGPM(library, gpuInstance: nil) else {
            logger.debug("GPM not supported on this device", metadata: ["accelerator": "\(gpu.uuid)"])
            return
        }
        gpm.setLinks(gpu.nvlinks.active)
        gpu.gpm = gpm
        logger.info("GPM supported: SM, tensor and memory-bandwidth activity", metadata: ["accelerator": "\(gpu.uuid)"])
    }

    private func makeGPM(_ library: NVMLLibrary, gpuInstance: UInt32?) -> GPMDevice? {
        guard let free = library.fn.nvmlGpmSampleFree, library.fn.nvmlGpmSampleAlloc != nil,
              gpuInstance == nil || library.fn.nvmlGpmMigSampleGet != nil else { return nil }
        return GPMDevice(gpuInstance: gpuInstance, free: free)
    }

    /// A lost GPU's GPM buffers go now (they are made again when it answers and is probed anew).
    private func forgetGPM(_ gpu: GPU) {
        gpu.gpm = nil
        gpu.gpmProbed = false
        for mig in gpu.mig { mig.gpm = nil }
    }

    /// Probes every link number's state; a link that was active and is not counts as `nvlink_down`.
    private func discoverNVLinks(_ library: NVMLLibrary, _ gpu: GPU) {
        guard let handle = gpu.handle, let getState = library.fn.nvmlDeviceGetNvLinkState,
              !unavailable.contains(ValueKey(uuid: gpu.uuid, what: "nvlink state")) else { return }
        var active: [Int] = []
        for link in 0..<NVLinks.maxLinks {
            var isActive: UInt32 = 0
            let rc = NVMLReturn(getState(handle, UInt32(link), &isActive))
            if rc.meansDeviceLost { return }  // the next read finds it lost
            if link == 0, rc.meansUnavailable {
                noteUnavailable(gpu.uuid, "nvlink state", rc)  // no NVLink on this GPU
                return
            }
            // Other answers (INVALID_ARGUMENT: a link number beyond the device's) are no link.
            if rc == .success, isActive == UInt32(NVML_FEATURE_ENABLED) { active.append(link) }
        }
        for link in gpu.nvlinks.active where !active.contains(link) {
            gpu.nvlinks.down += 1
            logger.warning("NVLink link went down", metadata: ["accelerator": "\(gpu.uuid)", "link": "\(link)"])
        }
        if !active.isEmpty { gpu.nvlinks.seen = true }
        if active != gpu.nvlinks.active {
            if !gpu.nvlinks.active.isEmpty || gpu.nvlinks.down > 0 {
                logger.info("NVLink links active", metadata: ["accelerator": "\(gpu.uuid)", "links": "\(active)"])
            }
            gpu.nvlinks.active = active
            gpu.gpm?.setLinks(active)
        }
    }

    // MARK: Sampling

    private func read(_ gpu: GPU, _ library: NVMLLibrary, now: MonotonicInstant, into devices: inout [DeviceSample]) {
        var sample = DeviceSample(identity: gpu.identity)
        do {
            guard let handle = gpu.handle else { throw Lost(code: .gpuNotFound) }
            if gpu.lost {
                // Re-probe with one cheap call before reading everything. A GPU whose UUID answers while its readings
                // still fail stays lost: it answers again only once a whole read succeeds (below), so a half-answering
                // GPU does not log "lost" and "answers again" on every tick.
                let (rc, _) = library.string({ library.fn.nvmlDeviceGetUUID!(handle, $0, $1) })
                if rc.meansDeviceLost { throw Lost(code: rc) }
            }
            try readDevice(library, handle, gpu, now: now, into: &sample)
            if configuration.processes, !gpu.migEnabled {
                sample.processes = try processes(library, handle, uuid: gpu.uuid, lastSample: &gpu.lastProcessSample)
            }
            if let xid { sample.xidErrors = xid.counts(for: gpu.uuid) }
            devices.append(sample)
            for mig in gpu.mig {
                var m = DeviceSample(identity: mig.identity)
                try readMIG(library, mig, gpu: handle, into: &m)
                devices.append(m)
            }
            if gpu.lost {
                gpu.lost = false
                logger.info("accelerator answers again", metadata: ["accelerator": "\(gpu.uuid)"])
                rediscover = true
            }
        } catch let lost as Lost {
            if !gpu.lost { logger.error("accelerator lost", metadata: ["accelerator": "\(gpu.uuid)", "error": "\(lost.code)"]) }
            gpu.lost = true
            rediscover = true
            // What GPM sampled before the loss pairs with nothing after it.
            gpu.gpm?.reset()
            for mig in gpu.mig { mig.gpm?.reset() }
            sample = DeviceSample(identity: gpu.identity, up: false)
            if let xid { sample.xidErrors = xid.counts(for: gpu.uuid) }
            devices.append(sample)
            for mig in gpu.mig { devices.append(DeviceSample(identity: mig.identity, up: false)) }
        } catch {}
    }

    /// Runs one NVML call for `what`. true: it succeeded. A value the device lacks is asked for once only.
    private func call(_ uuid: String, _ what: String, _ body: () -> Int32?) throws(Lost) -> Bool {
        let key = ValueKey(uuid: uuid, what: what)
        if unavailable.contains(key) { return false }
        guard let code = body() else {
            unavailable.insert(key)  // symbol missing: reported once at load
            return false
        }
        let rc = NVMLReturn(code)
        if rc == .success { return true }
        if rc.meansDeviceLost { throw Lost(code: rc) }
        if rc.meansUnavailable {
            noteUnavailable(uuid, what, rc)
            return false
        }
        problems.report("\(uuid)/\(what)", "NVML \(what) failed on \(uuid): \(rc)")
        return false
    }

    private func noteUnavailable(_ uuid: String, _ what: String, _ rc: NVMLReturn) {
        if unavailable.insert(ValueKey(uuid: uuid, what: what)).inserted {
            logger.debug("value not available on this device", metadata: ["accelerator": "\(uuid)", "value": "\(what)", "nvml": "\(rc)"])
        }
    }

    private func readDevice(_ library: NVMLLibrary, _ h: nvmlDevice_t, _ gpu: GPU, now: MonotonicInstant, into s: inout DeviceSample) throws(Lost) {
        let fn = library.fn
        let uuid = gpu.uuid
        var util = nvmlUtilization_t()
        // Not supported with MIG on: the parent's utilization does not exist as one number.
        if !gpu.migEnabled, try call(uuid, "utilization", { fn.nvmlDeviceGetUtilizationRates?(h, &util) }) {
            if util.gpu <= 100 { s.utilizationRatio = Double(util.gpu) / 100 }
            if util.memory <= 100 { s.engineUtilizationRatio["memory_controller"] = Double(util.memory) / 100 }
        }
        try readMemory(library, h, uuid: uuid, into: &s)

        var u: UInt32 = 0
        if try call(uuid, "temperature", { fn.nvmlDeviceGetTemperature?(h, Int32(NVML_TEMPERATURE_GPU), &u) }), u < 200 {
            s.temperatureCelsius["gpu"] = Double(u)
        }
        if try call(uuid, "power", { fn.nvmlDeviceGetPowerUsage?(h, &u) }), let v = Self.valid(u) { s.powerWatts = v / 1000 }
        if try call(uuid, "power limit", { fn.nvmlDeviceGetEnforcedPowerLimit?(h, &u) }), let v = Self.valid(u) { s.powerLimitWatts = v / 1000 }
        var energy: UInt64 = 0
        if try call(uuid, "energy", { fn.nvmlDeviceGetTotalEnergyConsumption?(h, &energy) }), let v = Self.valid(energy) {
            s.energyJoules = v / 1000
        }
        for (type, label, what) in Self.clocks {
            if try call(uuid, what, { fn.nvmlDeviceGetClockInfo?(h, type, &u) }), let v = Self.valid(u) {
                s.clockHertz[label] = v * 1e6
            }
        }
        if let gpm = gpu.gpm { try readGPM(library, gpm, gpu: h, uuid: uuid, into: &s) }
        // GPM's PCIe rates are averages over the tick; nvmlDeviceGetPcieThroughput (a 20 ms sample) where GPM has
        // none this tick (no GPM, its first tick, a failed sample).
        for (counter, label) in Self.pcieCounters where s.pcieBandwidthBytesPerSecond[label] == nil {
            if try call(uuid, "pcie throughput", { fn.nvmlDeviceGetPcieThroughput?(h, counter, &u) }), let v = Self.valid(u) {
                s.pcieBandwidthBytesPerSecond[label] = v * 1024  // NVML: KB/s
            }
        }
        if try call(uuid, "pcie generation", { fn.nvmlDeviceGetCurrPcieLinkGeneration?(h, &u) }), let rate = Self.pcieTransferRate[u] {
            s.pcieLinkSpeedTransfersPerSecond = rate
        }
        if try call(uuid, "pcie width", { fn.nvmlDeviceGetCurrPcieLinkWidth?(h, &u) }), u > 0, u <= 32 { s.pcieLinkWidth = Double(u) }
        if try call(uuid, "fan", { fn.nvmlDeviceGetFanSpeed?(h, &u) }), u <= 200 { s.fanSpeedRatio["fan"] = Double(u) / 100 }
        var pstate: Int32 = 0
        if try call(uuid, "performance state", { fn.nvmlDeviceGetPerformanceState?(h, &pstate) }), (0...15).contains(pstate) {
            s.performanceState = Double(pstate)
        }
        var reasons: UInt64 = 0
        if try call(uuid, "clock event reasons", { fn.nvmlDeviceGetCurrentClocksEventReasons?(h, &reasons) }) {
            for (bit, reason) in Self.clockEventReasons { s.throttleActive[reason] = reasons & bit != 0 ? 1 : 0 }
        }
        try readFields(library, h, gpu, into: &s)
        if gpu.nvlinks.seen { s.errors["nvlink_down"] = gpu.nvlinks.down }
        gpu.nvlinks.deriveRates(now: now, into: &s)
    }

    /// This tick's GPM sample into the buffer whose turn it is; paired with last tick's, the metrics into `s`.
    /// A failed sample leaves only the GPM values absent (a profiler attached to the GPU can refuse samples for a
    /// while), logged once when it starts and once when it clears.
    private func readGPM(_ library: NVMLLibrary, _ gpm: GPMDevice, gpu h: nvmlDevice_t, uuid: String, into s: inout DeviceSample) throws(Lost) {
        let fn = library.fn
        guard let metricsGet = fn.nvmlGpmMetricsGet else { return }
        if gpm.buffers == nil {
            guard let alloc = fn.nvmlGpmSampleAlloc else { return }
            var a: nvmlGpmSample_t?, b: nvmlGpmSample_t?
            var rc = NVMLReturn(alloc(&a))
            if rc == .success { rc = NVMLReturn(alloc(&b)) }
            guard rc == .success, let a, let b else {
                if let a { _ = fn.nvmlGpmSampleFree?(a) }
                problems.report("\(uuid)/gpm", "GPM sample buffers for \(uuid) could not be allocated: \(rc)")
                return
            }
            gpm.adopt(a, b)
        }
        guard let buffers = gpm.buffers else { return }
        let (current, previous) = gpm.next == 0 ? (buffers.0, buffers.1) : (buffers.1, buffers.0)
        let sampled: Int32?
        if let gi = gpm.gpuInstance { sampled = fn.nvmlGpmMigSampleGet?(h, gi, current) } else { sampled = fn.nvmlGpmSampleGet?(h, current) }
        guard let sampled else { return }
        let rc = NVMLReturn(sampled)
        if rc.meansDeviceLost { throw Lost(code: rc) }
        guard rc == .success else {
            gpm.reset()
            problems.report("\(uuid)/gpm", "GPM sample failed on \(uuid): \(rc) (a profiler attached?); its GPM values are absent until a sample succeeds")
            return
        }
        let pairs = gpm.previousValid
        gpm.previousValid = true
        gpm.next ^= 1
        guard pairs, !gpm.metrics.isEmpty else { return }

        let request = gpmRequestBuffer()
        let metrics = gpm.metrics
        precondition(metrics.count <= GPM.maxMetricsPerCall)
        request.pointee.version = UInt32(NVML_GPM_METRICS_GET_VERSION)
        request.pointee.numMetrics = UInt32(metrics.count)
        request.pointee.sample1 = previous
        request.pointee.sample2 = current
        for (i, metric) in metrics.enumerated() {
            let slot = CNVML_gpmMetric(request, UInt32(i))!
            slot.pointee.metricId = metric.id
            slot.pointee.nvmlReturn = NVMLReturn.notFound.code
            slot.pointee.value = 0
        }
        let got = NVMLReturn(metricsGet(request))
        if got.meansDeviceLost { throw Lost(code: got) }
        guard got == .success else {
            problems.report("\(uuid)/gpm", "GPM metrics failed on \(uuid): \(got); its GPM values are absent until they succeed")
            return
        }
        for (i, metric) in metrics.enumerated() {
            let slot = CNVML_gpmMetric(request, UInt32(i))!
            let answer = NVMLReturn(slot.pointee.nvmlReturn)
            if answer == .success {
                if let value = GPM.convert(slot.pointee.value, metric.target) { GPM.store(value, metric.target, into: &s) }
            } else if answer.meansUnavailable {
                gpm.refuse(metric.id)
                noteUnavailable(uuid, metric.name, answer)
            } else {
                problems.report("\(uuid)/\(metric.name)", "GPM \(metric.name) failed on \(uuid): \(answer)")
            }
        }
    }

    private func gpmRequestBuffer() -> UnsafeMutablePointer<nvmlGpmMetricsGet_t> {
        if let gpmRequest { return gpmRequest }
        let size = MemoryLayout<nvmlGpmMetricsGet_t>.size
        let raw = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: MemoryLayout<nvmlGpmMetricsGet_t>.alignment)
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: size)
        let request = raw.bindMemory(to: nvmlGpmMetricsGet_t.self, capacity: 1)
        gpmRequest = request
        return request
    }

    private func readMemory(_ library: NVMLLibrary, _ h: nvmlDevice_t, uuid: String, into s: inout DeviceSample) throws(Lost) {
        let fn = library.fn
        var v2 = nvmlMemory_v2_t()
        v2.version = UInt32(MemoryLayout<nvmlMemory_v2_t>.size) | (2 << 24)
        if try call(uuid, "memory v2", { fn.nvmlDeviceGetMemoryInfo_v2?(h, &v2) }) {
            if let total = Self.valid(v2.total) { s.memoryTotalBytes["vram"] = total }
            if let used = Self.valid(v2.used) { s.memoryUsedBytes["vram"] = used }
            if let reserved = Self.valid(v2.reserved) { s.memoryReservedBytes["vram"] = reserved }
            return
        }
        var v1 = nvmlMemory_t()
        if try call(uuid, "memory", { fn.nvmlDeviceGetMemoryInfo?(h, &v1) }) {
            if let total = Self.valid(v1.total) { s.memoryTotalBytes["vram"] = total }
            if let used = Self.valid(v1.used) { s.memoryUsedBytes["vram"] = used }
        }
    }

    /// Error counters and memory health through one nvmlDeviceGetFieldValues call; fields the device lacks are
    /// dropped from later calls.
    private func readFields(_ library: NVMLLibrary, _ h: nvmlDevice_t, _ gpu: GPU, into s: inout DeviceSample) throws(Lost) {
        let fn = library.fn
        let uuid = gpu.uuid
        guard let getFields = fn.nvmlDeviceGetFieldValues else {
            // Old drivers: ECC through nvmlDeviceGetTotalEccErrors.
            var n: UInt64 = 0
            for (errorType, counter, label) in [(Int32(0), Int32(1), "ecc_corrected"), (1, 1, "ecc_uncorrected"), (0, 0, "ecc_corrected"), (1, 0, "ecc_uncorrected")] {
                let what = "ecc \(label) \(counter == 1 ? "aggregate" : "volatile")"
                if try call(uuid, what, { fn.nvmlDeviceGetTotalEccErrors?(h, errorType, counter, &n) }), let v = Self.valid(n) {
                    if counter == 1 { s.errors[label] = v } else { s.volatileErrors[label] = v }
                }
            }
            return
        }
        var values = Self.fields.filter { !unavailable.contains(ValueKey(uuid: uuid, what: $0.name)) }.map { field in
            var v = nvmlFieldValue_t()
            v.fieldId = field.id
            return v
        }
        // The active NVLinks' data counters, the link in scopeId, after the device-wide fields.
        let linkStart = values.count
        for field in NVLinks.throughputFields where !unavailable.contains(ValueKey(uuid: uuid, what: field.name)) {
            for link in gpu.nvlinks.active {
                var v = nvmlFieldValue_t()
                v.fieldId = field.id
                v.scopeId = UInt32(link)
                values.append(v)
            }
        }
        guard !values.isEmpty else { return }
        guard try call(uuid, "field values", { getFields(h, Int32(values.count), &values) }) else { return }
        for (index, v) in values.enumerated() {
            let rc = NVMLReturn(v.nvmlReturn)
            if rc.meansDeviceLost { throw Lost(code: rc) }
            if index >= linkStart {
                guard let field = NVLinks.throughputFields.first(where: { $0.id == v.fieldId }), Int(v.scopeId) < NVLinks.maxLinks else { continue }
                if rc == .success, let kib = Self.value(of: v) {
                    s.interconnectBytes[DeviceSample.InterconnectKey(link: NVLinks.labels[Int(v.scopeId)], direction: field.direction)] = kib * 1024
                } else if rc.meansUnavailable || rc == .notFound {
                    noteUnavailable(uuid, field.name, rc)
                } else if rc != .success {
                    problems.report("\(uuid)/nvlink \(v.scopeId)", "NVML NVLink \(v.scopeId) counters failed on \(uuid): \(rc)")
                }
                continue
            }
            guard rc == .success else {
                if rc.meansUnavailable || rc == .notFound, let field = Self.fields.first(where: { $0.id == v.fieldId }) {
                    noteUnavailable(uuid, field.name, rc)
                }
                continue
            }
            guard let field = Self.fields.first(where: { $0.id == v.fieldId }), let value = Self.value(of: v) else { continue }
            switch field.target {
            case .error(let type): s.errors[type] = value
            case .volatileError(let type): s.volatileErrors[type] = value
            case .memoryTemperature: if value < 200 { s.temperatureCelsius["memory"] = value }
            case .rowRemapPending: s.rowRemapPending = value != 0 ? 1 : 0
            case .rowRemapFailure: s.rowRemapFailure = value != 0 ? 1 : 0
            case .retiredPagesPending: s.retiredPagesPending = value != 0 ? 1 : 0
            }
        }
    }

    private func readMIG(_ library: NVMLLibrary, _ mig: MIGDevice, gpu: nvmlDevice_t, into s: inout DeviceSample) throws(Lost) {
        let fn = library.fn
        if let gpm = mig.gpm { try readGPM(library, gpm, gpu: gpu, uuid: mig.uuid, into: &s) }
        var util = nvmlUtilization_t()
        if try call(mig.uuid, "utilization", { fn.nvmlDeviceGetUtilizationRates?(mig.handle, &util) }), util.gpu <= 100 {
            s.utilizationRatio = Double(util.gpu) / 100
        }
        try readMemory(library, mig.handle, uuid: mig.uuid, into: &s)
        if configuration.processes {
            s.processes = try processes(library, mig.handle, uuid: mig.uuid, lastSample: &mig.lastProcessSample)
        }
    }

    /// Compute and MPS processes with their memory, joined with the utilization samples newer than `lastSample`.
    private func processes(_ library: NVMLLibrary, _ h: nvmlDevice_t, uuid: String, lastSample: inout UInt64) throws(Lost) -> [ProcessUsage] {
        let fn = library.fn
        var out: [ProcessUsage] = []
        let lists = [(ProcessUsage.Kind.compute, fn.nvmlDeviceGetComputeRunningProcesses, "compute processes"),
                     (.mps, fn.nvmlDeviceGetMPSComputeRunningProcesses, "mps processes")]
        for (kind, get, what) in lists {
            guard let get, !unavailable.contains(ValueKey(uuid: uuid, what: what)) else { continue }
            var infos: [nvmlProcessInfo_t] = []
            // Size, then fetch; processes may start in between, so retry a few times with room to spare.
            var count: UInt32 = 0
            for _ in 0..<3 {
                infos = Array(repeating: nvmlProcessInfo_t(), count: Int(count))
                var n = count
                let rc = NVMLReturn(infos.withUnsafeMutableBufferPointer { get(h, &n, count == 0 ? nil : $0.baseAddress) })
                if rc == .insufficientSize { count = n + 4; continue }
                if rc.meansDeviceLost { throw Lost(code: rc) }
                if rc != .success {
                    if rc.meansUnavailable { noteUnavailable(uuid, what, rc) }
                    else { problems.report("\(uuid)/\(what)", "NVML \(what) failed on \(uuid): \(rc)") }
                    infos = []
                    break
                }
                infos = Array(infos.prefix(Int(n)))
                break
            }
            for p in infos {
                out.append(ProcessUsage(pid: Int32(bitPattern: p.pid), kind: kind, memoryUsedBytes: Self.valid(p.usedGpuMemory)))
            }
        }
        guard let getUtil = fn.nvmlDeviceGetProcessUtilization, !out.isEmpty,
              !unavailable.contains(ValueKey(uuid: uuid, what: "process utilization")) else { return out }
        var count: UInt32 = 0
        var rc = NVMLReturn(getUtil(h, nil, &count, lastSample))
        if rc == .insufficientSize, count > 0 {
            var samples = Array(repeating: nvmlProcessUtilizationSample_t(), count: Int(count))
            rc = NVMLReturn(samples.withUnsafeMutableBufferPointer { getUtil(h, $0.baseAddress, &count, lastSample) })
            if rc == .success {
                // The newest sample per PID.
                var newest: [UInt32: nvmlProcessUtilizationSample_t] = [:]
                for sample in samples.prefix(Int(count)) where sample.timeStamp > lastSample || lastSample == 0 {
                    if (newest[sample.pid]?.timeStamp ?? 0) <= sample.timeStamp { newest[sample.pid] = sample }
                }
                lastSample = max(lastSample, newest.values.map(\.timeStamp).max() ?? 0)
                for i in out.indices {
                    guard let sample = newest[UInt32(bitPattern: out[i].pid)] else { continue }
                    for (value, engine) in [(sample.smUtil, "compute"), (sample.memUtil, "memory_controller"),
                                            (sample.encUtil, "video_encode"), (sample.decUtil, "video_decode")] where value <= 100 {
                        out[i].engineUtilizationRatio[engine] = Double(value) / 100
                    }
                }
            }
        }
        if rc.meansDeviceLost { throw Lost(code: rc) }
        if rc.meansUnavailable { noteUnavailable(uuid, "process utilization", rc) }
        return out
    }

    // MARK: Tables and conversions

    /// NVML clock type, `clock` label, and the value's name for the unavailable set.
    static let clocks: [(Int32, String, String)] = [
        (0, "graphics", "clock graphics"), (1, "sm", "clock sm"), (2, "memory", "clock memory"), (3, "video", "clock video"),
    ]
    static let pcieCounters: [(Int32, String)] = [(0, "tx"), (1, "rx")]

    /// GT/s per lane by PCIe generation.
    static let pcieTransferRate: [UInt32: Double] = [1: 2.5e9, 2: 5e9, 3: 8e9, 4: 16e9, 5: 32e9, 6: 64e9]

    /// `nvmlClocksEventReason*` bits (pynvml), as `reason` label values.
    static let clockEventReasons: [(UInt64, String)] = [
        (0x1, "gpu_idle"), (0x2, "applications_clocks_setting"), (0x4, "sw_power_cap"), (0x8, "hw_slowdown"),
        (0x10, "sync_boost"), (0x20, "sw_thermal_slowdown"), (0x40, "hw_thermal_slowdown"),
        (0x80, "hw_power_brake_slowdown"), (0x100, "display_clock_setting"),
    ]

    enum FieldTarget { case error(String), volatileError(String), memoryTemperature, rowRemapPending, rowRemapFailure, retiredPagesPending }

    static let fields: [(id: UInt32, target: FieldTarget, name: String)] = [
        (3, .volatileError("ecc_corrected"), "field 3"), (4, .volatileError("ecc_uncorrected"), "field 4"),
        (5, .error("ecc_corrected"), "field 5"), (6, .error("ecc_uncorrected"), "field 6"),
        (29, .error("retired_pages_sbe"), "field 29"), (30, .error("retired_pages_dbe"), "field 30"),
        (31, .retiredPagesPending, "field 31"), (82, .memoryTemperature, "field 82"), (94, .error("pcie_replay"), "field 94"),
        (142, .error("row_remap_corrected"), "field 142"), (143, .error("row_remap_uncorrected"), "field 143"),
        (144, .rowRemapPending, "field 144"), (145, .rowRemapFailure, "field 145"),
        // NVLink error counters summed over the links (since the driver loaded).
        (38, .error("nvlink_crc_flit"), "field 38"), (45, .error("nvlink_crc_data"), "field 45"),
        (52, .error("nvlink_replay"), "field 52"), (59, .error("nvlink_recovery"), "field 59"),
    ]

    /// A field's value as a number, or nil for NVML's "not available" sentinels and unknown value types.
    static func value(of v: nvmlFieldValue_t) -> Double? {
        switch v.valueType {
        case 0: return v.value.dVal.isFinite && v.value.dVal >= 0 ? v.value.dVal : nil
        case 1: return valid(v.value.uiVal)
        case 2, 3: return valid(v.value.ullVal)
        case 4: return v.value.sllVal >= 0 ? valid(UInt64(v.value.sllVal)) : nil
        case 5: return v.value.siVal >= 0 ? Double(v.value.siVal) : nil
        case 6: return v.value.usVal == UInt16.max ? nil : Double(v.value.usVal)
        default: return nil
        }
    }

    /// NVML marks "not available" with all-ones; other exporters have leaked values near 2^63 as data.
    static func valid(_ v: UInt32) -> Double? { v == UInt32.max ? nil : Double(v) }
    static func valid(_ v: UInt64) -> Double? { v >= 0x7FFF_FFFF_FFFF_F000 ? nil : Double(v) }

    /// `NVIDIA H100 80GB HBM3` → `H100 80GB HBM3` (DESIGN.md's model vocabulary has no vendor prefix).
    static func model(fromName name: String) -> String {
        name.hasPrefix("NVIDIA ") ? String(name.dropFirst(7)) : name
    }

    /// `NVIDIA A100-SXM4-40GB MIG 3g.20gb` → `3g.20gb`.
    static func migProfile(fromName name: String) -> String? {
        let words = name.split(separator: " ")
        guard words.count >= 2, words[words.count - 2] == "MIG" else { return nil }
        return String(words[words.count - 1])
    }

    /// `00000000:18:00.0` → `0000:18:00.0`, the Linux sysfs form other sources and pod-resources use.
    static func normalizePCI(_ busId: String) -> String? {
        let parts = busId.lowercased().split(separator: ":")
        guard parts.count == 3, let domain = UInt32(parts[0], radix: 16), let bus = UInt8(parts[1], radix: 16) else { return nil }
        let hex = String(domain, radix: 16), busHex = String(bus, radix: 16)
        return String(repeating: "0", count: max(0, 4 - hex.count)) + hex + ":" + (busHex.count == 1 ? "0" : "") + busHex + ":" + parts[2]
    }
}

extension NVMLLibrary {
    private static let loaded = Mutex<[String: NVMLLibrary]>([:])

    /// One NVMLLibrary per path for the whole process (NVML's state is process-global).
    static func shared(path: String) throws(LoadError) -> NVMLLibrary {
        if let library = loaded.withLock({ $0[path] }) { return library }
        let library = try load(path: path)
        loaded.withLock { $0[path] = library }
        return library
    }
}
