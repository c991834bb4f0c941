public import Accelerators
public import Lifecycle
public import Logging
import TPURuntimeClient

/// One collector, ready to build: its name (`--collector.<name>`) and how it makes its parts for an exporter.
///
/// The flags that describe a collector live with it, in ExporterApp's one file per collector; by the time it reaches
/// the exporter it is this factory, with its own settings captured.
public struct CollectorFactory: Sendable {
    /// The `collector` label value and the `--collector.<name>` flag.
    public let name: String
    /// Called once, from ``Exporter/init(configuration:logger:extraSources:)``, in the configured collector order.
    public let make: @Sendable (CollectorContext) -> CollectorParts

    /// ExporterApp's `Collectors` makes one per enabled collector.
    public init(name: String, make: @escaping @Sendable (CollectorContext) -> CollectorParts) {
        self.name = name
        self.make = make
    }
}

/// What the exporter offers every collector.
public struct CollectorContext: Sendable {
    /// `--path.sysfs`: every sysfs read goes through it.
    public let sysfs: FileRoot
    /// `--path.procfs` (DRM fdinfo, process attribution).
    public let procfs: FileRoot
    /// The node's name (`--kubernetes.node-name`, `$NODE_NAME`, else the host name); nil only when none is known.
    public let nodeName: String?
    /// `--discovery.interval`, in seconds: how often a source re-runs device discovery.
    public let discoveryInterval: Double
    /// `--collect.interval`, in seconds: the sampler's tick.
    public let sampleInterval: Double
    /// Labelled `collector=<name>`.
    public let logger: Logger
    /// With pod attribution and the pod watch: the TPU pods' own libtpu endpoints and the chips each holds, found
    /// every tick; nil without them.
    public let tpuPodTargets: (@Sendable () -> [TPURuntimeTarget])?

    /// Made by the exporter once per collector, with the collector's own logger.
    public init(sysfs: FileRoot, procfs: FileRoot, nodeName: String?, discoveryInterval: Double, sampleInterval: Double,
                logger: Logger, tpuPodTargets: (@Sendable () -> [TPURuntimeTarget])? = nil) {
        self.sysfs = sysfs
        self.procfs = procfs
        self.nodeName = nodeName
        self.discoveryInterval = discoveryInterval
        self.sampleInterval = sampleInterval
        self.logger = logger
        self.tpuPodTargets = tpuPodTargets
    }
}

/// What a collector adds to an exporter: the sources the sampler reads, anything that runs beside them (stopped
/// with the exporter), and a step applied to each tick before it renders.
public struct CollectorParts {
    /// Read by the sampler every tick, after the sources of earlier collectors.
    public var sources: [any AcceleratorSource]
    /// Started with the exporter's clients (before the sampler) and stopped with them.
    public var components: [Component]
    /// Runs on the sampler thread after attribution, before the tick is rendered; nil: none.
    public var tickStep: (@Sendable (inout Sampler.Tick) -> Void)?

    /// Memberwise.
    public init(sources: [any AcceleratorSource], components: [Component] = [], tickStep: (@Sendable (inout Sampler.Tick) -> Void)? = nil) {
        self.sources = sources
        self.components = components
        self.tickStep = tickStep
    }
}
