import AccelMetricsTesting
import ConfigYAML
import Foundation
import Testing

/// The HPA controller's `behavior` handling (`normalizeDesiredReplicasWithBehaviors` in kube-controller-manager's
/// horizontal.go): the recommendation is stabilized over timestamped recommendations (scale up to the lowest of the
/// scale-up window, down to the highest of the scale-down window), then limited by the scaling policies over the
/// scale events of each policy's period, and by min/max replicas.
struct HPABehavior {
    struct Policy {
        var pods: Bool
        var value: Int
        var periodSeconds: Double
    }

    struct Rules {
        var stabilizationSeconds: Double
        var policies: [Policy]
        var selectMax = true
    }

    var minReplicas: Int
    var maxReplicas: Int
    var scaleUp: Rules
    var scaleDown: Rules
    private var recommendations: [(time: Double, replicas: Int)] = []
    private(set) var scaleUpEvents: [(time: Double, change: Int)] = []
    private(set) var scaleDownEvents: [(time: Double, change: Int)] = []

    init(minReplicas: Int, maxReplicas: Int, scaleUp: Rules, scaleDown: Rules) {
        self.minReplicas = minReplicas
        self.maxReplicas = maxReplicas
        self.scaleUp = scaleUp
        self.scaleDown = scaleDown
    }

    /// The HPA's fields from an example manifest: minReplicas, maxReplicas and spec.behavior.
    init(manifest: ConfigValue) throws {
        let spec = try manifest.at("spec")
        func rules(_ value: ConfigValue) throws -> Rules {
            Rules(
                stabilizationSeconds: try value.number("stabilizationWindowSeconds"),
                policies: try value.at("policies").items.map {
                    Policy(pods: try $0.string("type") == "Pods", value: Int(try $0.number("value")), periodSeconds: try $0.number("periodSeconds"))
                },
                selectMax: (try? value.string("selectPolicy")) != "Min")
        }
        self.init(
            minReplicas: Int(try spec.number("minReplicas")), maxReplicas: Int(try spec.number("maxReplicas")),
            scaleUp: try rules(try spec.at("behavior").at("scaleUp")), scaleDown: try rules(try spec.at("behavior").at("scaleDown")))
    }

    /// The replica count the controller sets at `now`, given the metric's desired count (nil: no usable metric, no
    /// change and no recommendation recorded).
    mutating func reconcile(current: Int, desired: Int?, now: Double) -> Int {
        if recommendations.isEmpty { recommendations = [(now, current)] }  // maybeInitScaleDownStabilizationWindow
        guard let desired else { return current }
        // stabilizeRecommendationWithBehaviors
        var up = desired
        var down = desired
        for recommendation in recommendations {
            if recommendation.time > now - scaleUp.stabilizationSeconds { up = min(up, recommendation.replicas) }
            if recommendation.time > now - scaleDown.stabilizationSeconds { down = max(down, recommendation.replicas) }
        }
        var stabilized = current
        if stabilized < up { stabilized = up }
        if stabilized > down { stabilized = down }
        recommendations.removeAll { $0.time <= now - scaleUp.stabilizationSeconds && $0.time <= now - scaleDown.stabilizationSeconds }
        recommendations.append((now, desired))
        // convertDesiredReplicasWithBehaviorRate
        func changed(_ events: [(time: Double, change: Int)], within period: Double) -> Int {
            events.filter { $0.time > now - period }.reduce(0) { $0 + $1.change }
        }
        var next = stabilized
        if stabilized > current {
            var limit = scaleUp.selectMax ? Int.min : Int.max
            for policy in scaleUp.policies {
                let start = current - changed(scaleUpEvents, within: policy.periodSeconds) + changed(scaleDownEvents, within: policy.periodSeconds)
                let proposed = policy.pods ? start + policy.value : Int((Double(start) * (1 + Double(policy.value) / 100)).rounded(.up))
                limit = scaleUp.selectMax ? max(limit, proposed) : min(limit, proposed)
            }
            next = min(stabilized, max(limit, current), maxReplicas)
        } else if stabilized < current {
            var limit = scaleDown.selectMax ? Int.max : Int.min
            for policy in scaleDown.policies {
                let start = current - changed(scaleUpEvents, within: policy.periodSeconds) + changed(scaleDownEvents, within: policy.periodSeconds)
                let proposed = policy.pods ? start - policy.value : Int(Double(start) * (1 - Double(policy.value) / 100))
                limit = scaleDown.selectMax ? min(limit, proposed) : max(limit, proposed)
            }
            next = max(stabilized, min(limit, current), minReplicas)
        }
        if next > current { scaleUpEvents.append((now, next - current)) }
        if next < current { scaleDownEvents.append((now, current - next)) }
        return next
    }
}

extension ConfigValue {
    func at(_ key: String) throws -> ConfigValue {
        guard case .map(let entries) = self, let value = entries.first(where: { $0.key == key })?.value else {
            throw HarnessError("no \(key) in the manifest")
        }
        return value
    }

    var items: [ConfigValue] {
        get throws {
            guard case .list(let items) = self else { throw HarnessError("not a list") }
            return items
        }
    }

    func string(_ key: String) throws -> String {
        guard case .scalar(let text) = try at(key) else { throw HarnessError("\(key) is not a scalar") }
        return text
    }

    func number(_ key: String) throws -> Double {
        guard let value = Double(try string(key)) else { throw HarnessError("\(key) is not a number") }
        return value
    }
}

/// The two inference HPA examples of deploy/examples, their targets and behavior read from the manifests, scaling a
/// simulated vLLM Deployment on the adapter's real answers (the adapter binary scraping an exporter stand-in, asked
/// through `kubectl get --raw` as the HPA controller's metrics client would), one HPA sync (15 s of simulated time)
/// per period.
@Suite(.serialized, .tags(.endToEnd), .endToEndEnabled) final class InferenceHPATests {
    static let syncSeconds = 15.0
    let exporter: FakeExporter
    let apiServer: FakeAPIServer
    let adapter: ManagedProcess
    let port: Int
    let directory: TemporaryDirectory
    let start = Date().timeIntervalSince1970.rounded(.down)

    init() throws {
        exporter = try FakeExporter(FakeNode(name: "hpa-node", devices: []))
        directory = TemporaryDirectory(prefix: "accel-hpa")
        // The pods the Deployment may have, labelled as its template labels them: the External metric's selector
        // (app=vllm) matches series through their pods' labels, from the adapter's pod watch.
        let pods: [[String: Any]] = (0..<80).map { index in
            ["apiVersion": "v1", "kind": "Pod", "metadata": ["namespace": "hpa", "name": "llm-\(index)", "labels": ["app": "vllm"]],
             "spec": ["nodeName": "hpa-node"], "status": ["phase": "Running", "podIP": "10.0.0.9"]]
        }
        apiServer = try FakeAPIServer(seed: ["objects": pods])
        let kubeconfig = try apiServer.kubeconfig(user: "adapter", token: "adapter-token", namespace: "accel-metrics")
        port = try freePort()
        adapter = try ManagedProcess(
            PackagePaths.product("accel-metrics-adapter"),
            [
                "--secure-port", "0", "--insecure-port", "\(port)", "--bind-address", "127.0.0.1", "--kubeconfig", kubeconfig.path,
                "--exporters.targets", exporter.address, "--metric-resolution", "100ms", "--metrics-max-age", "1h",
            ])
        try adapter.waitFor("accel-metrics-adapter started")
    }

    deinit {
        adapter.stop()
        apiServer.stop()
    }

    static func manifest(_ name: String) throws -> (text: String, value: ConfigValue) {
        let text = try String(contentsOf: PackagePaths.file("deploy/examples/\(name)"), encoding: .utf8)
        return (text, try YAMLDocument.parse(Array(text.utf8)))
    }

    func get(_ path: String) throws -> [String: Any]? {
        let kubectl = try #require(PackagePaths.executable("kubectl"))
        let (out, _, status) = try runProgram(kubectl, ["--server", "http://127.0.0.1:\(port)", "get", "--raw", path])
        guard status == 0 else { return nil }
        return try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any]
    }

    static func stamp(_ time: Double) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: Date(timeIntervalSince1970: time))
    }

    /// `pods/*/<metric>` in milli units once the adapter serves the sample taken at `sampleTime`.
    func podsMetric(_ metric: String, sampleTime: Double) throws -> [String: Int64] {
        var served: [String: Int64]?
        _ = try eventually(timeout: 10) {
            guard let json = try get("/apis/custom.metrics.k8s.io/v1beta2/namespaces/hpa/pods/%2A/\(metric)"),
                let items = json["items"] as? [[String: Any]], !items.isEmpty,
                items.allSatisfy({ $0["timestamp"] as? String == Self.stamp(sampleTime) })
            else { return false }
            var values: [String: Int64] = [:]
            for item in items {
                values[(item["describedObject"] as? [String: Any])?["name"] as? String ?? "?"] = try HPAReplicaTests.milli(item["value"] as? String ?? "")
            }
            served = values
            return true
        }
        if let served { return served }
        throw HarnessError("the adapter did not serve the sample of \(Self.stamp(sampleTime))\n\(adapter.log.suffix(2000))")
    }

    /// The External metric the HPA reads (`external.metrics.k8s.io`, the manifest's selector), in milli units;
    /// nil when the adapter has no value (an empty list).
    func externalMetric(_ metric: String, selector: String, sampleTime: Double) throws -> Int64? {
        let query = selector.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? selector
        let json = try #require(try get("/apis/external.metrics.k8s.io/v1beta1/namespaces/hpa/\(metric)?labelSelector=\(query)"))
        guard let item = (json["items"] as? [[String: Any]])?.first else { return nil }
        #expect(item["timestamp"] as? String == Self.stamp(sampleTime))
        return try HPAReplicaTests.milli(item["value"] as? String ?? "")
    }

    // MARK: Queue depth (Pods metric, AverageValue)

    @Test func queueDepthExample() throws {
        let (_, manifest) = try Self.manifest("hpa-vllm-queue-depth.yaml")
        let metric = try manifest.at("spec").at("metrics").items[0]
        #expect(try metric.string("type") == "Pods")
        let pods = try metric.at("pods")
        let name = try pods.at("metric").string("name")
        #expect(name == "inference_queue_depth")
        #expect(try pods.at("target").string("type") == "AverageValue")
        let target = try pods.at("target").number("averageValue")
        var hpa = try HPABehavior(manifest: manifest)

        // The Deployment's whole queue, period by period: quiet, a surge, then a lasting lower level. The pods that
        // serve share it evenly; each reports its share as vLLM's num_requests_waiting.
        let phases: [(total: Double, periods: Int)] = [(6, 4), (93, 24), (37, 100)]
        var deployment = SimulatedDeployment()
        var history: [(time: Double, replicas: Int, content: Bool)] = []
        var period = 0
        var phaseEnds: [Int] = []
        for (total, periods) in phases {
            for _ in 0..<periods {
                period += 1
                let now = start + Double(period) * Self.syncSeconds
                let serving = Double(deployment.pods.filter { $0.phase == .running }.count)
                let reporting = deployment.utilization(load: 1).keys.sorted()
                var lines = ["# TYPE inference_requests_waiting gauge"]
                for pod in reporting {
                    lines.append("inference_requests_waiting{model_name=\"llama\",namespace=\"hpa\",pod=\"\(pod)\"} \(total / serving)")
                }
                lines += ["# TYPE accel_exporter_last_sample_timestamp_seconds gauge", "accel_exporter_last_sample_timestamp_seconds \(now)", ""]
                exporter.publish(text: lines.joined(separator: "\n"))
                let served = try podsMetric(name, sampleTime: now)
                // The adapter's answer is each reporting pod's share, in milli units.
                #expect(served == Dictionary(uniqueKeysWithValues: reporting.map { ($0, Int64((total / serving * 1000).rounded())) }), "period \(period)")
                let desired = ReplicaCalculator().desiredReplicas(
                    current: deployment.pods.count, pods: deployment.pods, metrics: served, targetMilli: Int64(target * 1000))
                let current = deployment.pods.count
                let next = hpa.reconcile(current: current, desired: desired, now: now)
                deployment.scale(to: next)
                history.append((now, next, desired == current && next == current))
            }
            phaseEnds.append(period)
        }
        let replicas = history.map(\.replicas)
        // Each level is met within its phase: the HPA's own calculation on the adapter's answers gives the current
        // count back (every pod's share within 10 % of the target), with more pods for the surge than after it.
        #expect(history[phaseEnds[1] - 1].content && history[phaseEnds[2] - 1].content, "\(replicas)")
        #expect(replicas[phaseEnds[1] - 1] > replicas[phaseEnds[2] - 1], "\(replicas)")
        #expect(abs(93 / Double(replicas[phaseEnds[1] - 1]) / target - 1) <= 0.1, "\(replicas)")
        #expect(replicas.allSatisfy { $0 <= hpa.maxReplicas && $0 >= hpa.minReplicas })
        // Scale-up: never more than the policies allow in any of their periods (4 pods or 100 %, the larger).
        for (index, entry) in history.enumerated() {
            let before = index == 0 ? 1 : history.filter { $0.time <= entry.time - 60 }.last?.replicas ?? 1
            #expect(entry.replicas <= max(before + 4, before * 2), "period \(index + 1): \(replicas)")
        }
        // Scale-down: nothing before the stabilization window (600 s) has passed since the surge ended, then at
        // most one pod per 120 s.
        let dropTime = history[phaseEnds[1] - 1].time
        let downs = zip(history, history.dropFirst()).filter { $1.replicas < $0.replicas }.map { $1 }
        #expect(!downs.isEmpty)
        #expect(downs.allSatisfy { $0.time >= dropTime + hpa.scaleDown.stabilizationSeconds - Self.syncSeconds }, "\(replicas)")
        for (a, b) in zip(downs, downs.dropFirst()) {
            #expect(b.time - a.time >= hpa.scaleDown.policies[0].periodSeconds, "\(replicas)")
        }
    }

    // MARK: p95 latency (External metric, the workload's merged buckets)

    /// Upper bounds of the latency histogram (vLLM's e2e layout, truncated).
    static let bounds: [Double] = [0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60]
    /// Each pod's requests in one period, as multiples of its typical latency.
    static let spread: [Double] = [0.45, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 1, 1, 1.05, 1.1, 1.2, 1.3, 1.45, 1.6, 1.8, 2.1, 2.6, 3.1, 4]

    /// histogram_quantile over buckets (upper bound → cumulative count or rate), written out here: the first
    /// bucket whose count reaches q × total, linear inside it from its lower bound (0 for the first), the highest
    /// finite bound if only +Inf reaches it.
    static func quantile(_ q: Double, _ buckets: [Double: Double]) -> Double? {
        let sorted = buckets.sorted { $0.key < $1.key }
        guard let total = sorted.last?.value, total > 0 else { return nil }
        let rank = q * total
        var lower = 0.0
        var below = 0.0
        for (bound, count) in sorted {
            if count >= rank {
                if bound == .infinity { return lower }
                return lower + (bound - lower) * (rank - below) / (count - below)
            }
            lower = bound
            below = count
        }
        return nil
    }

    @Test func p95LatencyExample() throws {
        let (text, manifest) = try Self.manifest("hpa-vllm-p95-latency.yaml")
        // The manifest's External alternative is a commented block: uncommented, it must read as this test uses it.
        let block = text.split(separator: "\n").drop { !$0.contains("- type: External") }.prefix { $0.hasPrefix("    #") }
            .map { "  " + $0.replacingOccurrences(of: "    # ", with: "") }.joined(separator: "\n")
        let external = try YAMLDocument.parse(Array(block.utf8)).items[0]
        #expect(try external.string("type") == "External")
        let name = try external.at("external").at("metric").string("name")
        #expect(name == "inference_latency_p95_seconds")
        let selector = try external.at("external").at("metric").at("selector").at("matchLabels").string("app")
        #expect(try external.at("external").at("target").string("type") == "Value")
        let target = try external.at("external").at("target").number("value")
        var hpa = try HPABehavior(manifest: manifest)

        // Demand on the Deployment, period by period; a pod's typical latency grows with its share of it
        // (0.25 s per unit), and each pod answers `spread.count` requests per period at multiples of it.
        let phases: [(demand: Double, periods: Int)] = [(2, 6), (20, 30), (6, 140)]
        var deployment = SimulatedDeployment()
        var cumulative: [String: [Double: Double]] = [:]
        /// What the exporter stand-in published: (sample time, pod → cumulative buckets).
        var published: [(time: Double, pods: [String: [Double: Double]])] = []
        var history: [(time: Double, replicas: Int, value: Int64?)] = []
        var phaseEnds: [Int] = []
        var period = 0
        for (demand, periods) in phases {
            for _ in 0..<periods {
                period += 1
                let now = start + Double(period) * Self.syncSeconds
                let serving = deployment.pods.filter { $0.phase == .running }.map(\.name)
                let reporting = Set(deployment.utilization(load: 1).keys)
                for pod in serving {
                    let typical = 0.25 * demand / Double(serving.count)
                    for factor in Self.spread {
                        let latency = typical * factor
                        for bound in Self.bounds + [.infinity] where latency <= bound {
                            cumulative[pod, default: [:]][bound, default: 0] += 1
                        }
                    }
                }
                var sample: [String: [Double: Double]] = [:]
                var lines = ["# TYPE inference_request_duration_seconds histogram"]
                for pod in reporting.sorted() {
                    var buckets = cumulative[pod] ?? [:]
                    for bound in Self.bounds + [.infinity] where buckets[bound] == nil { buckets[bound] = 0 }
                    sample[pod] = buckets
                    let labels = "model_name=\"llama\",namespace=\"hpa\",pod=\"\(pod)\""
                    for bound in Self.bounds + [.infinity] {
                        lines.append("inference_request_duration_seconds_bucket{le=\"\(bound == .infinity ? "+Inf" : "\(bound)")\",\(labels)} \(buckets[bound]!)")
                    }
                    lines.append("inference_request_duration_seconds_sum{\(labels)} 0")
                    lines.append("inference_request_duration_seconds_count{\(labels)} \(buckets[.infinity]!)")
                }
                lines.append("# TYPE inference_requests_waiting gauge")
                for pod in reporting.sorted() { lines.append("inference_requests_waiting{model_name=\"llama\",namespace=\"hpa\",pod=\"\(pod)\"} 0") }
                lines += ["# TYPE accel_exporter_last_sample_timestamp_seconds gauge", "accel_exporter_last_sample_timestamp_seconds \(now)", ""]
                published.append((now, sample))
                exporter.publish(text: lines.joined(separator: "\n"))

                // Once the adapter has this sample (the pods metric says so), the HPA reads the External metric.
                if !reporting.isEmpty { _ = try podsMetric("inference_queue_depth", sampleTime: now) }
                let value = try externalMetric(name, selector: "app=\(selector)", sampleTime: now)

                // Expected: each published bucket series' increase over the samples of the last 60 s, per second
                // of its own span (a series needs two samples in the window), added up by le over the pods the
                // exporter reports now, then histogram_quantile.
                var merged: [Double: Double] = [:]
                let window = published.filter { $0.time >= now - 60 }
                for pod in reporting {
                    let points = window.compactMap { entry in entry.pods[pod].map { (entry.time, $0) } }
                    guard let first = points.first, let last = points.last, last.0 > first.0 else { continue }
                    for bound in Self.bounds + [.infinity] {
                        merged[bound, default: 0] += (last.1[bound]! - first.1[bound]!) / (last.0 - first.0)
                    }
                }
                let expected = Self.quantile(0.95, merged).map { Int64(($0 * 1000).rounded()) }
                #expect(value == expected, "period \(period): served \(value.map(String.init) ?? "nothing"), expected \(expected.map(String.init) ?? "nothing")")

                // GetExternalMetricReplicas: usage / target × ready pods, unless within the tolerance.
                var desired: Int?
                if let value {
                    let ratio = Double(value) / (target * 1000)
                    desired = abs(1 - ratio) <= 0.1 ? deployment.pods.count : Int((ratio * Double(serving.count)).rounded(.up))
                }
                let next = hpa.reconcile(current: deployment.pods.count, desired: desired, now: now)
                deployment.scale(to: next)
                history.append((now, next, value))
            }
            phaseEnds.append(period)
        }
        let replicas = history.map(\.replicas)
        // Scale-up waits for a minute of high recommendations (stabilization 60 s) and adds at most 2 pods a minute.
        let surge = phaseEnds[0]
        #expect(replicas[surge] == replicas[surge - 1], "\(replicas)")
        for (index, entry) in history.enumerated() {
            let before = history.filter { $0.time <= entry.time - 60 }.last?.replicas ?? 1
            #expect(entry.replicas <= before + 2, "period \(index + 1): \(replicas)")
        }
        // The surge is met: by its end the p95 is within the HPA's tolerance of the target, or no larger.
        let surgeEnd = history[phaseEnds[1] - 1]
        #expect(replicas.max()! > 1, "\(replicas)")
        #expect(Double(surgeEnd.value ?? .max) <= target * 1000 * 1.1, "\(history.map { ($0.replicas, $0.value ?? -1) })")
        // Scale-down: nothing within 900 s of the drop, then at most one pod per 180 s, down to the level where the
        // HPA is content (its own formula gives the current count back).
        let dropTime = surgeEnd.time
        let downs = zip(history, history.dropFirst()).filter { $1.replicas < $0.replicas }.map { $1 }
        #expect(!downs.isEmpty, "\(replicas)")
        #expect(downs.allSatisfy { $0.time >= dropTime + hpa.scaleDown.stabilizationSeconds - Self.syncSeconds }, "\(replicas)")
        for (a, b) in zip(downs, downs.dropFirst()) {
            #expect(b.time - a.time >= hpa.scaleDown.policies[0].periodSeconds, "\(replicas)")
        }
        let last = try #require(history.last)
        let ratio = Double(try #require(last.value)) / (target * 1000)
        let ready = deployment.pods.filter { $0.phase == .running }.count
        #expect(abs(1 - ratio) <= 0.1 || Int((ratio * Double(ready)).rounded(.up)) == last.replicas, "\(history.map { ($0.replicas, $0.value ?? -1) })")
    }
}
