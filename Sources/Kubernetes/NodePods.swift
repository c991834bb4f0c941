public import Logging

/// The pods scheduled on this node, from a list + watch of `/api/v1/pods?fieldSelector=spec.nodeName=<node>`: the
/// join per-process attribution needs (cgroups name pod UIDs and container ids; the families name pods and
/// containers), the pod labels an operator allow-lists, and the model-server pods inference discovery scrapes.
///
/// Readers never touch the network: the informer keeps a local copy, and each change rebuilds the table below.
/// Until the first list completes (or while the API server cannot be reached and nothing was ever listed) every
/// table is empty: attribution by pod-resources still works, per-process shares wait.
public final class NodePodWatch: Sendable {
    /// One pod of the node, in plain values (the fields attribution, pod labels and discovery read).
    public struct Entry: Sendable, Equatable {
        /// Lower-cased pod UID, as cgroup paths name it.
        public var uid: String
        public var namespace: String
        public var name: String
        /// `metadata.labels`; empty when none.
        public var labels: [String: String]
        /// `metadata.annotations`; empty when none.
        public var annotations: [String: String]
        /// Nil until the pod has an address.
        public var podIP: String?
        /// True when the pod shares the node's network (its IP is the node's).
        public var hostNetwork: Bool
        /// `Pending`, `Running`, `Succeeded`, `Failed`, `Unknown`; nil when the status has none yet.
        public var phase: String?
        /// Runtime container id → container name.
        public var containers: [String: String]
        /// The declared container ports, in spec order.
        public var ports: [Int]

        /// For tests and fakes; the watch builds entries from `Pod` objects.
        public init(uid: String, namespace: String, name: String, labels: [String: String], annotations: [String: String],
                    podIP: String?, hostNetwork: Bool, phase: String?, containers: [String: String], ports: [Int]) {
            self.uid = uid
            self.namespace = namespace
            self.name = name
            self.labels = labels
            self.annotations = annotations
            self.podIP = podIP
            self.hostNetwork = hostNetwork
            self.phase = phase
            self.containers = containers
            self.ports = ports
        }
    }

    /// The node whose pods are watched (`spec.nodeName`).
    public let nodeName: String
    private let informer: Informer<Pod>
    private let table = Locked<[Entry]>([])

    /// Watches nothing until ``start()``.
    public init(client: KubernetesClient, nodeName: String, logger: Logger) {
        self.nodeName = nodeName
        let table = self.table
        informer = Informer<Pod>(client: client, path: "/api/v1/pods", query: ["fieldSelector": "spec.nodeName=\(nodeName)"],
                                 logger: logger) { pods in
            let entries = pods.values.compactMap(Self.entry).sorted { ($0.namespace, $0.name) < ($1.namespace, $1.name) }
            table.withLock { $0 = entries }
        }
    }

    /// Starts the list + watch; returns at once.
    public func start() { informer.start() }
    /// Stops the watch and waits for it; ``entries`` keeps its last table.
    public func stop() async { await informer.stop() }

    /// Whether the first list completed.
    public var hasSynced: Bool { informer.hasSynced }
    /// Why the last list or watch failed; nil while healthy.
    public var lastError: String? { informer.lastError }

    /// Every pod on the node, sorted by namespace and name.
    public var entries: [Entry] { table.withLock { $0 } }

    /// A pod without the identity fields is skipped (never exported with empty labels).
    static func entry(_ pod: Pod) -> Entry? {
        guard let uid = pod.metadata.uid, !uid.isEmpty, let namespace = pod.metadata.namespace, !namespace.isEmpty,
              let name = pod.metadata.name, !name.isEmpty else { return nil }
        var containers: [String: String] = [:]
        for status in (pod.status?.containerStatuses ?? []) + (pod.status?.initContainerStatuses ?? []) {
            if let id = status.containerID, !id.isEmpty { containers[id] = status.name }
        }
        return Entry(uid: uid.lowercased(), namespace: namespace, name: name, labels: pod.metadata.labels ?? [:],
                     annotations: pod.metadata.annotations ?? [:], podIP: pod.status?.podIP,
                     hostNetwork: pod.spec?.hostNetwork ?? false, phase: pod.status?.phase, containers: containers,
                     ports: (pod.spec?.containers ?? []).flatMap { ($0.ports ?? []).map(\.containerPort) })
    }
}

/// This node's DRA ResourceSlices (`resource.k8s.io/v1`), for the device attributes (`uuid`, `pciBusID`, serial)
/// that join a claim's (driver, pool, device) to an accelerator when the vendor's naming alone does not. Needs
/// `list`/`watch` on `resourceslices`; without it the table stays empty and the CDI and naming joins still work.
public final class ResourceSliceWatch: Sendable {
    private let informer: Informer<ResourceSlice>
    /// A device of a slice: its driver, pool and name, which a claim's allocation names.
    public struct Device: Sendable, Hashable {
        /// The DRA driver, as in ``ResourceSlice/Spec/driver``.
        public var driver: String
        /// The pool's name within the driver.
        public var pool: String
        /// The device's name within the pool.
        public var device: String

        /// The key a claim's allocation and a slice's device share.
        public init(driver: String, pool: String, device: String) {
            self.driver = driver
            self.pool = pool
            self.device = device
        }
    }

    private let table = Locked<[Device: [String: String]]>([:])

    /// Watches this node's slices only (`spec.nodeName`); nothing until ``start()``.
    public init(client: KubernetesClient, nodeName: String, logger: Logger) {
        let table = self.table
        informer = Informer<ResourceSlice>(client: client, path: "/apis/resource.k8s.io/v1/resourceslices",
                                           query: ["fieldSelector": "spec.nodeName=\(nodeName)"], logger: logger) { slices in
            table.withLock { $0 = Self.attributes(slices.values) }
        }
    }

    /// Starts the list + watch; returns at once.
    public func start() { informer.start() }
    /// Stops the watch and waits for it; ``attributes`` keeps its last table.
    public func stop() async { await informer.stop() }

    /// Each device's text attributes (`uuid`, `pciBusID`…).
    public var attributes: [Device: [String: String]] { table.withLock { $0 } }

    static func attributes(_ slices: some Sequence<ResourceSlice>) -> [Device: [String: String]] {
        var out: [Device: [String: String]] = [:]
        for slice in slices {
            guard let spec = slice.spec else { continue }
            for device in spec.devices ?? [] {
                var attributes: [String: String] = [:]
                for (name, value) in device.attributes ?? [:] {
                    if let text = value.text { attributes[name] = text }
                }
                out[Device(driver: spec.driver, pool: spec.pool.name, device: device.name)] = attributes
            }
        }
        return out
    }
}
