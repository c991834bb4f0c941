public import Exposition

/// One accelerator family's collector (`amdgpu`, `hwmon`, later `nvidia`, `tpu`, …).
///
/// The sampler calls `sample(now:)` from one worker thread dedicated to this source, never concurrently, so
/// implementations keep their discovery cache in plain stored properties. A call may block on a stuck file or
/// library; the sampler's deadline, not the source, keeps that from delaying the scrape.
public protocol AcceleratorSource: AnyObject {
    /// The `collector` label value and the `--collector.<name>` flag.
    var name: String { get }
    /// One tick's readings; it never throws: a failure goes into ``SourceResult/error`` or `accelerator_up 0`.
    func sample(now: MonotonicInstant) -> SourceResult
}

/// What one source saw in one tick.
public struct SourceResult: Sendable {
    /// Devices this source owns (discovered by it).
    public var devices: [DeviceSample] = []
    /// Readings for devices another source owns, keyed by PCI address (`0000:03:00.0`); they take precedence over
    /// the owner's values for the same key (hwmon over gpu_metrics).
    public var overlays: [String: DeviceSample] = [:]
    /// Families outside the device schema (e.g. the node's other hwmon chips).
    public var families: [MetricFamily] = []
    /// A source-level failure: the collector reports `_success 0`. Device-level trouble shows as `accelerator_up 0`.
    public var error: String?

    /// Empty by default: a source with nothing to report this tick.
    public init(devices: [DeviceSample] = [], overlays: [String: DeviceSample] = [:], families: [MetricFamily] = [], error: String? = nil) {
        self.devices = devices
        self.overlays = overlays
        self.families = families
        self.error = error
    }
}
