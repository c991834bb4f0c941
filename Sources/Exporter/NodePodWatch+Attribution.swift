public import Accelerators
public import Attribution
public import Kubernetes

/// The node's pod watch as attribution's pod directory: pod UID → namespace, name and container ids.
extension NodePodWatch: PodDirectory {
    /// The watch's current entries, by UID; `now` is ignored (the watch is always current).
    public func pods(at now: MonotonicInstant) -> [String: PodInfo] {
        var byUID: [String: PodInfo] = [:]
        for entry in entries { byUID[entry.uid] = PodInfo(namespace: entry.namespace, name: entry.name, containers: entry.containers) }
        return byUID
    }
}

extension ResourceSliceWatch {
    /// The slices' device attributes, keyed as attribution joins claims.
    var attributionAttributes: [ResourceSliceDevice: [String: String]] {
        var out: [ResourceSliceDevice: [String: String]] = [:]
        for (device, attributes) in attributes {
            out[ResourceSliceDevice(driver: device.driver, pool: device.pool, device: device.device)] = attributes
        }
        return out
    }
}
