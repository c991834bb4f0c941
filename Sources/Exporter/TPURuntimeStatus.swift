import TPURuntimeClient
public import Accelerators
import Exposition
import MetricSchema

/// The TPU runtime client's health in a tick: `accel_exporter_collector_success{collector="tpu_runtime"}` and
/// `accel_exporter_tpu_runtime_up{address}`.
///
/// No workload listening is the normal state of a TPU node between jobs: it keeps `_success` at 1 (and the endpoint
/// at `_up 0`), so an idle node raises no collector alert. Only an endpoint that answers wrongly or too late makes
/// the collector fail.
public enum TPURuntimeStatus {
    /// The TPU collector's tick step while the runtime client is active. The duration is the slowest endpoint's, the
    /// error the first failing one's.
    public static func apply(_ reports: [TPURuntimeReport], to tick: inout Sampler.Tick) {
        var failing: [String] = []
        for report in reports {
            if case .failing(let reason) = report.state { failing.append("\(report.target.address): \(reason)") }
        }
        tick.collectors.append(Sampler.CollectorStatus(name: "tpu_runtime", success: failing.isEmpty,
                                                       durationSeconds: reports.map(\.durationSeconds).max() ?? 0,
                                                       error: failing.first))
        tick.extraFamilies.append(Families.Exporter.tpuRuntimeUp.family(
            reports.map { Sample(labels: [Label("address", $0.target.address)], value: $0.state == .answering ? 1 : 0) }))
    }
}
