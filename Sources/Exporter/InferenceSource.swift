public import Accelerators
public import Exposition
import Dispatch
public import Inference
public import Logging
public import ScrapeClient
import Synchronization
import MetricSchema

/// A model server to scrape: the pod it runs in and its metrics URL.
public struct InferenceTarget: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var namespace: String
    public var pod: String
    public var url: ScrapeURL
    /// Found only through the generic `prometheus.io/scrape` annotation, which most pods carry for other reasons:
    /// such a target is reported (`accel_exporter_inference_target_up`) only once it served a known engine's
    /// metrics, and while it does not it is probed once a minute rather than every sample.
    public var probe: Bool
    /// The Gateway API Inference Extension protocol's gauges under the server's own names (annotations
    /// `inference.accelmetrics.io/queued-metric` … or `;queued-metric=…` options): they win over a known engine's.
    public var metricNames: CustomMetricNames?
    /// Set when those names were given but cannot be used: the target is reported down with this reason, rather
    /// than scraped with a guess.
    public var configurationProblem: String?
    /// The workload's own families to re-export (`accelmetrics.io/metrics`, or a `;metrics=a|b` option), for
    /// autoscaling on them; reported by `accel_exporter_workload_target_up`.
    public var workloadFamilies: [String] = []
    /// False for a pod scraped only for its own families: no engine is looked for and no inference status kept.
    public var servesInference = true

    public init(
        namespace: String, pod: String, url: ScrapeURL, probe: Bool = false, metricNames: CustomMetricNames? = nil,
        configurationProblem: String? = nil, workloadFamilies: [String] = [], servesInference: Bool = true
    ) {
        self.namespace = namespace
        self.pod = pod
        self.url = url
        self.probe = probe
        self.metricNames = metricNames
        self.configurationProblem = configurationProblem
        self.workloadFamilies = workloadFamilies
        self.servesInference = servesInference
    }

    public static func < (lhs: InferenceTarget, rhs: InferenceTarget) -> Bool {
        (lhs.namespace, lhs.pod, lhs.url.description) < (rhs.namespace, rhs.pod, rhs.url.description)
    }

    public var description: String { "\(namespace)/\(pod)" }

    /// Parses `--inference.targets`: `namespace/pod=http://host:port/path` entries separated by commas, each
    /// optionally followed by `;key=value` options naming the protocol's gauges (the keys of the annotations:
    /// `queued-metric`, `running-metric`, `kv-cache-metric`, `kv-cache-scale`, `model-label`), e.g.
    /// `ml/srv=http://10.0.0.5:8000/metrics;queued-metric=queue_len;kv-cache-metric=kv_pct;kv-cache-scale=0.01`.
    /// `;metrics=a|b` names the workload's own families to re-export, and `;inference=false` says the server is no
    /// model server (only those families are taken from it).
    public static func parseList(_ text: String) throws(ScrapeError) -> [InferenceTarget] {
        var out: [InferenceTarget] = []
        for entry in text.split(separator: ",") where !entry.allSatisfy({ $0 == " " }) {
            let trimmed = entry.drop { $0 == " " }
            guard let equals = trimmed.firstIndex(of: "=") else {
                throw ScrapeError(code: .invalidURL, message: "\"\(trimmed)\": expected namespace/pod=http://host:port/path")
            }
            let identity = trimmed[..<equals].split(separator: "/", omittingEmptySubsequences: false)
            guard identity.count == 2, !identity[0].isEmpty, !identity[1].isEmpty else {
                throw ScrapeError(code: .invalidURL, message: "\"\(trimmed)\": the target must be named namespace/pod")
            }
            let parts = trimmed[trimmed.index(after: equals)...].split(separator: ";", omittingEmptySubsequences: false)
            let url = try ScrapeURL(parsing: parts[0].trimmingSpaces)
            var options: [(key: String, value: String)] = []
            var workload: [String] = []
            var servesInference = true
            for option in parts.dropFirst() {
                guard let split = option.firstIndex(of: "=") else {
                    throw ScrapeError(code: .invalidURL, message: "\"\(trimmed)\": option \"\(option)\" is not key=value")
                }
                let key = option[..<split].trimmingSpaces, value = String(option[option.index(after: split)...])
                switch key {
                case "metrics":
                    do {
                        workload = try WorkloadMetrics.parseNames(value.replacing("|", with: ","))
                    } catch {
                        throw ScrapeError(code: .invalidURL, message: "\"\(trimmed)\": metrics: \(error)")
                    }
                case "inference":
                    guard value == "true" || value == "false" else {
                        throw ScrapeError(code: .invalidURL, message: "\"\(trimmed)\": inference must be true or false")
                    }
                    servesInference = value == "true"
                default:
                    options.append((key, value))
                }
            }
            let names: CustomMetricNames?
            do {
                names = try CustomMetricNames.parse(options)
            } catch {
                throw ScrapeError(code: .invalidURL, message: "\"\(trimmed)\": \(error)")
            }
            out.append(InferenceTarget(
                namespace: String(identity[0]), pod: String(identity[1]), url: url, metricNames: names, workloadFamilies: workload,
                servesInference: servesInference || workload.isEmpty))
        }
        return out
    }
}

/// Turns one target's scraped families into the normalized `inference_*` families (the engine-specific part).
public protocol InferenceNormalizer: AnyObject {
    /// `families`: the target's parsed exposition; `time`: Unix seconds of the scrape. Returns the normalized
    /// families (labelled with the target's namespace and pod) and, when the target's data was refused, why.
    func normalize(_ families: [MetricFamily], target: InferenceTarget, time: Double) -> (families: [MetricFamily], problem: String?)
    /// Forget a target that left (its windows and counters).
    func forget(_ target: InferenceTarget)
}

/// Scrapes the node's model servers each sample tick, concurrently, each with a timeout and a size bound, through
/// the project's parser; a slow, dead or lying server affects only its own `accel_exporter_inference_target_up`.
public final class InferenceSource: AcceleratorSource, @unchecked Sendable {
    // @unchecked: `targets` and the normalizer are only touched on the sampler's worker queue for this source,
    // except `setTargets`, which goes through `pending` under its lock.
    public let name = "inference"
    private var targets: [InferenceTarget]
    private let pending = Mutex<[InferenceTarget]?>(nil)
    private let normalizer: any InferenceNormalizer
    private let timeoutSeconds: Double
    private let maxBytes: Int
    private let parallelism: Int
    private let clock: @Sendable () -> Double
    private let logger: Logger
    /// Each target's problem at its last scrape (nil: healthy): a change is logged once, not every sample.
    private var lastProblems: [InferenceTarget: String] = [:]
    /// Probe targets that answered but served no known engine: not scraped again before the instant given.
    private var notModelServers: [InferenceTarget: MonotonicInstant] = [:]
    /// Probe targets that served a known engine: reported like named targets from then on.
    private var recognized: Set<InferenceTarget> = []
    /// Bounds on what a pod's own families may be.
    private let workloadLimits: WorkloadMetrics.Limits
    /// Each workload target's dropped families at its last scrape: a change is logged once.
    private var lastDropped: [InferenceTarget: [String: WorkloadMetrics.DropReason]] = [:]
    /// How long a probe target that is not a model server is left alone.
    static let probeInterval = 60.0

    public init(
        targets: [InferenceTarget], normalizer: any InferenceNormalizer, timeoutSeconds: Double, maxBytes: Int = 16 << 20,
        parallelism: Int = 8, workloadLimits: WorkloadMetrics.Limits = .init(), clock: @escaping @Sendable () -> Double,
        logger: Logger = Logger(label: "inference", factory: { _ in SwiftLogNoOpLogHandler() })
    ) {
        self.logger = logger
        self.workloadLimits = workloadLimits
        self.targets = targets.sorted()
        self.normalizer = normalizer
        self.timeoutSeconds = timeoutSeconds
        self.maxBytes = maxBytes
        self.parallelism = max(1, parallelism)
        self.clock = clock
    }

    /// Replaces the target list (from the pod watch); takes effect at the next tick.
    public func setTargets(_ targets: [InferenceTarget]) {
        pending.withLock { $0 = targets.sorted() }
    }

    public func sample(now: MonotonicInstant) -> SourceResult {
        if let next = pending.withLock({ list -> [InferenceTarget]? in defer { list = nil }; return list }) {
            let gone = Set(targets).subtracting(next)
            for target in gone {
                normalizer.forget(target)
                lastProblems[target] = nil
                lastDropped[target] = nil
                recognized.remove(target)
                notModelServers[target] = nil
            }
            targets = next
        }
        let current = targets.filter { target in
            guard let until = notModelServers[target] else { return true }
            return now >= until
        }
        var outcomes = [Outcome?](repeating: nil, count: current.count)
        let timeout = timeoutSeconds, limit = maxBytes, workloadBytes = workloadLimits.bytes
        outcomes.withUnsafeMutableBufferPointer { slots in
            let base = UncheckedPointer(slots.baseAddress)
            let lanes = min(parallelism, max(1, current.count))
            DispatchQueue.concurrentPerform(iterations: lanes) { lane in
                var index = lane
                while index < current.count {
                    // Each index is written by exactly one lane.
                    let target = current[index]
                    base.pointer?[index] = Self.scrape(target, timeout: timeout, maxBytes: target.servesInference ? limit : workloadBytes)
                    index += lanes
                }
            }
        }
        let time = clock()
        var families: [MetricFamily] = []
        var up = Families.Exporter.inferenceTargetUp.family()
        var duration = Families.Exporter.inferenceTargetScrapeDuration.family()
        var workloadUp = Families.Exporter.workloadTargetUp.family()
        var workloadDropped = Families.Exporter.workloadFamiliesDropped.family()
        for (target, outcome) in zip(current, outcomes) {
            let labels = [Label("namespace", target.namespace), Label("pod", target.pod)]
            guard let outcome else { continue }
            if !target.workloadFamilies.isEmpty || !target.servesInference {
                let (extracted, up, dropped) = workload(target, outcome)
                families += extracted
                workloadUp.samples.append(Sample(labels: labels, value: up ? 1 : 0))
                var counts: [WorkloadMetrics.DropReason: Int] = [:]
                for reason in dropped.values { counts[reason, default: 0] += 1 }
                for (reason, count) in counts.sorted(by: { $0.key < $1.key }) {
                    workloadDropped.samples.append(Sample(labels: labels + [Label("reason", reason.rawValue)], value: Double(count)))
                }
            }
            guard target.servesInference else { continue }
            var targetUp = false
            var problem: String?
            switch outcome.result {
            case .success(let parsed):
                let (normalized, refused) = normalizer.normalize(parsed, target: target, time: time)
                families += normalized
                targetUp = refused == nil
                problem = refused
                if target.probe {
                    // A pod that names its own families is scraped every tick for them, engine or not.
                    if normalized.isEmpty && !recognized.contains(target) && target.workloadFamilies.isEmpty {
                        notModelServers[target] = now.adding(seconds: Self.probeInterval)
                    } else if !normalized.isEmpty {
                        recognized.insert(target)
                        notModelServers[target] = nil
                    }
                }
            case .failure(let error):
                problem = "scrape failed: \(error.message)"
                if target.probe && !recognized.contains(target) && target.workloadFamilies.isEmpty {
                    notModelServers[target] = now.adding(seconds: Self.probeInterval)
                }
            }
            // An unrecognized probe target is some other exporter: none of ours to report.
            guard !target.probe || recognized.contains(target) else { continue }
            if lastProblems[target] != problem {
                if let problem {
                    logger.warning("model server down", metadata: ["target": "\(target)", "url": "\(target.url)", "reason": "\(problem)"])
                } else if lastProblems.keys.contains(target) {
                    logger.info("model server up again", metadata: ["target": "\(target)"])
                }
            }
            lastProblems[target] = problem
            duration.samples.append(Sample(labels: labels, value: outcome.seconds))
            up.samples.append(Sample(labels: labels, value: targetUp ? 1 : 0))
        }
        families.append(up)
        families.append(duration)
        families += [workloadUp, workloadDropped].filter { !$0.samples.isEmpty }
        return SourceResult(families: Self.merge(families))
    }

    /// A workload target's own families from this scrape, whether the scrape succeeded, and what was dropped
    /// (logged when it changes). A failed scrape exports none of them: its last values are not repeated as current.
    private func workload(_ target: InferenceTarget, _ outcome: Outcome) -> ([MetricFamily], Bool, [String: WorkloadMetrics.DropReason]) {
        if !target.servesInference, let problem = target.configurationProblem {
            if lastProblems[target] != problem {
                logger.warning("workload metrics not scraped", metadata: ["target": "\(target)", "reason": "\(problem)"])
                lastProblems[target] = problem
            }
            return ([], false, [:])
        }
        let parsed: [MetricFamily]
        switch outcome.result {
        case .success(let families):
            parsed = families
            // A model server's scrape problems are logged with its inference status; a pod scraped only for its
            // own families logs them here, once per change.
            if !target.servesInference, lastProblems.removeValue(forKey: target) != nil {
                logger.info("workload metrics scrape succeeded again", metadata: ["target": "\(target)"])
            }
        case .failure(let error):
            if !target.servesInference, lastProblems[target] != error.message {
                logger.warning("workload metrics scrape failed", metadata: ["target": "\(target)", "url": "\(target.url)", "reason": "\(error.message)"])
                lastProblems[target] = error.message
            }
            return ([], false, [:])
        }
        let result = WorkloadMetrics.extract(parsed, names: target.workloadFamilies, namespace: target.namespace, pod: target.pod, limits: workloadLimits)
        if result.dropped != lastDropped[target] ?? [:] {
            if !result.dropped.isEmpty {
                let summary = result.dropped.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value.rawValue)" }.joined(separator: ", ")
                logger.warning("workload metrics dropped", metadata: ["target": "\(target)", "families": "\(summary)"])
            }
            lastDropped[target] = result.dropped.isEmpty ? nil : result.dropped
        }
        return (result.families, result.dropped.isEmpty, result.dropped)
    }

    struct Outcome {
        var result: Result<[MetricFamily], ScrapeError>
        var seconds: Double
    }

    static func scrape(_ target: InferenceTarget, timeout: Double, maxBytes: Int) -> Outcome {
        let started = MonotonicInstant.now()
        do {
            let response = try ScrapeClient.get(target.url, timeoutSeconds: timeout, maxBytes: maxBytes)
            let format: ExpositionFormat =
                response.header("content-type")?.contains("application/openmetrics-text") == true ? .openMetrics : .text
            do {
                let families = try ExpositionParser.parse(response.body, format: format)
                return Outcome(result: .success(families), seconds: MonotonicInstant.now().seconds(since: started))
            } catch {
                return Outcome(
                    result: .failure(ScrapeError(code: .protocolError, message: "unparsable exposition: \(error)")),
                    seconds: MonotonicInstant.now().seconds(since: started))
            }
        } catch {
            return Outcome(result: .failure(error), seconds: MonotonicInstant.now().seconds(since: started))
        }
    }

    /// One family per name: targets of the same engine contribute samples to the same families.
    static func merge(_ families: [MetricFamily]) -> [MetricFamily] {
        var order: [String] = []
        var byName: [String: MetricFamily] = [:]
        for family in families {
            if byName[family.name] == nil {
                order.append(family.name)
                byName[family.name] = family
            } else {
                byName[family.name]!.samples += family.samples
            }
        }
        return order.compactMap { byName[$0] }
    }
}

extension Substring {
    fileprivate var trimmingSpaces: String {
        var text = self.drop { $0 == " " }
        while text.last == " " { text = text.dropLast() }
        return String(text)
    }
}

/// A raw pointer carried into `concurrentPerform`'s closure; each lane writes disjoint indices.
private struct UncheckedPointer<T>: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<T>?
    init(_ pointer: UnsafeMutablePointer<T>?) { self.pointer = pointer }
}

/// ``InferenceNormalizer`` over the engine tables of the Inference module (vLLM, SGLang, TGI, Triton).
public final class EngineInferenceNormalizer: InferenceNormalizer {
    private let engine: EngineNormalizer
    private let logger: Logger
    /// Each target's refused series at its last scrape: a change is logged once.
    private var lastRejected: [InferenceTarget: [String]] = [:]

    public init(windowSeconds: Double, logger: Logger = Logger(label: "inference", factory: { _ in SwiftLogNoOpLogHandler() })) {
        engine = EngineNormalizer(windowSeconds: windowSeconds)
        self.logger = logger
    }

    public func normalize(_ families: [MetricFamily], target: InferenceTarget, time: Double) -> (families: [MetricFamily], problem: String?) {
        if let problem = target.configurationProblem { return ([], problem) }
        let (normalized, problems) = engine.normalize(
            families, namespace: target.namespace, pod: target.pod, time: time, custom: target.metricNames)
        // An unknown server is down; a known one with a few refused series stays up, counts them
        // (accel_exporter_inference_rejected_series) and logs which when they change.
        if normalized.isEmpty { return ([], problems.joined(separator: "; ")) }
        if problems != lastRejected[target] ?? [] {
            if !problems.isEmpty {
                logger.warning("model-server series refused", metadata: ["target": "\(target)", "series": "\(problems.joined(separator: "; "))"])
            }
            lastRejected[target] = problems.isEmpty ? nil : problems
        }
        return (normalized, nil)
    }

    public func forget(_ target: InferenceTarget) {
        engine.forget(namespace: target.namespace, pod: target.pod)
        lastRejected[target] = nil
    }
}
