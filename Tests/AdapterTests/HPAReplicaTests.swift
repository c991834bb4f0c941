import AccelMetricsTesting
import Foundation
import Testing

/// The HPA controller's replica calculation for a Pods metric (`calcPlainMetricReplicas` with `groupPods`, as in
/// kube-controller-manager's `replica_calculator.go`), written out here so that a simulated deployment can be
/// scaled on the adapter's real answers.
struct ReplicaCalculator {
    enum Phase { case pending, running, failed }
    struct Pod {
        var name: String
        var phase: Phase
    }

    var tolerance = 0.1

    /// nil when the HPA would not scale (no usable metric: "did not receive metrics for targeted pods").
    func desiredReplicas(current: Int, pods: [Pod], metrics: [String: Int64], targetMilli: Int64) -> Int? {
        var metrics = metrics
        var ready = 0
        var unready: [String] = []
        var missing: [String] = []
        var ignored: [String] = []
        for pod in pods {
            switch pod.phase {
            case .failed: ignored.append(pod.name)
            case .pending: unready.append(pod.name)
            case .running:
                if metrics[pod.name] == nil { missing.append(pod.name) } else { ready += 1 }
            }
        }
        for name in ignored + unready { metrics[name] = nil }
        // Items for pods outside the list are averaged in by the HPA too; the adapter must not return them.
        guard !metrics.isEmpty else { return nil }
        func usageRatio(_ metrics: [String: Int64]) -> Double {
            let total = metrics.values.reduce(0, +)
            let average = total / Int64(metrics.count)  // integer division, as GetMetricUsageRatio
            return Double(average) / Double(targetMilli)
        }
        let ratio = usageRatio(metrics)
        let scaleUpWithUnready = !unready.isEmpty && ratio > 1.0
        if !scaleUpWithUnready && missing.isEmpty {
            if abs(1.0 - ratio) <= tolerance { return current }
            return Int((ratio * Double(ready)).rounded(.up))
        }
        if !missing.isEmpty {
            for name in missing { metrics[name] = ratio < 1.0 ? targetMilli : 0 }
        }
        if scaleUpWithUnready {
            for name in unready { metrics[name] = 0 }
        }
        let newRatio = usageRatio(metrics)
        if abs(1.0 - newRatio) <= tolerance || (ratio < 1.0 && newRatio > 1.0) || (ratio > 1.0 && newRatio < 1.0) {
            return current
        }
        let replicas = Int((newRatio * Double(metrics.count)).rounded(.up))
        if (newRatio < 1.0 && replicas > current) || (newRatio > 1.0 && replicas < current) { return current }
        return replicas
    }

    /// Default scale-up limit: max(4 pods, 100%) per period.
    func limited(current: Int, desired: Int, maxReplicas: Int) -> Int {
        min(maxReplicas, min(desired, max(current + 4, current * 2)))
    }

    /// `stabilizeRecommendation`: scale up at once (window 0), scale down only to the highest recommendation of
    /// the last `recommendations` (the scale-down stabilization window).
    func stabilized(current: Int, recommendations: ArraySlice<Int>) -> Int {
        let up = recommendations.last ?? current
        let down = recommendations.max() ?? current
        if current < up { return up }
        if current > down { return down }
        return current
    }
}

/// A deployment whose pods each hold one GPU of a fake node; the node's total load is spread over the running pods.
/// New pods are Pending for one period, or Running without a metric yet, before they report.
struct SimulatedDeployment {
    var pods: [ReplicaCalculator.Pod] = [.init(name: "llm-0", phase: .running)]
    /// Pods that run but whose exporter series has not appeared yet.
    var silent: Set<String> = []
    var created = 1

    mutating func scale(to replicas: Int) {
        // Last period's newcomers start reporting.
        for index in pods.indices where pods[index].phase == .pending { pods[index].phase = .running }
        silent = []
        while pods.count < replicas {
            let name = "llm-\(created)"
            created += 1
            // Alternate the two ways a new pod lacks a value.
            if created % 2 == 0 {
                pods.append(.init(name: name, phase: .pending))
            } else {
                pods.append(.init(name: name, phase: .running))
                silent.insert(name)
            }
        }
        if pods.count > replicas { pods.removeLast(pods.count - replicas) }
    }

    /// Utilization (0..1) of each pod that reports.
    func utilization(load: Double) -> [String: Double] {
        let serving = pods.filter { $0.phase == .running }
        guard !serving.isEmpty else { return [:] }
        let each = min(1.0, load / Double(serving.count))
        var out: [String: Double] = [:]
        for pod in serving where !silent.contains(pod.name) { out[pod.name] = each }
        return out
    }

    func node(load: Double, sampleTime: Double) -> FakeNode {
        let values = utilization(load: load)
        var node = FakeNode(
            name: "hpa-node",
            devices: (0..<16).map { .init(id: "GPU-\($0)", utilization: nil, memoryUsed: nil, memoryTotal: 80e9) },
            sampleTime: sampleTime)
        for (index, pod) in pods.enumerated() where values[pod.name] != nil {
            node.allocations.append(("hpa", pod.name, "server", "GPU-\(index)"))
            node.shares.append(
                .init(namespace: "hpa", pod: pod.name, container: "server", device: "GPU-\(index)", utilization: values[pod.name]))
        }
        return node
    }
}

@Suite(.serialized, .tags(.endToEnd), .endToEndEnabled) final class HPAReplicaTests {
    let exporter: FakeExporter
    let adapter: ManagedProcess
    let port: Int
    let start = Date().timeIntervalSince1970.rounded(.down)

    init() throws {
        exporter = try FakeExporter(SimulatedDeployment().node(load: 0.3, sampleTime: start))
        port = try freePort()
        adapter = try ManagedProcess(
            PackagePaths.product("accel-metrics-adapter"),
            [
                "--secure-port", "0", "--insecure-port", "\(port)", "--bind-address", "127.0.0.1", "--exporters.targets", exporter.address,
                "--metric-resolution", "100ms", "--metrics-max-age", "10m",
            ])
        try adapter.waitFor("accel-metrics-adapter started")
    }

    deinit { adapter.stop() }

    /// `pods/*/<metric>` in milli units, once the adapter serves the sample taken at `sampleTime`.
    func served(sampleTime: Double, metric: String = "gpu_utilization") throws -> [String: Int64] {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        let stamp = formatter.string(from: Date(timeIntervalSince1970: sampleTime))
        let kubectl = try #require(PackagePaths.executable("kubectl"))
        var served: [String: Int64]?
        _ = try eventually(timeout: 10) {
            let (out, _, status) = try runProgram(
                kubectl,
                ["--server", "http://127.0.0.1:\(port)", "get", "--raw", "/apis/custom.metrics.k8s.io/v1beta2/namespaces/hpa/pods/%2A/\(metric)"])
            guard status == 0, let json = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any],
                let items = json["items"] as? [[String: Any]],
                !items.isEmpty, items.allSatisfy({ $0["timestamp"] as? String == stamp })
            else { return false }
            var values: [String: Int64] = [:]
            for item in items {
                let name = (item["describedObject"] as? [String: Any])?["name"] as? String ?? "?"
                values[name] = try Self.milli(item["value"] as? String ?? "")
            }
            served = values
            return true
        }
        if let served { return served }
        throw HarnessError("the adapter did not serve the sample of \(stamp)\n\(adapter.log.suffix(2000))")
    }

    /// `MilliValue()` of the quantities the adapter writes for percentages.
    static func milli(_ quantity: String) throws -> Int64 {
        if quantity.hasSuffix("m"), let value = Int64(quantity.dropLast()) { return value }
        if quantity.hasSuffix("k"), let value = Int64(quantity.dropLast()) { return value * 1_000_000 }
        if let value = Int64(quantity) { return value * 1000 }
        throw HarnessError("unexpected quantity \(quantity)")
    }

    @Test func scalesASimulatedDeploymentAsUtilizationMoves() throws {
        let calculator = ReplicaCalculator()
        let target: Int64 = 60_000  // averageValue: 60 (percent)
        // Load in GPU-equivalents, period by period: a steady level, a surge, a drop.
        let loads: [Double] = [0.3] + Array(repeating: 1.8, count: 5) + Array(repeating: 4.5, count: 7)
            + Array(repeating: 1.0, count: 6)
        // A scale-down stabilization window of 3 periods (`behavior.scaleDown.stabilizationWindowSeconds: 45`).
        let window = 3
        var viaAdapter = SimulatedDeployment()
        var truth = SimulatedDeployment()
        var adapterRecommendations: [Int] = []
        var truthRecommendations: [Int] = []
        var history: [Int] = []
        for (period, load) in loads.enumerated() {
            let sampleTime = start + Double(period + 1)
            exporter.publish(viaAdapter.node(load: load, sampleTime: sampleTime))
            let metrics = try served(sampleTime: sampleTime)
            // The same period computed from the model's own numbers, without the adapter.
            let expected = truth.utilization(load: load).mapValues { Int64(($0 * 100 * 1000).rounded()) }
            #expect(metrics == expected, "period \(period)")

            let current = viaAdapter.pods.count
            let desired = calculator.desiredReplicas(current: current, pods: viaAdapter.pods, metrics: metrics, targetMilli: target)
            let truthDesired = calculator.desiredReplicas(
                current: truth.pods.count, pods: truth.pods, metrics: expected, targetMilli: target)
            #expect(desired == truthDesired, "period \(period)")

            adapterRecommendations.append(calculator.limited(current: current, desired: desired ?? current, maxReplicas: 16))
            truthRecommendations.append(
                calculator.limited(current: truth.pods.count, desired: truthDesired ?? truth.pods.count, maxReplicas: 16))
            let next = calculator.stabilized(current: current, recommendations: adapterRecommendations.suffix(window))
            viaAdapter.scale(to: next)
            truth.scale(to: calculator.stabilized(current: truth.pods.count, recommendations: truthRecommendations.suffix(window)))
            history.append(next)
        }
        // Steady states: ceil(1.8 / 0.6) = 3, ceil(4.5 / 0.6) = 8 (56.25 % each, within the tolerance), then
        // ceil(1.0 / 0.6) = 2 after the stabilization window.
        #expect(history[5] == 3, "\(history)")
        #expect(history[12] == 8, "\(history)")
        #expect(history.last == 2, "\(history)")
    }

    /// A vLLM deployment: `inference_requests_waiting` is the total queue spread over the serving pods; the p95
    /// latency of each pod grows with its share of the demand (0.2 s per unit).
    static func inferenceExposition(_ deployment: SimulatedDeployment, demand: Double, sampleTime: Double) -> String {
        let values = deployment.utilization(load: .greatestFiniteMagnitude).keys.sorted()
        let serving = Double(deployment.pods.filter { $0.phase == .running }.count)
        var lines = ["# TYPE inference_requests_waiting gauge"]
        for pod in values { lines.append("inference_requests_waiting{model_name=\"llama\",namespace=\"hpa\",pod=\"\(pod)\"} \(demand / serving)") }
        lines.append("# TYPE inference_request_duration_p95_seconds gauge")
        for pod in values {
            lines.append("inference_request_duration_p95_seconds{model_name=\"llama\",namespace=\"hpa\",pod=\"\(pod)\"} \(0.2 * demand / serving)")
        }
        lines += ["# TYPE accel_exporter_last_sample_timestamp_seconds gauge", "accel_exporter_last_sample_timestamp_seconds \(sampleTime)", ""]
        return lines.joined(separator: "\n")
    }

    /// The inference HPA examples' two signals: queue depth (target 10 requests per pod) and p95 latency (target
    /// 1 s), as the demand moves.
    @Test(arguments: [
        ("inference_queue_depth", Int64(10_000), [40.0, 120, 25], [4, 12, 3]),
        ("inference_latency_p95_seconds", Int64(1_000), [10.0, 30, 5], [2, 6, 1]),
    ])
    func scalesAnInferenceDeployment(metric: String, targetMilli: Int64, demands: [Double], steady: [Int]) throws {
        let calculator = ReplicaCalculator()
        let periods = 7
        var deployment = SimulatedDeployment()
        var recommendations: [Int] = []
        var history: [Int] = []
        var period = 0
        for demand in demands {
            for _ in 0..<periods {
                period += 1
                let sampleTime = start + Double(period)
                exporter.publish(text: Self.inferenceExposition(deployment, demand: demand, sampleTime: sampleTime))
                let metrics = try served(sampleTime: sampleTime, metric: metric)
                // Each reporting pod's value, from the model: queue share, or 0.2 s per unit of demand share.
                let serving = Double(deployment.pods.filter { $0.phase == .running }.count)
                let share = metric == "inference_queue_depth" ? demand / serving : 0.2 * demand / serving
                let expected = deployment.utilization(load: .greatestFiniteMagnitude)
                    .mapValues { _ in Int64((share * 1000).rounded()) }
                #expect(metrics == expected, "period \(period)")
                let current = deployment.pods.count
                let desired = calculator.desiredReplicas(current: current, pods: deployment.pods, metrics: metrics, targetMilli: targetMilli)
                recommendations.append(calculator.limited(current: current, desired: desired ?? current, maxReplicas: 16))
                let next = calculator.stabilized(current: current, recommendations: recommendations.suffix(3))
                deployment.scale(to: next)
                history.append(next)
            }
            // Steady state: ceil(demand / target per pod). (Demands are chosen away from exact multiples: the HPA reads
            // milli-units, and 20 / 12 = 1.667 → 1667m reads as 2.0004 pods, which the formula rounds up to 3.)
            #expect(history.last == steady[demands.firstIndex(of: demand)!], "\(metric) \(history) \(recommendations)")
        }
    }
}
