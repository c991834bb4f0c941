internal import CHabanaLabs
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A Gaudi device's control node, the one a monitor may open: `/dev/accel/accel_controlD<N>` (accel driver, 6.3+)
/// or `/dev/hl_controlD<N>` (the older misc driver).
///
/// Never the compute node (`accel<N>`, `hl<N>`): opening it creates the device's one compute context, so a workload
/// starting at that moment gets EBUSY, and on Gaudi2 and later the driver resets the device when that context is
/// released. The control node allows many openers and answers only the INFO ioctl.
public struct GaudiControlNode: Sendable, Hashable, CustomStringConvertible {
    /// `/dev/accel/accel_controlD<N>` or `/dev/hl_controlD<N>`, under the source's device root.
    public var path: String
    /// The misc driver's ioctl numbering (`/dev/hl_controlD<N>`).
    public var legacy: Bool

    /// Found by the Gaudi source's discovery; `legacy` for a `/dev/hl_controlD<N>` node.
    public init(path: String, legacy: Bool) {
        self.path = path
        self.legacy = legacy
    }

    /// The path, for log lines.
    public var description: String { path }
}

/// What the driver's INFO ioctls said about one device this tick; `nil` where a query failed.
public struct GaudiDriverReading: Sendable, Equatable {
    /// HL_INFO_DEVICE_UTILIZATION, percent. The driver derives it from power: (power − idle power) over
    /// (power limit − idle power), not from engine busy time.
    public var utilizationPercent: UInt32?
    /// HL_INFO_HW_IP_INFO `dram_size`: DRAM available to users, bytes.
    public var dramTotalBytes: UInt64?
    /// HL_INFO_DRAM_USAGE `dram_free_mem`: free user DRAM on the whole device, bytes.
    public var dramFreeBytes: UInt64?
    /// Why values are missing: one line per failed query (`<op>: <errno text>`), for the log.
    public var problems: [String] = []

    /// Every value absent and no problem by default.
    public init(utilizationPercent: UInt32? = nil, dramTotalBytes: UInt64? = nil, dramFreeBytes: UInt64? = nil, problems: [String] = []) {
        self.utilizationPercent = utilizationPercent
        self.dramTotalBytes = dramTotalBytes
        self.dramFreeBytes = dramFreeBytes
        self.problems = problems
    }
}

/// The seam between the Gaudi source and the driver's INFO ioctls. umockdev cannot fake ioctls on these nodes, so
/// tests put a scripted implementation here; production uses `HabanaControlDeviceInfo`.
///
/// Called from the source's worker thread only, one call at a time.
public protocol GaudiDriverInfo: AnyObject {
    /// One tick's INFO readings for `node`; never throws: failed queries leave their value nil and say why
    /// in ``GaudiDriverReading/problems``.
    func read(_ node: GaudiControlNode) -> GaudiDriverReading
    /// The device left discovery: release whatever was opened for it.
    func forget(_ node: GaudiControlNode)
}

/// Opens each control node read-only once and keeps it; issues HL_INFO_HW_IP_INFO until it has answered with a DRAM
/// size (the size does not change after that), and HL_INFO_DRAM_USAGE plus HL_INFO_DEVICE_UTILIZATION every read.
/// A HW_IP_INFO that failed is asked again on every later read, and reported as a problem each time until it
/// answers, so "recovered" is logged only once the size is really there. A node that fails with
/// ENODEV/EBADF/EIO/ENXIO is closed and reopened on the next read.
public final class HabanaControlDeviceInfo: GaudiDriverInfo {
    private var nodes: [GaudiControlNode: (fd: Int32, dramSize: UInt64?)] = [:]

    /// No node is opened until the first ``read(_:)``.
    public init() {}

    deinit {
        for (_, entry) in nodes { close(entry.fd) }
    }

    /// Opens the node on first use (read-only, kept open) and issues the INFO ioctls described above.
    public func read(_ node: GaudiControlNode) -> GaudiDriverReading {
        var reading = GaudiDriverReading()
        var entry: (fd: Int32, dramSize: UInt64?)
        if let known = nodes[node] {
            entry = known
        } else {
            let fd = open(node.path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                reading.problems.append("open \(node.path): \(String(cString: strerror(errno)))")
                return reading
            }
            entry = (fd, nil)
        }
        var lost = false
        func failed(_ op: String, _ rc: Int32) {
            reading.problems.append("\(op): \(String(cString: strerror(-rc)))")
            if rc == -ENODEV || rc == -EBADF || rc == -EIO || rc == -ENXIO { lost = true }
        }
        if entry.dramSize == nil {
            var ip = CHabanaLabsHWIPInfoPrefix()
            let rc = CHabanaLabs_info(entry.fd, node.legacy ? 1 : 0, UInt32(CHabanaLabs_INFO_HW_IP_INFO), &ip, UInt32(MemoryLayout.size(ofValue: ip)))
            if rc != 0 {
                failed("HL_INFO_HW_IP_INFO", rc)
            } else if ip.dram_size == 0 {
                reading.problems.append("HL_INFO_HW_IP_INFO: no DRAM size (0)")
            } else {
                entry.dramSize = ip.dram_size
            }
        }
        nodes[node] = entry
        reading.dramTotalBytes = entry.dramSize
        var usage = CHabanaLabsDRAMUsage()
        let usageRC = CHabanaLabs_info(entry.fd, node.legacy ? 1 : 0, UInt32(CHabanaLabs_INFO_DRAM_USAGE), &usage, UInt32(MemoryLayout.size(ofValue: usage)))
        if usageRC == 0 { reading.dramFreeBytes = usage.dram_free_mem } else { failed("HL_INFO_DRAM_USAGE", usageRC) }
        var utilization = CHabanaLabsUtilization()
        let utilRC = CHabanaLabs_info(entry.fd, node.legacy ? 1 : 0, UInt32(CHabanaLabs_INFO_DEVICE_UTILIZATION), &utilization, UInt32(MemoryLayout.size(ofValue: utilization)))
        if utilRC == 0 { reading.utilizationPercent = utilization.utilization } else { failed("HL_INFO_DEVICE_UTILIZATION", utilRC) }
        if lost { forget(node) }
        return reading
    }

    /// Closes the node's fd, if open.
    public func forget(_ node: GaudiControlNode) {
        if let entry = nodes.removeValue(forKey: node) { close(entry.fd) }
    }

    /// The request numbers the shim issues (for tests): accel driver, misc driver.
    static var requests: (accel: UInt, legacy: UInt) {
        (UInt(CHabanaLabs_infoRequest(0)), UInt(CHabanaLabs_infoRequest(1)))
    }
}
