/// One (device, container) allocation: one `accelerator_allocated` series.
public struct Allocation: Sendable, Hashable, Comparable {
    /// The device's `accelerator` label.
    public var accelerator: String
    public var namespace: String
    public var pod: String
    public var container: String
    /// DRA claim name (claims live in the pod's namespace); `nil` for device-plugin allocations.
    public var claim: String?

    /// `claim` nil for a device-plugin allocation.
    public init(accelerator: String, namespace: String, pod: String, container: String, claim: String? = nil) {
        self.accelerator = accelerator
        self.namespace = namespace
        self.pod = pod
        self.container = container
        self.claim = claim
    }

    /// By accelerator, then namespace, pod, container and claim (a missing claim first).
    public static func < (a: Self, b: Self) -> Bool {
        (a.accelerator, a.namespace, a.pod, a.container, a.claim ?? "") < (b.accelerator, b.namespace, b.pod, b.container, b.claim ?? "")
    }

    /// The container that holds the device, without the route it came by.
    public var holder: Holder { Holder(namespace: namespace, pod: pod, container: container) }
}

/// A container as the per-pod families name it.
public struct Holder: Sendable, Hashable, Comparable {
    /// The `namespace`, `pod` and `container` labels of the per-pod series.
    public var namespace: String
    public var pod: String
    public var container: String

    /// Names as the kubelet reports them; not checked.
    public init(namespace: String, pod: String, container: String) {
        self.namespace = namespace
        self.pod = pod
        self.container = container
    }

    /// By namespace, pod, then container.
    public static func < (a: Self, b: Self) -> Bool { (a.namespace, a.pod, a.container) < (b.namespace, b.pod, b.container) }
}

/// Ids that named no known accelerator: a count and a few examples for the log, never a guessed device.
public struct UnmatchedIDs: Sendable, Equatable {
    /// Every unmatched id, duplicates included.
    public var count = 0
    /// At most `sampleLimit` distinct examples, in the order met (`nvidia.com/gpu=GPU-…`, `gpu.nvidia.com/pool/gpu-0`).
    public var samples: [String] = []
    /// How many examples ``samples`` keeps.
    public static let sampleLimit = 5

    /// No unmatched ids.
    public init() {}

    mutating func add(_ text: String) {
        count += 1
        if samples.count < Self.sampleLimit && !samples.contains(text) { samples.append(text) }
    }
}

/// What a pod-resources `List` means for this node's accelerators.
public struct AllocationTable: Sendable, Equatable {
    /// Sorted, without duplicates.
    public var allocations: [Allocation]
    /// Accelerators that are shared: held by more than one container, or handed out as shares (time-slicing/MPS
    /// replicas `<UUID>::<n>`, Intel `card<N>-<n>`, DRA `share_id`) even if one container holds them right now.
    public var shared: Set<String>
    /// Device-plugin ids of accelerator resources that named no known device.
    public var unknownDevicePluginIDs: UnmatchedIDs
    /// DRA devices (`driver/pool/device`) that named no known accelerator.
    public var unknownDRADevices: UnmatchedIDs

    /// Built by ``AllocationMapper``; tests build them by hand.
    public init(allocations: [Allocation] = [], shared: Set<String> = [], unknownDevicePluginIDs: UnmatchedIDs = .init(),
                unknownDRADevices: UnmatchedIDs = .init()) {
        self.allocations = allocations
        self.shared = shared
        self.unknownDevicePluginIDs = unknownDevicePluginIDs
        self.unknownDRADevices = unknownDRADevices
    }

    /// The containers holding `accelerator`, sorted.
    public func holders(of accelerator: String) -> [Holder] {
        Array(Set(allocations.lazy.filter { $0.accelerator == accelerator }.map(\.holder))).sorted()
    }
}

/// Attributes of one DRA device as its ResourceSlice publishes them (`resource.k8s.io/v1`), keyed by
/// (driver, pool, device). Filled by the API client when the exporter may read ResourceSlices.
public struct ResourceSliceDevice: Sendable, Hashable {
    /// The DRA driver name, `pool` and `device` as in the pod-resources `ClaimResource`.
    public var driver: String
    public var pool: String
    public var device: String

    /// The key a ResourceSlice's device and a pod-resources `ClaimResource` share.
    public init(driver: String, pool: String, device: String) {
        self.driver = driver
        self.pool = pool
        self.device = device
    }
}

/// Options for mapping; defaults follow DESIGN.md and the issue.
public struct AllocationOptions: Sendable {
    /// Device-plugin resource names beyond the built-in ones (`--kubelet.resource-names`); their ids are matched
    /// against every vendor's devices.
    public var extraResourceNames: Set<String>
    /// ResourceSlice device attributes (`uuid`, `pciBusID`, …) by (driver, pool, device); attribute names with
    /// a domain prefix (`gpu.nvidia.com/uuid`, `resource.kubernetes.io/pciBusID`) count as the bare name; PCI
    /// spellings `pciBusID`, `pcieBusID` (NVIDIA), `pciAddr` (AMD VFIO) are all read.
    public var resourceSliceAttributes: [ResourceSliceDevice: [String: String]]
    /// The last `GetAllocatableResources` answer, if any: a device that plugins advertise under more than one id
    /// (replicas, Intel shares) is shared even while one container holds it.
    public var allocatable: AllocatableResources?

    /// The defaults read built-in resource names only, with no ResourceSlice attributes and no allocatable answer.
    public init(extraResourceNames: Set<String> = [], resourceSliceAttributes: [ResourceSliceDevice: [String: String]] = [:],
                allocatable: AllocatableResources? = nil) {
        self.extraResourceNames = extraResourceNames
        self.resourceSliceAttributes = resourceSliceAttributes
        self.allocatable = allocatable
    }
}

/// Joins a pod-resources `List` to the node's accelerators.
public enum AllocationMapper {
    /// Maps every device-plugin id and DRA device in `list` to an accelerator of `devices`.
    ///
    /// Resources that are not accelerators (hugepages, NICs, other DRA drivers' devices that name no accelerator)
    /// are ignored; ids of accelerator resources that match nothing are counted in `unknown…`, never guessed.
    public static func map(_ list: PodResourcesList, devices: [AcceleratorKeys], options: AllocationOptions = .init()) -> AllocationTable {
        let index = DeviceIndex(devices)
        var table = AllocationTable()
        var seen: Set<Allocation> = []
        for pod in list.pods {
            for container in pod.containers {
                for group in container.devices {
                    guard let plugin = DevicePlugin(resourceName: group.resourceName, extra: options.extraResourceNames) else { continue }
                    for id in group.deviceIDs {
                        guard let (i, share) = plugin.match(id, in: index) else {
                            table.unknownDevicePluginIDs.add(group.resourceName + "=" + id)
                            continue
                        }
                        let a = Allocation(accelerator: devices[i].accelerator, namespace: pod.namespace, pod: pod.name, container: container.name)
                        if share { table.shared.insert(a.accelerator) }
                        if seen.insert(a).inserted { table.allocations.append(a) }
                    }
                }
                for claim in container.dynamicResources {
                    for resource in claim.claimResources {
                        switch DRAMapper.match(resource, in: index, attributes: options.resourceSliceAttributes) {
                        case .device(let i):
                            // A pod can only use claims of its own namespace: `claim` carries the name alone.
                            let a = Allocation(accelerator: devices[i].accelerator, namespace: pod.namespace, pod: pod.name,
                                               container: container.name, claim: claim.claimName)
                            if resource.shareID != nil { table.shared.insert(a.accelerator) }
                            if seen.insert(a).inserted { table.allocations.append(a) }
                        case .notAnAccelerator:
                            break
                        case .unknown:
                            table.unknownDRADevices.add(DRAMapper.describe(resource))
                        }
                    }
                }
            }
        }
        if let allocatable = options.allocatable {
            var advertised: [Int: Set<String>] = [:]
            for group in allocatable.devices {
                guard let plugin = DevicePlugin(resourceName: group.resourceName, extra: options.extraResourceNames) else { continue }
                for id in group.deviceIDs {
                    if let (i, _) = plugin.match(id, in: index) { advertised[i, default: []].insert(group.resourceName + "=" + id) }
                }
            }
            for (i, ids) in advertised where ids.count > 1 { table.shared.insert(devices[i].accelerator) }
        }
        table.allocations.sort()
        // Several containers on one device: shared, whatever route each came by (DRA and device plugin may mix).
        var holders: [String: Set<Holder>] = [:]
        for a in table.allocations { holders[a.accelerator, default: []].insert(a.holder) }
        for (accelerator, set) in holders where set.count > 1 { table.shared.insert(accelerator) }
        return table
    }
}

extension AllocationMapper {
    /// Ids that accelerator device plugins advertise (`GetAllocatableResources`) but that name no accelerator the
    /// sources found: a plugin/exporter mismatch worth one log line at start, before any pod asks for them.
    public static func unmatchedAllocatable(_ allocatable: AllocatableResources, devices: [AcceleratorKeys],
                                            options: AllocationOptions = .init()) -> UnmatchedIDs {
        let index = DeviceIndex(devices)
        var unmatched = UnmatchedIDs()
        for group in allocatable.devices {
            guard let plugin = DevicePlugin(resourceName: group.resourceName, extra: options.extraResourceNames) else { continue }
            for id in group.deviceIDs where plugin.match(id, in: index) == nil {
                unmatched.add(group.resourceName + "=" + id)
            }
        }
        return unmatched
    }
}
