public import Accelerators
public import Exposition
import Dispatch
public import Logging
public import ScrapeClient
import Synchronization
import MetricSchema

/// A model server to scrape: the pod it runs in and its metrics URL.
public struct InferenceTarget: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The `namespace` label of everything the target yields; with ``pod`` and ``url``, its identity.
    public var namespace: String
    /// The `pod` label: the pod's name (from `--inference.targets`, whatever name the operator wrote).
    public var pod: String
    /// Plain HTTP: the pod IP, the port and the path discovery chose, or the `--inference.targets` entry's URL.
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

    /// Memberwise; ``parseList(_:)`` and ``InferenceDiscovery`` are where text becomes targets.
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

    /// By namespace, pod, then URL text: the scrape and report order.
    public static func < (lhs: InferenceTarget, rhs: InferenceTarget) -> Bool {
        (lhs.namespace, lhs.pod, lhs.url.description) < (rhs.namespace, rhs.pod, rhs.url.description)
    }

    /// `namespace/pod`, for logs.
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

/// Scrapes the node's model servers (and pods naming their own families) each sample tick, on lanes of their own,
/// each with a timeout and a size bound, through the project's parser. A tick waits a bounded time for its round and
/// takes what finished; a slow, dead or lying server affects only its own status and keeps its last good values,
/// marked down, until they are stale.
public final class InferenceSource: AcceleratorSource, @unchecked Sendable {
    // @unchecked: `targets` and the normalizer are only touched on the sampler's worker queue for this source,
    // except `setTargets`, which goes through `pending` under its lock.
    /// The `collector` label value.
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
    /// Series one scrape may hold (a vLLM with a hundred LoRA adapters writes ~15k); more is `too_large`, whole.
    static let maxSeries = 50_000
    /// A line, so a label value, may be at most this long.
    static let maxLineLength = 16 << 10
    /// A model server's answer may be at most this large unless configured otherwise.
    public static let defaultMaxBytes = 16 << 20
    /// Served models one target may report (`model_name` values after normalization): a server minting a model name
    /// per request would otherwise grow every window and series without bound.
    static let maxModels = 256
    /// A label value the exporter keeps for a model server (a model name, a LoRA adapter) may be at most this long;
    /// a longer one refuses the target whole, as `too_large`.
    static let maxLabelValueLength = 1024
    /// The scrapes, off the sampler's thread.
    private let lanes: ScrapeLanes
    /// Each target's latest state.
    private var states: [InferenceTarget: TargetState] = [:]
    /// How long a tick waits for its round of scrapes.
    private let waitSeconds: Double
    /// How long a target that stopped answering keeps serving its last good values.
    private let staleSeconds: Double

    /// The exporter makes one when `--inference.targets` names targets or pod discovery is on.
    /// - Parameters:
    /// - timeoutSeconds: one scrape's deadline, connection included.
    /// - maxBytes: a model server's answer; a workload-only pod has `workloadLimits.bytes` instead.
    /// - parallelism: scrapes at once (at least 1).
    /// - waitSeconds: how long a tick waits for its round; nil: `timeoutSeconds` + 0.5.
    /// - staleSeconds: how long a target that stopped answering keeps serving its last good values, marked down.
    /// - clock: Unix seconds, the time given to the normalizer.
    public init(
        targets: [InferenceTarget], normalizer: any InferenceNormalizer, timeoutSeconds: Double, maxBytes: Int = defaultMaxBytes,
        parallelism: Int = 8, workloadLimits: WorkloadMetrics.Limits = .init(), waitSeconds: Double? = nil, staleSeconds: Double = 15,
        clock: @escaping @Sendable () -> Double,
        logger: Logger = Logger(label: "inference", factory: { _ in SwiftLogNoOpLogHandler() })
    ) {
        self.lanes = ScrapeLanes(parallelism: max(1, parallelism))
        self.waitSeconds = waitSeconds ?? timeoutSeconds + 0.5
        self.staleSeconds = staleSeconds
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

    /// Called by the sampler on this source's worker queue, once per tick: applies a pending target list, starts this
    /// round's scrapes and waits at most `waitSeconds` for them, then reports every target from what has finished.
    public func sample(now: MonotonicInstant) -> SourceResult {
        if let next = pending.withLock({ list -> [InferenceTarget]? in defer { list = nil }; return list }) {
            let gone = Set(targets).subtracting(next)
            for target in gone {
                normalizer.forget(target)
                lastProblems[target] = nil
                lastDropped[target] = nil
                recognized.remove(target)
                notModelServers[target] = nil
                states[target] = nil
            }
            targets = next
        }
        // Scrapes run on the lanes, off this thread. A target still being scraped from an earlier tick is not asked
        // again; the tick waits at most `waitSeconds` for this round, so a target that hangs or drips delays only
        // itself and never this collector's deadline.
        let round = DispatchGroup()
        for target in targets {
            if let until = notModelServers[target], now < until { continue }
            lanes.submit(target, timeout: timeoutSeconds, maxBytes: target.servesInference ? maxBytes : workloadLimits.bytes, group: round)
        }
        _ = round.wait(timeout: .now() + .nanoseconds(Int(waitSeconds * 1e9)))
        let time = clock()
        let current = Set(targets)
        for (target, outcome) in lanes.takeFinished() where current.contains(target) {
            update(target, outcome, time: time, now: now)
        }

        var families: [MetricFamily] = []
        var up = Families.Exporter.inferenceTargetUp.family()
        var duration = Families.Exporter.inferenceTargetScrapeDuration.family()
        var down = Families.Exporter.inferenceTargetDownReason.family()
        var workloadUp = Families.Exporter.workloadTargetUp.family()
        var workloadDropped = Families.Exporter.workloadFamiliesDropped.family()
        for target in targets {
            guard let state = states[target] else { continue }
            let labels = [Label("namespace", target.namespace), Label("pod", target.pod)]
            // A target that stopped answering keeps its last good values for `staleSeconds`, marked down.
            if state.scrapeOK || state.lastGood.map({ now.seconds(since: $0) <= staleSeconds }) == true {
                families += state.families
            }
            if let reason = state.downReason, state.reported || state.workload {
                down.samples.append(Sample(labels: labels + [Label("reason", reason)], value: 1))
            }
            if state.workload {
                workloadUp.samples.append(Sample(labels: labels, value: state.workloadUp ? 1 : 0))
                var counts: [WorkloadMetrics.DropReason: Int] = [:]
                for reason in state.dropped.values { counts[reason, default: 0] += 1 }
                for (reason, count) in counts.sorted(by: { $0.key < $1.key }) {
                    workloadDropped.samples.append(Sample(labels: labels + [Label("reason", reason.rawValue)], value: Double(count)))
                }
            }
            guard state.reported else { continue }
            duration.samples.append(Sample(labels: labels, value: state.duration))
            up.samples.append(Sample(labels: labels, value: state.up ? 1 : 0))
        }
        families.append(up)
        families.append(duration)
        families += [down, workloadUp, workloadDropped].filter { !$0.samples.isEmpty }
        return SourceResult(families: Self.merge(families))
    }

    /// What one target serves, from its latest finished scrape.
    struct TargetState {
        /// Its normalized and workload families from the latest scrape that succeeded.
        var families: [MetricFamily] = []
        /// The latest scrape was answered and parsed.
        var scrapeOK = false
        /// When a scrape last succeeded: the families are served until `staleSeconds` after it.
        var lastGood: MonotonicInstant?
        /// As a model server: answered and understood.
        var up = false
        /// Why it is down (`timeout`, `connect`, `too_large`, `protocol`, `http_status`, `refused`, `configuration`).
        var downReason: String?
        var duration = 0.0
        /// Reported as a model server (an unrecognized probe target is some other exporter: none of ours).
        var reported = false
        var workload = false
        var workloadUp = false
        var dropped: [String: WorkloadMetrics.DropReason] = [:]
    }

    private func update(_ target: InferenceTarget, _ outcome: Outcome, time: Double, now: MonotonicInstant) {
        var state = states[target] ?? TargetState()
        state.duration = outcome.seconds
        var fresh: [MetricFamily] = []
        if !target.workloadFamilies.isEmpty || !target.servesInference {
            let (extracted, ok, dropped) = workload(target, outcome)
            fresh += extracted
            state.workload = true
            state.workloadUp = ok
            state.dropped = dropped
        }
        var problem: String?
        switch outcome.result {
        case .success(let parsed):
            state.scrapeOK = true
            state.lastGood = now
            state.downReason = nil
            if target.servesInference {
                var (normalized, refused) = normalizer.normalize(parsed, target: target, time: time)
                let models = Set(normalized.flatMap { $0.samples.compactMap { $0.labels.first { $0.name == SchemaLabel.modelName }?.value } })
                let longest = normalized.lazy.flatMap(\.samples).flatMap(\.labels).map(\.value.utf8.count).max() ?? 0
                if longest > Self.maxLabelValueLength {
                    normalizer.forget(target)
                    normalized = []
                    refused = "a label value of \(longest) bytes, over the bound of \(Self.maxLabelValueLength)"
                    state.downReason = "too_large"
                } else if models.count > Self.maxModels {
                    // Nothing partial: a server over the bound serves none of its series.
                    normalizer.forget(target)
                    normalized = []
                    refused = "\(models.count) served models, over the bound of \(Self.maxModels)"
                    state.downReason = "too_many_models"
                } else if refused != nil {
                    state.downReason = target.configurationProblem == nil ? "refused" : "configuration"
                }
                fresh += normalized
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
            } else if target.configurationProblem != nil {
                state.downReason = "configuration"
            }
            state.families = fresh
        case .failure(let error):
            state.scrapeOK = false
            state.downReason = error.code.description
            problem = "scrape failed: \(error.message)"
            if target.probe && !recognized.contains(target) && target.workloadFamilies.isEmpty {
                notModelServers[target] = now.adding(seconds: Self.probeInterval)
            }
        }
        state.up = target.servesInference && state.scrapeOK && problem == nil
        state.reported = target.servesInference && (!target.probe || recognized.contains(target))
        if state.reported, target.servesInference {
            if lastProblems[target] != problem {
                if let problem {
                    logger.warning("model server down", metadata: ["target": "\(target)", "url": "\(target.url)", "reason": "\(problem)"])
                } else if lastProblems.keys.contains(target) {
                    logger.info("model server up again", metadata: ["target": "\(target)"])
                }
            }
            lastProblems[target] = problem
        }
        states[target] = state
    }

    /// A workload target's own families from this scrape, whether the scrape succeeded, and what was dropped
    /// (logged when it changes). After a failed scrape its last good families are served until they are stale.
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

    struct Outcome: Sendable {
        var result: Result<[MetricFamily], ScrapeError>
        var seconds: Double
    }

    static func scrape(_ target: InferenceTarget, timeout: Double, maxBytes: Int) -> Outcome {
        let started = MonotonicInstant.now()
        do {
            let response = try ScrapeClient.get(target.url, timeoutSeconds: timeout, maxBytes: maxBytes)
            return Outcome(result: parseAnswer(response, maxBytes: maxBytes), seconds: MonotonicInstant.now().seconds(since: started))
        } catch {
            return Outcome(result: .failure(error), seconds: MonotonicInstant.now().seconds(since: started))
        }
    }

    /// The bounds a target's answer is parsed under: its response bound, ``maxSeries`` samples, ``maxLineLength``.
    package static func expositionLimits(maxBytes: Int) -> ExpositionParser.Limits {
        ExpositionParser.Limits(maxBytes: maxBytes, maxSamples: maxSeries, maxLineLength: maxLineLength)
    }

    /// An answer's families, in the format its Content-Type names. Over a bound is `too_large`: the whole answer is
    /// refused, nothing of it kept; an answer that does not parse is `protocol`.
    package static func parseAnswer(_ response: ScrapeClient.Response, maxBytes: Int) -> Result<[MetricFamily], ScrapeError> {
        let format: ExpositionFormat =
            response.header("content-type")?.contains("application/openmetrics-text") == true ? .openMetrics : .text
        // Counted before parsing: an answer far over the bound costs its body, not a parse of `maxSeries` samples
        // that are then thrown away (13 MB for 50k vLLM series, every tick; Benchmarks/ceilings.sh).
        guard sampleLines(in: response.body, over: maxSeries) <= maxSeries else {
            return .failure(ScrapeError(code: .tooLarge, message: "more than \(maxSeries) samples"))
        }
        do {
            return .success(try ExpositionParser.parse(response.body, format: format, limits: expositionLimits(maxBytes: maxBytes)))
        } catch where error.overLimit {
            return .failure(ScrapeError(code: .tooLarge, message: "\(error.message)"))
        } catch {
            return .failure(ScrapeError(code: .protocolError, message: "unparsable exposition: \(error)"))
        }
    }

    /// Lines of `body` that are neither blank nor comments (`#` after optional blanks), the sample lines of the text
    /// and OpenMetrics formats; counting stops at `limit + 1`.
    static func sampleLines(in body: [UInt8], over limit: Int) -> Int {
        body.withUnsafeBufferPointer { bytes in
            var count = 0
            var atLineStart = true
            for byte in bytes {
                if byte == UInt8(ascii: "\n") {
                    atLineStart = true
                } else if atLineStart && byte != UInt8(ascii: " ") && byte != UInt8(ascii: "\t") && byte != UInt8(ascii: "\r") {
                    atLineStart = false
                    if byte != UInt8(ascii: "#") {
                        count += 1
                        if count > limit { break }
                    }
                }
            }
            return count
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


/// ``InferenceNormalizer`` over the engine tables of the Inference module (vLLM, SGLang, TGI, Triton).
public final class EngineInferenceNormalizer: InferenceNormalizer {
    private let engine: EngineNormalizer
    private let logger: Logger
    /// Each target's refused series at its last scrape: a change is logged once.
    private var lastRejected: [InferenceTarget: [String]] = [:]

    /// `windowSeconds`: the percentile window (``EngineNormalizer/windowSeconds``). `logger` gets a warning when a
    /// target's refused series change.
    public init(windowSeconds: Double, logger: Logger = Logger(label: "inference", factory: { _ in SwiftLogNoOpLogHandler() })) {
        engine = EngineNormalizer(windowSeconds: windowSeconds)
        self.logger = logger
    }

    /// A target whose custom metric names cannot be used is down with that reason and its families are not read. A
    /// server the engine tables do not understand is down with the problems joined; a known one with some refused
    /// series stays up.
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

    /// Called by ``InferenceSource`` when a target leaves the list.
    public func forget(_ target: InferenceTarget) {
        engine.forget(namespace: target.namespace, pod: target.pod)
        lastRejected[target] = nil
    }
}

/// At most `parallelism` scrapes at a time, each on a lane of a queue of its own, never on the sampler's thread; a
/// target is scraped by one lane at a time, so one that hangs holds one lane until its own timeout.
final class ScrapeLanes: Sendable {
    private struct Job: Sendable {
        var target: InferenceTarget
        var timeout: Double
        var maxBytes: Int
        var group: DispatchGroup
    }

    private struct State {
        var pending: [Job] = []
        var inFlight: Set<InferenceTarget> = []
        var lanes = 0
        var finished: [InferenceTarget: InferenceSource.Outcome] = [:]
    }

    private let state = Mutex(State())
    private let parallelism: Int
    private let queue = DispatchQueue(label: "accel-exporter.inference.scrapes", attributes: .concurrent)

    init(parallelism: Int) { self.parallelism = parallelism }

    /// Starts a scrape of `target` unless one is underway; `group` is left when it finishes.
    func submit(_ target: InferenceTarget, timeout: Double, maxBytes: Int, group: DispatchGroup) {
        group.enter()
        let start = state.withLock { s -> Bool? in
            guard s.inFlight.insert(target).inserted else { return nil }
            s.pending.append(Job(target: target, timeout: timeout, maxBytes: maxBytes, group: group))
            guard s.lanes < parallelism else { return false }
            s.lanes += 1
            return true
        }
        guard let start else {
            group.leave()
            return
        }
        if start { queue.async { self.lane() } }
    }

    private func lane() {
        while let job = state.withLock({ s -> Job? in
            guard !s.pending.isEmpty else {
                s.lanes -= 1
                return nil
            }
            return s.pending.removeFirst()
        }) {
            let outcome = InferenceSource.scrape(job.target, timeout: job.timeout, maxBytes: job.maxBytes)
            state.withLock { s in
                s.finished[job.target] = outcome
                s.inFlight.remove(job.target)
            }
            job.group.leave()
        }
    }

    /// The scrapes finished since the last call.
    func takeFinished() -> [InferenceTarget: InferenceSource.Outcome] {
        state.withLock { s in
            defer { s.finished = [:] }
            return s.finished
        }
    }
}
