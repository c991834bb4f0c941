public import Logging

/// Logs a recurring problem once when it starts and once when it clears, instead of once per tick.
///
/// A garbage file read every second would otherwise flood the log; an operator still sees when it began, why,
/// and when it went away. Owned by one source and used only from its worker thread.
public final class ProblemLog {
    private let logger: Logger
    private var active: [String: String] = [:]
    private var seenThisTick: Set<String> = []

    /// `logger` is the owning source's.
    public init(logger: Logger) { self.logger = logger }

    /// Reports `message` under `key` (e.g. "card1/gpu_busy_percent"); logged only when new or changed.
    public func report(_ key: String, _ message: String, level: Logger.Level = .warning) {
        seenThisTick.insert(key)
        if active[key] != message {
            active[key] = message
            logger.log(level: level, "\(message)", metadata: ["problem": "\(key)"])
        }
    }

    /// Call after each tick: problems not reported again are logged as cleared.
    public func endTick() {
        for key in active.keys where !seenThisTick.contains(key) {
            logger.info("recovered", metadata: ["problem": "\(key)"])
            active[key] = nil
        }
        seenThisTick.removeAll(keepingCapacity: true)
    }

    /// Key → message of every problem not yet cleared.
    public var activeProblems: [String: String] { active }
}
