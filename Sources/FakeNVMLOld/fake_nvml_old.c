// The fake NVML as an old driver's library: nvmlDeviceGet{,MPS}ComputeRunningProcesses_v2 instead of _v3,
// nvmlDeviceGetCurrentClocksThrottleReasons instead of ...EventReasons, and no nvmlDeviceGetMemoryInfo_v2,
// nvmlDeviceGetFieldValues, nvmlSystemGetCudaDriverVersion_v2, nvmlDeviceGetTotalEnergyConsumption, MIG entry
// points or nvmlEventSetWait_v2.
#define FAKE_NVML_OLD_DRIVER 1
#include "../FakeNVML/fake_nvml.c"
