import Accelerators
import AccelMetricsTesting
@testable import Attribution
import Foundation

/// The checked-in procfs fixture (Tests/Fixtures/procfs/node; its README says what each PID stands for).
func fixtureProcfs() -> FileRoot {
    FileRoot(PackagePaths.file("Tests/Fixtures/procfs/node").path)
}

/// A writable procfs tree in the temporary folder, removed when the test is done.
final class TemporaryProcfs {
    let directory = TemporaryDirectory(prefix: "accel-procfs")

    var path: String { directory.path }
    var root: FileRoot { FileRoot(path) }

    func write(_ relative: String, _ text: String) {
        do { try directory.write(relative, text) } catch { preconditionFailure("cannot write \(relative): \(error)") }
    }

    func link(_ relative: String, to target: String) {
        do { try directory.link(relative, to: target) } catch { preconditionFailure("\(error)") }
    }

    /// A `/proc/PID/stat` line whose field 22 is `start` and whose comm holds spaces and a `)`.
    func writeProcess(_ pid: Int32, cgroup: String, start: UInt64, comm: String = "python3 (worker) )") {
        write("\(pid)/cgroup", cgroup)
        write("\(pid)/stat", "\(pid) (\(comm)) S 1 \(pid) \(pid) 0 -1 4194560 1520 0 3 0 12 4 0 0 20 0 8 0 \(start) 1073741824 2048\n")
    }
}

/// The node every mapping test uses: NVIDIA GPUs (one in MIG mode), AMD, Intel i915 and xe, a TPU and a Gaudi.
enum TestNode {
    static let gpu0 = "GPU-1a2b3c4d-0000-1111-2222-333344445555"
    static let gpu1 = "GPU-9f8e7d6c-5b4a-3928-1706-a5b4c3d2e1f0"
    static let gpu2 = "GPU-0c0c0c0c-1d1d-2e2e-3f3f-404040404040"
    static let mig1 = "MIG-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
    static let amd = "a1b2c3d4e5f60718"
    static let i915 = "0000:4d:00.0"
    static let xe = "0000:8c:00.0"
    static let tpu = "0000:00:04.0"
    static let gaudi = "0000:19:00.0"

    static let identities: [DeviceIdentity] = [
        DeviceIdentity(accelerator: gpu0, vendor: "nvidia", model: "H100 80GB HBM3", pciAddress: "0000:18:00.0",
                       info: [("pci_bus_id", "0000:18:00.0"), ("serial", "1650123456789")]),
        // NVML spells the domain with eight digits and upper case.
        DeviceIdentity(accelerator: gpu1, vendor: "nvidia", model: "H100 80GB HBM3", pciAddress: "00000000:3B:00.0"),
        DeviceIdentity(accelerator: gpu2, vendor: "nvidia", model: "A100-SXM4-40GB", pciAddress: "0000:86:00.0"),
        DeviceIdentity(accelerator: mig1, vendor: "nvidia", model: "A100-SXM4-40GB", pciAddress: "0000:86:00.0",
                       info: [("parent", gpu2), ("mig_profile", "1g.5gb")]),
        DeviceIdentity(accelerator: amd, vendor: "amd", model: "MI300X", pciAddress: "0000:03:00.0",
                       info: [("pci_bus_id", "0000:03:00.0"), ("serial", "PCB0042")]),
        DeviceIdentity(accelerator: i915, vendor: "intel", model: "Data Center GPU Flex 170", pciAddress: i915),
        DeviceIdentity(accelerator: xe, vendor: "intel", model: "Arc B580", pciAddress: xe),
        DeviceIdentity(accelerator: tpu, vendor: "google", model: "v5e", pciAddress: tpu),
        DeviceIdentity(accelerator: gaudi, vendor: "habana", model: "Gaudi2", pciAddress: gaudi, info: [("serial", "AM24000123")]),
    ]

    static var keys: [AcceleratorKeys] {
        identities.map { id in
            switch id.accelerator {
            case gpu0: AcceleratorKeys(identity: id, minorNumber: 0)
            case gpu1: AcceleratorKeys(identity: id, minorNumber: 1)
            case gpu2: AcceleratorKeys(identity: id, minorNumber: 2)
            case amd: AcceleratorKeys(identity: id, cardNames: ["card3", "renderD131"])
            case i915: AcceleratorKeys(identity: id, cardNames: ["card1", "renderD129"])
            case xe: AcceleratorKeys(identity: id, cardNames: ["card2", "renderD130"])
            case tpu: AcceleratorKeys(identity: id, otherIDs: ["0"])
            default: AcceleratorKeys(identity: id)
            }
        }
    }

    static func pod(_ namespace: String, _ name: String, _ containers: [ContainerResources]) -> PodResources {
        PodResources(name: name, namespace: namespace, containers: containers)
    }
}
