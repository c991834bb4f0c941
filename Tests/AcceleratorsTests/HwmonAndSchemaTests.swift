@testable import Accelerators
import Exposition
import Testing

@Suite struct HwmonMappingTests {
    @Test(arguments: [(0x0300, "0000:03:00.0"), (0x0001_e508, "0001:e5:01.0"), (0xc400 | 0x3, "0000:c4:00.3")])
    func pciAddressFromLibsensorsAddr(addr: Int32, expected: String) {
        #expect(HwmonSource.pciAddress(addr) == expected)
    }

    @Test(arguments: [("edge", "edge"), ("junction", "junction"), ("mem", "memory"), ("PPT", "ppt"), ("Composite Temp", "composite_temp"), ("", "unknown"), ("a--b", "a_b")])
    func sensorLabels(raw: String, expected: String) {
        #expect(HwmonSource.sensorLabel(raw) == expected)
    }

    @Test func hwmonOverlayTakesTheFirstPowerChannelAndCap() {
        var readings = ChipReadings()
        readings.temperatures = [("mem", 40)]
        readings.power = [("PPT", 300, 750), ("fastPPT", 999, nil)]
        readings.energy = [("energy1", 12345)]
        var sample = DeviceSample(identity: DeviceIdentity(accelerator: "a", vendor: "amd", model: "m"))
        sample.powerWatts = 1
        readings.apply(to: &sample)
        #expect(sample.temperatureCelsius == ["memory": 40])
        #expect(sample.powerWatts == 300)
        #expect(sample.powerLimitWatts == 750)
        #expect(sample.energyJoules == 12345)
    }
}

@Suite struct SchemaTests {
    func device(up: Bool = true) -> DeviceSample {
        var d = DeviceSample(identity: DeviceIdentity(accelerator: "u1", vendor: "amd", model: "MI300X", pciAddress: "0000:03:00.0",
                                                      info: [("pci_bus_id", "0000:03:00.0"), ("driver", "amdgpu"), ("node", "n"), ("vbios", "v"), ("serial", "s")]),
                             up: up)
        d.utilizationRatio = 0.5
        d.temperatureCelsius = ["junction": 70, "edge": 50]
        d.energyJoules = 10
        d.interconnectBytes[.init(link: "xgmi0", direction: "rx")] = 5
        return d
    }

    @Test func everySeriesCarriesIdentityAndStaysWithinTheLabelBudget() {
        let families = Schema.families(for: [device()])
        #expect(!families.isEmpty)
        for f in families {
            for s in f.samples {
                #expect(s.labels.count <= 8, "\(f.name) has \(s.labels.count) labels")
                #expect(Array(s.labels.prefix(3).map(\.name)) == ["accelerator", "vendor", "model"])
            }
        }
        let names = Set(families.map(\.name))
        #expect(names == ["accelerator", "accelerator_up", "accelerator_utilization_ratio", "accelerator_temperature_celsius",
                          "accelerator_energy_joules", "accelerator_interconnect_bytes"])
        #expect(families.first { $0.name == "accelerator_energy_joules" }?.kind == .counter)
        #expect(families.first { $0.name == "accelerator" }?.kind == .info)
    }

    @Test func aDownDeviceShowsOnlyInfoAndUpZero() {
        let families = Schema.families(for: [device(up: false)])
        #expect(families.map(\.name) == ["accelerator", "accelerator_up"])
        #expect(families.last?.samples.first?.value == 0)
    }

    @Test func staticFactsOnlyOnInfo() {
        for f in Schema.families(for: [device()]) where f.name != "accelerator" {
            for s in f.samples { #expect(!s.labels.contains { ["driver", "serial", "vbios", "node"].contains($0.name) }) }
        }
    }

    /// Every series of a device carries the four identity labels, `pci_bus_id` (the conformance suite's device
    /// key) included, once; info facts never repeat them.
    @Test func everySeriesCarriesThePCIBusID() {
        var sample = device()
        sample.identity.pciAddress = "0000:05:00.0"
        sample.identity.info = [("pci_bus_id", "0000:05:00.0"), ("driver", "amdgpu")]
        for f in Schema.families(for: [sample]) {
            for s in f.samples {
                #expect(Array(s.labels.prefix(4).map(\.name)) == ["accelerator", "vendor", "model", "pci_bus_id"], "\(f.name)")
                #expect(s.labels.filter { $0.name == "pci_bus_id" }.map(\.value) == ["0000:05:00.0"], "\(f.name)")
            }
        }
    }
}
