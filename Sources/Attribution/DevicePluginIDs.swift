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
