public import Logging
import Synchronization

/// A local copy of a set of objects, kept current by list + watch: list, then watch from the list's
/// resourceVersion (with bookmarks); list again when the watch says the version is gone (410); reconnect with
/// capped exponential backoff and jitter when the connection drops. The backoff keeps growing while the watch keeps
/// failing, even when each list in between succeeds. Readers get the current objects without touching the network.
public final class Informer<Object: KubernetesObject>: Sendable {
    /// The collection listed and watched (`/api/v1/pods`).
    public let path: String
    /// Extra list and watch parameters (`fieldSelector`, `labelSelector`).
    public let query: [String: String]
    private let client: KubernetesClient
    private let logger: Logger
    private let onChange: @Sendable ([String: Object]) -> Void
    /// Seconds the server keeps each watch open (it then ends it, and the informer watches again).
    public let watchSeconds: Int
    /// Seconds without a byte after which a watch's connection is presumed dead: the informer lists again.
    public let readTimeoutSeconds: Double
    private let state = Mutex(State())

    private struct State {
        var objects: [String: Object] = [:]
        var synced = false
        var task: Task<Void, Never>?
        var lastError: String?
        /// Where the next watch starts; nil: list first.
        var resourceVersion: String?
    }

    /// `onChange` runs after every change of the set (on the informer's task), with the whole set.
    ///
    /// Each watch lasts `watchSeconds` on the server (it sends bookmarks meanwhile); a watch that brings no byte
    /// for `readTimeoutSeconds` (default: `watchSeconds` + 30) is a dead connection, and the informer lists
    /// again, so a half-open connection cannot freeze the set.
    public init(
        client: KubernetesClient, path: String, query: [String: String] = [:], logger: Logger,
        watchSeconds: Int = 300, readTimeoutSeconds: Double? = nil,
        onChange: @escaping @Sendable ([String: Object]) -> Void = { _ in }
    ) {
        self.watchSeconds = watchSeconds
        self.readTimeoutSeconds = readTimeoutSeconds ?? Double(watchSeconds + 30)
        self.client = client
        self.path = path
        self.query = query
        self.logger = logger
        self.onChange = onChange
    }

    /// The objects, keyed `namespace/name`.
    public var objects: [String: Object] { state.withLock { $0.objects } }

    /// Whether the first list completed.
    public var hasSynced: Bool { state.withLock { $0.synced } }

    /// Why the last list or watch failed; nil again once a list succeeds.
    public var lastError: String? { state.withLock { $0.lastError } }

    /// Starts the list + watch task (once); returns at once.
    public func start() {
        state.withLock { state in
            guard state.task == nil else { return }
            state.task = Task { [self] in await run() }
        }
    }

    /// Cancels the task and waits for it to end; the objects stay as they were.
    public func stop() async {
        let task = state.withLock { state in
            defer { state.task = nil }
            return state.task
        }
        task?.cancel()
        await task?.value
    }

    /// A watch that ran this long before it failed was a healthy stretch: the failure starts a new streak.
    static var healthyWatch: Duration { .seconds(60) }

    /// Whether a watch from the version a list just gave (`listed`) ended within a second of its start. A 410 from
    /// the list itself (an expired continue token) is not this.
    static func endedAtOnce(listed: Bool, watchStarted: ContinuousClock.Instant?) -> Bool {
        guard listed, let watchStarted else { return false }
        return ContinuousClock.now - watchStarted < .seconds(1)
    }

    private func run() async {
        // Failed cycles in this streak. A list that succeeds does not end the streak, only a watch that ends normally
        // or ran for `healthyWatch` does: a watch refused right after every good list (RBAC without the watch verb, a
        // proxy that cuts streams) would otherwise relist every quarter second, a full LIST each time.
        var failures = 0
        var recoveryLogged = false
        var resourceVersion: String? {
            get { state.withLock { $0.resourceVersion } }
            set { state.withLock { $0.resourceVersion = newValue } }
        }
        while !Task.isCancelled {
            var watchStarted: ContinuousClock.Instant?
            var listed = false
            do {
                if resourceVersion == nil {
                    listed = true
                    let (items, version) = try await client.list(path, query: query, as: Object.self)
                    var table: [String: Object] = [:]
                    for item in items { table[item.key] = item }
                    state.withLock {
                        $0.objects = table
                        $0.synced = true
                        $0.lastError = nil
                    }
                    onChange(table)
                    resourceVersion = version
                    if failures > 0 && !recoveryLogged {
                        logger.info("list recovered", metadata: ["path": "\(path)"])
                        recoveryLogged = true
                    }
                }
                watchStarted = .now
                try await client.watch(
                    path, query: query, resourceVersion: resourceVersion ?? "", as: Object.self, timeoutSeconds: watchSeconds,
                    idleTimeoutSeconds: readTimeoutSeconds
                ) { [self] event in
                    if let seen = event.object.metadata.resourceVersion { state.withLock { $0.resourceVersion = seen } }
                    let table: [String: Object]? = state.withLock { state in
                        switch event.type {
                        case "ADDED", "MODIFIED": state.objects[event.object.key] = event.object
                        case "DELETED": state.objects[event.object.key] = nil
                        default: return nil  // BOOKMARK: only the version moves
                        }
                        return state.objects
                    }
                    if let table { onChange(table) }
                }
                // The server ended the watch (its timeout): watch again from the last version.
                failures = 0
                recoveryLogged = false
            } catch let error as KubernetesError where error.isGone && !Self.endedAtOnce(listed: listed, watchStarted: watchStarted) {
                logger.debug("watch version expired; listing again", metadata: ["path": "\(path)"])
                resourceVersion = nil
            } catch {
                // Also a version gone within a second of the list that gave it: a real API server does not expire a
                // fresh version, and relisting at once each time would be a LIST in a tight loop.
                guard !Task.isCancelled else { return }
                if let watchStarted, ContinuousClock.now - watchStarted >= Self.healthyWatch {
                    failures = 0
                    recoveryLogged = false
                }
                failures += 1
                state.withLock { $0.lastError = "\(error)" }
                if failures == 1 {
                    logger.warning("list/watch failed; retrying with backoff", metadata: ["path": "\(path)", "error": "\(error)"])
                }
                // A failed list or a broken watch may have missed events: list again.
                resourceVersion = nil
                // 0.25 s, 0.5 s, 1 s … capped at 30 s, with jitter so replicas do not retry in step.
                let delay = min(30.0, 0.25 * Double(1 << min(failures - 1, 7))) * Double.random(in: 0.8...1.2)
                try? await Task.sleep(for: .milliseconds(Int64(delay * 1000)))
            }
        }
    }
}
