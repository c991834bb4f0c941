internal import CNVML
import Dispatch
import Logging
import Synchronization

/// Waits for NVML XID critical-error events on a thread of its own and counts them per device and XID.
///
/// `nvmlEventSetWait_v2` blocks, so it never runs on the sampling thread: the sampler reads the counts, which only
/// grow, once per tick. Waits time out every second so the watcher notices `stop()` promptly.
final class XIDWatcher: @unchecked Sendable {
    private let library: NVMLLibrary
    private let logger: Logger
    private let set: nvmlEventSet_t
    private let stopped = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    private struct State {
        /// Device handle (its bits) → UUID of the GPU it belongs to.
        var devices: [UInt: String] = [:]
        var counts: [String: [UInt64: Double]] = [:]
    }
    private let state = Mutex(State())

    /// nil when this NVML cannot deliver events (old driver, no event support).
    init?(library: NVMLLibrary, logger: Logger) {
        guard let create = library.fn.nvmlEventSetCreate, library.fn.nvmlEventSetWait_v2 != nil,
              library.fn.nvmlDeviceRegisterEvents != nil else {
            logger.info("NVML has no event API (nvmlEventSetCreate/nvmlEventSetWait_v2): XID errors are not counted")
            return nil
        }
        var set: nvmlEventSet_t?
        let rc = NVMLReturn(create(&set))
        guard rc == .success, let set else {
            logger.warning("nvmlEventSetCreate failed: XID errors are not counted", metadata: ["error": "\(rc)"])
            return nil
        }
        self.library = library
        self.logger = logger
        self.set = set
        DispatchQueue(label: "accel-exporter.nvml-xid").async { [self] in run() }
    }

    /// Registers a GPU for XID events (again after rediscovery: NVML ignores a repeat). Returns NVML's answer.
    @discardableResult
    func register(_ device: nvmlDevice_t, uuid: String) -> NVMLReturn {
        let key = UInt(bitPattern: device)
        let known = state.withLock { $0.devices[key] == uuid }
        if known { return .success }
        let rc = NVMLReturn(library.fn.nvmlDeviceRegisterEvents!(device, nvmlEventTypeXidCriticalError, set))
        if rc == .success { state.withLock { $0.devices[key] = uuid } }
        return rc
    }

    /// XIDs seen per GPU UUID since the exporter started.
    func counts(for uuid: String) -> [String: Double] {
        state.withLock { s in
            var out: [String: Double] = [:]
            for (xid, n) in s.counts[uuid] ?? [:] { out[String(xid)] = n }
            return out
        }
    }

    func stop() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        finished.wait()
    }

    private func run() {
        let wait = library.fn.nvmlEventSetWait_v2!
        var failing: NVMLReturn?
        while !stopped.load(ordering: .acquiring) {
            var data = nvmlEventData_t()
            let rc = NVMLReturn(wait(set, &data, 1000))
            switch rc {
            case .success:
                failing = nil
                guard data.eventType & nvmlEventTypeXidCriticalError != 0, let device = data.device else { continue }
                let key = UInt(bitPattern: device)
                let uuid: String? = state.withLock { s in
                    guard let uuid = s.devices[key] else { return nil }
                    s.counts[uuid, default: [:]][data.eventData, default: 0] += 1
                    return uuid
                }
                var metadata: Logger.Metadata = ["accelerator": "\(uuid ?? "unknown")", "xid": "\(data.eventData)"]
                if data.gpuInstanceId != UInt32.max { metadata["gpu_instance_id"] = "\(data.gpuInstanceId)" }
                if data.computeInstanceId != UInt32.max { metadata["compute_instance_id"] = "\(data.computeInstanceId)" }
                logger.error("XID critical error", metadata: metadata)
            case .timeout:
                failing = nil
            default:
                // A lost GPU or a driver problem: say so once, and do not spin.
                if failing != rc { logger.warning("nvmlEventSetWait_v2 failed", metadata: ["error": "\(rc)"]) }
                failing = rc
                for _ in 0..<10 where !stopped.load(ordering: .acquiring) { usleep(100_000) }
            }
        }
        _ = library.fn.nvmlEventSetFree?(set)
        finished.signal()
    }
}

#if canImport(Glibc)
import Glibc
#endif
