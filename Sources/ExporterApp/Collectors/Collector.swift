public import ArgumentParser
public import Exporter

/// A collector, as node_exporter calls it: one file declaring its name, whether it is on by default (its
/// `--collector.<name>` flag), its other flags, and the factory that makes its sources.
///
/// Adding one: a file beside these, and its line in ``Collectors``. The exporter only ever sees the factory.
public protocol Collector: ParsableArguments {
    /// `amdgpu`, `nvidia`…: the `collector` label of its self-metrics and the flag `--collector.<name>`.
    static var name: String { get }
    /// Whether `--collector.<name>` is on (the flag's default is the collector's default).
    var enabled: Bool { get }
    /// Checks the collector's own flags and captures them in the factory.
    func factory() throws -> CollectorFactory
}

/// Every collector this build knows, in the order the sampler reads them.
public struct Collectors: ParsableArguments {
    /// Every collector at its flags' defaults; ArgumentParser fills it from the command line.
    public init() {}

    @OptionGroup(title: "AMD GPUs") var amdgpu: AMDGPUCollector
    @OptionGroup(title: "Intel Gaudi") var habana: GaudiCollector
    @OptionGroup(title: "Intel GPUs") var intel: IntelGPUCollector
    @OptionGroup(title: "hwmon (libsensors)") var hwmon: HwmonCollector
    @OptionGroup(title: "NVIDIA GPUs (NVML)") var nvidia: NVIDIACollector
    @OptionGroup(title: "Google TPUs") var tpu: TPUCollector

    var all: [any Collector] { [amdgpu, habana, intel, hwmon, nvidia, tpu] }

    /// The factories of the collectors that are on.
    public func factories() throws -> [CollectorFactory] {
        try all.filter(\.enabled).map { try $0.factory() }
    }

    /// Every collector's name.
    public static var names: [String] {
        [AMDGPUCollector.name, GaudiCollector.name, IntelGPUCollector.name, HwmonCollector.name, NVIDIACollector.name, TPUCollector.name]
    }
}
