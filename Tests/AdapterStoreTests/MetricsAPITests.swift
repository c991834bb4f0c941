import AccelMetricsTesting
@testable import AdapterStore
import CustomMetricsAPI
import Foundation
import Testing

/// The adapter's answers from a store holding one node, checked against values worked out by hand from the raw
/// readings in `node` (comments show the arithmetic).
@Suite struct MetricsAPITests {
    static let sampleTime = FakeNode.referenceSampleTime
    static let sampleStamp = "2027-01-15T08:00:00Z"

    static let node = FakeNode.reference

    static let podLabels = StaticPodLabels([
        PodKey(namespace: "ml", name: "train-0"): ["app": "train"],
        PodKey(namespace: "ml", name: "infer-0"): ["app": "infer", "tier": "gold"],
        PodKey(namespace: "ml", name: "infer-1"): ["app": "infer"],
        PodKey(namespace: "other", name: "job-0"): ["app": "job"],
    ])

    let clock = TestClock(MetricsAPITests.sampleTime + 1)
    let api: MetricsAPI

    init() throws {
        let clock = self.clock
        let store = MetricStore(maxAgeSeconds: 10, clock: { clock.now })
        let catalog = MetricCatalog(MetricDefinition.builtIn)
        store.update(try Self.node.targetData(target: "10.0.0.1:9445", catalog: catalog, scrapeTime: 0))
        api = MetricsAPI(store: store, catalog: catalog, podLabels: Self.podLabels)
    }

    func custom(
        _ metric: String, _ resource: GroupResource, namespace: String?, _ objects: ObjectSelection,
        metricSelector: String = "", version: MetricsAPIVersion = .v1beta2
    ) throws -> [String: String] {
        let request = CustomMetricRequest(
            version: version, namespace: namespace, resource: resource, objects: objects, metricName: metric,
            metricSelector: try LabelSelector(parsing: metricSelector))
        let list = try api.answer(request)
        var out: [String: String] = [:]
        for item in list.items {
            #expect(item.metricName == metric)
            #expect(RFC3339.string(from: item.timestamp) == Self.sampleStamp)
            out[item.describedObject.name] = item.value.description
        }
        return out
    }

    @Test func podsOwnShareAveragedOverTheirGPUs() throws {
        let all = try custom("gpu_utilization", .pods, namespace: "ml", .all(labelSelector: .everything))
        // train-0: avg(90, 50) = 70; infer-0: 15; infer-1: 3 + 2 on one GPU = 5.
        #expect(all == ["train-0": "70", "infer-0": "15", "infer-1": "5"])
    }

    @Test func podMemoryAndDeviceFigures() throws {
        let pod = ObjectSelection.named("train-0")
        // 40G + 20G of 80G + 80G.
        #expect(try custom("gpu_memory_used_bytes", .pods, namespace: "ml", pod) == ["train-0": "60G"])
        #expect(try custom("gpu_memory_utilization", .pods, namespace: "ml", pod) == ["train-0": "37500m"])
        // Hottest sensor of the GPUs it holds (GPU-A's memory at 70), power of both GPUs.
        #expect(try custom("gpu_temperature_celsius", .pods, namespace: "ml", pod) == ["train-0": "70"])
        #expect(try custom("gpu_power_watts", .pods, namespace: "ml", pod) == ["train-0": "500"])
        // A MIG slice: 5G of its own 40G.
        #expect(try custom("gpu_memory_utilization", .pods, namespace: "other", .named("job-0")) == ["job-0": "12500m"])
    }

    @Test func podsSMAndTensorActivityFromTheirAccelerators() throws {
        let sm = try custom("gpu_sm_active", .pods, namespace: "ml", .all(labelSelector: .everything))
        // train-0: avg(80, 40) = 60; infer-0 and infer-1 share GPU-C: both read its 10.
        #expect(sm == ["train-0": "60", "infer-0": "10", "infer-1": "10"])
        // The tensor pipe only (pipe="tensor", not its parts): avg(50, 20) = 35; GPU-C has none, so its pods none.
        let tensor = try custom("gpu_tensor_active", .pods, namespace: "ml", .all(labelSelector: .everything))
        #expect(tensor == ["train-0": "35"])
        // A MIG slice's own figures, not its parent's.
        #expect(try custom("gpu_sm_active", .pods, namespace: "other", .named("job-0")) == ["job-0": "60"])
        #expect(try custom("gpu_tensor_active", .pods, namespace: "other", .named("job-0")) == ["job-0": "25"])
        let error = #expect(throws: Status.self) {
            try self.custom("gpu_tensor_active", .pods, namespace: "ml", .named("infer-0"))
        }
        #expect(error?.code == 404)
    }

    @Test func nodesSMAndTensorActivityWithoutPartitions() throws {
        let node = ObjectSelection.named("node-a")
        // avg(80, 40, 10, 30): MIG-1 is inside GPU-D's figure.
        #expect(try custom("gpu_sm_active", .nodes, namespace: nil, node) == ["node-a": "40"])
        // avg(50, 20): the GPUs that report tensor activity.
        #expect(try custom("gpu_tensor_active", .nodes, namespace: nil, node) == ["node-a": "35"])
        // Served for pods and nodes only.
        let error = #expect(throws: Status.self) {
            try self.custom("gpu_sm_active", .namespaces, namespace: nil, .named("ml"))
        }
        #expect(error?.code == 404)
    }

    @Test func podWithoutItsOwnShareIsNotFound() throws {
        // job-0's MIG slice reports no utilization: absent, never 0.
        let error = #expect(throws: Status.self) {
            try self.custom("gpu_utilization", .pods, namespace: "other", .named("job-0"))
        }
        #expect(error?.code == 404)
        #expect(error?.message == "the server could not find the metric gpu_utilization for pods job-0")
    }

    @Test func labelSelectorUsesPodLabels() throws {
        let selector = try LabelSelector(parsing: "app=infer")
        let picked = try custom("gpu_utilization", .pods, namespace: "ml", .all(labelSelector: selector))
        #expect(picked == ["infer-0": "15", "infer-1": "5"])
        let none = try custom("gpu_utilization", .pods, namespace: "ml", .all(labelSelector: try LabelSelector(parsing: "app=absent")))
        #expect(none.isEmpty)
    }

    @Test func metricLabelSelectorPicksSeries() throws {
        let request = CustomMetricRequest(
            version: .v1beta1, namespace: "ml", resource: .pods, objects: .named("infer-1"),
            metricName: "gpu_utilization", metricSelector: try LabelSelector(parsing: "container=c1"))
        let list = try api.answer(request)
        #expect(list.items.count == 1)
        #expect(list.items.first?.value.description == "3")
        #expect(list.items.first?.selector == MetaLabelSelector(matchLabels: ["container": "c1"]))
    }

    @Test func namespaceTotalsCountASharedGPUOnce() throws {
        let ns = ObjectSelection.named("ml")
        // 90 + 50 + (15 + 3 + 2): GPU-equivalents busy, in percent.
        #expect(try custom("gpu_utilization", .namespaces, namespace: nil, ns) == ["ml": "160"])
        // GPU-C's 150 W once, although two pods hold it.
        #expect(try custom("gpu_power_watts", .namespaces, namespace: nil, ns) == ["ml": "650"])
        #expect(try custom("gpu_memory_used_bytes", .namespaces, namespace: nil, ns) == ["ml": "90G"])
        // 90G of 240G.
        #expect(try custom("gpu_memory_utilization", .namespaces, namespace: nil, ns) == ["ml": "37500m"])
    }

    @Test func nodesUseDeviceFiguresWithoutPartitions() throws {
        let node = ObjectSelection.named("node-a")
        // avg(90, 50, 20): GPU-D reports none in MIG mode.
        #expect(try custom("gpu_utilization", .nodes, namespace: nil, node) == ["node-a": "53333m"])
        // VRAM only, MIG-1 inside GPU-D's figure: 40 + 20 + 30 + 10.
        #expect(try custom("gpu_memory_used_bytes", .nodes, namespace: nil, node) == ["node-a": "100G"])
        #expect(try custom("gpu_power_watts", .nodes, namespace: nil, .all(labelSelector: .everything)) == ["node-a": "750"])
        #expect(try custom("gpu_memory_utilization", .nodes, namespace: nil, node) == ["node-a": "31250m"])
    }

    @Test func externalAggregatesTheSelectedWorkload() throws {
        func external(_ metric: String, _ selector: String) throws -> ExternalMetricValueList {
            try api.answer(
                ExternalMetricRequest(namespace: "ml", metricName: metric, metricSelector: try LabelSelector(parsing: selector)))
        }
        let infer = try external("gpu_utilization", "app=infer")
        #expect(infer.items.count == 1)
        // One GPU, 15 + 3 + 2.
        #expect(infer.items.first?.value.description == "20")
        #expect(infer.items.first?.metricLabels == ["app": "infer"])
        #expect(try external("gpu_power_watts", "app=infer").items.first?.value.description == "150")
        // Series labels count too: one pod's series.
        #expect(try external("gpu_utilization", "pod=infer-0").items.first?.value.description == "15")
        // The whole namespace: avg over GPU-A 90, GPU-B 50, GPU-C 20.
        #expect(try external("gpu_utilization", "").items.first?.value.description == "53333m")
        #expect(try external("gpu_utilization", "app=nothing").items.isEmpty)
    }

    @Test func staleValuesAreNotServed() throws {
        clock.advance(30)
        let all = try custom("gpu_utilization", .pods, namespace: "ml", .all(labelSelector: .everything))
        #expect(all.isEmpty)
        let error = #expect(throws: Status.self) {
            try self.custom("gpu_utilization", .nodes, namespace: nil, .named("node-a"))
        }
        #expect(error?.code == 404)
    }

    @Test func unknownMetricsAndResources() throws {
        let unknown = #expect(throws: Status.self) {
            try self.custom("nope", .pods, namespace: "ml", .all(labelSelector: .everything))
        }
        #expect(unknown?.code == 404)
        #expect(unknown?.message == "the server could not find the metric nope for pods")
        let deployments = #expect(throws: Status.self) {
            try self.custom("gpu_utilization", GroupResource(group: "apps", resource: "deployments"), namespace: "ml", .named("web"))
        }
        #expect(deployments?.code == 404)
        let external = #expect(throws: Status.self) {
            try self.api.answer(ExternalMetricRequest(namespace: "ml", metricName: "nope"))
        }
        #expect(external?.code == 404)
    }

    @Test func selectorWithoutPodWatchIsAnError() throws {
        let bare = MetricsAPI(store: api.store, catalog: api.catalog, podLabels: nil)
        let request = CustomMetricRequest(
            version: .v1beta2, namespace: "ml", resource: .pods,
            objects: .all(labelSelector: try LabelSelector(parsing: "app=infer")), metricName: "gpu_utilization")
        let error = #expect(throws: Status.self) { try bare.answer(request) }
        #expect(error?.code == 500)
        // With no selector it still answers.
        let everything = CustomMetricRequest(
            version: .v1beta2, namespace: "ml", resource: .pods, objects: .all(labelSelector: .everything),
            metricName: "gpu_utilization")
        #expect(try bare.answer(everything).items.count == 3)
    }

    @Test func discoveryListsEveryMetricWithConsistentScope() throws {
        let list = api.customResources(version: .v1beta2)
        let names = Set(list.resources.map(\.name))
        for metric in ["gpu_utilization", "gpu_memory_used_bytes", "gpu_memory_utilization", "gpu_temperature_celsius", "gpu_power_watts"] {
            #expect(names.contains("pods/\(metric)"))
            #expect(names.contains("nodes/\(metric)"))
            #expect(names.contains("namespaces/\(metric)"))
        }
        #expect(names.contains("pods/inference_latency_p95_seconds"))
        #expect(!names.contains("nodes/inference_queue_depth"))
        for resource in list.resources {
            #expect(resource.namespaced == resource.name.hasPrefix("pods/"))
            #expect(resource.kind == "MetricValueList")
            #expect(resource.verbs == ["get"])
        }
        let external = api.externalResources()
        #expect(external.resources.count == 14)  // 5 GPU metrics, 9 inference metrics
        #expect(external.resources.allSatisfy { $0.namespaced && $0.kind == "ExternalMetricValueList" })
    }
}
