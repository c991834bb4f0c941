public import Exposition

/// One metric family of the schema: the only place its name, type, help, unit and labels are written down.
///
/// The exporter builds its families from these, the adapter reads exporter series by these names, the simulator
/// writes them, and `docs/metric-schema.json` (which `MetricSchemaTests` writes from them and keeps current) gives
/// them to the dashboards' generator. Renaming a family or adding a label is a change here and nowhere else.
public struct FamilyDefinition: Sendable, Hashable {
    /// Where a family's series come from, which decides its identity labels.
    public enum Group: String, Sendable, Hashable, CaseIterable {
        /// One series set per accelerator: carries ``SchemaLabel/deviceIdentity``.
        case device
        /// An accelerator held by a pod: the device identity plus `namespace`, `pod`, `container`.
        case pod
        /// A model server's normalized series: `namespace`, `pod`, `model_name`.
        case inference
        /// Node-level hwmon chips read through libsensors.
        case hwmon
        /// The exporter's own health.
        case exporter
        /// `process_*`, written by both programs.
        case process
    }

    /// The family's name as the text format's `# TYPE` line spells it (counters without `_total`).
    public let name: String
    /// The model's kind; `info` renders as a gauge named `…_info` in the text format.
    public let kind: MetricFamily.Kind
    /// The `# HELP` text, one sentence with units and ranges where they apply.
    public let help: String
    /// The OpenMetrics unit (`bytes`, `seconds`, `ratio`…), nil for plain counts.
    public let unit: String?
    /// Decides the identity labels at the front of ``labels``.
    public let group: Group
    /// Every label a series of the family may carry, in the order the exporter writes them (`le` excluded).
    public let labels: [String]

    /// Only the schema's own tables (``Families``) build these; `labels` includes the group's identity labels.
    public init(_ name: String, _ kind: MetricFamily.Kind, _ help: String, unit: String? = nil, group: Group, labels: [String]) {
        self.name = name
        self.kind = kind
        self.help = help
        self.unit = unit
        self.group = group
        self.labels = labels
    }

    /// The names its samples carry in the text format: `_total` on counters, `_bucket`/`_sum`/`_count` on
    /// histograms, `_info` on info families, the name itself otherwise.
    public var sampleNames: [String] {
        switch kind {
        case .counter: [name + "_total"]
        case .histogram: [name + "_bucket", name + "_sum", name + "_count"]
        case .info: [name + "_info"]
        default: [name]
        }
    }

    /// The name a query uses for the family's value: `…_total` for a counter, `…_info` for an info family, the
    /// name otherwise.
    public var queryName: String {
        switch kind {
        case .counter: name + "_total"
        case .info: name + "_info"
        default: name
        }
    }

    /// An empty family with this definition's name, type, help and unit.
    public func family(_ samples: [Sample] = []) -> MetricFamily {
        MetricFamily(name: name, help: help, kind: kind, unit: unit, samples: samples)
    }
}

/// Label names with a meaning across families.
public enum SchemaLabel {
    /// The device's stable id (the NVIDIA UUID; else `unique_id`, serial or PCI address).
    public static let accelerator = "accelerator"
    /// The PCI address, `0000:03:00.0`; a MIG slice, partition or TPU core carries its physical device's.
    public static let pciBusID = "pci_bus_id"
    /// The source's vendor name (`nvidia`, `amd`, `intel`, `habana`, `google`).
    public static let vendor = "vendor"
    /// The product name as the driver or library reports it.
    public static let model = "model"
    /// The namespace of the pod a series is about (pod, inference and workload-target series).
    public static let namespace = "namespace"
    /// The pod's name, on per-pod, inference and workload-target series.
    public static let pod = "pod"
    /// The container's name within its pod, as the kubelet reports it.
    public static let container = "container"
    /// The DRA claim's name; absent on a device-plugin allocation.
    public static let claim = "claim"
    /// The served model, taken from the engine's own model label.
    public static let modelName = "model_name"

    /// On every device series, in this order (`pci_bus_id` left out only where a device's PCI address is unknown).
    /// `pci_bus_id` is there because the AI conformance suite counts only samples with a device label it knows
    /// (`gpu`, `uuid`, `pci_bus_id`…), and because operators find a slot by it. A MIG slice, partition or TPU core
    /// carries its physical device's address.
    public static let deviceIdentity = [accelerator, vendor, model, pciBusID]
    /// What a pod family adds to the device identity.
    public static let podHolder = [namespace, pod, container]
    /// The labels of every inference family.
    public static let inference = [namespace, pod, modelName]
    /// A series may carry at most this many labels (`le` of a histogram bucket included).
    public static let budget = 8
}
