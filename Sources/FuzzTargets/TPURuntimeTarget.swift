import Accelerators
import SwiftProtobuf
import TPURuntimeAPI
import TPURuntimeClient

extension FuzzTargets {
    /// libtpu's `GetRuntimeMetric` answer, decoded as the gRPC client decodes it (SwiftProtobuf, the generated
    /// `MetricResponse`), then converted as an answer to every metric the client asks for, and checked for
    /// consistency as each refresh does.
    ///
    /// What is kept is in range: byte counts and queue lengths non-negative and finite, percentages 0...100, memory in
    /// use never above a device's total, histograms with as many counts as buckets adding up to their count.
    static let tpuRuntime = FuzzTarget("tpu-runtime", maxLength: 16 << 10) { (raw) throws(FuzzFinding) in
        guard let response = try? Tpu_Monitoring_Runtime_MetricResponse(serializedBytes: Array(raw)) else { return }
        var snapshot = TPURuntimeSnapshot()
        for metric in TPURuntimeMetric.allCases {
            _ = TPURuntimeConversion.add(response, as: metric, to: &snapshot)
        }
        _ = TPURuntimeConversion.checkConsistency(&snapshot)
        for (index, used) in snapshot.hbmUsedBytes {
            try check(used.isFinite && used >= 0, "device \(index): \(used) bytes in use")
            if let total = snapshot.hbmTotalBytes[index] { try check(used <= total, "device \(index): \(used) in use of \(total)") }
        }
        for (index, total) in snapshot.hbmTotalBytes { try check(total.isFinite && total >= 0, "device \(index): \(total) bytes in all") }
        for (index, percent) in snapshot.dutyCyclePercent.merging(snapshot.hbmUtilizationPercent, uniquingKeysWith: max) {
            try check((0...100).contains(percent), "index \(index): \(percent) %")
        }
        for (index, size) in snapshot.hloQueueSize { try check(size.isFinite && size >= 0, "device \(index): queue \(size)") }
        for (index, histogram) in snapshot.hloExecutionSeconds {
            try check(
                histogram.bucketCounts.count == histogram.upperBounds.count + 1 && histogram.sum.isFinite
                    && zip(histogram.upperBounds, histogram.upperBounds.dropFirst()).allSatisfy { $0 < $1 },
                "device \(index): an inconsistent histogram \(histogram)")
        }
    }
}
