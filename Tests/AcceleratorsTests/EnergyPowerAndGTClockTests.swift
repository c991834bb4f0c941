@testable import Accelerators
import Exposition
import Testing

@Suite struct EnergyPowerTests {
    static func at(_ seconds: Double) -> MonotonicInstant { MonotonicInstant(nanoseconds: UInt64(seconds * 1e9)) }

    @Test func wattsAreTheEnergyDeltaOverTime() {
        var p = EnergyPower()
        #expect(p.watts(chip: "i915", joules: 1000, at: Self.at(10)) == nil)  // first reading: no interval
        #expect(p.watts(chip: "i915", joules: 1150, at: Self.at(11)) == 150)
        #expect(p.watts(chip: "i915", joules: 1450, at: Self.at(13)) == 150)
        // Chips are independent.
        #expect(p.watts(chip: "xe", joules: 5, at: Self.at(13)) == nil)
    }

    @Test func backwardsCountersAndTinyIntervalsGiveNothing() {
        var p = EnergyPower()
        _ = p.watts(chip: "c", joules: 1000, at: Self.at(10))
        #expect(p.watts(chip: "c", joules: 10, at: Self.at(11)) == nil)     // driver reloaded: counter restarted
        #expect(p.watts(chip: "c", joules: 20, at: Self.at(12)) == 10)      // and counts again from there
        #expect(p.watts(chip: "c", joules: 30, at: Self.at(12.0001)) == nil)  // 0.1 ms apart
        #expect(p.watts(chip: "c", joules: 1e12, at: Self.at(14)) == nil)    // 500 GW is garbage
    }

    @Test func forgottenChipsStartOver() {
        var p = EnergyPower()
        _ = p.watts(chip: "a", joules: 1, at: Self.at(1))
        _ = p.watts(chip: "b", joules: 1, at: Self.at(1))
        p.keep(only: ["b"])
        #expect(p.watts(chip: "a", joules: 2, at: Self.at(2)) == nil)
        #expect(p.watts(chip: "b", joules: 2, at: Self.at(2)) == 1)
    }

    @Test func derivedPowerOnlyWhenTheChipHasNoPowerReading() {
        var readings = ChipReadings()
        readings.power = [("card", nil, 190), ("pkg", nil, 150)]
        readings.energy = [("card", 123_456.789)]
        readings.derivedPowerWatts = 42
        var sample = DeviceSample(identity: DeviceIdentity(accelerator: "a", vendor: "intel", model: "m"))
        readings.apply(to: &sample)
        #expect(sample.powerWatts == 42)
        #expect(sample.powerLimitWatts == 190)
        #expect(sample.energyJoules == 123_456.789)
        // A chip with its own power input keeps it.
        readings.power = [("PPT", 300, nil)]
        var amd = DeviceSample(identity: DeviceIdentity(accelerator: "b", vendor: "amd", model: "m"))
        readings.apply(to: &amd)
        #expect(amd.powerWatts == 300)
    }

    @Test(arguments: [("pkg", "package"), ("vram", "memory"), ("card", "card"), ("Package id 0", "package_id_0")])
    func xeSensorLabels(raw: String, expected: String) {
        #expect(HwmonSource.sensorLabel(raw) == expected)
    }
}

@Suite struct GTClockSchemaTests {
    @Test func perGTClocksCarryAGTLabelWithinTheBudget() throws {
        var d = DeviceSample(identity: DeviceIdentity(accelerator: "0000:29:00.0", vendor: "intel", model: "Data Center GPU Max 1550"))
        d.gtClockHertz[.init(clock: "graphics", gt: "gt1")] = 1.55e9
        d.gtClockHertz[.init(clock: "graphics", gt: "gt0")] = 1.6e9
        d.gtClockHertz[.init(clock: "graphics_requested", gt: "gt0")] = 1.6e9
        let family = try #require(Schema.families(for: [d]).first { $0.name == "accelerator_clock_hertz" })
        #expect(family.samples.count == 3)
        for sample in family.samples {
            #expect(sample.labels.count <= 8)
            #expect(sample.labels.map(\.name) == ["accelerator", "vendor", "model", "clock", "gt"])
        }
        #expect(family.samples.map { $0.labels.last!.value } == ["gt0", "gt1", "gt0"])
        #expect(family.samples.map(\.value) == [1.6e9, 1.55e9, 1.6e9])
    }
}
