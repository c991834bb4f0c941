internal import CNVML

/// One GPU's NVLink links: which are up, how often one went down, and last tick's throughput counters.
///
/// Link state comes from `nvmlDeviceGetNvLinkState` on the discovery schedule (a probe of every link number, so
/// not per tick). Only links seen active are read: a PCIe card without bridges reports its links inactive, which
/// is not a fault. A link that was active and is no longer counts once in `accelerator_errors_total{type=
/// "nvlink_down"}` (since the exporter started).
struct NVLinks {
    /// NVML_NVLINK_MAX_LINKS of pynvml 13.x (36); older headers had fewer, and their drivers answer
    /// INVALID_ARGUMENT for the numbers beyond.
    static let maxLinks = Int(NVML_NVLINK_MAX_LINKS)
    /// `link` label values, made once.
    static let labels = (0..<maxLinks).map { String($0) }

    /// Links active at the last probe, ascending.
    var active: [Int] = []
    /// Whether the GPU has ever shown an active link (then `nvlink_down` is exported, from 0).
    var seen = false
    /// Active → inactive transitions seen since the exporter started.
    var down = 0.0
    /// Last tick's counters (bytes) and when they were read, for the rate where GPM gives none.
    var lastBytes: [DeviceSample.InterconnectKey: Double] = [:]
    var lastTime: MonotonicInstant?

    /// Field ids of the per-link data counters (KiB, the link in scopeId) and the `direction` they fill.
    static let throughputFields: [(id: UInt32, direction: String, name: String)] = [
        (UInt32(NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX), "tx", "field 138"),
        (UInt32(NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_RX), "rx", "field 139"),
    ]

    /// Rates from the change of the counters since the previous tick, for links and directions `s` has no rate
    /// for yet (GPM gave none); a counter that went backwards (driver reload) gives no rate this tick.
    mutating func deriveRates(now: MonotonicInstant, into s: inout DeviceSample) {
        if let lastTime, now > lastTime {
            let seconds = now.seconds(since: lastTime)
            for (key, bytes) in s.interconnectBytes where s.interconnectBytesPerSecond[key] == nil {
                if let previous = lastBytes[key], bytes >= previous {
                    s.interconnectBytesPerSecond[key] = (bytes - previous) / seconds
                }
            }
        }
        lastBytes = s.interconnectBytes
        lastTime = now
    }
}
