#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Identifies one DRM client across fds and processes: the same client seen through a dup'ed or inherited fd
/// counts once. Without `drm-client-id`, the (PID, fd) pair stands in.
public struct DRMClientKey: Sendable, Hashable, Comparable {
    /// `drm-driver`.
    public var driver: String
    /// `drm-pdev`, canonical; empty when the driver does not print it.
    public var pdev: String
    /// `drm-client-id`; when nil, ``pid`` and ``fd`` identify the client instead.
    public var clientID: UInt64?
    /// Set only when ``clientID`` is nil.
    public var pid: Int32?
    /// Set only when ``clientID`` is nil.
    public var fd: Int32?

    /// Built by ``DRMScan/add(_:pid:fd:)``; tests build them by hand.
    public init(driver: String, pdev: String, clientID: UInt64? = nil, pid: Int32? = nil, fd: Int32? = nil) {
        self.driver = driver
        self.pdev = pdev
        self.clientID = clientID
        self.pid = pid
        self.fd = fd
    }

    /// A total order for deterministic iteration: driver, device, client id, then PID and fd.
    public static func < (a: Self, b: Self) -> Bool {
        (a.driver, a.pdev, a.clientID ?? 0, a.pid ?? 0, a.fd ?? 0) < (b.driver, b.pdev, b.clientID ?? 0, b.pid ?? 0, b.fd ?? 0)
    }
}

/// All DRM clients seen in one pass over `/proc`.
public struct DRMScan: Sendable {
    /// When the scan began (for the interval to the next one).
    public var at: MonotonicInstant
    /// Each client once, its counters the largest seen through any of its fds.
    public var clients: [DRMClientKey: DRMClientStats] = [:]
    /// PIDs that hold each client, sorted.
    public var pids: [DRMClientKey: [Int32]] = [:]
    /// Processes whose fds or fdinfo the kernel refused to show (EACCES/EPERM: no ptrace-read access). Their
    /// clients are missing from `clients`, so device-wide sums over this scan are incomplete.
    public var deniedPIDs: [Int32] = []

    /// An empty scan.
    public init(at: MonotonicInstant) { self.at = at }

    /// Adds one fd's view of a client.
    public mutating func add(_ stats: DRMClientStats, pid: Int32, fd: Int32) {
        let key = DRMClientKey(driver: stats.driver, pdev: stats.pdev ?? "", clientID: stats.clientID,
                               pid: stats.clientID == nil ? pid : nil, fd: stats.clientID == nil ? fd : nil)
        if let known = clients[key] {
            // Counters are read at slightly different moments through different fds: keep the larger.
            clients[key] = known.merging(stats)
        } else {
            clients[key] = stats
        }
        var holders = pids[key] ?? []
        if !holders.contains(pid) {
            holders.append(pid)
            holders.sort()
        }
        pids[key] = holders
    }
}

extension DRMClientStats {
    func merging(_ other: Self) -> Self {
        var m = self
        m.engineNanoseconds.merge(other.engineNanoseconds, uniquingKeysWith: max)
        m.cycles.merge(other.cycles, uniquingKeysWith: max)
        m.totalCycles.merge(other.totalCycles, uniquingKeysWith: max)
        m.engineCapacity.merge(other.engineCapacity, uniquingKeysWith: max)
        for (region, mem) in other.memory where m.memory[region] == nil { m.memory[region] = mem }
        return m
    }
}

/// Scans `<procfs>/*/fdinfo/*` for DRM clients.
public struct DRMFdinfoScanner: Sendable {
    /// The `/proc` scanned (`--path.procfs`).
    public let procfs: FileRoot

    /// Nothing is read until ``scan(pids:at:)``.
    public init(procfs: FileRoot) { self.procfs = procfs }

    /// EACCES/EPERM: the kernel hides this process's fds from us (no ptrace-read access).
    static func isDenial(_ error: ReadError) -> Bool {
        error.code == .io && (error.errno == EACCES || error.errno == EPERM)
    }

    /// One pass. `pids` limits it (e.g. to container processes); `nil` scans every numeric entry.
    ///
    /// Where `PID/fd/N` can be read as a link, fds that are not `/dev/dri/*` or `/dev/accel/*` are skipped without
    /// opening their fdinfo; where it cannot (no permission, fixture trees without `fd/`), the fdinfo itself decides.
    /// Processes that vanish mid-scan are skipped.
    public func scan(pids: [Int32]? = nil, at: MonotonicInstant) -> DRMScan {
        var result = DRMScan(at: at)
        let all: [Int32] = pids ?? ((try? procfs.list("")) ?? []).compactMap { Int32($0) }.filter { $0 > 0 }
        for pid in all.sorted() {
            var denied = false
            let fds: [String]
            do {
                fds = try procfs.list("\(pid)/fdinfo")
            } catch {
                // Gone (exited mid-scan) is normal; refused means a client we cannot see.
                if Self.isDenial(error) { result.deniedPIDs.append(pid) }
                continue
            }
            for name in fds {
                guard let fd = Int32(name) else { continue }
                if let target = try? procfs.readLink("\(pid)/fd/\(name)"),
                   !(target.hasPrefix("/dev/dri/") || target.hasPrefix("/dev/accel/")) { continue }
                let bytes: [UInt8]
                do {
                    bytes = try procfs.readBytes("\(pid)/fdinfo/\(name)", limit: 16384)
                } catch {
                    if Self.isDenial(error) { denied = true }
                    continue
                }
                guard let stats = DRMFdinfoParser.parse(String(decoding: bytes, as: UTF8.self)) else { continue }
                result.add(stats, pid: pid, fd: fd)
            }
            if denied { result.deniedPIDs.append(pid) }
        }
        return result
    }
}

/// One client's usage over the interval between two scans.
public struct DRMClientUsage: Sendable, Equatable {
    /// The client.
    public var key: DRMClientKey
    /// The processes that hold it, sorted.
    public var pids: [Int32]
    /// 0…1 per engine; absent for a client first seen in this scan (no interval yet).
    public var engineUtilization: [String: Double]
    /// ``DRMClientStats/deviceMemoryBytes`` at the later scan; nil when the driver prints none.
    public var deviceMemoryBytes: Double?

    /// Built by ``DRMUsageTracker/update(_:)``; tests build them by hand.
    public init(key: DRMClientKey, pids: [Int32], engineUtilization: [String: Double], deviceMemoryBytes: Double?) {
        self.key = key
        self.pids = pids
        self.engineUtilization = engineUtilization
        self.deviceMemoryBytes = deviceMemoryBytes
    }

    /// The main compute engine's busy ratio: amdgpu `gfx`/`compute`, i915 `render`/`compute`, xe `rcs`/`ccs`;
    /// drivers without such names (habanalabs) use their busiest engine. `nil` when no engine has a ratio.
    public var utilization: Double? {
        let main = ["gfx", "compute", "render", "rcs", "ccs"].compactMap { engineUtilization[$0] }
        if let m = main.max() { return m }
        return engineUtilization.values.max()
    }
}

/// Utilization from consecutive scans. Engine time: Δns / Δwall ns / capacity; xe cycles: Δcycles / Δtotal
/// cycles / capacity; ratios clamped to 0…1.
///
/// Counters may briefly go backwards; the spec (drm-usage-stats.rst) says to stay with the larger previous value
/// until the counter catches up, so the tracker keeps a per-client high-water mark: such an interval reads 0, and
/// the catch-up is not counted twice. A restarted client has a new `drm-client-id`, hence no previous value and no
/// ratio for its first interval — never a negative one. Clients that vanish are forgotten.
public struct DRMUsageTracker: Sendable {
    private var previousAt: MonotonicInstant?
    /// Per client: the largest counters seen so far.
    private var highWater: [DRMClientKey: DRMClientStats] = [:]

    /// No previous scan: the first ``update(_:)`` gives no ratios.
    public init() {}

    /// The clients of `scan` with their ratios over the interval since the previous scan; called once per scan,
    /// in order, by one owner (it is not thread-safe).
    public mutating func update(_ scan: DRMScan) -> [DRMClientUsage] {
        var out: [DRMClientUsage] = []
        var marks: [DRMClientKey: DRMClientStats] = [:]
        let wall: Double? = previousAt.flatMap { scan.at > $0 ? Double(scan.at.nanoseconds - $0.nanoseconds) : nil }
        for key in scan.clients.keys.sorted() {
            let now = scan.clients[key]!
            var usage = DRMClientUsage(key: key, pids: scan.pids[key] ?? [], engineUtilization: [:],
                                       deviceMemoryBytes: now.deviceMemoryBytes.map { Double($0) })
            var mark = now
            if let before = highWater[key] {
                for (e, v) in now.engineNanoseconds { mark.engineNanoseconds[e] = max(v, before.engineNanoseconds[e] ?? 0) }
                for (e, v) in now.cycles { mark.cycles[e] = max(v, before.cycles[e] ?? 0) }
                for (e, v) in now.totalCycles { mark.totalCycles[e] = max(v, before.totalCycles[e] ?? 0) }
                if let wall {
                    for (engine, ns) in mark.engineNanoseconds {
                        guard let old = before.engineNanoseconds[engine] else { continue }
                        let capacity = Double(now.engineCapacity[engine] ?? 1)
                        usage.engineUtilization[engine] = Self.clamp(Double(ns - old) / wall / capacity)
                    }
                }
                for (engine, c) in mark.cycles {
                    guard let old = before.cycles[engine], let total = mark.totalCycles[engine],
                          let oldTotal = before.totalCycles[engine], total > oldTotal else { continue }
                    let capacity = Double(now.engineCapacity[engine] ?? 1)
                    usage.engineUtilization[engine] = Self.clamp(Double(c - old) / Double(total - oldTotal) / capacity)
                }
            }
            marks[key] = mark
            out.append(usage)
        }
        highWater = marks
        previousAt = scan.at
        return out
    }

    static func clamp(_ v: Double) -> Double { v.isFinite ? min(1, max(0, v)) : 0 }
}
