public import Inference
public import Kubernetes

extension InferenceDiscovery {
    /// The model-server pods among the node's pods.
    public static func targets(_ entries: [NodePodWatch.Entry]) -> [InferenceTarget] {
        targets(entries.map(Pod.init))
    }
}

extension InferenceDiscovery.Pod {
    /// What discovery reads of a watched pod.
    public init(_ entry: NodePodWatch.Entry) {
        self.init(namespace: entry.namespace, name: entry.name, phase: entry.phase, podIP: entry.podIP, annotations: entry.annotations,
                  ports: entry.ports)
    }
}
