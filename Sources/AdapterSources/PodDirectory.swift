public import AdapterStore
public import Kubernetes
public import Logging
import Synchronization

/// Every pod's labels, from a cluster-wide pod watch: `labelSelector` for pods and workload selection.
public final class PodDirectory: PodLabelSource {
    private final class Table: Sendable {
        let labels = Mutex<[PodKey: [String: String]]>([:])
    }

    private let informer: Informer<Pod>
    private let table = Table()

    public init(client: KubernetesClient, logger: Logger) {
        let labels = table
        informer = Informer<Pod>(client: client, path: "/api/v1/pods", logger: logger) { pods in
            var table: [PodKey: [String: String]] = [:]
            for pod in pods.values {
                guard let namespace = pod.metadata.namespace, let name = pod.metadata.name else { continue }
                table[PodKey(namespace: namespace, name: name)] = pod.metadata.labels ?? [:]
            }
            labels.labels.withLock { $0 = table }
        }
    }

    public func start() { informer.start() }
    public func stop() async { await informer.stop() }
    public var hasSynced: Bool { informer.hasSynced }

    public func labels(of pod: PodKey) -> [String: String]? { table.labels.withLock { $0[pod] } }
}
