import Accelerators
@testable import Attribution
import Testing

@Suite struct CgroupParsingTests {
    struct Shape: Sendable, CustomTestStringConvertible {
        var name: String
        var file: String
        var uid: String?
        var container: String?
        var qos: String?
        var testDescription: String { name }
    }

    static let id64 = "4f9a0c2e7d1b3a5c6e8f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f"
    static let uid = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"
    static let uidUnderscores = "6f1c2a3b_4d5e_4f60_8a7b_9c0d1e2f3a4b"

    static let shapes: [Shape] = [
        Shape(name: "containerd systemd v2 burstable",
              file: "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod\(uidUnderscores).slice/cri-containerd-\(id64).scope\n",
              uid: uid, container: id64, qos: "burstable"),
        Shape(name: "containerd systemd v2 guaranteed",
              file: "0::/kubepods.slice/kubepods-pod\(uidUnderscores).slice/cri-containerd-\(id64).scope\n",
              uid: uid, container: id64, qos: "guaranteed"),
        Shape(name: "CRI-O systemd v2 besteffort",
              file: "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod\(uidUnderscores).slice/crio-\(id64).scope\n",
              uid: uid, container: id64, qos: "besteffort"),
        Shape(name: "CRI-O conmon is in the pod but no container",
              file: "0::/kubepods.slice/kubepods-pod\(uidUnderscores).slice/crio-conmon-\(id64).scope\n",
              uid: uid, container: nil, qos: "guaranteed"),
        Shape(name: "Docker systemd v1",
              file: "11:memory:/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod\(uidUnderscores).slice/docker-\(id64).scope\n0::/\n",
              uid: uid, container: id64, qos: "besteffort"),
        Shape(name: "cgroupfs v1 with unified 0::/",
              file: "12:pids:/kubepods/burstable/pod\(uid)/\(id64)\n5:devices:/kubepods/burstable/pod\(uid)/\(id64)\n1:name=systemd:/kubepods/burstable/pod\(uid)/\(id64)\n0::/\n",
              uid: uid, container: id64, qos: "burstable"),
        Shape(name: "cgroupfs v2 guaranteed",
              file: "0::/kubepods/pod\(uid)/\(id64)\n", uid: uid, container: id64, qos: "guaranteed"),
        Shape(name: "v2 relative to the cgroup namespace",
              file: "0::/../../kubepods-burstable-pod\(uidUnderscores).slice/cri-containerd-\(id64).scope\n",
              uid: uid, container: id64, qos: "burstable"),
        Shape(name: "v2 relative, slice hierarchy kept",
              file: "0::/../../../kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod\(uidUnderscores).slice/cri-containerd-\(id64).scope\n",
              uid: uid, container: id64, qos: "besteffort"),
        Shape(name: "upper-case uid is canonicalised",
              file: "0::/kubepods/besteffort/pod\(uid.uppercased())/\(id64)\n", uid: uid, container: id64, qos: "besteffort"),
        Shape(name: "pod-level cgroup (no container segment)",
              file: "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod\(uidUnderscores).slice\n",
              uid: uid, container: nil, qos: "burstable"),
        Shape(name: "kind: nested kubelet slices",
              file: "0::/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod\(uidUnderscores).slice/cri-containerd-\(id64).scope\n",
              uid: uid, container: id64, qos: "besteffort"),
        Shape(name: "container with its own systemd (init.scope below the container)",
              file: "0::/kubepods.slice/kubepods-pod\(uidUnderscores).slice/cri-containerd-\(id64).scope/init.scope\n",
              uid: uid, container: id64, qos: "guaranteed"),
        Shape(name: "systemd init", file: "0::/init.scope\n", uid: nil, container: nil, qos: nil),
        Shape(name: "system service", file: "0::/system.slice/containerd.service\n", uid: nil, container: nil, qos: nil),
        Shape(name: "user session v1", file: "4:memory:/user.slice/user-1000.slice/session-2.scope\n0::/user.slice\n", uid: nil, container: nil, qos: nil),
        Shape(name: "pod-like name outside kubepods", file: "0::/system.slice/pod\(uid)/\(id64)\n", uid: nil, container: nil, qos: nil),
        Shape(name: "truncated uid", file: "0::/kubepods/besteffort/pod6f1c2a3b-4d5e-4f60-8a7b/\(id64)\n", uid: nil, container: nil, qos: nil),
        Shape(name: "namespace root only", file: "0::/\n", uid: nil, container: nil, qos: nil),
        Shape(name: "garbage", file: "not a cgroup file\n::\n\n", uid: nil, container: nil, qos: nil),
    ]

    @Test(arguments: shapes)
    func shape(_ s: Shape) {
        let pod = CgroupParser.pod(fromCgroupFile: s.file)
        #expect(pod?.podUID == s.uid)
        #expect(pod?.containerID == s.container)
        #expect(pod?.qosClass == s.qos)
    }

    @Test func theV2LineWinsOverV1() {
        let other = "0b7e5c1d-2f3a-4b5c-9d6e-7f8091a2b3c4"
        let file = "5:devices:/kubepods/besteffort/pod\(other)/\(Self.id64)\n0::/kubepods/burstable/pod\(Self.uid)/\(Self.id64)\n"
        let pod = CgroupParser.pod(fromCgroupFile: file)
        #expect(pod?.podUID == Self.uid)
    }
}

@Suite struct ProcessResolverTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var pid: Int32
        var uid: String?
        var container: String?
        var testDescription: String { "pid \(pid)" }
    }

    /// Tests/Fixtures/procfs/README.md lists the shape behind each PID.
    static let cases: [Case] = [
        Case(pid: 1001, uid: "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b", container: "4f9a0c2e7d1b3a5c6e8f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f"),
        Case(pid: 1002, uid: "0b7e5c1d-2f3a-4b5c-9d6e-7f8091a2b3c4", container: "a1b2c3d4e5f60718293a4b5c6d7e8f904f9a0c2e7d1b3a5c6e8f0a1b2c3d4e5f"),
        Case(pid: 1003, uid: "3c2b1a09-8f7e-4d6c-b5a4-93827160f5e4", container: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
        Case(pid: 1004, uid: "d4e5f607-1829-4a3b-8c5d-6e7f80912a3b", container: "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"),
        Case(pid: 1005, uid: "8a9b0c1d-2e3f-4051-9263-748596a7b8c9", container: "9d8c7b6a5f4e3d2c1b0a99887766554433221100ffeeddccbbaa998877665544"),
        Case(pid: 1006, uid: "3c2b1a09-8f7e-4d6c-b5a4-93827160f5e4", container: nil),
        Case(pid: 1007, uid: "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b", container: "1111222233334444555566667777888899990000aaaabbbbccccddddeeeeffff"),
        Case(pid: 1, uid: nil, container: nil),
        Case(pid: 812, uid: nil, container: nil),
        Case(pid: 4242, uid: nil, container: nil),
        Case(pid: 99999, uid: nil, container: nil),   // no such process
    ]

    @Test(arguments: cases)
    func fixtureTree(_ c: Case) {
        var resolver = ProcessPodResolver(procfs: fixtureProcfs())
        let pod = resolver.resolve(c.pid)
        #expect(pod?.podUID == c.uid)
        #expect(pod?.containerID == c.container)
    }

    @Test(arguments: [
        ("1 (systemd) S 0 1 1 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 7 1000 10", UInt64(7)),
        ("77 (a) b) c) R 1 77 77 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 123456789 0 0", UInt64(123_456_789)),
        ("5 (short) S 1 2 3", nil),
        ("no parenthesis at all", nil),
    ] as [(String, UInt64?)])
    func startTimeIsField22(line: String, expected: UInt64?) {
        let start = ProcessPodResolver.startTime(statLine: Array(line.utf8))
        #expect(start == expected)
    }

    @Test func aReusedPIDIsNotMisattributed() {
        let proc = TemporaryProcfs()
        let podA = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"
        let podB = "0b7e5c1d-2f3a-4b5c-9d6e-7f8091a2b3c4"
        let id = String(repeating: "ab", count: 32)
        proc.writeProcess(4711, cgroup: "0::/kubepods/besteffort/pod\(podA)/\(id)\n", start: 1000)
        var resolver = ProcessPodResolver(procfs: proc.root)
        let first = resolver.resolve(4711)
        #expect(first?.podUID == podA)

        // Same start time: served from the cache even if the cgroup file changed (it cannot, for one process).
        proc.writeProcess(4711, cgroup: "0::/kubepods/besteffort/pod\(podB)/\(id)\n", start: 1000)
        let cached = resolver.resolve(4711)
        #expect(cached?.podUID == podA)

        // The PID now belongs to a new process (new start time): re-read.
        proc.writeProcess(4711, cgroup: "0::/kubepods/besteffort/pod\(podB)/\(id)\n", start: 2000)
        let reused = resolver.resolve(4711)
        #expect(reused?.podUID == podB)

        // Reused by a system process: no pod at all.
        proc.writeProcess(4711, cgroup: "0::/system.slice/sshd.service\n", start: 3000)
        let system = resolver.resolve(4711)
        #expect(system == nil)
    }

    @Test func theCacheKeepsOnlyLivePIDs() {
        var resolver = ProcessPodResolver(procfs: fixtureProcfs())
        let first = resolver.resolve([1001, 1002, 1003, 812])
        #expect(first.count == 3)
        let cachedAfterFirst = resolver.cachedCount
        #expect(cachedAfterFirst == 4)
        let second = resolver.resolve([1001])
        #expect(second.keys.sorted() == [1001])
        let cachedAfterSecond = resolver.cachedCount
        #expect(cachedAfterSecond == 1)
    }
}
