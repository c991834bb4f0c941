import DeviceSimulation
import Testing

/// `accel-simulator fleet`'s outages and values, which Benchmarks/adapter-chaos.sh recomputes in Python: the
/// formulas are pinned here with values worked out by hand.
@Suite struct FleetScheduleTests {
    @Test func noFlapPeriodMeansNobodyIsEverDown() {
        let schedule = FleetSchedule()
        #expect(!(0..<1000).contains { schedule.isDown(index: $0, time: 1_700_000_000.5) })
    }

    @Test(arguments: [0.1, 0.25, 0.5, 1.0])
    func aShareOfTheNodesIsDownInEachRound(fraction: Double) {
        let schedule = FleetSchedule(flapPeriod: 10, flapFraction: fraction)
        for round in 0..<6 {
            let time = 1_700_000_000 + Double(round) * 10 + 3
            let down = (0..<1000).filter { schedule.isDown(index: $0, time: time) }.count
            #expect(down == 1000 / schedule.every)
        }
    }

    @Test func eachNodeTakesItsTurn() {
        // every = 4; at t = 25 the round is 2: nodes with (i + 2) % 4 == 0 are down.
        let schedule = FleetSchedule(flapPeriod: 10, flapFraction: 0.25)
        #expect((0..<12).filter { schedule.isDown(index: $0, time: 25) } == [2, 6, 10])
        #expect((0..<12).filter { schedule.isDown(index: $0, time: 30) } == [1, 5, 9])
        // Over `every` rounds each node is down exactly once.
        for node in 0..<8 {
            #expect((0..<4).filter { schedule.isDown(index: node, time: Double($0) * 10) }.count == 1)
        }
    }

    @Test func valuesMoveEverySecondAndDifferBetweenPods() {
        let schedule = FleetSchedule(vary: true)
        // (3 * 7919 + 2 * 104729 + 100 * 31) % 1000 = (23757 + 209458 + 3100) % 1000 = 315
        #expect(schedule.podUtilization(index: 3, pod: 2, time: 100.9) == 0.315)
        #expect(schedule.podUtilization(index: 3, pod: 2, time: 101) == 0.346)
        #expect(schedule.podUtilization(index: 3, pod: 1, time: 100) != schedule.podUtilization(index: 3, pod: 2, time: 100))
        #expect(FleetSchedule().podUtilization(index: 3, pod: 2, time: 100) == 0.25)
    }
}
