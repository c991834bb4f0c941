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
