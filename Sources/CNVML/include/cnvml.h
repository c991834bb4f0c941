// NVML, declared but never linked: the exporter dlopen()s libnvidia-ml.so.1 at run time and resolves each symbol
// into CNVMLFunctions. Types and constants follow NVML's nvml.h as checked against pynvml.py (PyPI nvidia-ml-py
// 13.615.71); see ../shared/reference/hardware-interfaces.md §5. Only what the exporter calls is declared.
#ifndef CNVML_H
#define CNVML_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int nvmlReturn_t;
typedef struct nvmlDevice_st *nvmlDevice_t;
typedef struct nvmlEventSet_st *nvmlEventSet_t;
// An opaque GPM sample buffer (nvmlGpmSampleAlloc / nvmlGpmSampleFree).
typedef struct nvmlGpmSample_st *nvmlGpmSample_t;

enum {
    NVML_SUCCESS = 0,
    NVML_ERROR_UNINITIALIZED = 1,
    NVML_ERROR_INVALID_ARGUMENT = 2,
    NVML_ERROR_NOT_SUPPORTED = 3,
    NVML_ERROR_NO_PERMISSION = 4,
    NVML_ERROR_ALREADY_INITIALIZED = 5,
    NVML_ERROR_NOT_FOUND = 6,
    NVML_ERROR_INSUFFICIENT_SIZE = 7,
    NVML_ERROR_DRIVER_NOT_LOADED = 9,
    NVML_ERROR_TIMEOUT = 10,
    NVML_ERROR_LIBRARY_NOT_FOUND = 12,
    NVML_ERROR_FUNCTION_NOT_FOUND = 13,
    NVML_ERROR_GPU_IS_LOST = 15,
    NVML_ERROR_RESET_REQUIRED = 16,
    NVML_ERROR_NO_DATA = 21,
    NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25,
    NVML_ERROR_NOT_READY = 27,
    NVML_ERROR_GPU_NOT_FOUND = 28,
    NVML_ERROR_UNKNOWN = 999,
};

enum {
    NVML_DEVICE_UUID_V2_BUFFER_SIZE = 96,
    NVML_DEVICE_NAME_V2_BUFFER_SIZE = 96,
    NVML_DEVICE_SERIAL_BUFFER_SIZE = 30,
    NVML_DEVICE_VBIOS_VERSION_BUFFER_SIZE = 32,
    NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE = 80,
    NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE = 32,
    NVML_DEVICE_PCI_BUS_ID_BUFFER_V2_SIZE = 16,
};

// nvmlDeviceGetClockInfo clock types.
enum { NVML_CLOCK_GRAPHICS = 0, NVML_CLOCK_SM = 1, NVML_CLOCK_MEM = 2, NVML_CLOCK_VIDEO = 3 };
// nvmlDeviceGetTemperature sensor.
enum { NVML_TEMPERATURE_GPU = 0 };
// nvmlDeviceGetPcieThroughput counters (KB/s).
enum { NVML_PCIE_UTIL_TX_BYTES = 0, NVML_PCIE_UTIL_RX_BYTES = 1 };
// nvmlDeviceGetTotalEccErrors.
enum { NVML_MEMORY_ERROR_TYPE_CORRECTED = 0, NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 1 };
enum { NVML_VOLATILE_ECC = 0, NVML_AGGREGATE_ECC = 1 };
// nvmlDeviceGetMigMode.
enum { NVML_DEVICE_MIG_DISABLE = 0, NVML_DEVICE_MIG_ENABLE = 1 };
// nvmlDeviceGetPerformanceState: P0 (0) .. P15 (15); 32 = unknown.
enum { NVML_PSTATE_UNKNOWN = 32 };

// nvmlDeviceGetFieldValues field ids.
enum {
    NVML_FI_DEV_ECC_SBE_VOL_TOTAL = 3,
    NVML_FI_DEV_ECC_DBE_VOL_TOTAL = 4,
    NVML_FI_DEV_ECC_SBE_AGG_TOTAL = 5,
    NVML_FI_DEV_ECC_DBE_AGG_TOTAL = 6,
    NVML_FI_DEV_RETIRED_SBE = 29,
    NVML_FI_DEV_RETIRED_DBE = 30,
    NVML_FI_DEV_RETIRED_PENDING = 31,
    NVML_FI_DEV_MEMORY_TEMP = 82,
    NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION = 83,
    NVML_FI_DEV_PCIE_REPLAY_COUNTER = 94,
    NVML_FI_DEV_REMAPPED_COR = 142,
    NVML_FI_DEV_REMAPPED_UNC = 143,
    NVML_FI_DEV_REMAPPED_PENDING = 144,
    NVML_FI_DEV_REMAPPED_FAILURE = 145,
    NVML_FI_DEV_POWER_AVERAGE = 185,
    NVML_FI_DEV_POWER_INSTANT = 186,
    // NVLink error counters, summed over the device's links (pynvml: "total for all Lanes", its old word for links).
    NVML_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL = 38,
    NVML_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_TOTAL = 45,
    NVML_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL = 52,
    NVML_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL = 59,
    // NVLink throughput counters in KiB, per link: the link goes in nvmlFieldValue_t.scopeId. DATA excludes the
    // protocol overhead, RAW includes it.
    NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX = 138,
    NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_RX = 139,
    NVML_FI_DEV_NVLINK_THROUGHPUT_RAW_TX = 140,
    NVML_FI_DEV_NVLINK_THROUGHPUT_RAW_RX = 141,
};

// nvmlDeviceGetNvLinkState: links are numbered 0 ..< NVML_NVLINK_MAX_LINKS (36 in pynvml 13.x, fewer in older headers;
// a link the device does not have answers INVALID_ARGUMENT or NOT_SUPPORTED).
enum { NVML_NVLINK_MAX_LINKS = 36 };
enum { NVML_FEATURE_DISABLED = 0, NVML_FEATURE_ENABLED = 1 };

// GPU Performance Monitoring (Hopper and later). Metric ids as pynvml 13.615.71 defines them.
enum {
    NVML_GPM_METRIC_GRAPHICS_UTIL = 1,     // % of time any graphics/compute context was active
    NVML_GPM_METRIC_SM_UTIL = 2,           // % of SMs busy
    NVML_GPM_METRIC_SM_OCCUPANCY = 3,      // % of warps resident vs the theoretical maximum
    NVML_GPM_METRIC_INTEGER_UTIL = 4,
    NVML_GPM_METRIC_ANY_TENSOR_UTIL = 5,
    NVML_GPM_METRIC_DFMA_TENSOR_UTIL = 6,
    NVML_GPM_METRIC_HMMA_TENSOR_UTIL = 7,
    NVML_GPM_METRIC_DMMA_TENSOR_UTIL = 8,
    NVML_GPM_METRIC_IMMA_TENSOR_UTIL = 9,
    NVML_GPM_METRIC_DRAM_BW_UTIL = 10,     // % of the theoretical DRAM bandwidth
    NVML_GPM_METRIC_FP64_UTIL = 11,
    NVML_GPM_METRIC_FP32_UTIL = 12,
    NVML_GPM_METRIC_FP16_UTIL = 13,
    NVML_GPM_METRIC_PCIE_TX_PER_SEC = 20,  // header: MiB/s
    NVML_GPM_METRIC_PCIE_RX_PER_SEC = 21,
    NVML_GPM_METRIC_NVLINK_TOTAL_RX_PER_SEC = 60,
    NVML_GPM_METRIC_NVLINK_TOTAL_TX_PER_SEC = 61,
    // Link L (0..17): RX is 62 + 2L, TX is 63 + 2L. Links 18..35 have ids of their own (212..247).
    NVML_GPM_METRIC_NVLINK_L0_RX_PER_SEC = 62,
    NVML_GPM_METRIC_NVLINK_L0_TX_PER_SEC = 63,
    NVML_GPM_METRIC_NVLINK_L17_TX_PER_SEC = 97,
    NVML_GPM_METRIC_NVLINK_L18_RX_PER_SEC = 212,
    // One more than the largest id. It grew between headers with the struct version unchanged (98 in R5xx headers,
    // 477 here): the array is sized by it, but only the first numMetrics slots are read or written.
    NVML_GPM_METRIC_MAX = 477,
};
enum { NVML_GPM_METRICS_GET_VERSION = 1, NVML_GPM_SUPPORT_VERSION = 1 };


// nvmlFieldValue_t.valueType.
enum {
    NVML_VALUE_TYPE_DOUBLE = 0,
    NVML_VALUE_TYPE_UNSIGNED_INT = 1,
    NVML_VALUE_TYPE_UNSIGNED_LONG = 2,
    NVML_VALUE_TYPE_UNSIGNED_LONG_LONG = 3,
    NVML_VALUE_TYPE_SIGNED_LONG_LONG = 4,
    NVML_VALUE_TYPE_SIGNED_INT = 5,
    NVML_VALUE_TYPE_UNSIGNED_SHORT = 6,
};

// Event types for nvmlDeviceRegisterEvents.
#define nvmlEventTypeXidCriticalError 0x0000000000000008ULL

typedef struct { unsigned int gpu; unsigned int memory; } nvmlUtilization_t;
typedef struct { unsigned long long total, free, used; } nvmlMemory_t;
// version must be nvmlMemory_v2 (sizeof | 2 << 24 = 0x02000028).
typedef struct { unsigned int version; unsigned long long total, reserved, free, used; } nvmlMemory_v2_t;
#define nvmlMemory_v2 ((unsigned int)(sizeof(nvmlMemory_v2_t) | (2u << 24)))

typedef struct {
    char busIdLegacy[NVML_DEVICE_PCI_BUS_ID_BUFFER_V2_SIZE];
    unsigned int domain, bus, device, pciDeviceId, pciSubSystemId;
    char busId[NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE];
} nvmlPciInfo_t;

// The layout behind nvmlDeviceGet{Compute,MPSCompute}RunningProcesses_v2 and _v3.
typedef struct {
    unsigned int pid;
    unsigned long long usedGpuMemory;
    unsigned int gpuInstanceId, computeInstanceId;
} nvmlProcessInfo_t;

typedef struct {
    unsigned int pid;
    unsigned long long timeStamp;  // CPU timestamp, microseconds
    unsigned int smUtil, memUtil, encUtil, decUtil;
} nvmlProcessUtilizationSample_t;

typedef union {
    double dVal;
    unsigned int uiVal;
    unsigned long ulVal;
    unsigned long long ullVal;
    signed long long sllVal;
    signed int siVal;
    unsigned short usVal;
} nvmlValue_t;

typedef struct {
    unsigned int fieldId;
    unsigned int scopeId;
    long long timestamp;
    long long latencyUsec;
    int valueType;
    nvmlReturn_t nvmlReturn;
    nvmlValue_t value;
} nvmlFieldValue_t;

typedef struct {
    nvmlDevice_t device;
    unsigned long long eventType;
    unsigned long long eventData;  // the XID for XidCriticalError
    unsigned int gpuInstanceId, computeInstanceId;
} nvmlEventData_t;

typedef struct {
    unsigned int version;           // NVML_GPM_SUPPORT_VERSION
    unsigned int isSupportedDevice; // 0 before Hopper
} nvmlGpmSupport_t;

typedef struct {
    const char *shortName;
    const char *longName;
    const char *unit;
} nvmlGpmMetricInfo_t;

typedef struct {
    unsigned int metricId;          // in: NVML_GPM_METRIC_*
    nvmlReturn_t nvmlReturn;        // out: this metric's own result
    double value;                   // out: the average between sample1 and sample2
    nvmlGpmMetricInfo_t metricInfo; // out: static strings owned by NVML
} nvmlGpmMetric_t;

typedef struct {
    unsigned int version;           // NVML_GPM_METRICS_GET_VERSION
    unsigned int numMetrics;        // slots of metrics[] in use
    nvmlGpmSample_t sample1;        // the older sample
    nvmlGpmSample_t sample2;        // the newer sample
    nvmlGpmMetric_t metrics[NVML_GPM_METRIC_MAX];
} nvmlGpmMetricsGet_t;

/// Slot `index` of a metrics request (Swift sees `metrics` as a 477-element tuple; this keeps it out of Swift).
static inline nvmlGpmMetric_t *CNVML_gpmMetric(nvmlGpmMetricsGet_t *get, unsigned int index) {
    return &get->metrics[index];
}

// Every NVML entry point the exporter uses, resolved with dlsym. A NULL member was not found in the library.
// Where NVML has versioned names, the loader stores the newest one it finds with this signature and records the
// name it used in the matching *_name member (e.g. nvmlDeviceGetComputeRunningProcesses_v3, else _v2).
typedef struct CNVMLFunctions {
    nvmlReturn_t (*nvmlInit_v2)(void);
    nvmlReturn_t (*nvmlShutdown)(void);
    const char *(*nvmlErrorString)(nvmlReturn_t);
    nvmlReturn_t (*nvmlSystemGetDriverVersion)(char *, unsigned int);
    nvmlReturn_t (*nvmlSystemGetCudaDriverVersion_v2)(int *);
    nvmlReturn_t (*nvmlDeviceGetCount_v2)(unsigned int *);
    nvmlReturn_t (*nvmlDeviceGetHandleByIndex_v2)(unsigned int, nvmlDevice_t *);
    nvmlReturn_t (*nvmlDeviceGetUUID)(nvmlDevice_t, char *, unsigned int);
    nvmlReturn_t (*nvmlDeviceGetName)(nvmlDevice_t, char *, unsigned int);
    nvmlReturn_t (*nvmlDeviceGetSerial)(nvmlDevice_t, char *, unsigned int);
    nvmlReturn_t (*nvmlDeviceGetMinorNumber)(nvmlDevice_t, unsigned int *);
    nvmlReturn_t (*nvmlDeviceGetVbiosVersion)(nvmlDevice_t, char *, unsigned int);
    nvmlReturn_t (*nvmlDeviceGetPciInfo_v3)(nvmlDevice_t, nvmlPciInfo_t *);
    nvmlReturn_t (*nvmlDeviceGetUtilizationRates)(nvmlDevice_t, nvmlUtilization_t *);
    nvmlReturn_t (*nvmlDeviceGetMemoryInfo)(nvmlDevice_t, nvmlMemory_t *);
    nvmlReturn_t (*nvmlDeviceGetMemoryInfo_v2)(nvmlDevice_t, nvmlMemory_v2_t *);
    nvmlReturn_t (*nvmlDeviceGetTemperature)(nvmlDevice_t, int, unsigned int *);
    nvmlReturn_t (*nvmlDeviceGetPowerUsage)(nvmlDevice_t, unsigned int *);
    nvmlReturn_t (*nvmlDeviceGetEnforcedPowerLimit)(nvmlDevice_t, unsigned int *);
    nvmlReturn_t (*nvmlDeviceGetTotalEnergyConsumption)(nvmlDevice_t, unsigned long long *);
    nvmlReturn_t (*nvmlDeviceGetClockInfo)(nvmlDevice_t, int, unsigned int *);
    nvmlReturn_t (*nvmlDeviceGetPcieThroughput)(nvmlDevice_t, int, unsigned int *);
    nvmlReturn_t (*nvmlDeviceGetCurrPcieLinkGeneration)(nvmlDevice_t, unsigned int *);
    nvmlReturn_t (*nvmlDeviceGetCurrPcieLinkWidth)(nvmlDevice_t, unsigned int *);
    nvmlReturn_t (*nvmlDeviceGetFanSpeed)(nvmlDevice_t, unsigned int *);
    nvmlReturn_t (*nvmlDeviceGetPerformanceState)(nvmlDevice_t, int *);
    // nvmlDeviceGetCurrentClocksEventReasons, else the older nvmlDeviceGetCurrentClocksThrottleReasons.
    nvmlReturn_t (*nvmlDeviceGetCurrentClocksEventReasons)(nvmlDevice_t, unsigned long long *);
    nvmlReturn_t (*nvmlDeviceGetTotalEccErrors)(nvmlDevice_t, int, int, unsigned long long *);
    nvmlReturn_t (*nvmlDeviceGetFieldValues)(nvmlDevice_t, int, nvmlFieldValue_t *);
    // _v3, else _v2 (same nvmlProcessInfo_t layout).
    nvmlReturn_t (*nvmlDeviceGetComputeRunningProcesses)(nvmlDevice_t, unsigned int *, nvmlProcessInfo_t *);
    nvmlReturn_t (*nvmlDeviceGetMPSComputeRunningProcesses)(nvmlDevice_t, unsigned int *, nvmlProcessInfo_t *);
    nvmlReturn_t (*nvmlDeviceGetProcessUtilization)(nvmlDevice_t, nvmlProcessUtilizationSample_t *, unsigned int *, unsigned long long);
    nvmlReturn_t (*nvmlDeviceGetMigMode)(nvmlDevice_t, unsigned int *, unsigned int *);
    nvmlReturn_t (*nvmlDeviceGetMaxMigDeviceCount)(nvmlDevice_t, unsigned int *);
    nvmlReturn_t (*nvmlDeviceGetMigDeviceHandleByIndex)(nvmlDevice_t, unsigned int, nvmlDevice_t *);
    nvmlReturn_t (*nvmlDeviceGetGpuInstanceId)(nvmlDevice_t, unsigned int *);
    nvmlReturn_t (*nvmlDeviceGetComputeInstanceId)(nvmlDevice_t, unsigned int *);
    nvmlReturn_t (*nvmlDeviceGetDeviceHandleFromMigDeviceHandle)(nvmlDevice_t, nvmlDevice_t *);
    nvmlReturn_t (*nvmlEventSetCreate)(nvmlEventSet_t *);
    nvmlReturn_t (*nvmlDeviceRegisterEvents)(nvmlDevice_t, unsigned long long, nvmlEventSet_t);
    nvmlReturn_t (*nvmlEventSetWait_v2)(nvmlEventSet_t, nvmlEventData_t *, unsigned int);
    nvmlReturn_t (*nvmlEventSetFree)(nvmlEventSet_t);
    nvmlReturn_t (*nvmlDeviceGetNvLinkState)(nvmlDevice_t, unsigned int, unsigned int *);
    nvmlReturn_t (*nvmlGpmQueryDeviceSupport)(nvmlDevice_t, nvmlGpmSupport_t *);
    nvmlReturn_t (*nvmlGpmSampleAlloc)(nvmlGpmSample_t *);
    nvmlReturn_t (*nvmlGpmSampleFree)(nvmlGpmSample_t);
    nvmlReturn_t (*nvmlGpmSampleGet)(nvmlDevice_t, nvmlGpmSample_t);
    // The GPU (not the MIG device handle) and the MIG device's GPU instance id.
    nvmlReturn_t (*nvmlGpmMigSampleGet)(nvmlDevice_t, unsigned int, nvmlGpmSample_t);
    nvmlReturn_t (*nvmlGpmMetricsGet)(nvmlGpmMetricsGet_t *);

    const char *nvmlDeviceGetCurrentClocksEventReasons_name;
    const char *nvmlDeviceGetComputeRunningProcesses_name;
    const char *nvmlDeviceGetMPSComputeRunningProcesses_name;
} CNVMLFunctions;

/// dlopen()s `path` (RTLD_NOW | RTLD_LOCAL) and resolves every member of `out` with dlsym. Returns the library
/// handle, or NULL with dlerror()'s text copied into `error` (NUL-terminated, at most `errorSize` bytes).
/// The library is never dlclose()d by the exporter: NVML keeps threads of its own.
void *CNVML_open(const char *path, CNVMLFunctions *out, char *error, size_t errorSize);

/// The names of the members CNVML_open could not resolve, one per call: index 0, 1, … until it returns NULL.
const char *CNVML_missingSymbol(const CNVMLFunctions *functions, size_t index);

#ifdef __cplusplus
}
#endif
#endif
