public import Attribution
public import PodResourcesAPI

// The generated pod-resources messages → Attribution's plain values. Proto3 scalars are never absent on the wire:
// an empty string is what an older kubelet sends for a field it does not know, and Attribution copes with that.

extension PodResourcesList {
    /// A `List` answer, pods in the kubelet's order.
    public init(_ message: V1_ListPodResourcesResponse) {
        self.init(pods: message.podResources.map(PodResources.init))
    }
}

extension PodResources {
    /// Empty name or namespace when the kubelet sent none.
    public init(_ message: V1_PodResources) {
        self.init(name: message.name, namespace: message.namespace, containers: message.containers.map(ContainerResources.init))
    }
}

extension ContainerResources {
    /// `cpuIDs`, `memory` and `dynamicResources` are empty from kubelets older than the fields.
    public init(_ message: V1_ContainerResources) {
        self.init(name: message.name, devices: message.devices.map(ContainerDevices.init), cpuIDs: message.cpuIds,
                  memory: message.memory.map(ContainerMemory.init), dynamicResources: message.dynamicResources.map(DynamicResource.init))
    }
}

extension ContainerDevices {
    /// `numaNodes` from the device's topology; empty when the plugin reported none.
    public init(_ message: V1_ContainerDevices) {
        self.init(resourceName: message.resourceName, deviceIDs: message.deviceIds, numaNodes: message.topology.nodes.map(\.id))
    }
}

extension ContainerMemory {
    /// Memory or hugepages assigned to the container, with the NUMA nodes they come from.
    public init(_ message: V1_ContainerMemory) {
        self.init(memoryType: message.memoryType, size: message.size, numaNodes: message.topology.nodes.map(\.id))
    }
}

extension DynamicResource {
    /// The devices DRA assigned to the container through one claim.
    public init(_ message: V1_DynamicResource) {
        self.init(claimName: message.claimName, claimNamespace: message.claimNamespace,
                  claimResources: message.claimResources.map(ClaimResource.init))
    }
}

extension ClaimResource {
    /// `shareID` is nil unless the kubelet set it: one share of a consumable-capacity device (kubelet 1.35+).
    public init(_ message: V1_ClaimResource) {
        self.init(cdiDevices: message.cdiDevices.map(\.name), driverName: message.driverName, poolName: message.poolName,
                  deviceName: message.deviceName, shareID: message.hasShareID ? message.shareID : nil)
    }
}

extension AllocatableResources {
    /// A `GetAllocatableResources` answer: every device the kubelet knows, allocated or not.
    public init(_ message: V1_AllocatableResourcesResponse) {
        self.init(devices: message.devices.map(ContainerDevices.init), cpuIDs: message.cpuIds,
                  memory: message.memory.map(ContainerMemory.init))
    }
}
