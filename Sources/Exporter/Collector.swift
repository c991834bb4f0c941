public import Accelerators
public import Lifecycle
public import Logging
public import TPURuntimeClient

/// One collector, ready to build: its name (`--collector.<name>`) and how it makes its parts for an exporter.
///
/// The flags that describe a collector live with it, in ExporterApp's one file per collector; by the time it reaches
/// the exporter it is this factory, with its own settings captured.
public struct CollectorFactory: Sendable {
    public let name: String
    public let make: @Sendable (CollectorContext) -> CollectorParts

    public init(name: String, make: @escaping @Sendable (CollectorContext) -> CollectorParts) {
        self.name = name
        self.make = make
    }
}

/// What the exporter offers every collector.
public struct CollectorContext: Sendable {
    public let sysfs: FileRoot
    public let procfs: FileRoot
    public let nodeName: String?
    public let discoveryInterval: Double
    public let sampleInterval: Double
    /// Labelled `collector=<name>`.
    public let logger: Logger
    /// With pod attribution and the pod watch: the TPU pods' own libtpu endpoints and the chips each holds, found
    /// every tick; nil without them.
    public let tpuPodTargets: (@Sendable () -> [TPURuntimeTarget])?

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
    public var sources: [any AcceleratorSource]
    public var components: [Component]
    public var tickStep: (@Sendable (inout Sampler.Tick) -> Void)?

    public init(sources: [any AcceleratorSource], components: [Component] = [], tickStep: (@Sendable (inout Sampler.Tick) -> Void)? = nil) {
        self.sources = sources
        self.components = components
        self.tickStep = tickStep
    }
}
