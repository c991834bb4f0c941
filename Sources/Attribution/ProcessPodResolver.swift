public import Accelerators

/// PID → pod through `<procfs>/PID/cgroup`, cached per PID and checked against the process start time.
///
/// A PID the kernel reuses for a new process must not inherit the old one's pod: each entry remembers field 22 of
/// `/proc/PID/stat` (start time in clock ticks since boot) and is re-read when it differs. The start time is read
/// before and after the cgroup file so a PID recycled in between is not cached with the wrong pod.
/// Not thread-safe: one sampler owns it.
public struct ProcessPodResolver: Sendable {
    /// The root `/proc` is read through (`--path.procfs`).
    public let procfs: FileRoot
    private var cache: [Int32: Entry] = [:]

    private struct Entry {
        var startTime: UInt64
        var pod: ProcessPod?
    }

    /// An empty cache; nothing is read until the first ``resolve(_:)``.
    public init(procfs: FileRoot) { self.procfs = procfs }

    /// The pod of `pid`, `nil` for processes outside pods and for processes that are gone.
    public mutating func resolve(_ pid: Int32) -> ProcessPod? {
        guard pid > 0, let start = startTime(pid) else {
            cache[pid] = nil
            return nil
        }
        if let entry = cache[pid], entry.startTime == start { return entry.pod }
        guard let bytes = try? procfs.readBytes("\(pid)/cgroup", limit: 65536),
              startTime(pid) == start else {
            cache[pid] = nil
            return nil
        }
        let pod = CgroupParser.pod(fromCgroupFile: String(decoding: bytes, as: UTF8.self))
        cache[pid] = Entry(startTime: start, pod: pod)
        return pod
    }

    /// Resolves `pids` and forgets every cached PID not among them, so the cache never outgrows the live set.
    public mutating func resolve(_ pids: some Sequence<Int32>) -> [Int32: ProcessPod] {
        var out: [Int32: ProcessPod] = [:]
        var live: Set<Int32> = []
        for pid in pids where live.insert(pid).inserted {
            if let pod = resolve(pid) { out[pid] = pod }
        }
        cache = cache.filter { live.contains($0.key) }
        return out
    }

    /// Number of cached PIDs (for tests and self-metrics).
    public var cachedCount: Int { cache.count }

    /// Field 22 (`starttime`) of `<procfs>/PID/stat`.
    func startTime(_ pid: Int32) -> UInt64? {
        guard let bytes = try? procfs.readBytes("\(pid)/stat", limit: 4096) else { return nil }
        return Self.startTime(statLine: bytes)
    }

    /// `comm` (field 2) is in parentheses and may hold spaces and `)`: count fields after the *last* `)`.
    static func startTime(statLine bytes: [UInt8]) -> UInt64? {
        guard let close = bytes.lastIndex(of: UInt8(ascii: ")")) else { return nil }
        let rest = bytes[(close + 1)...].split(separator: UInt8(ascii: " "))
        // rest[0] is field 3 (state): field 22 is rest[19].
        guard rest.count > 19 else { return nil }
        return UInt64(String(decoding: rest[19], as: UTF8.self).trimmingASCIIWhitespace())
    }
}

extension String {
    func trimmingASCIIWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }
        guard let start = firstIndex(where: { !isSpace($0) }), let end = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[start...end])
    }
}
