public import Accelerators
import Synchronization

/// Pod UID → namespace/name (and, where known, container ids), the join per-process attribution needs: cgroups name
/// pod UIDs, the per-pod families name pods. The kubelet's pod-resources `List` carries no UIDs, so it cannot fill
/// this. The node's pod watch (Kubernetes client) is the full implementation; `PodLogsDirectory` is the fallback
/// that needs no API access.
public protocol PodDirectory: Sendable {
    /// Pods known now, keyed by UID. Called once per sample tick from the sampler thread: keep it cheap.
    func pods(at now: MonotonicInstant) -> [String: PodInfo]
}

/// Reads the kubelet's pod log directories, `<root>/<namespace>_<name>_<uid>/<container>/` (kubelet
/// `BuildPodLogsDirectory`; CRI log layout), re-listed at most once per `refreshInterval`.
///
/// Namespaces and pod names are DNS labels/subdomains and hold no `_`, so the split is unambiguous. Container
/// *ids* are not in that layout: `PodInfo.containers` stays empty and a process is attributed to its pod's container
/// only when one container of the pod holds the device (`PodShareCalculator`). A missing or unreadable root gives
/// no pods, never an error: per-process shares then stay absent.
public final class PodLogsDirectory: PodDirectory {
    /// The kubelet's pod log directory (`--kubelet.pod-logs-path`, default `/var/log/pods`).
    public let root: FileRoot
    /// Seconds a listing is reused before the directory is listed again.
    public let refreshInterval: Double
    private let cache = Mutex<(at: MonotonicInstant?, pods: [String: PodInfo])>((nil, [:]))

    /// Lists nothing until the first ``pods(at:)``.
    public init(root: FileRoot, refreshInterval: Double) {
        self.root = root
        self.refreshInterval = refreshInterval
    }

    /// The cached listing while it is younger than ``refreshInterval``, else a fresh one; thread-safe.
    public func pods(at now: MonotonicInstant) -> [String: PodInfo] {
        if let cached = cache.withLock({ c -> [String: PodInfo]? in
            guard let at = c.at, now.seconds(since: at) < refreshInterval else { return nil }
            return c.pods
        }) {
            return cached
        }
        let pods = Self.scan(root)
        cache.withLock { $0 = (now, pods) }
        return pods
    }

    /// One listing of `root`, without the cache.
    public static func scan(_ root: FileRoot) -> [String: PodInfo] {
        guard let entries = try? root.list(".") else { return [:] }
        var pods: [String: PodInfo] = [:]
        for entry in entries {
            let parts = entry.split(separator: "_", omittingEmptySubsequences: false)
            guard parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty, parts[2].count >= 32 else { continue }
            pods[String(parts[2])] = PodInfo(namespace: String(parts[0]), name: String(parts[1]))
        }
        return pods
    }
}
