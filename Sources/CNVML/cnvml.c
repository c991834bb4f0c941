// Resolves NVML's entry points at run time. The exporter binary never links libnvidia-ml (a test checks its
// NEEDED entries), so a node without the NVIDIA driver runs every other collector unchanged.
#include "cnvml.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

// Each member, the names to try in order (newest first) and where the name found is recorded.
typedef struct {
    size_t offset;
    const char *names[3];
    size_t nameOffset;  // (size_t)-1: no *_name member
} Entry;

#define NONAME ((size_t)-1)
#define ONE(member) { offsetof(CNVMLFunctions, member), { #member, NULL, NULL }, NONAME }

static const Entry entries[] = {
    ONE(nvmlInit_v2),
    ONE(nvmlShutdown),
    ONE(nvmlErrorString),
    ONE(nvmlSystemGetDriverVersion),
    ONE(nvmlSystemGetCudaDriverVersion_v2),
    ONE(nvmlDeviceGetCount_v2),
    ONE(nvmlDeviceGetHandleByIndex_v2),
    ONE(nvmlDeviceGetUUID),
    ONE(nvmlDeviceGetName),
    ONE(nvmlDeviceGetSerial),
    ONE(nvmlDeviceGetMinorNumber),
    ONE(nvmlDeviceGetVbiosVersion),
    ONE(nvmlDeviceGetPciInfo_v3),
    ONE(nvmlDeviceGetUtilizationRates),
    ONE(nvmlDeviceGetMemoryInfo),
    ONE(nvmlDeviceGetMemoryInfo_v2),
    ONE(nvmlDeviceGetTemperature),
    ONE(nvmlDeviceGetPowerUsage),
    ONE(nvmlDeviceGetEnforcedPowerLimit),
    ONE(nvmlDeviceGetTotalEnergyConsumption),
    ONE(nvmlDeviceGetClockInfo),
    ONE(nvmlDeviceGetPcieThroughput),
    ONE(nvmlDeviceGetCurrPcieLinkGeneration),
    ONE(nvmlDeviceGetCurrPcieLinkWidth),
    ONE(nvmlDeviceGetFanSpeed),
    ONE(nvmlDeviceGetPerformanceState),
    { offsetof(CNVMLFunctions, nvmlDeviceGetCurrentClocksEventReasons),
      { "nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetCurrentClocksThrottleReasons", NULL },
      offsetof(CNVMLFunctions, nvmlDeviceGetCurrentClocksEventReasons_name) },
    ONE(nvmlDeviceGetTotalEccErrors),
    ONE(nvmlDeviceGetFieldValues),
    { offsetof(CNVMLFunctions, nvmlDeviceGetComputeRunningProcesses),
      { "nvmlDeviceGetComputeRunningProcesses_v3", "nvmlDeviceGetComputeRunningProcesses_v2", NULL },
      offsetof(CNVMLFunctions, nvmlDeviceGetComputeRunningProcesses_name) },
    { offsetof(CNVMLFunctions, nvmlDeviceGetMPSComputeRunningProcesses),
      { "nvmlDeviceGetMPSComputeRunningProcesses_v3", "nvmlDeviceGetMPSComputeRunningProcesses_v2", NULL },
      offsetof(CNVMLFunctions, nvmlDeviceGetMPSComputeRunningProcesses_name) },
    ONE(nvmlDeviceGetProcessUtilization),
    ONE(nvmlDeviceGetMigMode),
    ONE(nvmlDeviceGetMaxMigDeviceCount),
    ONE(nvmlDeviceGetMigDeviceHandleByIndex),
    ONE(nvmlDeviceGetGpuInstanceId),
    ONE(nvmlDeviceGetComputeInstanceId),
    ONE(nvmlDeviceGetDeviceHandleFromMigDeviceHandle),
    ONE(nvmlEventSetCreate),
    ONE(nvmlDeviceRegisterEvents),
    ONE(nvmlEventSetWait_v2),
    ONE(nvmlEventSetFree),
    ONE(nvmlDeviceGetNvLinkState),
    ONE(nvmlGpmQueryDeviceSupport),
    ONE(nvmlGpmSampleAlloc),
    ONE(nvmlGpmSampleFree),
    ONE(nvmlGpmSampleGet),
    ONE(nvmlGpmMigSampleGet),
    ONE(nvmlGpmMetricsGet),
};

// Layouts as pynvml's ctypes structures give them (x86-64 and aarch64 Linux): a mismatch here would make the driver
// write past a buffer or read garbage ids.
_Static_assert(sizeof(nvmlFieldValue_t) == 40, "nvmlFieldValue_t is 40 bytes");
_Static_assert(offsetof(nvmlFieldValue_t, scopeId) == 4, "scopeId follows fieldId");
_Static_assert(sizeof(nvmlGpmSupport_t) == 8, "nvmlGpmSupport_t is 8 bytes");
_Static_assert(sizeof(nvmlGpmMetric_t) == 40, "nvmlGpmMetric_t is 40 bytes");
_Static_assert(offsetof(nvmlGpmMetric_t, value) == 8, "nvmlGpmMetric_t.value at 8");
_Static_assert(offsetof(nvmlGpmMetricsGet_t, metrics) == 24, "metrics[] at 24");
_Static_assert(sizeof(nvmlGpmMetricsGet_t) == 24 + 40 * NVML_GPM_METRIC_MAX, "nvmlGpmMetricsGet_t size");

void *CNVML_open(const char *path, CNVMLFunctions *out, char *error, size_t errorSize) {
    memset(out, 0, sizeof *out);
    dlerror();
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
        const char *message = dlerror();
        if (error != NULL && errorSize > 0) {
            snprintf(error, errorSize, "%s", message != NULL ? message : "dlopen failed");
        }
        return NULL;
    }
    for (size_t i = 0; i < sizeof entries / sizeof entries[0]; i++) {
        const Entry *e = &entries[i];
        for (size_t n = 0; n < 3 && e->names[n] != NULL; n++) {
            void *symbol = dlsym(handle, e->names[n]);
            if (symbol == NULL) continue;
            memcpy((char *)out + e->offset, &symbol, sizeof symbol);
            if (e->nameOffset != NONAME) memcpy((char *)out + e->nameOffset, &e->names[n], sizeof(char *));
            break;
        }
    }
    return handle;
}

const char *CNVML_missingSymbol(const CNVMLFunctions *functions, size_t index) {
    size_t seen = 0;
    for (size_t i = 0; i < sizeof entries / sizeof entries[0]; i++) {
        void *symbol;
        memcpy(&symbol, (const char *)functions + entries[i].offset, sizeof symbol);
        if (symbol != NULL) continue;
        if (seen++ == index) return entries[i].names[0];
    }
    return NULL;
}
