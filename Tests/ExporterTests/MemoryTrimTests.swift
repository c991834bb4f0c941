@testable import Exporter
import Testing

@Suite struct MemoryTrimTests {
    @Test(arguments: [
        ("7f0000000000-7f0000010000 r-xp 00000000 08:01 1234 /usr/lib/libc.so.6\n", true),
        ("7f0000000000-7f0000010000 r--p 00001000 08:01 1234 /usr/bin/accel exporter\n", true),
        ("7f0000000000-7f0000010000 rw-p 00000000 08:01 1234 /usr/lib/libc.so.6\n", false),
        ("7f0000000000-7f0000010000 r--s 00000000 08:01 1234 /dev/shm/x\n", false),
        ("7f0000000000-7f0000010000 r--p 00000000 00:00 0 [vvar]\n", false),
        ("7f0000000000-7f0000010000 rw-p 00000000 00:00 0\n", false),
    ])
    func onlyReadOnlyPrivateFileMappings(line: String, expected: Bool) throws {
        let mapping = try #require(MemoryTrim.Mapping(line))
        #expect(mapping.isReadOnlyPrivateFile == expected)
        #expect(mapping.end - mapping.start == 0x10000)
    }

    @Test func pathsWithSpacesSurvive() throws {
        let mapping = try #require(MemoryTrim.Mapping("1000-2000 r-xp 0 0:0 1 /opt/my app/bin\n"))
        #expect(mapping.path == "/opt/my app/bin")
    }

    @Test func garbageIsNotAMapping() {
        #expect(MemoryTrim.Mapping("") == nil)
        #expect(MemoryTrim.Mapping("zz-10 r-xp 0 0:0 1 /x") == nil)
        #expect(MemoryTrim.Mapping("2000-1000 r-xp 0 0:0 1 /x") == nil)
    }

    @Test func advisingOurselvesKeepsTheProcessWorking() {
        // The running test process: the kernel accepts the advice (Linux 5.4+) and the code still runs after it.
        let accepted = MemoryTrim.pageOutReadOnlyFileMappings()
        #expect(accepted > 0)
        #expect([3, 1, 2].sorted() == [1, 2, 3])
    }
}
