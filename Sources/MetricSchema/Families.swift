import Exposition

private let identity = SchemaLabel.deviceIdentity

private func device(_ name: String, _ kind: MetricFamily.Kind, _ help: String, unit: String? = nil, _ extra: [String] = []) -> FamilyDefinition {
    FamilyDefinition(name, kind, help, unit: unit, group: .device, labels: identity + extra)
}

private func inference(_ name: String, _ kind: MetricFamily.Kind, _ help: String, unit: String? = nil) -> FamilyDefinition {
    FamilyDefinition(name, kind, help, unit: unit, group: .inference, labels: SchemaLabel.inference)
}

private func exporter(_ name: String, _ kind: MetricFamily.Kind, _ help: String, unit: String? = nil, _ labels: [String] = []) -> FamilyDefinition {
    FamilyDefinition(name, kind, help, unit: unit, group: .exporter, labels: labels)
}

/// Every family the exporter writes (DESIGN.md "Metric schema"), by subject.
public enum Families {
    /// One series set per accelerator (a MIG slice or partition is its own accelerator and carries its physical
    /// device's `pci_bus_id`).
    public enum Device {
        /// Static facts: `accelerator_info` in the text format. Its extra labels are the source's facts (driver,
        /// firmware, serial, node, MIG parent and profile…), listed in ``infoLabels``.
        public static let info = device("accelerator", .info, "Static facts about an accelerator (driver, firmware, serial, node, MIG parent); value 1.", infoLabels)
        /// The extra labels ``info`` may carry; a source writes those it knows, in any subset.
        public static let infoLabels = ["driver", "node", "vbios", "serial", "parent", "gpu_instance_id", "compute_instance_id", "mig_profile", "card", "chip_index", "device_node", "module_id"]
        /// The one series besides ``info`` a device that stopped answering still has (value 0).
        public static let up = device("accelerator_up", .gauge, "1 when the accelerator answered this sample, 0 when it stopped answering.")
        /// The vendor's own busy figure for the main engine; per-engine figures are ``engineUtilization``.
        public static let utilization = device("accelerator_utilization_ratio", .gauge, "Fraction of time the main compute engine was busy (0-1).", unit: "ratio")
        /// `engine`: `gfx`, `compute`, `copy`, `video_decode`, `video_encode`, `memory_controller`, `video`, `jpeg`.
        public static let engineUtilization = device("accelerator_engine_utilization_ratio", .gauge, "Fraction of time an engine was busy (0-1).", unit: "ratio", ["engine"])
        /// `memory`: `vram`, `gtt`, `vis_vram`, `hbm`.
        public static let memoryUsed = device("accelerator_memory_used_bytes", .gauge, "Device memory in use.", unit: "bytes", ["memory"])
        /// `memory` as in ``memoryUsed``.
        public static let memoryTotal = device("accelerator_memory_total_bytes", .gauge, "Device memory size.", unit: "bytes", ["memory"])
        /// NVIDIA's `_v2` memory info; `memory` as in ``memoryUsed``.
        public static let memoryReserved = device("accelerator_memory_reserved_bytes", .gauge, "Device memory reserved by the driver and firmware (not in used).", unit: "bytes", ["memory"])
        /// `sensor`: `edge`, `junction`, `memory`, `hbm0`…
        public static let temperature = device("accelerator_temperature_celsius", .gauge, "Temperature of a sensor on the accelerator.", unit: "celsius", ["sensor"])
        /// NVML `nvmlDeviceGetPowerUsage`, AMD gpu_metrics socket power, or the card's first hwmon power channel.
        public static let power = device("accelerator_power_watts", .gauge, "Power draw (average where the hardware averages, else instantaneous).", unit: "watts")
        /// NVML `nvmlDeviceGetEnforcedPowerLimit`, hwmon `power*_cap` (else `power*_max`), or Gaudi `max_power`.
        public static let powerLimit = device("accelerator_power_limit_watts", .gauge, "Enforced power limit (cap).", unit: "watts")
        /// NVML `nvmlDeviceGetTotalEnergyConsumption`, AMD gpu_metrics' energy accumulator (v1_4 on), or hwmon
        /// `energy*_input`.
        public static let energy = device("accelerator_energy_joules", .counter, "Energy consumed since the driver loaded.", unit: "joules")
        /// `clock`: `graphics`, `sm`, `memory`, `video`, `soc`, `fabric`; `gt` (`gt0`, `gt1`…) only on Intel parts with
        /// several GTs.
        public static let clock = device("accelerator_clock_hertz", .gauge, "Current clock frequency.", unit: "hertz", ["clock", "gt"])
        /// Where the hardware reports a fraction; others report ``fanSpeedRPM``.
        public static let fanSpeedRatio = device("accelerator_fan_speed_ratio", .gauge, "Fan speed as a fraction of its maximum (0-1).", unit: "ratio", ["sensor"])
        /// hwmon and AMD gpu_metrics report RPM, not a ratio.
        public static let fanSpeedRPM = device("accelerator_fan_speed_rpm", .gauge, "Fan speed in revolutions per minute.", ["sensor"])
        /// `sensor`: the card's hwmon voltage labels, or AMD gpu_metrics' `soc`, `gfx`, `memory`.
        public static let voltage = device("accelerator_voltage_volts", .gauge, "Voltage of a rail.", unit: "volts", ["sensor"])
        /// Per lane: 16 GT/s is `16e9`.
        public static let pcieLinkSpeed = device("accelerator_pcie_link_speed_transfers_per_second", .gauge, "Current PCIe link speed per lane.", unit: "transfers_per_second")
        /// NVML `nvmlDeviceGetCurrPcieLinkWidth`, amdgpu `current_link_width`, or gpu_metrics.
        public static let pcieLinkWidth = device("accelerator_pcie_link_width", .gauge, "Current PCIe link width in lanes.")
        /// `direction`: `rx`, `tx`, or `total` (AMD gpu_metrics gives only the sum).
        public static let pcieBandwidth = device("accelerator_pcie_bandwidth_bytes_per_second", .gauge, "Bytes per second moved over PCIe, by direction (rx, tx; total where the hardware gives only the sum).", unit: "bytes_per_second", ["direction"])
        /// Cumulative byte counters per `link` and `direction`; ``interconnectBandwidth`` is the rate.
        public static let interconnect = device("accelerator_interconnect_bytes", .counter, "Bytes moved over a device interconnect link (NVLink, XGMI).", unit: "bytes", ["link", "direction"])
        /// NVIDIA: GPM's NVLink rates where the GPU has GPM (Hopper and later), else the growth of the link's
        /// counters; AMD: the XGMI counters' growth.
        public static let interconnectBandwidth = device("accelerator_interconnect_bandwidth_bytes_per_second", .gauge, "Bytes per second moved over a device interconnect link (NVLink, XGMI) between the last two samples.", unit: "bytes_per_second", ["link", "direction"])
        // Saturation beside utilization (NVIDIA GPM on Hopper and later; DCGM's DCGM_FI_PROF_* fields). Each is an
        // average over the interval between two samples, so the first sample after a start has none.
        /// GPM-based (see the comment above): absent on GPUs without GPM and on the first sample.
        public static let smActive = device("accelerator_sm_active_ratio", .gauge, "Fraction of the streaming multiprocessors busy, averaged over the sample interval (0-1); low while utilization is high means few SMs do the work.", unit: "ratio")
        /// GPM-based, as ``smActive``.
        public static let smOccupancy = device("accelerator_sm_occupancy_ratio", .gauge, "Resident warps as a fraction of the SMs' maximum, averaged over the sample interval (0-1).", unit: "ratio")
        /// `pipe`: `tensor` (any tensor work, FP8 included), its parts `tensor_hmma`, `tensor_imma`, `tensor_dfma`,
        /// `tensor_dmma`, and the non-tensor `fp64`, `fp32`, `fp16`, `integer`. The parts do not add up to `tensor`.
        public static let pipeActive = device("accelerator_pipe_active_ratio", .gauge, "Fraction of the sample interval the SMs' pipes of a kind were busy (0-1): tensor (any tensor work), tensor_hmma, tensor_imma, tensor_dfma, tensor_dmma, fp64, fp32, fp16, integer.", unit: "ratio", ["pipe"])
        /// GPM-based, as ``smActive``.
        public static let memoryBandwidthUtilization = device("accelerator_memory_bandwidth_utilization_ratio", .gauge, "Device-memory bandwidth used as a fraction of its theoretical maximum, averaged over the sample interval (0-1).", unit: "ratio")
        /// One series per reason the source knows, 0 or 1 (NVML clock-event reasons, AMD throttle-status bits).
        public static let throttle = device("accelerator_throttle_active", .gauge, "1 while the reason holds the clocks down, else 0.", ["reason"])
        /// NVIDIA P-states (NVML's performance state).
        public static let performanceState = device("accelerator_performance_state", .gauge, "Performance state: 0 (P0, maximum) to 15 (P15, minimum).")
        /// Lifetime counts that survive driver reloads, by `type` (NVML aggregate ECC, `nvlink_down`, Gaudi
        /// `reset_hard`/`reset_soft`…).
        public static let errors = device("accelerator_errors", .counter, "Hardware errors over the device's lifetime, by type.", ["type"])
        /// NVML's volatile ECC counts: their own family so a `sum()` never adds them to ``errors``.
        public static let volatileErrors = device("accelerator_volatile_errors", .counter, "Hardware errors since the driver loaded (reset by a reload; never add to accelerator_errors_total).", ["type"])
        /// NVML field 144 (row remapping pending).
        public static let rowRemapPending = device("accelerator_row_remap_pending", .gauge, "1 while a memory row remapping waits for a GPU reset.")
        /// NVML field 145 (row remapping failure).
        public static let rowRemapFailure = device("accelerator_row_remap_failure", .gauge, "1 when a memory row remapping failed (the GPU needs service).")
        /// NVML field 31 (retired pages pending), on GPUs before row remapping.
        public static let retiredPagesPending = device("accelerator_retired_pages_pending", .gauge, "1 while retired memory pages wait for a driver reload.")
        /// Counted by the exporter from NVML XID events; reset when it restarts.
        public static let xidErrors = device("accelerator_xid_errors", .counter, "XID critical errors seen since the exporter started, by XID.", ["xid"])
        /// **[UNVERIFIED: bandwidth or capacity]**: kept apart from the memory families until confirmed on a device.
        public static let tpuHBMUtilization = device("accelerator_tpu_hbm_utilization_ratio", .gauge, "libtpu's HBM utilization (tpu.runtime.hbm.utilization.percent) as 0-1; whether it measures bandwidth or capacity is unverified.", unit: "ratio")
        /// Summed over the chip's cores.
        public static let tpuHLOQueueSize = device("accelerator_tpu_hlo_queue_size", .gauge, "HLO programs waiting in the TPU's execution queue (libtpu runtime metrics).")
        /// Merged over the chip's cores; only while a workload serves libtpu's runtime metrics.
        public static let tpuHLOExecution = device("accelerator_tpu_hlo_execution_seconds", .histogram, "Execution time of HLO programs on the TPU while the workload runs (libtpu runtime metrics).", unit: "seconds")
        /// Node-level, not per device: the driver stack's versions.
        public static let driver = FamilyDefinition("accelerator_driver", .info, "The accelerator driver's version on this node; value 1.", group: .exporter, labels: ["vendor", "version", "cuda_version", "node"])

        /// The device families, each once; part of ``Families/all``.
        public static let all = [
            info, up, utilization, engineUtilization, memoryUsed, memoryTotal, memoryReserved, temperature, power, powerLimit,
            energy, clock, fanSpeedRatio, fanSpeedRPM, voltage, pcieLinkSpeed, pcieLinkWidth, pcieBandwidth, interconnect,
            interconnectBandwidth, smActive, smOccupancy, pipeActive, memoryBandwidthUtilization, throttle, performanceState, errors,
            volatileErrors, rowRemapPending, rowRemapFailure, retiredPagesPending,
            xidErrors, tpuHBMUtilization, tpuHLOQueueSize, tpuHLOExecution, driver,
        ]
    }

    /// Accelerators held by pods (kubelet pod-resources, per-process shares).
    public enum Pod {
        /// `claim` only on DRA allocations.
        public static let allocated = FamilyDefinition(
            "accelerator_allocated", .gauge, "1 for each container an accelerator is allocated to (device plugin or DRA claim).",
            group: .pod, labels: identity + SchemaLabel.podHolder + [SchemaLabel.claim])
        /// Per container; absent for a shared device without per-process data.
        public static let utilization = FamilyDefinition(
            "accelerator_pod_utilization_ratio", .gauge,
            "The container's share of the accelerator's main engine busy time (0-1): the device's own figure when allocated exclusively, the measured share when shared.",
            unit: "ratio", group: .pod, labels: identity + SchemaLabel.podHolder)
        /// Per container; absent for a shared device without per-process data.
        public static let memoryUsed = FamilyDefinition(
            "accelerator_pod_memory_used_bytes", .gauge,
            "Device memory the container uses: the device's own figure when allocated exclusively, the measured share when shared.",
            unit: "bytes", group: .pod, labels: identity + SchemaLabel.podHolder)
        /// Labels beyond `namespace` and `pod` are `label_<name>` of the allow-listed pod labels.
        public static let labels = FamilyDefinition(
            "accelerator_pod_labels", .gauge, "1 for each pod holding an accelerator on this node, with its allow-listed labels as label_<name>.",
            group: .pod, labels: [SchemaLabel.namespace, SchemaLabel.pod])

        /// The pod families, each once; part of ``Families/all``.
        public static let all = [allocated, utilization, memoryUsed, labels]
    }

    /// Model servers' metrics in one vocabulary, whatever the engine.
    public enum Inference {
        /// Like every inference family: an engine's own series renamed into this vocabulary (the Inference module's
        /// normalizer).
        public static let requestsRunning = inference("inference_requests_running", .gauge, "Requests the model server is processing.")
        public static let requestsWaiting = inference("inference_requests_waiting", .gauge, "Requests waiting in the model server's queue.")
        public static let kvCacheUtilization = inference("inference_kv_cache_utilization_ratio", .gauge, "Fraction of the KV cache in use, 0..1.", unit: "ratio")
        public static let requests = inference("inference_requests", .counter, "Requests completed.")
        public static let generatedTokens = inference("inference_generated_tokens", .counter, "Tokens generated.")
        public static let requestDuration = inference("inference_request_duration_seconds", .histogram, "End-to-end request latency.", unit: "seconds")
        public static let timeToFirstToken = inference("inference_time_to_first_token_seconds", .histogram, "Time to the first token.", unit: "seconds")
        public static let timePerOutputToken = inference("inference_time_per_output_token_seconds", .histogram, "Time per output token after the first.", unit: "seconds")
        public static let queueTime = inference("inference_queue_time_seconds", .histogram, "Time requests waited in the queue.", unit: "seconds")
        public static let requestDurationMean = inference("inference_request_duration_mean_seconds", .gauge, "Mean request latency since the previous scrape (Triton).", unit: "seconds")
        public static let queueTimeMean = inference("inference_queue_time_mean_seconds", .gauge, "Mean queue time since the previous scrape (Triton).", unit: "seconds")

        /// The windowed percentiles of a latency histogram: `inference_request_duration_p95_seconds`…
        public struct Percentile: Sendable, Hashable {
            /// The latency histogram the percentile is computed from.
            public let histogram: FamilyDefinition
            /// `p50`, `p95`, `p99`.
            public let name: String
            /// 0–1, as `histogram_quantile` takes it.
            public let quantile: Double
            /// The gauge it is exported as, `<stem>_<name>_seconds`.
            public let family: FamilyDefinition
        }

        /// The percentiles computed for each of ``percentileHistograms``.
        public static let quantiles: [(name: String, quantile: Double)] = [("p50", 0.5), ("p95", 0.95), ("p99", 0.99)]
        /// Histograms that get windowed percentiles.
        public static let percentileHistograms = [requestDuration, timeToFirstToken, timePerOutputToken]
        /// Every histogram × quantile pair, with its gauge family.
        public static let percentiles: [Percentile] = percentileHistograms.flatMap { histogram in
            quantiles.map { q in
                let stem = String(histogram.name.dropLast("_seconds".count))
                return Percentile(
                    histogram: histogram, name: q.name, quantile: q.quantile,
                    family: inference("\(stem)_\(q.name)_seconds", .gauge, "Percentile of the requests observed in the last window.", unit: "seconds"))
            }
        }
        /// The percentile family of a histogram and quantile name (`p95`).
        public static func percentile(_ histogram: FamilyDefinition, _ name: String) -> FamilyDefinition {
            percentiles.first { $0.histogram == histogram && $0.name == name }!.family
        }

        /// The engine-normalized families, then the percentile gauges.
        public static let all = [
            requestsRunning, requestsWaiting, kvCacheUtilization, requests, generatedTokens, requestDuration, timeToFirstToken,
            timePerOutputToken, queueTime, requestDurationMean, queueTimeMean,
        ] + percentiles.map(\.family)
    }

    /// Node hwmon chips (libsensors), beside the accelerators.
    public enum Hwmon {
        private static func hwmon(_ name: String, _ kind: MetricFamily.Kind, _ help: String, unit: String? = nil) -> FamilyDefinition {
            FamilyDefinition(name, kind, help, unit: unit, group: .hwmon, labels: ["chip", "sensor"])
        }
        /// Every hwmon family is labelled `chip` (libsensors' chip name) and `sensor` (the feature's label, lowercased
        /// to `[a-z0-9_]`).
        public static let temperature = hwmon("hwmon_temperature_celsius", .gauge, "Temperature of a node hwmon sensor (libsensors).", unit: "celsius")
        /// libsensors `power*_average`, else `power*_input`.
        public static let power = hwmon("hwmon_power_watts", .gauge, "Power of a node hwmon sensor (average, else input).", unit: "watts")
        /// libsensors `energy*_input`.
        public static let energy = hwmon("hwmon_energy_joules", .counter, "Cumulative energy of a node hwmon sensor.", unit: "joules")
        /// libsensors `fan*_input`.
        public static let fan = hwmon("hwmon_fan_speed_rpm", .gauge, "Fan speed of a node hwmon sensor in revolutions per minute.")
        /// libsensors `in*_input`.
        public static let voltage = hwmon("hwmon_voltage_volts", .gauge, "Voltage of a node hwmon sensor.", unit: "volts")
        /// libsensors `curr*_input`.
        public static let current = hwmon("hwmon_current_amperes", .gauge, "Current of a node hwmon sensor.", unit: "amperes")

        /// The hwmon families, each once; part of ``Families/all``.
        public static let all = [temperature, power, energy, fan, voltage, current]
    }

    /// The exporter's own health: what a dashboard or alert needs to trust the rest.
    public enum Exporter {
        private static let target = [SchemaLabel.namespace, SchemaLabel.pod]
        /// `version` is the exporter's own version string.
        public static let build = exporter("accel_exporter_build", .info, "Build information of accel-exporter; value 1.", ["version"])
        /// One failing collector never fails a scrape: it shows here as 0.
        public static let collectorSuccess = exporter("accel_exporter_collector_success", .gauge, "1 if the collector's last sample succeeded, else 0.", ["collector"])
        public static let collectorDuration = exporter("accel_exporter_collector_duration_seconds", .gauge, "Time the collector's last sample took.", unit: "seconds", ["collector"])
        public static let sampleDuration = exporter("accel_exporter_sample_duration_seconds", .gauge, "Time the last sample tick took, all collectors together.", unit: "seconds")
        public static let lastSampleTimestamp = exporter("accel_exporter_last_sample_timestamp_seconds", .gauge, "When the sample tick these values come from began, in seconds since the Unix epoch.", unit: "seconds")
        public static let samples = exporter("accel_exporter_samples", .counter, "Sample ticks completed since the exporter started.")
        /// `format`: `text` or `openmetrics`.
        public static let scrapes = exporter("accel_exporter_scrapes", .counter, "Scrapes of the metrics endpoint served, by format.", ["format"])
        public static let attributionUp = exporter("accel_exporter_attribution_up", .gauge, "1 while pod attribution is served from a current (or recent enough) kubelet pod-resources List, 0 when it was dropped.")
        /// `source`: `device_plugin` or `dra`.
        public static let attributionUnmatchedDevices = exporter("accel_exporter_attribution_unmatched_devices", .gauge, "Device-plugin ids and DRA devices in the last pod-resources List that named no known accelerator.", ["source"])
        public static let attributionSkippedProcesses = exporter("accel_exporter_attribution_skipped_processes", .gauge, "Per-process usage records left out of per-pod shares in the last tick, by reason.", ["reason"])
        public static let attributionSharedWithoutProcessData = exporter("accel_exporter_attribution_shared_without_process_data", .gauge, "Shared accelerators whose per-pod series are absent because no per-process usage was available.")
        public static let inferenceRejectedSeries = exporter("accel_exporter_inference_rejected_series", .gauge, "Model-server series refused in the last scrape (malformed histograms, out-of-range values, duplicates).", target)
        public static let inferenceTargetUp = exporter("accel_exporter_inference_target_up", .gauge, "1 if the model server's last scrape and parse succeeded, else 0.", target)
        public static let inferenceTargetScrapeDuration = exporter("accel_exporter_inference_target_scrape_duration_seconds", .gauge, "Time the model server's last scrape took.", unit: "seconds", target)
        public static let inferenceTargetDownReason = exporter("accel_exporter_inference_target_down_reason", .gauge, "1 while a model server or workload target is down, with why: timeout, connect, too_large, too_many_models, protocol, http_status, refused or configuration.", target + ["reason"])
        public static let workloadTargetUp = exporter("accel_exporter_workload_target_up", .gauge, "1 if the pod's last scrape for the families its accelmetrics.io/metrics annotation names succeeded and none was dropped, else 0.", target)
        public static let workloadFamiliesDropped = exporter("accel_exporter_workload_families_dropped", .gauge, "Families a pod named in accelmetrics.io/metrics that the last scrape did not export, by reason.", target + ["reason"])
        /// `address`: the polled libtpu endpoint.
        public static let tpuRuntimeUp = exporter("accel_exporter_tpu_runtime_up", .gauge, "1 while the libtpu runtime-metrics endpoint answered its last poll, 0 when no workload listens there or it fails.", ["address"])

        public static let otlpExports = exporter("accel_exporter_otlp_exports", .counter, "OTLP push attempts by outcome: success, retry (a retryable failure; the push stays queued), failure (refused; dropped) or dropped (pushed out of the full queue, or queued at shutdown).", ["result"])

        /// The exporter families, each once; part of ``Families/all``.
        public static let all = [
            build, collectorSuccess, collectorDuration, sampleDuration, lastSampleTimestamp, samples, scrapes, attributionUp,
            attributionUnmatchedDevices, attributionSkippedProcesses, attributionSharedWithoutProcessData,
            inferenceRejectedSeries, inferenceTargetUp, inferenceTargetScrapeDuration, inferenceTargetDownReason, workloadTargetUp,
            workloadFamiliesDropped, tpuRuntimeUp, otlpExports,
        ]
    }

    /// `process_*`, as Prometheus' client libraries write them; both programs export them.
    public enum Process {
        private static func process(_ name: String, _ kind: MetricFamily.Kind, _ help: String, unit: String? = nil) -> FamilyDefinition {
            FamilyDefinition(name, kind, help, unit: unit, group: .process, labels: [])
        }
        public static let startTime = process("process_start_time_seconds", .gauge, "Start time of the process since the Unix epoch.", unit: "seconds")
        public static let cpu = process("process_cpu_seconds", .counter, "User and system CPU time spent.", unit: "seconds")
        public static let residentMemory = process("process_resident_memory_bytes", .gauge, "Resident memory size.", unit: "bytes")
        public static let virtualMemory = process("process_virtual_memory_bytes", .gauge, "Virtual memory size.", unit: "bytes")
        public static let openFDs = process("process_open_fds", .gauge, "Open file descriptors.")

        /// The process families, each once; part of ``Families/all``.
        public static let all = [startTime, cpu, residentMemory, virtualMemory, openFDs]
    }

    /// Every family, each once.
    public static let all: [FamilyDefinition] = Device.all + Pod.all + Inference.all + Hwmon.all + Exporter.all + Process.all

    /// A family by its name (`accelerator_up`, or a sample name such as `accelerator_errors_total`).
    public static func named(_ name: String) -> FamilyDefinition? { byName[name] }

    private static let byName: [String: FamilyDefinition] = {
        var out: [String: FamilyDefinition] = [:]
        for family in all {
            out[family.name] = family
            for sample in family.sampleNames { out[sample] = family }
        }
        return out
    }()
}
