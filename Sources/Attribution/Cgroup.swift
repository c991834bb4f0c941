/// The pod and container a process runs in, as its cgroup path names them.
public struct ProcessPod: Sendable, Hashable {
    /// Canonical pod UID (lower case, dashes): `0f3b…-…`.
    public var podUID: String
    /// Runtime container id (64 hex for containerd, CRI-O, Docker); `nil` for pod-level processes (pause, conmon).
    public var containerID: String?
    /// `guaranteed`, `burstable` or `besteffort`.
    public var qosClass: String

    /// Unchecked; ``CgroupParser`` builds these from cgroup paths.
    public init(podUID: String, containerID: String?, qosClass: String) {
        self.podUID = podUID
        self.containerID = containerID
        self.qosClass = qosClass
    }
}

/// `/proc/PID/cgroup` → pod.
///
/// Shapes handled (cgroup v1 `N:controllers:path` and v2 `0::path`; the v2 line wins when both name a pod):
/// - systemd driver: `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_with_underscores>.slice/
///   cri-containerd-<id>.scope` (also `crio-<id>.scope`, `docker-<id>.scope`; guaranteed pods sit directly under
///   `kubepods.slice` as `kubepods-pod<uid>.slice`);
/// - cgroupfs driver: `/kubepods/burstable/pod<uid-with-dashes>/<id>`;
/// - paths relative to the reader's cgroup namespace: `0::/../../kubepods-…` — only the segment names matter
///   (a namespace rooted *below* the pod, `0::/`, names no pod and resolves to none);
/// - kind / nested kubelets: `/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort-pod<uid_>.slice/…`;
/// - anything else (system services, user sessions, `init.scope`) is not a pod.
public enum CgroupParser {
    /// The pod named by a whole `/proc/PID/cgroup` file; nil for processes outside pods.
    public static func pod(fromCgroupFile text: String) -> ProcessPod? {
        var v1: ProcessPod?
        for line in text.split(separator: "\n") {
            // hierarchy-ID:controller-list:cgroup-path; the path may itself contain ':'.
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            guard let found = pod(fromPath: fields[2]) else { continue }
            if fields[0] == "0" && fields[1].isEmpty { return found }
            if v1 == nil { v1 = found }
        }
        return v1
    }

    /// The pod named by one cgroup path; nil unless it sits under a `kubepods` hierarchy.
    public static func pod(fromPath path: Substring) -> ProcessPod? {
        let segments = path.split(separator: "/")
        guard let podIndex = segments.firstIndex(where: { podUID(inSegment: $0) != nil }),
              let uid = podUID(inSegment: segments[podIndex]) else { return nil }
        // Only kubepods hierarchies (also kind's `kubelet-kubepods-…`): a stray `pod<uid>` elsewhere is not the kubelet's.
        let above = segments[..<podIndex]
        guard above.contains(where: { $0.contains("kubepods") }) || segments[podIndex].contains("kubepods") else { return nil }
        var qos = "guaranteed"
        for s in above + [segments[podIndex]] {
            if s.contains("burstable") { qos = "burstable" } else if s.contains("besteffort") { qos = "besteffort" }
        }
        let container = podIndex + 1 < segments.count ? containerID(inSegment: segments[podIndex + 1]) : nil
        return ProcessPod(podUID: uid, containerID: container, qosClass: qos)
    }

    /// `pod<uid>` (cgroupfs) or `kubepods[-qos]-pod<uid_>.slice` (systemd).
    static func podUID(inSegment s: Substring) -> String? {
        var body = s
        if body.hasSuffix(".slice") { body = body.dropLast(6) }
        guard let range = body.lastRange(of: "pod") else { return nil }
        // cgroupfs: the whole segment is `pod<uid>`; systemd: `…-pod<uid>`.
        guard range.lowerBound == body.startIndex || body[body.index(before: range.lowerBound)] == "-" else { return nil }
        return canonicalUID(body[range.upperBound...])
    }

    /// 8-4-4-4-12 hex with `-` or `_` separators → lower case with dashes.
    static func canonicalUID(_ s: Substring) -> String? {
        guard s.count == 36 else { return nil }
        var out = ""
        out.reserveCapacity(36)
        for (offset, ch) in s.enumerated() {
            if offset == 8 || offset == 13 || offset == 18 || offset == 23 {
                guard ch == "-" || ch == "_" else { return nil }
                out.append("-")
            } else {
                guard ch.isHexDigit else { return nil }
                out.append(contentsOf: ch.lowercased())
            }
        }
        return out
    }

    /// `cri-containerd-<id>.scope`, `crio-<id>.scope`, `docker-<id>.scope`, `cri-dockerd-<id>.scope` or a bare id
    /// (cgroupfs). `crio-conmon-<id>.scope` is CRI-O's monitor, not the container: `nil`.
    static func containerID(inSegment s: Substring) -> String? {
        var body = s
        if body.hasSuffix(".scope") { body = body.dropLast(6) }
        for prefix in ["cri-containerd-", "crio-", "docker-", "cri-dockerd-", "containerd-"] where body.hasPrefix(prefix) {
            body = body.dropFirst(prefix.count)
            break
        }
        guard body.count >= 12, body.count <= 128, body.allSatisfy({ $0.isHexDigit }) else { return nil }
        return body.lowercased()
    }
}

extension StringProtocol {
    func lastRange(of needle: String) -> Range<Index>? {
        let n = needle.count
        guard count >= n else { return nil }
        var i = index(endIndex, offsetBy: -n)
        while true {
            let end = index(i, offsetBy: n)
            if self[i..<end].elementsEqual(needle) { return i..<end }
            if i == startIndex { return nil }
            i = index(before: i)
        }
    }
}
