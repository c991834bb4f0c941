/// One (device, container) allocation: one `accelerator_allocated` series.
public struct Allocation: Sendable, Hashable, Comparable {
    public var accelerator: String
    public var namespace: String
    public var pod: String
    public var container: String
    /// DRA claim name (claims live in the pod's namespace); `nil` for device-plugin allocations.
    public var claim: String?

    public init(accelerator: String, namespace: String, pod: String, container: String, claim: String? = nil) {
        self.accelerator = accelerator
        self.namespace = namespace
        self.pod = pod
        self.container = container
        self.claim = claim
    }

    public static func < (a: Self, b: Self) -> Bool {
        (a.accelerator, a.namespace, a.pod, a.container, a.claim ?? "") < (b.accelerator, b.namespace, b.pod, b.container, b.claim ?? "")
    }

    /// The container that holds the device, without the route it came by.
    public var holder: Holder { Holder(namespace: namespace, pod: pod, container: container) }
}

/// A container as the per-pod families name it.
public struct Holder: Sendable, Hashable, Comparable {
    public var namespace: String
    public var pod: String
    public var container: String

    public init(namespace: String, pod: String, container: String) {
        self.namespace = namespace
        self.pod = pod
        self.container = container
    }

    public static func < (a: Self, b: Self) -> Bool { (a.namespace, a.pod, a.container) < (b.namespace, b.pod, b.container) }
}

/// Ids that named no known accelerator: a count and a few examples for the log, never a guessed device.
public struct UnmatchedIDs: Sendable, Equatable {
    public var count = 0
    /// At most `sampleLimit` distinct examples, in the order met (`nvidia.com/gpu=GPU-…`, `gpu.nvidia.com/pool/gpu-0`).
    public var samples: [String] = []
    public static let sampleLimit = 5

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
    public var unknownDevicePluginIDs: UnmatchedIDs
    public var unknownDRADevices: UnmatchedIDs

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
    public var driver: String
    public var pool: String
    public var device: String

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
    /// ResourceSlice device attributes (`uuid`, `pciBusID`, …) by (driver, pool, device); attribute names without
    /// their domain prefix are matched as written here, so pass `uuid` / `pciBusID` / `gpu.nvidia.com/uuid` alike.
    public var resourceSliceAttributes: [ResourceSliceDevice: [String: String]]
    /// The last `GetAllocatableResources` answer, if any: a device that plugins advertise under more than one id
    /// (replicas, Intel shares) is shared even while one container holds it.
    public var allocatable: AllocatableResources?

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

/// The id conventions of the device plugins the exporter knows.
struct DevicePlugin {
    /// `nil`: match any vendor (a resource name given with `--kubelet.resource-names`).
    let vendor: String?

    init?(resourceName: String, extra: Set<String>) {
        let n = resourceName
        if n == "nvidia.com/gpu" || n.hasPrefix("nvidia.com/gpu.") || n.hasPrefix("nvidia.com/mig-") {
            vendor = "nvidia"          // `nvidia.com/gpu.shared`: time-slicing with renameByDefault
        } else if n == "amd.com/gpu" || n.hasPrefix("amd.com/gpu") {
            vendor = "amd"
        } else if n == "gpu.intel.com/i915" || n == "gpu.intel.com/xe" {
            // Not `gpu.intel.com/<driver>_monitoring`: its one id `all` grants read access to every GPU, no allocation.
            vendor = "intel"
        } else if n == "google.com/tpu" {
            vendor = "google"
        } else if n.hasPrefix("habana.ai/gaudi") {
            vendor = "habana"
        } else if extra.contains(n) {
            vendor = nil
        } else {
            return nil
        }
    }

    /// The device `id` names, and whether the id proves the device is handed out in shares.
    ///
    /// - NVIDIA: GPU UUID or MIG UUID; time-slicing/MPS replicas are `<UUID>::<n>` (k8s-device-plugin
    ///   `internal/rm/devices.go`, `NewAnnotatedID`: `"%s::%d"`) and always mean sharing is configured.
    /// - AMD: PCI address (any spelling) or serial / `unique_id` (reference §8); time-slicing replicas are
    ///   `<id>-slice-<n>` (ROCm/k8s-device-plugin `internal/pkg/plugin/timeslice.go`) and mean sharing.
    /// - Intel: the plugin advertises `card<N>-<i>` for i in 0..<shared-dev-num, so `card<N>-0` also appears
    ///   without sharing (intel-device-plugins-for-kubernetes `cmd/gpu_plugin/gpu_plugin.go`, `scan`); only i > 0
    ///   proves sharing here. `AllocationOptions.allocatable` settles `-0` (more than one id per card → shared).
    ///   Bare `card<N>` is accepted too.
    /// - Gaudi: the HLML device UUID (HabanaAI/habanalabs-k8s-device-plugin `habanalabs.go`: `ID: newDevice.UUID`);
    ///   the Gaudi source must pass it as `serial` or in `otherIDs` **[UNVERIFIED: its exact text]**.
    /// - TPU and others: exact match against the ids their sources know (`otherIDs`, serial, PCI address)
    ///   **[UNVERIFIED which id the TPU plugin uses]**.
    func match(_ id: String, in index: DeviceIndex) -> (Int, Bool)? {
        if let i = index.lookup(id, vendor: vendor) { return (i, false) }
        if let range = id.firstRange(of: "::"), let i = index.lookup(String(id[..<range.lowerBound]), vendor: vendor),
           Self.decimal(id[range.upperBound...]) != nil {
            return (i, true)
        }
        if vendor == "amd" || vendor == nil, let range = id.lastRange(of: "-slice-"),
           let i = index.lookup(String(id[..<range.lowerBound]), vendor: vendor), Self.decimal(id[range.upperBound...]) != nil {
            return (i, true)
        }
        if vendor == "intel" || vendor == nil, id.hasPrefix("card"), let dash = id.lastIndex(of: "-"),
           let share = Self.decimal(id[id.index(after: dash)...]),
           let i = index.lookup(String(id[..<dash]), vendor: vendor) {
            return (i, share > 0)
        }
        return nil
    }
}

extension DevicePlugin {
    /// A non-empty run of ASCII digits.
    static func decimal(_ s: Substring) -> Int? {
        guard !s.isEmpty, s.count <= 9, s.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int(s)
    }
}

/// DRA devices → accelerators.
enum DRAMapper {
    enum Match: Equatable { case device(Int), notAnAccelerator, unknown }

    /// Drivers whose devices are accelerators; other drivers' devices are only reported when they name one.
    /// `gpu.nvidia.com` (NVIDIA/k8s-dra-driver-gpu), `gpu.amd.com` (ROCm/k8s-gpu-dra-driver, landscape.md),
    /// `gpu.intel.com` (intel-resource-drivers-for-kubernetes) **[UNVERIFIED: the AMD and Intel driver names were
    /// not read from their sources]**.
    static let drivers: [String: String] = ["gpu.nvidia.com": "nvidia", "gpu.amd.com": "amd", "gpu.intel.com": "intel"]

    /// Most specific first:
    /// 1. ResourceSlice identity attributes (`uuid`, serial);
    /// 2. the vendor drivers' own device names, read from their sources: NVIDIA full GPUs `gpu-<minor>`
    ///    (`deviceinfo.go` CanonicalName; MIG `gpu-<minor>-mig-<profile>-<start>-<size>` needs the `uuid`
    ///    attribute), AMD `gpu-<card>-<render>` (`deviceinfo.go` CanonicalName, also for partitions);
    /// 3. ids inside the CDI names and the device name: UUIDs, PCI addresses (Intel's `0000-03-00-0-0x56c0`);
    /// 4. ResourceSlice PCI attributes (`pciBusID`, NVIDIA's `pcieBusID`, `resource.kubernetes.io/pciBusID`,
    ///    AMD VFIO `pciAddr`) last, because MIG devices and AMD partitions publish their parent's address.
    /// NVIDIA's CDI names (`k8s.gpu.nvidia.com/device=gpu-0`, `…/claim=<claim-uid>-gpu-0`) carry only the device name.
    static func match(_ r: ClaimResource, in index: DeviceIndex, attributes: [ResourceSliceDevice: [String: String]]) -> Match {
        let vendor = drivers[r.driverName]
        let key = ResourceSliceDevice(driver: r.driverName, pool: r.poolName, device: r.deviceName)
        let named = (attributes[key] ?? [:]).sorted(by: { $0.key < $1.key }).map {
            (bare: ($0.key.split(separator: "/").last.map(String.init) ?? $0.key).lowercased(), value: $0.value)
        }
        for (bare, value) in named where ["uuid", "serial", "serialnumber"].contains(bare) {
            if let i = index.lookup(value, vendor: vendor) { return .device(i) }
        }
        if let i = vendorNaming(r, in: index) { return .device(i) }
        for cdi in r.cdiDevices {
            let name = cdi.split(separator: "=", maxSplits: 1).last.map(String.init) ?? cdi
            if let i = index.lookupEmbedded(name, vendor: vendor) { return .device(i) }
        }
        if !r.deviceName.isEmpty, let i = index.lookupEmbedded(r.deviceName, vendor: vendor) { return .device(i) }
        for (bare, value) in named where ["pcibusid", "pciebusid", "pciaddress", "pciaddr", "pci"].contains(bare) {
            if let i = index.lookupPCI(value), vendor == nil || index.devices[i].vendor == vendor { return .device(i) }
        }
        return vendor == nil ? .notAnAccelerator : .unknown
    }

    /// `gpu-<minor>` (NVIDIA) and `gpu-<card>-<render>` (AMD) device names.
    static func vendorNaming(_ r: ClaimResource, in index: DeviceIndex) -> Int? {
        guard r.deviceName.hasPrefix("gpu-") else { return nil }
        let numbers = r.deviceName.dropFirst(4).split(separator: "-", omittingEmptySubsequences: false).map { DevicePlugin.decimal($0) }
        switch (r.driverName, numbers.count) {
        case ("gpu.nvidia.com", 1):
            guard let minor = numbers[0] else { return nil }
            let hits = index.devices.indices.filter {
                index.devices[$0].vendor == "nvidia" && index.devices[$0].minorNumber == minor && index.devices[$0].parentUUID == nil
            }
            return hits.count == 1 ? hits[0] : nil
        case ("gpu.amd.com", 2):
            guard let card = numbers[0], let render = numbers[1] else { return nil }
            let hits = index.devices.indices.filter {
                let names = Set(index.devices[$0].cardNames.map { $0.lowercased() })
                return index.devices[$0].vendor == "amd" && names.contains("card\(card)")
                    && (names.contains("renderd\(render)") || !names.contains { $0.hasPrefix("renderd") })
            }
            return hits.count == 1 ? hits[0] : nil
        default:
            return nil
        }
    }

    static func describe(_ r: ClaimResource) -> String {
        var s = r.driverName + "/" + r.poolName + "/" + r.deviceName
        if let cdi = r.cdiDevices.first { s += " (" + cdi + ")" }
        return s
    }
}
