import DeviceSimulation
import AccelMetricsTesting
import FakeRPCServers
import Foundation
import Testing

/// The Kubernetes AI conformance suite's accelerator-metrics decision rules (KAR-0059), re-stated from
/// shared/reference/inference-and-conformance.md ("How the suite's automated tests decide"), never its code.
struct ConformanceRules {
    /// A sample counts only when it carries one of these label keys with a non-empty value.
    static let deviceLabels: Set<String> = ["gpu", "UUID", "uuid", "device_id", "dev_id", "card_id", "GPU_I_ID", "minor_number", "pci_bus_id"]
    static let memoryWords = ["fb_used", "mem_used", "memory_used", "vram_used", "hbm_used"]
    static let temperatureWords = ["temp", "temperature"]
    static let powerWords = ["power", "watt", "energy"]
    static let interconnectWords = ["nvlink", "pcie_tx", "pcie_rx", "bandwidth", "xgmi"]

    struct Verdict: CustomStringConvertible {
        var utilization: [String] = []
        var memory: [String] = []
        var temperature: [String] = []
        var power: [String] = []
        var interconnect: [String] = []
        /// MUST: per-accelerator utilization and memory usage.
        var passesMust: Bool { !utilization.isEmpty && !memory.isEmpty }
        var description: String {
            "utilization \(utilization.count), memory \(memory.count), temperature \(temperature.count), power \(power.count), interconnect \(interconnect.count)"
        }
    }

    /// Line by line as the suite reads text format: comments and blank lines skipped, the name up to `{` or a
    /// space, label values unquoted, the value the first field after the labels, NaN dropped, empty labels ignored.
    static func judge(_ exposition: String) -> Verdict {
        var verdict = Verdict()
        for raw in exposition.split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            guard !line.isEmpty, !line.hasPrefix("#") else { continue }
            guard let sample = parse(line), !sample.value.isNaN else { continue }
            guard sample.labels.contains(where: { deviceLabels.contains($0.key) && !$0.value.isEmpty }) else { continue }
            let name = sample.name.lowercased()
            if name.contains("util") { verdict.utilization.append(sample.name) }
            if memoryWords.contains(where: name.contains) { verdict.memory.append(sample.name) }
            if temperatureWords.contains(where: name.contains) { verdict.temperature.append(sample.name) }
            if powerWords.contains(where: name.contains) { verdict.power.append(sample.name) }
            if interconnectWords.contains(where: name.contains) { verdict.interconnect.append(sample.name) }
        }
        return verdict
    }

    static func parse(_ line: String) -> (name: String, labels: [String: String], value: Double)? {
        var labels: [String: String] = [:]
        let name: Substring
        var rest: Substring
        if let brace = line.firstIndex(of: "{"), line.firstIndex(of: " ").map({ brace < $0 }) ?? true {
            name = line[..<brace]
            rest = line[line.index(after: brace)...]
            while let equals = rest.firstIndex(of: "=") {
                let key = rest[..<equals].trimmingCharacters(in: CharacterSet(charactersIn: ", "))
                rest = rest[rest.index(after: equals)...]
                guard rest.first == "\"" else { return nil }
                rest = rest.dropFirst()
                var value = ""
                var escaped = false
                while let c = rest.first {
                    rest = rest.dropFirst()
                    if escaped { value.append(c == "n" ? "\n" : c); escaped = false } else if c == "\\" { escaped = true } else if c == "\"" { break } else { value.append(c) }
                }
                labels[key] = value
                rest = rest.drop { $0 == "," || $0 == " " }
                if rest.first == "}" { rest = rest.dropFirst(); break }
            }
        } else {
            guard let space = line.firstIndex(of: " ") else { return nil }
            name = line[..<space]
            rest = line[space...]
        }
        guard let field = rest.split(separator: " ").first, let value = Double(field) ?? (field == "+Inf" ? .infinity : field == "-Inf" ? -.infinity : nil) else { return nil }
        return (String(name), labels, value)
    }
}

/// Every fixture node, run through the real binary with no flags beyond what points it at its fixtures, passes the
/// suite's MUST checks, and its SHOULD checks wherever that hardware gives the reading; every series keeps the
/// 8-label budget.
@Suite("AI conformance rules on every fixture node", .serialized, .enabled(if: ExporterProcess.umockdevAvailable))
struct ConformanceTests {
    struct Expectation: Sendable, CustomStringConvertible {
        var node: String
        var temperature: Bool
        var power: Bool
        var interconnect: Bool
        var description: String { node }
    }

    /// What each node's hardware gives beyond the MUSTs (Arc A770 on i915 has no temperature sensor; Intel, Gaudi
    /// and TPU report no interconnect or PCIe traffic through the interfaces we read; TPUs report no power).
    static let nodes: [Expectation] = [
        .init(node: "mi300x-8", temperature: true, power: true, interconnect: true),
        .init(node: "mi325x-8", temperature: true, power: true, interconnect: true),
        .init(node: "mi355x-8", temperature: true, power: true, interconnect: true),
        .init(node: "nvml-h100x8", temperature: true, power: true, interconnect: true),
        .init(node: "nvml-a100-mig", temperature: true, power: true, interconnect: true),
        .init(node: "arc-a770", temperature: false, power: true, interconnect: false),
        .init(node: "max-1550", temperature: true, power: true, interconnect: false),
        .init(node: "bmg-b580", temperature: true, power: true, interconnect: false),
        .init(node: "gaudi2-8", temperature: true, power: true, interconnect: false),
        .init(node: "gaudi3-8", temperature: true, power: true, interconnect: false),
        .init(node: "tpu-v5e-8", temperature: false, power: false, interconnect: false),
    ]

    @Test("the suite's rules hold", .tags(.endToEnd), .endToEndEnabled, arguments: nodes)
    func suiteRulesHold(expectation: Expectation) async throws {
        let text = try await Self.metrics(expectation.node)
        let verdict = ConformanceRules.judge(text)
        #expect(verdict.passesMust, "\(expectation.node): \(verdict)")
        #expect(!verdict.temperature.isEmpty == expectation.temperature, "\(expectation.node) temperature: \(verdict)")
        #expect(!verdict.power.isEmpty == expectation.power, "\(expectation.node) power: \(verdict)")
        #expect(!verdict.interconnect.isEmpty == expectation.interconnect, "\(expectation.node) interconnect: \(verdict)")
        if expectation.node.hasPrefix("nvml-") {
            // NVLink itself, not only PCIe: from GPM on the H100s, from the links' counters on the A100s.
            #expect(verdict.interconnect.contains("accelerator_interconnect_bandwidth_bytes_per_second"), "\(expectation.node): NVLink bandwidth")
        }
        // Every device series carries pci_bus_id (the suite's key), and no series goes over 8 labels.
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let sample = ConformanceRules.parse(String(line)) else { continue }
            #expect(sample.labels.count <= 8, "\(expectation.node): \(line)")
            if sample.labels["accelerator"] != nil {
                #expect(!(sample.labels["pci_bus_id"] ?? "").isEmpty, "\(expectation.node): no pci_bus_id on \(line)")
            }
        }
    }

    @Test("the rules themselves: a sample without a device label, an empty one or NaN does not count")
    func rulesAreTheSuites() {
        let verdict = ConformanceRules.judge("""
            # HELP x_utilization a
            gpu_utilization{accelerator="a"} 1
            dcgm_fb_used{gpu=""} 5
            mem_used{uuid="u"} NaN
            DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-1"} 40
            hbm_used_bytes{pci_bus_id="0000:01:00.0",model="x"} 7

            """)
        #expect(verdict.utilization == ["DCGM_FI_DEV_GPU_UTIL"])
        #expect(verdict.memory == ["hbm_used_bytes"])
        #expect(!ConformanceRules.judge("accelerator_utilization_ratio{accelerator=\"a\",vendor=\"amd\"} 0.5\n").passesMust)
        // XGMI byte counters alone do not count (no rule word in accelerator_interconnect_bytes_total); their rate
        // family does: a card with XGMI and no PCIe figure (an MI300A, or firmware without PCIe metrics) is found.
        let xgmiOnly = "accelerator_interconnect_bytes_total{accelerator=\"a\",pci_bus_id=\"0000:05:00.0\",link=\"xgmi0\",direction=\"rx\"} 1024\n"
        #expect(ConformanceRules.judge(xgmiOnly).interconnect.isEmpty)
        let rate = "accelerator_interconnect_bandwidth_bytes_per_second{accelerator=\"a\",pci_bus_id=\"0000:05:00.0\",link=\"xgmi0\",direction=\"rx\"} 0\n"
        #expect(ConformanceRules.judge(xgmiOnly + rate).interconnect == ["accelerator_interconnect_bandwidth_bytes_per_second"])
    }

    /// The node's /metrics once its values are in (two ticks where rates need them).
    static func metrics(_ node: String) async throws -> String {
        switch node {
        case "mi300x-8", "mi325x-8", "mi355x-8":
            let exporter = try ExporterProcess(tree: FixtureNodes.tree(named: node)!)
            defer { exporter.stop() }
            return try exporter.waitForMetrics {
                $0.contains("accelerator_pcie_bandwidth_bytes_per_second{") && $0.contains("accelerator_interconnect_bandwidth_bytes_per_second{")
            }
        case "nvml-h100x8", "nvml-a100-mig":
            let name = String(node.dropFirst("nvml-".count))
            let machine = try NVIDIATests.Machine(name)
            let exporter = try NVIDIATests.exporter(machine)
            defer { exporter.stop() }
            let settled = NVIDIATests.settled(name)
            return try exporter.waitForMetrics {
                $0.contains("accelerator_memory_used_bytes{") && $0.contains("accelerator_utilization_ratio{") && settled($0)
            }
        case "arc-a770", "max-1550", "bmg-b580", "gaudi2-8", "gaudi3-8":
            let (exporter, proc) = try IntelGaudiEndToEndTests.start(node)
            defer { exporter.stop(); try? FileManager.default.removeItem(at: proc) }
            return try IntelGaudiEndToEndTests.settled(exporter, node)
        case "tpu-v5e-8":
            let fake = FakeLibTPU()
            fake.set { $0.metrics = tpuWorkload(devices: 8, step: 0) }
            try await fake.start()
            let result = Result {
                let exporter = try TPUEndToEndTests.start(node, runtime: fake.address)
                defer { exporter.stop() }
                return try exporter.waitForMetrics { $0.contains("accelerator_memory_used_bytes{") && $0.contains("accelerator_utilization_ratio{") }
            }
            await fake.stop()
            return try result.get()
        default:
            throw HarnessError("no fixture node \(node)")
        }
    }
}
