/// The kubelet pod-resources `v1` answers as plain values (`k8s.io/kubelet/pkg/apis/podresources/v1/api.proto`).
///
/// The gRPC client fills these; attribution only reads them, so tests build them by hand. Fields the kubelet added
/// late (`driver_name`/`pool_name`/`device_name` in 1.31, `share_id` in 1.35) are empty or `nil` on older kubelets
/// and every consumer copes with that. CPU ids and memory are kept for completeness; attribution ignores them.
public struct PodResourcesList: Sendable, Equatable {
    public var pods: [PodResources]

    /// `pods` in the kubelet's order.
    public init(pods: [PodResources] = []) { self.pods = pods }
}

/// `PodResources`: one pod. The kubelet does not send pod UIDs: UID ↔ name joins need the pod watch.
public struct PodResources: Sendable, Equatable {
    public var name: String
    public var namespace: String
    public var containers: [ContainerResources]

    /// Built from the gRPC answer (KubeletClient) or by hand in tests.
    public init(name: String, namespace: String, containers: [ContainerResources] = []) {
        self.name = name
        self.namespace = namespace
        self.containers = containers
    }
}

/// `ContainerResources`: device-plugin devices and DRA claims of one container.
public struct ContainerResources: Sendable, Equatable {
    public var name: String
    public var devices: [ContainerDevices]
    public var cpuIDs: [Int64]
    public var memory: [ContainerMemory]
    /// Present since 1.27 behind `KubeletPodResourcesDynamicResources` (beta, on by default in 1.34).
    public var dynamicResources: [DynamicResource]

    /// Built from the gRPC answer (KubeletClient) or by hand in tests.
    public init(name: String, devices: [ContainerDevices] = [], cpuIDs: [Int64] = [], memory: [ContainerMemory] = [],
                dynamicResources: [DynamicResource] = []) {
        self.name = name
        self.devices = devices
        self.cpuIDs = cpuIDs
        self.memory = memory
        self.dynamicResources = dynamicResources
    }
}

/// `ContainerDevices`: the ids one device plugin handed to a container for one resource name.
public struct ContainerDevices: Sendable, Equatable {
    public var resourceName: String
    /// As the plugin names them: UUIDs, replicas `<UUID>::<n>`, Intel `card<N>-<n>`…
    public var deviceIDs: [String]
    /// NUMA nodes (`TopologyInfo.nodes[].ID`); empty when the plugin reports no topology.
    public var numaNodes: [Int64]

    /// Built from the gRPC answer (KubeletClient) or by hand in tests.
    public init(resourceName: String, deviceIDs: [String], numaNodes: [Int64] = []) {
        self.resourceName = resourceName
        self.deviceIDs = deviceIDs
        self.numaNodes = numaNodes
    }
}

/// `ContainerMemory`: memory (or hugepages) pinned by the memory manager.
public struct ContainerMemory: Sendable, Equatable {
    public var memoryType: String
    public var size: UInt64
    public var numaNodes: [Int64]

    /// Built from the gRPC answer (KubeletClient) or by hand in tests.
    public init(memoryType: String, size: UInt64, numaNodes: [Int64] = []) {
        self.memoryType = memoryType
        self.size = size
        self.numaNodes = numaNodes
    }
}

/// `DynamicResource`: one DRA claim a container uses. Field 1 (`class_name`) was removed in 1.31 and is not modelled.
public struct DynamicResource: Sendable, Equatable {
    public var claimName: String
    public var claimNamespace: String
    public var claimResources: [ClaimResource]

    /// Built from the gRPC answer (KubeletClient) or by hand in tests.
    public init(claimName: String, claimNamespace: String, claimResources: [ClaimResource] = []) {
        self.claimName = claimName
        self.claimNamespace = claimNamespace
        self.claimResources = claimResources
    }
}

/// `ClaimResource`: one allocated DRA device, `(driver, pool, device)`, with the CDI names the runtime injected.
public struct ClaimResource: Sendable, Equatable {
    /// Fully qualified CDI names (`vendor.com/class=name`).
    public var cdiDevices: [String]
    /// Empty before 1.31.
    public var driverName: String
    public var poolName: String
    public var deviceName: String
    /// `optional string share_id = 5` (1.35): set when the device is one share of a consumable-capacity device.
    public var shareID: String?

    /// The defaults are what an older kubelet's answer decodes to.
    public init(cdiDevices: [String] = [], driverName: String = "", poolName: String = "", deviceName: String = "",
                shareID: String? = nil) {
        self.cdiDevices = cdiDevices
        self.driverName = driverName
        self.poolName = poolName
        self.deviceName = deviceName
        self.shareID = shareID
    }
}

/// `AllocatableResourcesResponse` (GetAllocatableResources, 1.21+): what the node's plugins offer, allocated or not.
/// `AllocationMapper.unmatchedAllocatable` checks it once at start: advertised ids that name no accelerator mean the
/// plugin and the exporter disagree on ids, before any pod asks for one.
public struct AllocatableResources: Sendable, Equatable {
    public var devices: [ContainerDevices]
    public var cpuIDs: [Int64]
    public var memory: [ContainerMemory]

    /// Built from the gRPC answer (KubeletClient) or by hand in tests.
    public init(devices: [ContainerDevices] = [], cpuIDs: [Int64] = [], memory: [ContainerMemory] = []) {
        self.devices = devices
        self.cpuIDs = cpuIDs
        self.memory = memory
    }
}
