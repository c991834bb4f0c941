#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A fake `/proc` (for `--path.procfs`) holding DRM clients' fdinfo, written as a plain directory.
///
/// `hostNamespace` puts kthreadd at PID 2, as the host's PID namespace has and a container's own does not (the
/// Intel source trusts device-wide fdinfo sums only then). Rewriting the same fixture with other counters gives a
/// second sampling point; processes left out are removed (they exited).
public struct ProcFixture: Sendable {
    public struct Process: Sendable {
        public var pid: Int32
        public var comm: String
        /// fd number → fdinfo text.
        public var fdinfo: [Int32: String]
        public init(pid: Int32, comm: String, fdinfo: [Int32: String] = [:]) {
            self.pid = pid
            self.comm = comm
            self.fdinfo = fdinfo
        }
    }

    public var processes: [Process]
    public var hostNamespace: Bool

    public init(processes: [Process], hostNamespace: Bool = true) {
        self.processes = processes
        self.hostNamespace = hostNamespace
    }

    public func write(at root: String) throws {
        try FixtureTree.mkdirs(root)
        var all = processes
        if hostNamespace {
            all.append(Process(pid: 1, comm: "systemd"))
            all.append(Process(pid: 2, comm: "kthreadd"))
        }
        let keep = Set(all.map { String($0.pid) })
        // Exited processes: their directories go, as the kernel's do.
        if let dir = opendir(root) {
            var stale: [String] = []
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if Int32(name) != nil && !keep.contains(name) { stale.append(name) }
            }
            closedir(dir)
            for name in stale { _ = system("rm -rf '\(root)/\(name)'") }
        }
        for p in all {
            let dir = "\(root)/\(p.pid)"
            // Closed fds go too: the fdinfo directory holds exactly this step's fds.
            _ = system("rm -rf '\(dir)/fdinfo'")
            try FixtureTree.mkdirs(dir + "/fdinfo")
            try TestbedWriter.writeAtomically(dir + "/comm", Array((p.comm + "\n").utf8))
            for (fd, text) in p.fdinfo {
                try TestbedWriter.writeAtomically(dir + "/fdinfo/\(fd)", Array(text.utf8))
            }
        }
    }

    /// i915's fdinfo for one client (kernel `i915_drm_client.c` shape): busy ns per engine class, memory per region.
    public static func i915(clientID: UInt64, pdev: String, engines: [(String, UInt64)], capacities: [String: Int] = [:],
                            localResidentMiB: Int? = nil, systemResidentMiB: Int = 0) -> String {
        var s = "pos:\t0\nflags:\t02100002\nmnt_id:\t26\nino:\t1029\n"
        s += "drm-driver:\ti915\ndrm-client-id:\t\(clientID)\ndrm-pdev:\t\(pdev)\n"
        s += "drm-total-system0:\t\(systemResidentMiB) MiB\ndrm-shared-system0:\t0\ndrm-resident-system0:\t\(systemResidentMiB) MiB\n"
        // Integrated GPUs have no local (device) memory region at all.
        if let local = localResidentMiB {
            s += "drm-total-local0:\t\(local) MiB\ndrm-shared-local0:\t0\ndrm-resident-local0:\t\(local) MiB\n"
        }
        s += "drm-total-stolen-system0:\t0\n"
        for (engine, ns) in engines {
            s += "drm-engine-\(engine):\t\(ns) ns\n"
            if let c = capacities[engine] { s += "drm-engine-capacity-\(engine):\t\(c)\n" }
        }
        return s
    }

    /// xe's fdinfo for one client (kernel `xe_drm_client.c` shape): busy and total GPU cycles per engine class.
    public static func xe(clientID: UInt64, pdev: String, cycles: [(String, UInt64, UInt64)], capacities: [String: Int] = [:],
                          vramResidentKiB: Int = 0) -> String {
        var s = "pos:\t0\nflags:\t0100002\nmnt_id:\t26\nino:\t685\n"
        s += "drm-driver:\txe\ndrm-client-id:\t\(clientID)\ndrm-pdev:\t\(pdev)\n"
        s += "drm-total-system:\t0\ndrm-resident-system:\t0\ndrm-total-gtt:\t192 KiB\ndrm-resident-gtt:\t192 KiB\n"
        s += "drm-total-vram0:\t\(vramResidentKiB) KiB\ndrm-shared-vram0:\t0\ndrm-resident-vram0:\t\(vramResidentKiB) KiB\n"
        for (engine, busy, total) in cycles {
            s += "drm-cycles-\(engine):\t\(busy)\ndrm-total-cycles-\(engine):\t\(total)\n"
            if let c = capacities[engine] { s += "drm-engine-capacity-\(engine):\t\(c)\n" }
        }
        return s
    }
}
