import AccelMetricsTesting
import ConfigYAML
@testable import AdapterStore
import CustomMetricsAPI
import Foundation
import Testing

@Suite struct MetricsConfigTests {
    func load(_ yaml: String) throws -> MetricsConfig {
        try MetricsConfig(try YAMLDocument.parse(Array(yaml.utf8)))
    }

    @Test func aFullEntry() throws {
        let config = try load("""
            builtins: false
            metrics:
              - name: gpu_sm_clock_hertz
                series: accelerator_clock_hertz
                selector: clock=sm
                aggregation: max
                per_accelerator: avg
                namespace_total: sum
                scale: 0.5
                resources: [pods, nodes]
            """)
        #expect(!config.keepBuiltIns)
        #expect(config.definitions.map(\.name) == ["gpu_sm_clock_hertz"])
        let definition = try #require(config.metrics.first)
        #expect(definition.expression == .series(SeriesSpec(family: "accelerator_clock_hertz", selector: try LabelSelector(parsing: "clock=sm"))))
        #expect(definition.across == .max)
        #expect(definition.perAccelerator == .avg)
        #expect(definition.namespaceTotal == .sum)
        #expect(definition.scale == 0.5)
        #expect(definition.resources == [.pods, .nodes])
    }

    @Test func builtInsStayByDefaultAndCanBeOverridden() throws {
        let config = try load("""
            metrics:
              - {name: gpu_power_watts, series: accelerator_power_watts, aggregation: max}
            """)
        #expect(config.definitions.count == MetricDefinition.builtIn.count)
        #expect(config.definitions.first { $0.name == "gpu_power_watts" }?.across == .max)
        // JSON is YAML too; an empty file is no configuration.
        #expect(try load(#"{"metrics": []}"#).definitions.count == MetricDefinition.builtIn.count)
        #expect(try load("").definitions.count == MetricDefinition.builtIn.count)
    }

    @Test(arguments: [
        ("metrics: [{series: a, aggregation: avg}]", "metrics[0].name: is required"),
        ("metrics: [{name: x, aggregation: avg}]", "metrics[0].series: is required"),
        ("metrics: [{name: x, series: a}]", "metrics[0].aggregation: is required (avg, max or sum)"),
        ("metrics: [{name: x, series: a, aggregation: median}]", "metrics[0].aggregation: \"median\" is not one of avg, max, sum"),
        ("metrics: [{name: x, series: a, aggregaton: avg}]", "metrics[0].aggregaton: unknown key (expected name, series, selector, aggregation, per_accelerator, namespace_total, scale, resources)"),
        ("metrics: [{name: X-Y, series: a, aggregation: avg}]", "metrics[0].name: \"X-Y\" is not a valid metric name ([a-z_][a-z0-9_]*)"),
        ("metrics: [{name: x, series: 'a b', aggregation: avg}]", "metrics[0].series: \"a b\" is not a Prometheus metric name"),
        ("metrics: [{name: x, series: a, aggregation: avg, selector: 'a in ('}]", "metrics[0].selector: invalid label selector \"a in (\": "),
        ("metrics: [{name: x, series: a, aggregation: avg, scale: 0}]", "metrics[0].scale: must be a finite, non-zero number, not \"0\""),
        ("metrics: [{name: x, series: a, aggregation: avg, resources: [pods, deployments]}]", "metrics[0].resources[1]: \"deployments\" is not one of pods, nodes, namespaces, external"),
        ("metrics: [{name: x, series: a, aggregation: avg}, {name: x, series: b, aggregation: sum}]", "metrics[1].name: \"x\" is defined twice"),
        ("builtins: maybe", "builtins: must be true or false, not \"maybe\""),
        ("metric: []", "metric: unknown key (expected builtins or metrics)"),
        ("- a\n- b", "the configuration must be a map with a \"metrics\" list"),
        ("metrics: {a: 1}", "metrics: must be a list"),
    ])
    func errorsNameTheirPlace(yaml: String, message: String) {
        do {
            _ = try load(yaml)
            Issue.record("accepted: \(yaml)")
        } catch let error as ConfigError {
            #expect(error.description.hasPrefix(message), "\(error)")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }
}
