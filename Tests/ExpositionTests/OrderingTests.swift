import Exposition
import Testing

@Suite("Deterministic ordering")
struct OrderingTests {
    @Test("families are sorted by name, each with its metadata once before its samples")
    func familiesSortedByName() {
        let families = ["zeta", "alpha", "mid_b", "mid_a"].map { name in
            MetricFamily(
                name: name, help: "h", kind: .gauge,
                samples: [Sample(labels: [Label("i", "1")], value: 1), Sample(labels: [Label("i", "0")], value: 0)])
        }
        let lines = render(families, .text).split(separator: "\n")
        let typeLines = lines.filter { $0.hasPrefix("# TYPE") }
        #expect(typeLines == ["# TYPE alpha gauge", "# TYPE mid_a gauge", "# TYPE mid_b gauge", "# TYPE zeta gauge"])
        #expect(lines.filter { $0.hasPrefix("# HELP") }.count == 4)
        #expect(Array(lines[0...3]) == ["# HELP alpha h", "# TYPE alpha gauge", "alpha{i=\"0\"} 0", "alpha{i=\"1\"} 1"])
    }

    @Test("samples sort by label pairs, name then value, element by element; a prefix sorts first")
    func samplesSortedByLabelPairs() {
        let given: [[Label]] = [
            [Label("gpu", "2")],
            [Label("gpu", "10")],
            [Label("gpu", "1"), Label("mode", "x")],
            [Label("b", "a")],
            [Label("gpu", "1")],
            [Label("a", "z")],
            [],
        ]
        let family = MetricFamily(
            name: "m", help: "h", kind: .gauge, samples: given.map { Sample(labels: $0, value: 1) })
        let samples = render([family], .text).split(separator: "\n").dropFirst(2)
        #expect(
            Array(samples) == [
                "m 1", "m{a=\"z\"} 1", "m{b=\"a\"} 1", "m{gpu=\"1\"} 1", "m{gpu=\"1\",mode=\"x\"} 1",
                "m{gpu=\"10\"} 1", "m{gpu=\"2\"} 1",
            ])
    }

    @Test("output does not depend on input order", arguments: ExpositionFormat.allCases)
    func inputOrderIndependent(_ format: ExpositionFormat) {
        let reversed = richFamilies.reversed().map { family in
            var family = family
            family.samples.reverse()
            return family
        }
        #expect(render(reversed, format) == render(richFamilies, format))
    }

    @Test("the input is not modified and the buffer is appended to, not replaced")
    func inputUntouchedAndBufferAppended() {
        let families = richFamilies.reversed() as [MetricFamily]
        let snapshot = families
        var buffer = Array("prefix\n".utf8)
        ExpositionEncoder.encode(families, format: .openMetrics, into: &buffer)
        #expect(families == snapshot)
        #expect(buffer.starts(with: Array("prefix\n# HELP accelerator ".utf8)))

        // The reuse pattern the HTTP handler follows: same bytes after clearing with capacity kept.
        let first = buffer
        buffer.removeAll(keepingCapacity: true)
        buffer.append(contentsOf: "prefix\n".utf8)
        ExpositionEncoder.encode(families, format: .openMetrics, into: &buffer)
        #expect(buffer == first)
    }

    @Test("ten thousand series come out in label order")
    func manySeries() {
        let pairs = (0..<10_000).map { (gpu: String($0 / 100), core: String($0 % 100), value: $0) }
        let family = MetricFamily(
            name: "accelerator_core_clock_hertz", help: "Clock.", kind: .gauge,
            samples: pairs.reversed().map { Sample(labels: [Label("gpu", $0.gpu), Label("core", $0.core)], value: Double($0.value)) })
        let expected = pairs.sorted { ($0.gpu, $0.core) < ($1.gpu, $1.core) }.map {
            "accelerator_core_clock_hertz{gpu=\"\($0.gpu)\",core=\"\($0.core)\"} \($0.value)"
        }
        let lines = render([family], .text).split(separator: "\n").dropFirst(2).map(String.init)
        #expect(lines == expected)
    }
}
