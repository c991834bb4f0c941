// FakeNVML: a test double for libnvidia-ml.so.1 with NVML's real C entry points (the subset the exporter resolves,
// declared in Sources/CNVML/include/cnvml.h, plus nvmlInit and nvmlInitWithFlags for pynvml). Nothing is declared
// here: load the library with dlopen, as the exporter does, and resolve the NVML names.
//
// The simulated machine is the text file named by $FAKE_NVML_CONFIG. nvmlInit reads it (no variable or no file:
// NVML_ERROR_DRIVER_NOT_LOADED, as without a driver; a file that does not parse: NVML_ERROR_UNKNOWN with the error
// on stderr). Every call then stats it and re-reads it when its mtime, ctime, size or inode changed; a version that
// does not parse keeps the previous machine and prints one line (file:line: message) to stderr. Device handles
// are fixed slots (GPU index i is slot i; MIG devices have slots under their GPU), so they survive reloads, as do
// the XIDs already delivered and the `vary` counters.
//
// Format: one key and its values per line, tokens separated by whitespace, `#` starts a comment, blank lines are
// ignored. An unknown key or a bad number is an error.
//
// Global keys (before the first `device`):
//   driver_version 550.54.15      nvmlSystemGetDriverVersion
//   cuda_version 12040            nvmlSystemGetCudaDriverVersion_v2
//   vary 0|1                      1: values move with a per-GPU counter k (nvmlDeviceGetUtilizationRates calls)
//   init_fail CODE                nvmlInit returns CODE
//
// `device` starts a GPU block. A value key that a block omits makes its query NOT_SUPPORTED; the list keys
// (process, process_util, xid) default to empty lists (no processes: count 0; no samples: NOT_FOUND).
//   uuid GPU-…                    name NVIDIA H100 80GB HBM3 (rest of line)    serial … (rest of line)
//   vbios 96.00.99.00.01          pci 00000000:18:00.0 (busId; busIdLegacy 0000:18:00.0)
//   pci_device_id 0x233010de      pci_subsystem_id 0x16c110de (both optional, else 0)
//   utilization GPU% MEM%         memory TOTAL USED (bytes)      memory_reserved BYTES (_v2: used excludes it; else 0)
//   temperature C                 memory_temperature C (field 82)
//   power MW (also fields 185/186)  power_limit MW              energy MJ (also field 83)
//   clocks GRAPHICS SM MEM VIDEO  pcie_throughput TX RX (KB/s)  pcie_link GEN WIDTH      fan PERCENT
//   pstate N                      clocks_event_reasons MASK
//   ecc_volatile COR UNC (fields 3/4)   ecc_aggregate COR UNC (fields 5/6)   (and nvmlDeviceGetTotalEccErrors)
//   retired_pages SBE DBE PENDING (fields 29/30/31)   remapped_rows COR UNC PENDING FAILURE (fields 142..145)
//   pcie_replay N (field 94, returned as given, sentinels included)
//   mig_mode CURRENT [PENDING]    (MIG devices exist only while CURRENT is 1)
//   nvlinks COUNT TX_KIB RX_KIB   links 0..COUNT-1 active, each with these NVLink data counters (fields 138/139 per
//                                 link in scopeId; RAW 140/141 add 1/16 for overhead; `vary 1`: link L grows (L+1)
//                                 MiB per k). No nvlink lines: nvmlDeviceGetNvLinkState is NOT_SUPPORTED.
//   nvlink LINK ACTIVE [TX RX]    one link (overrides `nvlinks`); a link not described is INVALID_ARGUMENT
//   nvlink_errors CRC_FLIT CRC_DATA REPLAY RECOVERY (fields 38/45/52/59)
//   gpm_support 0|1               nvmlGpmQueryDeviceSupport's isSupportedDevice (key absent: 0, as on an A100)
//   gpm METRIC_ID VALUE           what nvmlGpmMetricsGet answers for that metric between two samples of the device
//                                 (percent, or MiB/s for *_PER_SEC ids); a metric not described is NOT_SUPPORTED.
//                                 `vary 1`: activities scale with the utilization at the newer sample, rates swing.
//   gpm_nvlink RX TX              MiB/s for every active link's GPM rate ids (62 + 2L / 63 + 2L; totals 60/61)
//   process PID USED_BYTES [mps]  process_util PID SM MEM ENC DEC     xid XID [GPU_INSTANCE COMPUTE_INSTANCE]
//   fail FUNCTION CODE            FUNCTION: an NVML name with or without its _vN suffix (without: every version),
//                                 `field:N` (that field id's per-entry return), `gpm:N` (that GPM metric's return
//                                 in nvmlGpmMetricsGet), or `*` (every call on the handle,
//                                 its MIG handles included, except nvmlDeviceGetHandleByIndex and
//                                 nvmlEventSetWait). CODE: NOT_SUPPORTED, GPU_IS_LOST, … or a number.
//                                 `fail nvmlEventSetWait CODE` on a registered GPU: waits return CODE (after 10 ms).
// `mig` (inside a device block) starts a MIG device block, ended by the next `mig` or `device`:
//   uuid MIG-…   name … (rest of line)   gpu_instance N   compute_instance N   memory TOTAL USED
//   process …    process_util …          fail …        gpm METRIC_ID VALUE (nvmlGpmMigSampleGet on the GPU with
//                                                      this gpu_instance; needs the GPU's gpm_support 1)
//
// GPM samples (nvmlGpmSampleAlloc/Free) record the device and an order; nvmlGpmMetricsGet takes two samples of the
// same device, the older as sample1, else INVALID_ARGUMENT, and at most 98 metrics (an R5xx driver's
// NVML_GPM_METRIC_MAX). fakeNvmlGpmSamplesAllocated() (not an NVML name) counts buffers not yet freed, for tests.
#ifndef FAKE_NVML_H
#define FAKE_NVML_H
#endif
