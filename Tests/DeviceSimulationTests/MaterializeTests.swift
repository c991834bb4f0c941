import AccelMetricsTesting
import DeviceSimulation
import Foundation
import Testing

/// Fixture trees written out as the kernel lays out sysfs, and a live testbed rewritten with only what changed.
@Suite struct MaterializeTests {
    static let card = FixtureDevice(
        path: "/devices/pci0000:00/0000:03:00.0",
        properties: [("SUBSYSTEM", "pci"), ("DRIVER", "amdgpu"), ("PCI_SLOT_NAME", "0000:03:00.0")],
        attributes: ["vendor": .text("0x1002\n"), "gpu_metrics": .binary([0x00, 0xFF, 0x0A]), "gt/gt0/act_freq": .text("1200\n")],
        links: ["driver": "../../../bus/pci/drivers/amdgpu"])

    @Test func aTreeBecomesFilesDirectoriesAndLinks() throws {
        let directory = TemporaryDirectory(prefix: "accel-materialize")
        defer { directory.remove() }
        try FixtureTree(devices: [Self.card]).materialize(at: directory.path)
        let dir = directory.path + Self.card.path
        #expect(try String(contentsOfFile: dir + "/uevent", encoding: .utf8) == "SUBSYSTEM=pci\nDRIVER=amdgpu\nPCI_SLOT_NAME=0000:03:00.0\n")
        #expect(try String(contentsOfFile: dir + "/vendor", encoding: .utf8) == "0x1002\n")
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/gpu_metrics"))) == [0x00, 0xFF, 0x0A])
        #expect(try String(contentsOfFile: dir + "/gt/gt0/act_freq", encoding: .utf8) == "1200\n")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: dir + "/driver") == "../../../bus/pci/drivers/amdgpu")
        // A PCI device is also listed under bus/pci/devices, and the link resolves to it.
        let bus = directory.path + "/bus/pci/devices/0000:03:00.0"
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: bus) == "../../.." + Self.card.path)
        #expect(try String(contentsOfFile: bus + "/vendor", encoding: .utf8) == "0x1002\n")
        // Writing it again over itself is fine (links are replaced, not duplicated).
        try FixtureTree(devices: [Self.card]).materialize(at: directory.path)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.contains(".tmp-") }
        #expect(leftovers.isEmpty)
    }

    @Test func aLiveTestbedIsRewrittenWithOnlyWhatChanged() throws {
        let directory = TemporaryDirectory(prefix: "accel-testbed")
        defer { directory.remove() }
        var tree = FixtureTree(devices: [Self.card], files: ["class/drm/version": "1\n"])
        try FileManager.default.createDirectory(atPath: directory.path("sys" + Self.card.path + "/gt/gt0"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: directory.path("sys/class/drm"), withIntermediateDirectories: true)
        var writer = TestbedWriter(root: directory.path)
        #expect(try writer.update(tree) == 4)
        #expect(try writer.update(tree) == 0)
        tree.devices[0].attributes["vendor"] = .text("0x10de\n")
        #expect(try writer.update(tree) == 1)
        #expect(try String(contentsOfFile: directory.path("sys" + Self.card.path + "/vendor"), encoding: .utf8) == "0x10de\n")
        #expect(try String(contentsOfFile: directory.path("sys/class/drm/version"), encoding: .utf8) == "1\n")
    }

    @Test func aWriteThatCannotHappenSaysWhereAndWhy() {
        #expect {
            try TestbedWriter.writeAtomically("/nonexistent-dir-\(getpid())/file", [1])
        } throws: { error in
            let error = error as? TestbedWriter.WriteError
            return error?.errno == ENOENT && error?.description.contains("No such file or directory") == true
        }
    }
}
