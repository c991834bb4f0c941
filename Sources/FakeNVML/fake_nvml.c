// A fake NVML (libnvidia-ml) for tests: NVML's real C entry points, answering from a machine described in the
// text file named by $FAKE_NVML_CONFIG (format: include/fake_nvml.h). The file is re-read whenever its
// mtime, size or inode changes, so tests edit the machine while the exporter runs. Types and constants come from
// the exporter's own declaration of NVML (Sources/CNVML/include/cnvml.h), so there is one definition of each.
//
// Compiled twice: as is (libFakeNVML.so, a current driver) and with FAKE_NVML_OLD_DRIVER defined
// (libFakeNVMLOld.so, an old driver: _v2 process queries, ...ThrottleReasons, and no memory _v2, field values,
// CUDA version _v2, energy, MIG, GPM or nvmlEventSetWait_v2).
//
// Every exported function takes one mutex; nvmlEventSetWait_v2 releases it while it sleeps.
#define _GNU_SOURCE
#include "../CNVML/include/cnvml.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define EXPORT __attribute__((visibility("default")))

enum {
    MAX_GPUS = 64,
    MAX_MIG_SLOTS = 8,
    MAX_MIGS = 7,  // nvmlDeviceGetMaxMigDeviceCount on a MIG-enabled GPU
    MAX_PROCS = 64,
    MAX_PUTIL = 64,
    MAX_FAILS = 32,
    MAX_XIDS = 256,
    MAX_GPM = 64,             // `gpm` lines per block
    FAKE_GPM_METRICS_MAX = 98, // numMetrics an R5xx driver accepts (its header's NVML_GPM_METRIC_MAX)
    TEXT = 128,
};
#define NO_INSTANCE 0xFFFFFFFFu  // gpuInstanceId/computeInstanceId outside MIG
#define EVENT_SET_MAGIC 0x4e564d4cu
#define ERROR_MEMORY 20  // NVML_ERROR_MEMORY (not in cnvml.h)

// ---------------------------------------------------------------------------------------------------------------
// The described machine.

typedef struct { unsigned pid; unsigned long long mem; int mps; } Proc;
typedef struct { unsigned pid, sm, mem, enc, dec; } ProcUtil;
// field >= 0: `field:N`; gpm >= 0: `gpm:N` (that GPM metric's own return); fn "*": every call.
typedef struct { char fn[64]; int field, gpm; nvmlReturn_t code; } Fail;
typedef struct { unsigned id; double value; } GpmValue;
typedef struct { int present, active; unsigned long long tx, rx; } NvLink;  // throughput counters in KiB
typedef struct { unsigned long long xid; unsigned gi, ci; } Xid;

// Which keys a block gave (absent: that query is NOT_SUPPORTED).
enum {
    H_UUID = 1u << 0, H_NAME = 1u << 1, H_SERIAL = 1u << 2, H_VBIOS = 1u << 3, H_PCI = 1u << 4,
    H_UTIL = 1u << 5, H_MEM = 1u << 6, H_MEMRES = 1u << 7, H_TEMP = 1u << 8, H_MEMTEMP = 1u << 9,
    H_POWER = 1u << 10, H_PLIMIT = 1u << 11, H_ENERGY = 1u << 12, H_CLOCKS = 1u << 13, H_PCIETP = 1u << 14,
    H_PCIELINK = 1u << 15, H_FAN = 1u << 16, H_PSTATE = 1u << 17, H_CER = 1u << 18, H_ECCVOL = 1u << 19,
    H_ECCAGG = 1u << 20, H_RETIRED = 1u << 21, H_REMAP = 1u << 22, H_REPLAY = 1u << 23, H_MIGMODE = 1u << 24,
    H_GI = 1u << 25, H_CI = 1u << 26, H_GPMSUP = 1u << 27, H_GPMNVL = 1u << 28, H_NVLERR = 1u << 29,
};

typedef struct {
    unsigned has;
    char uuid[TEXT], name[TEXT];
    unsigned gi, ci;
    unsigned long long memTotal, memUsed;
    int nprocs, nputil, nfails, ngpm;
    Proc procs[MAX_PROCS];
    ProcUtil putil[MAX_PUTIL];
    Fail fails[MAX_FAILS];
    GpmValue gpm[MAX_GPM];
} MigDesc;

typedef struct {
    unsigned has;
    char uuid[TEXT], name[TEXT], serial[TEXT], vbios[TEXT];
    char busId[NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE], busIdLegacy[NVML_DEVICE_PCI_BUS_ID_BUFFER_V2_SIZE];
    unsigned domain, bus, device, pciDeviceId, pciSubSystemId;
    unsigned utilGpu, utilMem;
    unsigned long long memTotal, memUsed, memReserved;
    unsigned temp, memTemp, power, powerLimit;
    unsigned long long energy;
    unsigned clocks[4];
    unsigned pcieTx, pcieRx, pcieGen, pcieWidth, fan;
    int pstate;
    unsigned long long eventReasons;
    unsigned long long eccVol[2], eccAgg[2];
    unsigned long long retired[2];
    unsigned retiredPending;
    unsigned long long remapped[2];
    unsigned remapPending, remapFailure;
    unsigned long long pcieReplay;
    unsigned migCurrent, migPending;
    unsigned gpmSupport;
    double gpmNvlinkRx, gpmNvlinkTx;  // MiB/s on each active link (`gpm_nvlink`)
    unsigned long long nvlinkErrors[4];  // CRC flit, CRC data, replay, recovery (fields 38/45/52/59)
    int nvlinkDescribed;  // any `nvlink`/`nvlinks` line: nvmlDeviceGetNvLinkState answers
    NvLink nvlinks[NVML_NVLINK_MAX_LINKS];
    int ngpm;
    GpmValue gpm[MAX_GPM];
    int nprocs, nputil, nfails, nxids, nmig;
    Proc procs[MAX_PROCS];
    ProcUtil putil[MAX_PUTIL];
    Fail fails[MAX_FAILS];
    Xid xids[MAX_XIDS];
    MigDesc mig[MAX_MIGS];
} GpuDesc;

typedef struct {
    int hasDriver, hasCuda, vary;
    char driver[TEXT];
    int cuda;
    nvmlReturn_t initFail;
    int ngpus;
    GpuDesc gpus[MAX_GPUS];
} Machine;

// ---------------------------------------------------------------------------------------------------------------
// Process state. Handles point into static arrays, so they stay valid across reloads; GPU index i is slot i.

struct nvmlDevice_st { int gpu, mig; };
struct nvmlEventSet_st {
    unsigned magic;
    unsigned long long types[MAX_GPUS];  // registered event types per GPU slot (0: not registered)
};

// XIDs delivered so far, counted per distinct (xid, gi, ci): an `xid` line is pending while the file holds more
// lines with its value than were delivered, wherever in the block a new line is inserted.
typedef struct { Xid xid; int count; } Delivered;

typedef struct {
    unsigned long long calls;  // k: nvmlDeviceGetUtilizationRates calls on this GPU (drives `vary 1`)
    int ndelivered;
    Delivered delivered[MAX_XIDS];
} SlotState;

static pthread_mutex_t g_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct nvmlDevice_st g_gpuHandles[MAX_GPUS];
static struct nvmlDevice_st g_migHandles[MAX_GPUS][MAX_MIG_SLOTS];
static SlotState g_slots[MAX_GPUS];
static int g_handlesReady;
static unsigned g_initCount;
static char g_path[4096];
static Machine *g_machine;
static unsigned long long g_loadedUs;  // wall clock when the current machine was read
static struct {
    int valid;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
} g_stamp;
static int g_statReported;

static unsigned long long wallMicros(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000ull;
}

__attribute__((unused)) static unsigned long long monoMillis(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000ull + (unsigned long long)ts.tv_nsec / 1000000ull;
}

__attribute__((unused)) static void sleepMillis(unsigned ms) {
    struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

static void setupHandles(void) {
    if (g_handlesReady) return;
    for (int i = 0; i < MAX_GPUS; i++) {
        g_gpuHandles[i] = (struct nvmlDevice_st){ i, -1 };
        for (int m = 0; m < MAX_MIG_SLOTS; m++) g_migHandles[i][m] = (struct nvmlDevice_st){ i, m };
    }
    g_handlesReady = 1;
}

// ---------------------------------------------------------------------------------------------------------------
// Return codes.

static const struct { const char *name; nvmlReturn_t code; const char *text; } kCodes[] = {
    { "SUCCESS", 0, "Success" },
    { "UNINITIALIZED", 1, "Uninitialized" },
    { "INVALID_ARGUMENT", 2, "Invalid Argument" },
    { "NOT_SUPPORTED", 3, "Not Supported" },
    { "NO_PERMISSION", 4, "Insufficient Permissions" },
    { "ALREADY_INITIALIZED", 5, "Already Initialized" },
    { "NOT_FOUND", 6, "Not Found" },
    { "INSUFFICIENT_SIZE", 7, "Insufficient Size" },
    { "INSUFFICIENT_POWER", 8, "Insufficient External Power" },
    { "DRIVER_NOT_LOADED", 9, "Driver Not Loaded" },
    { "TIMEOUT", 10, "Timeout" },
    { "IRQ_ISSUE", 11, "Interrupt Request Issue" },
    { "LIBRARY_NOT_FOUND", 12, "NVML Shared Library Not Found" },
    { "FUNCTION_NOT_FOUND", 13, "Function Not Found" },
    { "CORRUPTED_INFOROM", 14, "Corrupted infoROM" },
    { "GPU_IS_LOST", 15, "GPU is lost" },
    { "RESET_REQUIRED", 16, "GPU requires restart" },
    { "OPERATING_SYSTEM", 17, "The operating system has blocked the request." },
    { "LIB_RM_VERSION_MISMATCH", 18, "RM has detected an NVML/RM version mismatch." },
    { "IN_USE", 19, "In use by another client" },
    { "MEMORY", 20, "Insufficient Memory" },
    { "NO_DATA", 21, "No data" },
    { "VGPU_ECC_NOT_SUPPORTED", 22, "The requested vgpu operation is not available on target device, because ECC is enabled" },
    { "INSUFFICIENT_RESOURCES", 23, "Ran out of critical resources, other than memory" },
    { "FREQ_NOT_SUPPORTED", 24, "The requested frequency is not supported" },
    { "ARGUMENT_VERSION_MISMATCH", 25, "The provided version is invalid/unsupported" },
    { "DEPRECATED", 26, "The requested functionality has been deprecated" },
    { "NOT_READY", 27, "The system is not ready for the request" },
    { "GPU_NOT_FOUND", 28, "The GPU was not found" },
    { "INVALID_STATE", 29, "The operation is not valid in the current state" },
    { "RESET_TYPE_NOT_SUPPORTED", 30, "The reset type is not supported" },
    { "UNKNOWN", 999, "Unknown Error" },
};

// ---------------------------------------------------------------------------------------------------------------
// Names `fail` may use: every entry point with a device or event-set argument (version suffix optional).

static const char *const kFailable[] = {
    "nvmlDeviceGetHandleByIndex", "nvmlDeviceGetUUID", "nvmlDeviceGetName", "nvmlDeviceGetSerial",
    "nvmlDeviceGetMinorNumber",
    "nvmlDeviceGetVbiosVersion", "nvmlDeviceGetPciInfo", "nvmlDeviceGetUtilizationRates", "nvmlDeviceGetMemoryInfo",
    "nvmlDeviceGetTemperature", "nvmlDeviceGetPowerUsage", "nvmlDeviceGetEnforcedPowerLimit",
    "nvmlDeviceGetTotalEnergyConsumption", "nvmlDeviceGetClockInfo", "nvmlDeviceGetPcieThroughput",
    "nvmlDeviceGetCurrPcieLinkGeneration", "nvmlDeviceGetCurrPcieLinkWidth", "nvmlDeviceGetFanSpeed",
    "nvmlDeviceGetPerformanceState", "nvmlDeviceGetCurrentClocksEventReasons",
    "nvmlDeviceGetCurrentClocksThrottleReasons", "nvmlDeviceGetTotalEccErrors", "nvmlDeviceGetFieldValues",
    "nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetMPSComputeRunningProcesses",
    "nvmlDeviceGetProcessUtilization", "nvmlDeviceGetMigMode", "nvmlDeviceGetMaxMigDeviceCount",
    "nvmlDeviceGetMigDeviceHandleByIndex", "nvmlDeviceGetGpuInstanceId", "nvmlDeviceGetComputeInstanceId",
    "nvmlDeviceGetDeviceHandleFromMigDeviceHandle", "nvmlDeviceRegisterEvents", "nvmlEventSetWait",
    "nvmlDeviceGetNvLinkState", "nvmlGpmQueryDeviceSupport", "nvmlGpmSampleGet", "nvmlGpmMigSampleGet",
    "nvmlGpmMetricsGet",
};

// Length of `name` without a trailing _vN.
static size_t baseLength(const char *name) {
    size_t n = strlen(name), i = n;
    while (i > 0 && name[i - 1] >= '0' && name[i - 1] <= '9') i--;
    if (i < n && i >= 2 && name[i - 1] == 'v' && name[i - 2] == '_') return i - 2;
    return n;
}

// Does a `fail` name select the entry point `symbol`? Either its exact name or its name without the version.
static int failNames(const char *fail, const char *symbol) {
    if (symbol == NULL) return 0;
    if (strcmp(fail, symbol) == 0) return 1;
    size_t b = baseLength(symbol);
    return strlen(fail) == b && strncmp(fail, symbol, b) == 0;
}

// ---------------------------------------------------------------------------------------------------------------
// Parser.

typedef struct {
    const char *file;
    int line;
    char *error;
    size_t errorSize;
} Parse;

static int perr(Parse *p, const char *format, ...) __attribute__((format(printf, 2, 3)));
static int perr(Parse *p, const char *format, ...) {
    char message[512];
    va_list args;
    va_start(args, format);
    vsnprintf(message, sizeof message, format, args);
    va_end(args);
    snprintf(p->error, p->errorSize, "%s:%d: %s", p->file, p->line, message);
    return -1;
}

static int parseU64(Parse *p, const char *token, const char *what, unsigned long long *out) {
    if (token == NULL) return perr(p, "%s: missing number", what);
    if (token[0] == '-' || token[0] == '+' || token[0] == '\0') return perr(p, "%s: bad number '%s'", what, token);
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(token, &end, 0);
    if (errno != 0 || end == token || *end != '\0') return perr(p, "%s: bad number '%s'", what, token);
    *out = v;
    return 0;
}

static int parseU32(Parse *p, const char *token, const char *what, unsigned max, unsigned *out) {
    unsigned long long v;
    if (parseU64(p, token, what, &v) != 0) return -1;
    if (v > max) return perr(p, "%s: %s is out of range (at most %u)", what, token, max);
    *out = (unsigned)v;
    return 0;
}

static int parseCode(Parse *p, const char *token, nvmlReturn_t *out) {
    if (token == NULL) return perr(p, "fail: missing return code");
    const char *name = strncmp(token, "NVML_ERROR_", 11) == 0 ? token + 11 : token;
    for (size_t i = 0; i < sizeof kCodes / sizeof kCodes[0]; i++) {
        if (strcmp(kCodes[i].name, name) == 0) { *out = kCodes[i].code; return 0; }
    }
    if (token[0] >= '0' && token[0] <= '9') {
        unsigned v = 0;
        if (parseU32(p, token, "fail", INT_MAX, &v) != 0) return -1;
        *out = (nvmlReturn_t)v;
        return 0;
    }
    return perr(p, "fail: unknown return code '%s'", token);
}

static int parseFail(Parse *p, char **tok, int ntok, Fail *fails, int *nfails) {
    if (ntok != 3) return perr(p, "fail: expected 'fail FUNCTION CODE'");
    if (*nfails >= MAX_FAILS) return perr(p, "fail: too many fail lines in this block (at most %d)", MAX_FAILS);
    Fail f = { .field = -1, .gpm = -1 };
    const char *fn = tok[1];
    if (strncmp(fn, "field:", 6) == 0) {
        unsigned id = 0;
        if (parseU32(p, fn + 6, "fail field", INT_MAX, &id) != 0) return -1;
        f.field = (int)id;
    } else if (strncmp(fn, "gpm:", 4) == 0) {
        unsigned id = 0;
        if (parseU32(p, fn + 4, "fail gpm", INT_MAX, &id) != 0) return -1;
        f.gpm = (int)id;
    } else if (strcmp(fn, "*") != 0) {
        int known = 0;
        for (size_t i = 0; i < sizeof kFailable / sizeof kFailable[0] && !known; i++) {
            known = failNames(fn, kFailable[i]) || (strlen(kFailable[i]) == baseLength(fn) &&
                                                   strncmp(kFailable[i], fn, baseLength(fn)) == 0);
        }
        if (!known) return perr(p, "fail: unknown function '%s'", fn);
        if (strlen(fn) >= sizeof f.fn) return perr(p, "fail: function name too long");
    }
    snprintf(f.fn, sizeof f.fn, "%s", fn);
    if (parseCode(p, tok[2], &f.code) != 0) return -1;
    fails[(*nfails)++] = f;
    return 0;
}

static int parseProcess(Parse *p, char **tok, int ntok, Proc *procs, int *n) {
    if (ntok != 3 && ntok != 4) return perr(p, "process: expected 'process PID USED_BYTES [mps]'");
    if (*n >= MAX_PROCS) return perr(p, "process: too many processes in this block (at most %d)", MAX_PROCS);
    Proc pr = { 0 };
    if (parseU32(p, tok[1], "process pid", UINT_MAX, &pr.pid) != 0) return -1;
    if (parseU64(p, tok[2], "process memory", &pr.mem) != 0) return -1;
    if (ntok == 4) {
        if (strcmp(tok[3], "mps") != 0) return perr(p, "process: unknown flag '%s' (only 'mps')", tok[3]);
        pr.mps = 1;
    }
    procs[(*n)++] = pr;
    return 0;
}

static int parseProcessUtil(Parse *p, char **tok, int ntok, ProcUtil *u, int *n) {
    if (ntok != 6) return perr(p, "process_util: expected 'process_util PID SM MEM ENC DEC'");
    if (*n >= MAX_PUTIL) return perr(p, "process_util: too many samples in this block (at most %d)", MAX_PUTIL);
    ProcUtil s;
    if (parseU32(p, tok[1], "process_util pid", UINT_MAX, &s.pid) != 0 ||
        parseU32(p, tok[2], "process_util sm", 100, &s.sm) != 0 ||
        parseU32(p, tok[3], "process_util mem", 100, &s.mem) != 0 ||
        parseU32(p, tok[4], "process_util enc", 100, &s.enc) != 0 ||
        parseU32(p, tok[5], "process_util dec", 100, &s.dec) != 0) return -1;
    u[(*n)++] = s;
    return 0;
}

static int parseDouble(Parse *p, const char *token, const char *what, double *out) {
    if (token == NULL) return perr(p, "%s: missing number", what);
    char *end = NULL;
    errno = 0;
    double v = strtod(token, &end);
    if (errno != 0 || end == token || *end != '\0' || !(v >= 0) || v > 1e18) return perr(p, "%s: bad number '%s'", what, token);
    *out = v;
    return 0;
}

// `gpm ID VALUE`: what nvmlGpmMetricsGet answers for metric ID between two samples of this block's device.
static int parseGpm(Parse *p, char **tok, int ntok, GpmValue *values, int *n) {
    if (ntok != 3) return perr(p, "gpm: expected 'gpm METRIC_ID VALUE'");
    GpmValue g;
    if (parseU32(p, tok[1], "gpm metric id", NVML_GPM_METRIC_MAX - 1, &g.id) != 0 || parseDouble(p, tok[2], "gpm value", &g.value) != 0) return -1;
    if (g.id == 0) return perr(p, "gpm: metric id 0 does not exist");
    for (int i = 0; i < *n; i++) {
        if (values[i].id == g.id) { values[i].value = g.value; return 0; }
    }
    if (*n >= MAX_GPM) return perr(p, "gpm: too many gpm lines in this block (at most %d)", MAX_GPM);
    values[(*n)++] = g;
    return 0;
}

static int parseMemory(Parse *p, char **tok, int ntok, unsigned long long *total, unsigned long long *used) {
    if (ntok != 3) return perr(p, "memory: expected 'memory TOTAL USED' (bytes)");
    if (parseU64(p, tok[1], "memory total", total) != 0 || parseU64(p, tok[2], "memory used", used) != 0) return -1;
    if (*used > *total) return perr(p, "memory: used %llu exceeds total %llu", *used, *total);
    return 0;
}

static int copyText(Parse *p, const char *key, const char *rest, char *out) {
    if (rest == NULL || *rest == '\0') return perr(p, "%s: missing value", key);
    if (strlen(rest) >= TEXT) return perr(p, "%s: value too long", key);
    snprintf(out, TEXT, "%s", rest);
    return 0;
}

static int parsePci(Parse *p, const char *text, GpuDesc *g) {
    unsigned domain, bus, device, function;
    char tail;
    if (sscanf(text, "%x:%x:%x.%x%c", &domain, &bus, &device, &function, &tail) != 4 || bus > 0xff ||
        device > 0x1f || function > 7) {
        return perr(p, "pci: expected DOMAIN:BUS:DEVICE.FUNCTION, got '%s'", text);
    }
    g->domain = domain;
    g->bus = bus;
    g->device = device;
    snprintf(g->busId, sizeof g->busId, "%08X:%02X:%02X.%X", domain, bus, device, function);
    snprintf(g->busIdLegacy, sizeof g->busIdLegacy, "%04X:%02X:%02X.%X", domain & 0xffff, bus, device, function);
    return 0;
}

// Parses one GPU-block line. Returns 0, or -1 with the error set.
static int parseGpuKey(Parse *p, GpuDesc *g, char **tok, int ntok, const char *rest) {
    const char *k = tok[0];
#define NARGS(n, usage) do { if (ntok != (n) + 1) return perr(p, "%s: expected '%s'", k, usage); } while (0)
    if (strcmp(k, "uuid") == 0) {
        NARGS(1, "uuid GPU-...");
        if (copyText(p, k, tok[1], g->uuid) != 0) return -1;
        g->has |= H_UUID;
    } else if (strcmp(k, "name") == 0) {
        if (copyText(p, k, rest, g->name) != 0) return -1;
        g->has |= H_NAME;
    } else if (strcmp(k, "serial") == 0) {
        if (copyText(p, k, rest, g->serial) != 0) return -1;
        g->has |= H_SERIAL;
    } else if (strcmp(k, "vbios") == 0) {
        if (copyText(p, k, rest, g->vbios) != 0) return -1;
        g->has |= H_VBIOS;
    } else if (strcmp(k, "pci") == 0) {
        NARGS(1, "pci 00000000:18:00.0");
        if (parsePci(p, tok[1], g) != 0) return -1;
        g->has |= H_PCI;
    } else if (strcmp(k, "pci_device_id") == 0) {
        NARGS(1, "pci_device_id 0x233010de");
        if (parseU32(p, tok[1], k, UINT_MAX, &g->pciDeviceId) != 0) return -1;
    } else if (strcmp(k, "pci_subsystem_id") == 0) {
        NARGS(1, "pci_subsystem_id 0x16c110de");
        if (parseU32(p, tok[1], k, UINT_MAX, &g->pciSubSystemId) != 0) return -1;
    } else if (strcmp(k, "utilization") == 0) {
        NARGS(2, "utilization GPU% MEMORY%");
        if (parseU32(p, tok[1], k, 100, &g->utilGpu) != 0 || parseU32(p, tok[2], k, 100, &g->utilMem) != 0) return -1;
        g->has |= H_UTIL;
    } else if (strcmp(k, "memory") == 0) {
        if (parseMemory(p, tok, ntok, &g->memTotal, &g->memUsed) != 0) return -1;
        g->has |= H_MEM;
    } else if (strcmp(k, "memory_reserved") == 0) {
        NARGS(1, "memory_reserved BYTES");
        if (parseU64(p, tok[1], k, &g->memReserved) != 0) return -1;
        g->has |= H_MEMRES;
    } else if (strcmp(k, "temperature") == 0) {
        NARGS(1, "temperature C");
        if (parseU32(p, tok[1], k, 200, &g->temp) != 0) return -1;
        g->has |= H_TEMP;
    } else if (strcmp(k, "memory_temperature") == 0) {
        NARGS(1, "memory_temperature C");
        if (parseU32(p, tok[1], k, 200, &g->memTemp) != 0) return -1;
        g->has |= H_MEMTEMP;
    } else if (strcmp(k, "power") == 0) {
        NARGS(1, "power MILLIWATTS");
        if (parseU32(p, tok[1], k, UINT_MAX, &g->power) != 0) return -1;
        g->has |= H_POWER;
    } else if (strcmp(k, "power_limit") == 0) {
        NARGS(1, "power_limit MILLIWATTS");
        if (parseU32(p, tok[1], k, UINT_MAX, &g->powerLimit) != 0) return -1;
        g->has |= H_PLIMIT;
    } else if (strcmp(k, "energy") == 0) {
        NARGS(1, "energy MILLIJOULES");
        if (parseU64(p, tok[1], k, &g->energy) != 0) return -1;
        g->has |= H_ENERGY;
    } else if (strcmp(k, "clocks") == 0) {
        NARGS(4, "clocks GRAPHICS SM MEM VIDEO");
        for (int i = 0; i < 4; i++) if (parseU32(p, tok[i + 1], k, 100000, &g->clocks[i]) != 0) return -1;
        g->has |= H_CLOCKS;
    } else if (strcmp(k, "pcie_throughput") == 0) {
        NARGS(2, "pcie_throughput TX_KBPS RX_KBPS");
        if (parseU32(p, tok[1], k, UINT_MAX, &g->pcieTx) != 0 || parseU32(p, tok[2], k, UINT_MAX, &g->pcieRx) != 0) return -1;
        g->has |= H_PCIETP;
    } else if (strcmp(k, "pcie_link") == 0) {
        NARGS(2, "pcie_link GENERATION WIDTH");
        if (parseU32(p, tok[1], k, 32, &g->pcieGen) != 0 || parseU32(p, tok[2], k, 64, &g->pcieWidth) != 0) return -1;
        g->has |= H_PCIELINK;
    } else if (strcmp(k, "fan") == 0) {
        NARGS(1, "fan PERCENT");
        if (parseU32(p, tok[1], k, 100, &g->fan) != 0) return -1;
        g->has |= H_FAN;
    } else if (strcmp(k, "pstate") == 0) {
        NARGS(1, "pstate 0..15|32");
        unsigned v;
        if (parseU32(p, tok[1], k, 32, &v) != 0) return -1;
        if (v > 15 && v != 32) return perr(p, "pstate: %u is not 0..15 or 32 (unknown)", v);
        g->pstate = (int)v;
        g->has |= H_PSTATE;
    } else if (strcmp(k, "clocks_event_reasons") == 0) {
        NARGS(1, "clocks_event_reasons MASK");
        if (parseU64(p, tok[1], k, &g->eventReasons) != 0) return -1;
        g->has |= H_CER;
    } else if (strcmp(k, "ecc_volatile") == 0 || strcmp(k, "ecc_aggregate") == 0) {
        NARGS(2, "ecc_... CORRECTED UNCORRECTED");
        unsigned long long *c = k[4] == 'v' ? g->eccVol : g->eccAgg;
        if (parseU64(p, tok[1], k, &c[0]) != 0 || parseU64(p, tok[2], k, &c[1]) != 0) return -1;
        g->has |= k[4] == 'v' ? H_ECCVOL : H_ECCAGG;
    } else if (strcmp(k, "retired_pages") == 0) {
        NARGS(3, "retired_pages SBE DBE PENDING");
        if (parseU64(p, tok[1], k, &g->retired[0]) != 0 || parseU64(p, tok[2], k, &g->retired[1]) != 0 ||
            parseU32(p, tok[3], k, 1, &g->retiredPending) != 0) return -1;
        g->has |= H_RETIRED;
    } else if (strcmp(k, "remapped_rows") == 0) {
        NARGS(4, "remapped_rows CORRECTABLE UNCORRECTABLE PENDING FAILURE");
        if (parseU64(p, tok[1], k, &g->remapped[0]) != 0 || parseU64(p, tok[2], k, &g->remapped[1]) != 0 ||
            parseU32(p, tok[3], k, 1, &g->remapPending) != 0 || parseU32(p, tok[4], k, 1, &g->remapFailure) != 0) return -1;
        g->has |= H_REMAP;
    } else if (strcmp(k, "pcie_replay") == 0) {
        NARGS(1, "pcie_replay COUNT");
        if (parseU64(p, tok[1], k, &g->pcieReplay) != 0) return -1;
        g->has |= H_REPLAY;
    } else if (strcmp(k, "mig_mode") == 0) {
        if (ntok != 2 && ntok != 3) return perr(p, "mig_mode: expected 'mig_mode CURRENT [PENDING]' (0 or 1)");
        if (parseU32(p, tok[1], k, 1, &g->migCurrent) != 0) return -1;
        g->migPending = g->migCurrent;
        if (ntok == 3 && parseU32(p, tok[2], k, 1, &g->migPending) != 0) return -1;
        g->has |= H_MIGMODE;
    } else if (strcmp(k, "gpm_support") == 0) {
        NARGS(1, "gpm_support 0|1");
        if (parseU32(p, tok[1], k, 1, &g->gpmSupport) != 0) return -1;
        g->has |= H_GPMSUP;
    } else if (strcmp(k, "gpm") == 0) {
        return parseGpm(p, tok, ntok, g->gpm, &g->ngpm);
    } else if (strcmp(k, "gpm_nvlink") == 0) {
        NARGS(2, "gpm_nvlink RX_MIB_PER_S TX_MIB_PER_S");
        if (parseDouble(p, tok[1], k, &g->gpmNvlinkRx) != 0 || parseDouble(p, tok[2], k, &g->gpmNvlinkTx) != 0) return -1;
        g->has |= H_GPMNVL;
    } else if (strcmp(k, "nvlinks") == 0) {
        NARGS(3, "nvlinks COUNT TX_KIB RX_KIB");
        unsigned count;
        unsigned long long tx, rx;
        if (parseU32(p, tok[1], k, NVML_NVLINK_MAX_LINKS, &count) != 0 || parseU64(p, tok[2], k, &tx) != 0 ||
            parseU64(p, tok[3], k, &rx) != 0) return -1;
        for (unsigned l = 0; l < count; l++) g->nvlinks[l] = (NvLink){ 1, 1, tx, rx };
        g->nvlinkDescribed = 1;
    } else if (strcmp(k, "nvlink") == 0) {
        if (ntok != 3 && ntok != 5) return perr(p, "nvlink: expected 'nvlink LINK ACTIVE [TX_KIB RX_KIB]'");
        unsigned link, active;
        if (parseU32(p, tok[1], k, NVML_NVLINK_MAX_LINKS - 1, &link) != 0 || parseU32(p, tok[2], k, 1, &active) != 0) return -1;
        NvLink *l = &g->nvlinks[link];
        if (ntok == 5 && (parseU64(p, tok[3], k, &l->tx) != 0 || parseU64(p, tok[4], k, &l->rx) != 0)) return -1;
        l->present = 1;
        l->active = (int)active;
        g->nvlinkDescribed = 1;
    } else if (strcmp(k, "nvlink_errors") == 0) {
        NARGS(4, "nvlink_errors CRC_FLIT CRC_DATA REPLAY RECOVERY");
        for (int i = 0; i < 4; i++) if (parseU64(p, tok[i + 1], k, &g->nvlinkErrors[i]) != 0) return -1;
        g->has |= H_NVLERR;
    } else if (strcmp(k, "process") == 0) {
        return parseProcess(p, tok, ntok, g->procs, &g->nprocs);
    } else if (strcmp(k, "process_util") == 0) {
        return parseProcessUtil(p, tok, ntok, g->putil, &g->nputil);
    } else if (strcmp(k, "xid") == 0) {
        if (ntok != 2 && ntok != 4) return perr(p, "xid: expected 'xid XID [GPU_INSTANCE COMPUTE_INSTANCE]'");
        if (g->nxids >= MAX_XIDS) return perr(p, "xid: too many xid lines on this GPU (at most %d)", MAX_XIDS);
        Xid x = { 0, NO_INSTANCE, NO_INSTANCE };
        if (parseU64(p, tok[1], k, &x.xid) != 0) return -1;
        if (ntok == 4 && (parseU32(p, tok[2], k, UINT_MAX, &x.gi) != 0 || parseU32(p, tok[3], k, UINT_MAX, &x.ci) != 0)) return -1;
        g->xids[g->nxids++] = x;
    } else if (strcmp(k, "fail") == 0) {
        return parseFail(p, tok, ntok, g->fails, &g->nfails);
    } else {
        return perr(p, "unknown key '%s' in a device block", k);
    }
    return 0;
}

static int parseMigKey(Parse *p, MigDesc *m, char **tok, int ntok, const char *rest) {
    const char *k = tok[0];
    if (strcmp(k, "uuid") == 0) {
        NARGS(1, "uuid MIG-...");
        if (copyText(p, k, tok[1], m->uuid) != 0) return -1;
        m->has |= H_UUID;
    } else if (strcmp(k, "name") == 0) {
        if (copyText(p, k, rest, m->name) != 0) return -1;
        m->has |= H_NAME;
    } else if (strcmp(k, "gpu_instance") == 0) {
        NARGS(1, "gpu_instance N");
        if (parseU32(p, tok[1], k, UINT_MAX - 1, &m->gi) != 0) return -1;
        m->has |= H_GI;
    } else if (strcmp(k, "compute_instance") == 0) {
        NARGS(1, "compute_instance N");
        if (parseU32(p, tok[1], k, UINT_MAX - 1, &m->ci) != 0) return -1;
        m->has |= H_CI;
    } else if (strcmp(k, "memory") == 0) {
        if (parseMemory(p, tok, ntok, &m->memTotal, &m->memUsed) != 0) return -1;
        m->has |= H_MEM;
    } else if (strcmp(k, "gpm") == 0) {
        return parseGpm(p, tok, ntok, m->gpm, &m->ngpm);
    } else if (strcmp(k, "process") == 0) {
        return parseProcess(p, tok, ntok, m->procs, &m->nprocs);
    } else if (strcmp(k, "process_util") == 0) {
        return parseProcessUtil(p, tok, ntok, m->putil, &m->nputil);
    } else if (strcmp(k, "fail") == 0) {
        return parseFail(p, tok, ntok, m->fails, &m->nfails);
    } else {
        return perr(p, "unknown key '%s' in a mig block (uuid, name, gpu_instance, compute_instance, memory, gpm, "
                       "process, process_util, fail)", k);
    }
    return 0;
#undef NARGS
}

static int parseGlobalKey(Parse *p, Machine *m, char **tok, int ntok) {
    const char *k = tok[0];
    if (strcmp(k, "driver_version") == 0) {
        if (ntok != 2) return perr(p, "driver_version: expected 'driver_version 550.54.15'");
        if (strlen(tok[1]) >= NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE) return perr(p, "driver_version: too long");
        snprintf(m->driver, sizeof m->driver, "%s", tok[1]);
        m->hasDriver = 1;
    } else if (strcmp(k, "cuda_version") == 0) {
        unsigned v = 0;
        if (ntok != 2) return perr(p, "cuda_version: expected 'cuda_version 12040'");
        if (parseU32(p, tok[1], k, INT_MAX, &v) != 0) return -1;
        m->cuda = (int)v;
        m->hasCuda = 1;
    } else if (strcmp(k, "vary") == 0) {
        unsigned v = 0;
        if (ntok != 2) return perr(p, "vary: expected 'vary 0|1'");
        if (parseU32(p, tok[1], k, 1, &v) != 0) return -1;
        m->vary = (int)v;
    } else if (strcmp(k, "init_fail") == 0) {
        if (ntok != 2) return perr(p, "init_fail: expected 'init_fail CODE'");
        if (parseCode(p, tok[1], &m->initFail) != 0) return -1;
    } else {
        return perr(p, "unknown key '%s' before the first device block", k);
    }
    return 0;
}

static int isSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

// Parses `text` (NUL-terminated, modified in place) into `m` (zeroed by the caller).
static int parseMachine(Parse *p, char *text, Machine *m) {
    GpuDesc *gpu = NULL;
    MigDesc *mig = NULL;
    char *line = text;
    p->line = 0;
    while (line != NULL) {
        char *next = strchr(line, '\n');
        if (next != NULL) *next++ = '\0';
        p->line++;
        // Comments: '#' at the start or after whitespace.
        for (char *c = line; *c; c++) {
            if (*c == '#' && (c == line || isSpace(c[-1]))) { *c = '\0'; break; }
        }
        // Trim.
        while (isSpace(*line)) line++;
        size_t len = strlen(line);
        while (len > 0 && isSpace(line[len - 1])) line[--len] = '\0';
        if (len == 0) { line = next; continue; }

        // Rest of the line after the key (for values with spaces), then tokens.
        char *rest = line;
        while (*rest && !isSpace(*rest)) rest++;
        while (isSpace(*rest)) rest++;
        char restCopy[TEXT * 2];
        snprintf(restCopy, sizeof restCopy, "%s", rest);
        char *tok[16] = { 0 };
        int ntok = 0;
        for (char *save = NULL, *t = strtok_r(line, " \t\r\v\f", &save); t != NULL; t = strtok_r(NULL, " \t\r\v\f", &save)) {
            if (ntok == (int)(sizeof tok / sizeof tok[0])) return perr(p, "too many tokens");
            tok[ntok++] = t;
        }

        if (strcmp(tok[0], "device") == 0) {
            if (ntok != 1) return perr(p, "device: takes no arguments");
            if (m->ngpus >= MAX_GPUS) return perr(p, "too many devices (at most %d)", MAX_GPUS);
            gpu = &m->gpus[m->ngpus++];
            mig = NULL;
        } else if (strcmp(tok[0], "mig") == 0) {
            if (ntok != 1) return perr(p, "mig: takes no arguments");
            if (gpu == NULL) return perr(p, "mig: outside a device block");
            if (gpu->nmig >= MAX_MIGS) return perr(p, "too many mig blocks on one GPU (at most %d)", MAX_MIGS);
            mig = &gpu->mig[gpu->nmig++];
        } else if (mig != NULL) {
            if (parseMigKey(p, mig, tok, ntok, restCopy) != 0) return -1;
        } else if (gpu != NULL) {
            if (parseGpuKey(p, gpu, tok, ntok, restCopy) != 0) return -1;
        } else {
            if (parseGlobalKey(p, m, tok, ntok) != 0) return -1;
        }
        line = next;
    }
    for (int i = 0; i < m->ngpus; i++) {
        GpuDesc *g = &m->gpus[i];
        if ((g->has & H_MEMRES) && (g->has & H_MEM) && g->memReserved > g->memUsed) {
            snprintf(p->error, p->errorSize, "%s: device %d: memory_reserved exceeds memory used", p->file, i);
            return -1;
        }
    }
    return 0;
}

// Reads and parses the description. Returns a new machine, or NULL with the error set.
static Machine *loadMachine(const char *path, char *error, size_t errorSize) {
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(error, errorSize, "%s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 65536, len = 0;
    char *text = malloc(cap);
    for (size_t got; text != NULL && (got = fread(text + len, 1, cap - len - 1, f)) > 0;) {
        len += got;
        if (len + 1 == cap) {
            char *bigger = realloc(text, cap * 2);
            if (bigger == NULL) { free(text); text = NULL; break; }
            text = bigger;
            cap *= 2;
        }
    }
    fclose(f);
    if (text == NULL) {
        snprintf(error, errorSize, "%s: out of memory", path);
        return NULL;
    }
    text[len] = '\0';
    Machine *m = calloc(1, sizeof *m);
    if (m == NULL) {
        free(text);
        snprintf(error, errorSize, "%s: out of memory", path);
        return NULL;
    }
    Parse p = { path, 0, error, errorSize };
    int rc = parseMachine(&p, text, m);
    free(text);
    if (rc != 0) {
        free(m);
        return NULL;
    }
    return m;
}

static void recordStamp(const struct stat *st) {
    g_stamp.valid = 1;
    g_stamp.dev = st->st_dev;
    g_stamp.ino = st->st_ino;
    g_stamp.size = st->st_size;
    g_stamp.mtime = st->st_mtim;
    g_stamp.ctime = st->st_ctim;
}

static int sameStamp(const struct stat *st) {
    return g_stamp.valid && g_stamp.dev == st->st_dev && g_stamp.ino == st->st_ino && g_stamp.size == st->st_size &&
           g_stamp.mtime.tv_sec == st->st_mtim.tv_sec && g_stamp.mtime.tv_nsec == st->st_mtim.tv_nsec &&
           g_stamp.ctime.tv_sec == st->st_ctim.tv_sec && g_stamp.ctime.tv_nsec == st->st_ctim.tv_nsec;
}

static int sameXid(const Xid *a, const Xid *b) { return a->xid == b->xid && a->gi == b->gi && a->ci == b->ci; }

// How many of the first `upTo` xid lines of `g` carry the value `x`.
static int xidOccurrences(const GpuDesc *g, const Xid *x, int upTo) {
    int n = 0;
    for (int j = 0; j < upTo; j++) n += sameXid(&g->xids[j], x);
    return n;
}

// The delivered counter for `x` in slot `s`, created at 0 when new (NULL only if the table is full).
__attribute__((unused)) static Delivered *deliveredEntry(SlotState *s, const Xid *x) {
    for (int d = 0; d < s->ndelivered; d++) {
        if (sameXid(&s->delivered[d].xid, x)) return &s->delivered[d];
    }
    if (s->ndelivered == MAX_XIDS) return NULL;
    s->delivered[s->ndelivered] = (Delivered){ *x, 0 };
    return &s->delivered[s->ndelivered++];
}

static void installMachine(Machine *m) {
    free(g_machine);
    g_machine = m;
    g_loadedUs = wallMicros();
    // XIDs already delivered stay delivered; where lines were removed, lines added later are new again.
    for (int i = 0; i < MAX_GPUS; i++) {
        SlotState *s = &g_slots[i];
        for (int d = 0; d < s->ndelivered; d++) {
            int n = i < m->ngpus ? xidOccurrences(&m->gpus[i], &s->delivered[d].xid, m->gpus[i].nxids) : 0;
            if (s->delivered[d].count > n) s->delivered[d].count = n;
        }
        int kept = 0;
        for (int d = 0; d < s->ndelivered; d++) {
            if (s->delivered[d].count > 0) s->delivered[kept++] = s->delivered[d];
        }
        s->ndelivered = kept;
    }
}

// Called with the mutex held by every entry point: re-reads the description when the file changed.
static void refresh(void) {
    struct stat st;
    if (stat(g_path, &st) != 0) {
        if (!g_statReported) fprintf(stderr, "fake-nvml: %s: %s (keeping the previous machine)\n", g_path, strerror(errno));
        g_statReported = 1;
        return;
    }
    g_statReported = 0;
    if (sameStamp(&st)) return;
    recordStamp(&st);
    char error[600];
    Machine *m = loadMachine(g_path, error, sizeof error);
    if (m == NULL) {
        fprintf(stderr, "fake-nvml: %s (keeping the previous machine)\n", error);
        return;
    }
    installMachine(m);
}

// ---------------------------------------------------------------------------------------------------------------
// Device calls.

typedef struct {
    GpuDesc *g;
    MigDesc *m;     // non-NULL for a MIG device handle
    int index;      // GPU slot
    int migIndex;   // -1 for a GPU handle
    unsigned long long k;  // vary counter (0 unless `vary 1`)
} Ctx;

static nvmlReturn_t failCode(const Fail *fails, int n, const char *symbol, const char *alias, int star) {
    for (int i = 0; i < n; i++) {
        const Fail *f = &fails[i];
        if (f->field >= 0 || f->gpm >= 0) continue;
        if ((star && strcmp(f->fn, "*") == 0) || failNames(f->fn, symbol) || failNames(f->fn, alias)) return f->code;
    }
    return NVML_SUCCESS;
}

// Resolves a handle to the described device. NULL/foreign pointers, GPUs beyond the current count and MIG
// devices that no longer exist are INVALID_ARGUMENT.
static nvmlReturn_t resolve(nvmlDevice_t device, Ctx *c) {
    if (device == NULL || g_machine == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    uintptr_t p = (uintptr_t)device;
    uintptr_t gpus = (uintptr_t)&g_gpuHandles[0], migs = (uintptr_t)&g_migHandles[0][0];
    const size_t sz = sizeof(struct nvmlDevice_st);
    if (p >= gpus && p < gpus + sizeof g_gpuHandles && (p - gpus) % sz == 0) {
        c->index = (int)((p - gpus) / sz);
        c->migIndex = -1;
    } else if (p >= migs && p < migs + sizeof g_migHandles && (p - migs) % sz == 0) {
        size_t i = (p - migs) / sz;
        c->index = (int)(i / MAX_MIG_SLOTS);
        c->migIndex = (int)(i % MAX_MIG_SLOTS);
    } else {
        return NVML_ERROR_INVALID_ARGUMENT;
    }
    if (c->index >= g_machine->ngpus) return NVML_ERROR_INVALID_ARGUMENT;
    c->g = &g_machine->gpus[c->index];
    c->m = NULL;
    if (c->migIndex >= 0) {
        if (!(c->g->has & H_MIGMODE) || c->g->migCurrent != 1 || c->migIndex >= c->g->nmig) return NVML_ERROR_INVALID_ARGUMENT;
        c->m = &c->g->mig[c->migIndex];
    }
    c->k = g_machine->vary ? g_slots[c->index].calls : 0;
    return NVML_SUCCESS;
}

// Takes the mutex (always; the caller unlocks) and checks init, the handle and `fail` lines.
static nvmlReturn_t begin(Ctx *c, nvmlDevice_t device, const char *symbol, const char *alias) {
    pthread_mutex_lock(&g_mutex);
    if (g_initCount == 0) return NVML_ERROR_UNINITIALIZED;
    refresh();
    nvmlReturn_t r = resolve(device, c);
    if (r != NVML_SUCCESS) return r;
    if ((r = failCode(c->g->fails, c->g->nfails, "*", NULL, 1)) != NVML_SUCCESS) return r;
    if (c->m != NULL) return failCode(c->m->fails, c->m->nfails, symbol, alias, 1);
    return failCode(c->g->fails, c->g->nfails, symbol, alias, 0);
}

static nvmlReturn_t end(nvmlReturn_t r) {
    pthread_mutex_unlock(&g_mutex);
    return r;
}

static nvmlReturn_t putText(char *out, unsigned length, const char *text) {
    if (out == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    size_t n = strlen(text);
    if ((size_t)length < n + 1) return NVML_ERROR_INSUFFICIENT_SIZE;
    memcpy(out, text, n + 1);
    return NVML_SUCCESS;
}

// Values under `vary 1` (k = 0 otherwise: the described values).
static unsigned long long memUsed(const Ctx *c) {
    unsigned long long used = c->g->memUsed + (c->k % 16) * 1048576ull;
    return used > c->g->memTotal ? c->g->memTotal : used;
}
static unsigned powerNow(const Ctx *c) {
    unsigned long long w = (unsigned long long)c->g->power + (c->k % 50) * 1000ull;
    // Varied power stays under the enforced limit (unless the described value itself is above it).
    if ((c->g->has & H_PLIMIT) && w > c->g->powerLimit) w = c->g->power > c->g->powerLimit ? c->g->power : c->g->powerLimit;
    return w > UINT_MAX ? UINT_MAX : (unsigned)w;
}
__attribute__((unused)) static unsigned long long energyNow(const Ctx *c) { return c->g->energy + c->k * 100000ull; }
static unsigned tempNow(const Ctx *c, unsigned base) { return base + (unsigned)(c->k % 5); }
static unsigned clockNow(const Ctx *c, int type) {
    unsigned base = c->g->clocks[type];
    if (type != NVML_CLOCK_GRAPHICS && type != NVML_CLOCK_SM) return base;
    unsigned drop = (unsigned)(c->k % 3) * 15;
    return base > drop ? base - drop : 0;
}

#define NOT_ON_MIG(c) do { if ((c).m != NULL) return end(NVML_ERROR_NOT_SUPPORTED); } while (0)
#define NEED(ptr) do { if ((ptr) == NULL) return end(NVML_ERROR_INVALID_ARGUMENT); } while (0)
#define HAS(c, flag) do { if (!((c).g->has & (flag))) return end(NVML_ERROR_NOT_SUPPORTED); } while (0)
#define BEGIN(c, dev, symbol, alias) \
    Ctx c; \
    do { nvmlReturn_t r_ = begin(&c, dev, symbol, alias); if (r_ != NVML_SUCCESS) return end(r_); } while (0)

// ---------------------------------------------------------------------------------------------------------------
// Init and system.

static nvmlReturn_t initCommon(void) {
    pthread_mutex_lock(&g_mutex);
    setupHandles();
    if (g_initCount > 0) {
        g_initCount++;
        refresh();
        return end(NVML_SUCCESS);
    }
    const char *path = getenv("FAKE_NVML_CONFIG");
    if (path == NULL || *path == '\0' || strlen(path) >= sizeof g_path) return end(NVML_ERROR_DRIVER_NOT_LOADED);
    struct stat st;
    if (stat(path, &st) != 0) return end(NVML_ERROR_DRIVER_NOT_LOADED);
    char error[600];
    Machine *m = loadMachine(path, error, sizeof error);
    if (m == NULL) {
        fprintf(stderr, "fake-nvml: %s\n", error);
        return end(NVML_ERROR_UNKNOWN);
    }
    if (strcmp(path, g_path) != 0) {
        // Another machine: forget what was delivered and counted for the previous one.
        memset(g_slots, 0, sizeof g_slots);
        snprintf(g_path, sizeof g_path, "%s", path);
    }
    recordStamp(&st);
    g_statReported = 0;
    installMachine(m);
    if (m->initFail != NVML_SUCCESS) return end(m->initFail);
    g_initCount = 1;
    return end(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlInit_v2(void) { return initCommon(); }
EXPORT nvmlReturn_t nvmlInit(void) { return initCommon(); }
EXPORT nvmlReturn_t nvmlInitWithFlags(unsigned int flags) {
    (void)flags;
    return initCommon();
}

EXPORT nvmlReturn_t nvmlShutdown(void) {
    pthread_mutex_lock(&g_mutex);
    if (g_initCount == 0) return end(NVML_ERROR_UNINITIALIZED);
    g_initCount--;
    return end(NVML_SUCCESS);
}

EXPORT const char *nvmlErrorString(nvmlReturn_t result) {
    for (size_t i = 0; i < sizeof kCodes / sizeof kCodes[0]; i++) {
        if (kCodes[i].code == result) return kCodes[i].text;
    }
    return "Unknown Error";
}

static nvmlReturn_t beginSystem(void) {
    pthread_mutex_lock(&g_mutex);
    if (g_initCount == 0) return NVML_ERROR_UNINITIALIZED;
    refresh();
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length) {
    nvmlReturn_t r = beginSystem();
    if (r != NVML_SUCCESS) return end(r);
    NEED(version);
    if (!g_machine->hasDriver) return end(NVML_ERROR_NOT_SUPPORTED);
    return end(putText(version, length, g_machine->driver));
}

#ifndef FAKE_NVML_OLD_DRIVER
EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *cudaDriverVersion) {
    nvmlReturn_t r = beginSystem();
    if (r != NVML_SUCCESS) return end(r);
    NEED(cudaDriverVersion);
    if (!g_machine->hasCuda) return end(NVML_ERROR_NOT_SUPPORTED);
    *cudaDriverVersion = g_machine->cuda;
    return end(NVML_SUCCESS);
}
#endif

EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *deviceCount) {
    nvmlReturn_t r = beginSystem();
    if (r != NVML_SUCCESS) return end(r);
    NEED(deviceCount);
    *deviceCount = (unsigned)g_machine->ngpus;
    return end(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device) {
    nvmlReturn_t r = beginSystem();
    if (r != NVML_SUCCESS) return end(r);
    NEED(device);
    if (index >= (unsigned)g_machine->ngpus) return end(NVML_ERROR_INVALID_ARGUMENT);
    const GpuDesc *g = &g_machine->gpus[index];
    if ((r = failCode(g->fails, g->nfails, "nvmlDeviceGetHandleByIndex_v2", NULL, 0)) != NVML_SUCCESS) return end(r);
    *device = &g_gpuHandles[index];
    return end(NVML_SUCCESS);
}

// ---------------------------------------------------------------------------------------------------------------
// Identity.

EXPORT nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length) {
    BEGIN(c, device, "nvmlDeviceGetUUID", NULL);
    NEED(uuid);
    if (c.m != NULL) return end((c.m->has & H_UUID) ? putText(uuid, length, c.m->uuid) : NVML_ERROR_NOT_SUPPORTED);
    HAS(c, H_UUID);
    return end(putText(uuid, length, c.g->uuid));
}

EXPORT nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length) {
    BEGIN(c, device, "nvmlDeviceGetName", NULL);
    NEED(name);
    if (c.m != NULL) return end((c.m->has & H_NAME) ? putText(name, length, c.m->name) : NVML_ERROR_NOT_SUPPORTED);
    HAS(c, H_NAME);
    return end(putText(name, length, c.g->name));
}

EXPORT nvmlReturn_t nvmlDeviceGetSerial(nvmlDevice_t device, char *serial, unsigned int length) {
    BEGIN(c, device, "nvmlDeviceGetSerial", NULL);
    NEED(serial);
    NOT_ON_MIG(c);
    HAS(c, H_SERIAL);
    return end(putText(serial, length, c.g->serial));
}

// The GPU's /dev/nvidia<N> number: the slot index in the fake (on real nodes usually, not always, the index).
EXPORT nvmlReturn_t nvmlDeviceGetMinorNumber(nvmlDevice_t device, unsigned int *minorNumber) {
    BEGIN(c, device, "nvmlDeviceGetMinorNumber", NULL);
    NEED(minorNumber);
    NOT_ON_MIG(c);
    *minorNumber = (unsigned int)c.index;
    return end(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetVbiosVersion(nvmlDevice_t device, char *version, unsigned int length) {
    BEGIN(c, device, "nvmlDeviceGetVbiosVersion", NULL);
    NEED(version);
    NOT_ON_MIG(c);
    HAS(c, H_VBIOS);
    return end(putText(version, length, c.g->vbios));
}

EXPORT nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t device, nvmlPciInfo_t *pci) {
    BEGIN(c, device, "nvmlDeviceGetPciInfo_v3", NULL);
    NEED(pci);
    NOT_ON_MIG(c);
    HAS(c, H_PCI);
    memset(pci, 0, sizeof *pci);
    snprintf(pci->busIdLegacy, sizeof pci->busIdLegacy, "%s", c.g->busIdLegacy);
    snprintf(pci->busId, sizeof pci->busId, "%s", c.g->busId);
    pci->domain = c.g->domain;
    pci->bus = c.g->bus;
    pci->device = c.g->device;
    pci->pciDeviceId = c.g->pciDeviceId;
    pci->pciSubSystemId = c.g->pciSubSystemId;
    return end(NVML_SUCCESS);
}

// ---------------------------------------------------------------------------------------------------------------
// Readings.

EXPORT nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device, nvmlUtilization_t *utilization) {
    BEGIN(c, device, "nvmlDeviceGetUtilizationRates", NULL);
    if (c.m == NULL) g_slots[c.index].calls++;  // k for the next reading; this one uses the value before
    NEED(utilization);
    NOT_ON_MIG(c);
    // A MIG-enabled GPU has no single utilization figure.
    if ((c.g->has & H_MIGMODE) && c.g->migCurrent == 1) return end(NVML_ERROR_NOT_SUPPORTED);
    HAS(c, H_UTIL);
    utilization->gpu = (unsigned)((c.g->utilGpu + 7 * c.k) % 101);
    utilization->memory = (unsigned)((c.g->utilMem + 3 * c.k) % 101);
    return end(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory) {
    BEGIN(c, device, "nvmlDeviceGetMemoryInfo", NULL);
    NEED(memory);
    if (c.m != NULL) {
        if (!(c.m->has & H_MEM)) return end(NVML_ERROR_NOT_SUPPORTED);
        memory->total = c.m->memTotal;
        memory->used = c.m->memUsed;
        memory->free = c.m->memTotal - c.m->memUsed;
        return end(NVML_SUCCESS);
    }
    HAS(c, H_MEM);
    unsigned long long used = memUsed(&c);
    memory->total = c.g->memTotal;
    memory->used = used;
    memory->free = c.g->memTotal - used;
    return end(NVML_SUCCESS);
}

#ifndef FAKE_NVML_OLD_DRIVER
// v2 reports the driver's reservation separately: used excludes it, free is the same as v1's.
EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *memory) {
    BEGIN(c, device, "nvmlDeviceGetMemoryInfo_v2", NULL);
    NEED(memory);
    if (memory->version != nvmlMemory_v2) return end(NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
    unsigned long long total, used, reserved = 0;
    if (c.m != NULL) {
        if (!(c.m->has & H_MEM)) return end(NVML_ERROR_NOT_SUPPORTED);
        total = c.m->memTotal;
        used = c.m->memUsed;
    } else {
        HAS(c, H_MEM);
        total = c.g->memTotal;
        used = memUsed(&c);
        if (c.g->has & H_MEMRES) reserved = c.g->memReserved < used ? c.g->memReserved : used;
    }
    memory->total = total;
    memory->reserved = reserved;
    memory->used = used - reserved;
    memory->free = total - used;
    return end(NVML_SUCCESS);
}
#endif

EXPORT nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t device, int sensorType, unsigned int *temp) {
    BEGIN(c, device, "nvmlDeviceGetTemperature", NULL);
    NEED(temp);
    NOT_ON_MIG(c);
    if (sensorType != NVML_TEMPERATURE_GPU) return end(NVML_ERROR_INVALID_ARGUMENT);
    HAS(c, H_TEMP);
    *temp = tempNow(&c, c.g->temp);
    return end(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int *power) {
    BEGIN(c, device, "nvmlDeviceGetPowerUsage", NULL);
    NEED(power);
    NOT_ON_MIG(c);
    HAS(c, H_POWER);
    *power = powerNow(&c);
    return end(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t device, unsigned int *limit) {
    BEGIN(c, device, "nvmlDeviceGetEnforcedPowerLimit", NULL);
    NEED(limit);
    NOT_ON_MIG(c);
    HAS(c, H_PLIMIT);
    *limit = c.g->powerLimit;
    return end(NVML_SUCCESS);
}

#ifndef FAKE_NVML_OLD_DRIVER
EXPORT nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t device, unsigned long long *energy) {
    BEGIN(c, device, "nvmlDeviceGetTotalEnergyConsumption", NULL);
    NEED(energy);
    NOT_ON_MIG(c);
    HAS(c, H_ENERGY);
    *energy = energyNow(&c);
    return end(NVML_SUCCESS);
}
#endif

EXPORT nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t device, int type, unsigned int *clock) {
    BEGIN(c, device, "nvmlDeviceGetClockInfo", NULL);
    NEED(clock);
    NOT_ON_MIG(c);
    if (type < NVML_CLOCK_GRAPHICS || type > NVML_CLOCK_VIDEO) return end(NVML_ERROR_INVALID_ARGUMENT);
    HAS(c, H_CLOCKS);
    *clock = clockNow(&c, type);
    return end(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetPcieThroughput(nvmlDevice_t device, int counter, unsigned int *value) {
    BEGIN(c, device, "nvmlDeviceGetPcieThroughput", NULL);
    NEED(value);
    NOT_ON_MIG(c);
    if (counter != NVML_PCIE_UTIL_TX_BYTES && counter != NVML_PCIE_UTIL_RX_BYTES) return end(NVML_ERROR_INVALID_ARGUMENT);
    HAS(c, H_PCIETP);
    *value = counter == NVML_PCIE_UTIL_TX_BYTES ? c.g->pcieTx : c.g->pcieRx;
    return end(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetCurrPcieLinkGeneration(nvmlDevice_t device, unsigned int *generation) {
    BEGIN(c, device, "nvmlDeviceGetCurrPcieLinkGeneration", NULL);
    NEED(generation);
    NOT_ON_MIG(c);
    HAS(c, H_PCIELINK);
    *generation = c.g->pcieGen;
    return end(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetCurrPcieLinkWidth(nvmlDevice_t device, unsigned int *width) {
    BEGIN(c, device, "nvmlDeviceGetCurrPcieLinkWidth", NULL);
    NEED(width);
    NOT_ON_MIG(c);
    HAS(c, H_PCIELINK);
    *width = c.g->pcieWidth;
    return end(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetFanSpeed(nvmlDevice_t device, unsigned int *speed) {
    BEGIN(c, device, "nvmlDeviceGetFanSpeed", NULL);
    NEED(speed);
    NOT_ON_MIG(c);
    HAS(c, H_FAN);
    *speed = c.g->fan;
    return end(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetPerformanceState(nvmlDevice_t device, int *pState) {
    BEGIN(c, device, "nvmlDeviceGetPerformanceState", NULL);
    NEED(pState);
    NOT_ON_MIG(c);
    HAS(c, H_PSTATE);
    *pState = c.g->pstate;
    return end(NVML_SUCCESS);
}

// `fail` may name either spelling.
static nvmlReturn_t clocksEventReasons(nvmlDevice_t device, unsigned long long *reasons) {
    BEGIN(c, device, "nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetCurrentClocksThrottleReasons");
    NEED(reasons);
    NOT_ON_MIG(c);
    HAS(c, H_CER);
    *reasons = c.g->eventReasons;
    return end(NVML_SUCCESS);
}

#ifndef FAKE_NVML_OLD_DRIVER
EXPORT nvmlReturn_t nvmlDeviceGetCurrentClocksEventReasons(nvmlDevice_t device, unsigned long long *reasons) {
    return clocksEventReasons(device, reasons);
}
#else
EXPORT nvmlReturn_t nvmlDeviceGetCurrentClocksThrottleReasons(nvmlDevice_t device, unsigned long long *reasons) {
    return clocksEventReasons(device, reasons);
}
#endif

EXPORT nvmlReturn_t nvmlDeviceGetTotalEccErrors(nvmlDevice_t device, int errorType, int counterType,
                                                unsigned long long *eccCounts) {
    BEGIN(c, device, "nvmlDeviceGetTotalEccErrors", NULL);
    NEED(eccCounts);
    NOT_ON_MIG(c);
    if ((errorType != NVML_MEMORY_ERROR_TYPE_CORRECTED && errorType != NVML_MEMORY_ERROR_TYPE_UNCORRECTED) ||
        (counterType != NVML_VOLATILE_ECC && counterType != NVML_AGGREGATE_ECC)) {
        return end(NVML_ERROR_INVALID_ARGUMENT);
    }
    HAS(c, counterType == NVML_VOLATILE_ECC ? H_ECCVOL : H_ECCAGG);
    *eccCounts = (counterType == NVML_VOLATILE_ECC ? c.g->eccVol : c.g->eccAgg)[errorType];
    return end(NVML_SUCCESS);
}

#ifndef FAKE_NVML_OLD_DRIVER
// A link's data counter (KiB); under `vary 1` link L moves (L + 1) MiB per step of k.
static unsigned long long nvlinkKiB(const Ctx *c, unsigned link, int tx) {
    const NvLink *l = &c->g->nvlinks[link];
    return (tx ? l->tx : l->rx) + c->k * 1024ull * (link + 1);
}

static void fieldValue(const Ctx *c, nvmlFieldValue_t *v) {
    const GpuDesc *g = c->g;
    unsigned has = c->m != NULL ? 0 : g->has;  // no field is answered for a MIG device
    int ull = 1;
    unsigned long long value = 0;
    nvmlReturn_t r = NVML_SUCCESS;
    switch (v->fieldId) {
    case NVML_FI_DEV_ECC_SBE_VOL_TOTAL: case NVML_FI_DEV_ECC_DBE_VOL_TOTAL:
        if (!(has & H_ECCVOL)) r = NVML_ERROR_NOT_SUPPORTED;
        else value = g->eccVol[v->fieldId - NVML_FI_DEV_ECC_SBE_VOL_TOTAL];
        break;
    case NVML_FI_DEV_ECC_SBE_AGG_TOTAL: case NVML_FI_DEV_ECC_DBE_AGG_TOTAL:
        if (!(has & H_ECCAGG)) r = NVML_ERROR_NOT_SUPPORTED;
        else value = g->eccAgg[v->fieldId - NVML_FI_DEV_ECC_SBE_AGG_TOTAL];
        break;
    case NVML_FI_DEV_RETIRED_SBE: case NVML_FI_DEV_RETIRED_DBE:
        if (!(has & H_RETIRED)) r = NVML_ERROR_NOT_SUPPORTED;
        else value = g->retired[v->fieldId - NVML_FI_DEV_RETIRED_SBE];
        break;
    case NVML_FI_DEV_RETIRED_PENDING:
        if (!(has & H_RETIRED)) r = NVML_ERROR_NOT_SUPPORTED;
        else { value = g->retiredPending; ull = 0; }
        break;
    case NVML_FI_DEV_MEMORY_TEMP:
        if (!(has & H_MEMTEMP)) r = NVML_ERROR_NOT_SUPPORTED;
        else { value = tempNow(c, g->memTemp); ull = 0; }
        break;
    case NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION:
        if (!(has & H_ENERGY)) r = NVML_ERROR_NOT_SUPPORTED;
        else value = energyNow(c);
        break;
    case NVML_FI_DEV_PCIE_REPLAY_COUNTER:
        if (!(has & H_REPLAY)) r = NVML_ERROR_NOT_SUPPORTED;
        else value = g->pcieReplay;
        break;
    case NVML_FI_DEV_REMAPPED_COR: case NVML_FI_DEV_REMAPPED_UNC:
        if (!(has & H_REMAP)) r = NVML_ERROR_NOT_SUPPORTED;
        else value = g->remapped[v->fieldId - NVML_FI_DEV_REMAPPED_COR];
        break;
    case NVML_FI_DEV_REMAPPED_PENDING: case NVML_FI_DEV_REMAPPED_FAILURE:
        if (!(has & H_REMAP)) r = NVML_ERROR_NOT_SUPPORTED;
        else { value = v->fieldId == NVML_FI_DEV_REMAPPED_PENDING ? g->remapPending : g->remapFailure; ull = 0; }
        break;
    case NVML_FI_DEV_POWER_AVERAGE: case NVML_FI_DEV_POWER_INSTANT:
        if (!(has & H_POWER)) r = NVML_ERROR_NOT_SUPPORTED;
        else { value = powerNow(c); ull = 0; }
        break;
    case NVML_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL: case NVML_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_TOTAL:
    case NVML_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL: case NVML_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL:
        if (!(has & H_NVLERR)) r = NVML_ERROR_NOT_SUPPORTED;
        else value = g->nvlinkErrors[(v->fieldId - NVML_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL) / 7];
        break;
    case NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX: case NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_RX:
    case NVML_FI_DEV_NVLINK_THROUGHPUT_RAW_TX: case NVML_FI_DEV_NVLINK_THROUGHPUT_RAW_RX: {
        // Per link (scopeId), or every link summed (scopeId UINT_MAX).
        int tx = v->fieldId == NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX || v->fieldId == NVML_FI_DEV_NVLINK_THROUGHPUT_RAW_TX;
        int raw = v->fieldId >= NVML_FI_DEV_NVLINK_THROUGHPUT_RAW_TX;
        if (c->m != NULL || !g->nvlinkDescribed) { r = NVML_ERROR_NOT_SUPPORTED; break; }
        if (v->scopeId != UINT_MAX && (v->scopeId >= NVML_NVLINK_MAX_LINKS || !g->nvlinks[v->scopeId].present)) {
            r = NVML_ERROR_INVALID_ARGUMENT;
            break;
        }
        for (unsigned l = 0; l < NVML_NVLINK_MAX_LINKS; l++) {
            if (!g->nvlinks[l].present || (v->scopeId != UINT_MAX && v->scopeId != l)) continue;
            value += nvlinkKiB(c, l, tx);
        }
        if (raw) value += value / 16;  // protocol overhead
        break;
    }
    default:
        r = NVML_ERROR_NOT_SUPPORTED;
    }
    // `fail field:N CODE` (on the GPU, or on the MIG device for its handle).
    const Fail *fails = c->m != NULL ? c->m->fails : g->fails;
    int nfails = c->m != NULL ? c->m->nfails : g->nfails;
    for (int i = 0; i < nfails; i++) {
        if (fails[i].field >= 0 && (unsigned)fails[i].field == v->fieldId) { r = fails[i].code; break; }
    }
    v->timestamp = (long long)wallMicros();
    v->latencyUsec = 0;
    v->nvmlReturn = r;
    memset(&v->value, 0, sizeof v->value);
    if (r != NVML_SUCCESS) return;
    if (ull) {
        v->valueType = NVML_VALUE_TYPE_UNSIGNED_LONG_LONG;
        v->value.ullVal = value;
    } else {
        v->valueType = NVML_VALUE_TYPE_UNSIGNED_INT;
        v->value.uiVal = (unsigned)value;
    }
}

EXPORT nvmlReturn_t nvmlDeviceGetFieldValues(nvmlDevice_t device, int valuesCount, nvmlFieldValue_t *values) {
    BEGIN(c, device, "nvmlDeviceGetFieldValues", NULL);
    if (valuesCount < 0 || (valuesCount > 0 && values == NULL)) return end(NVML_ERROR_INVALID_ARGUMENT);
    for (int i = 0; i < valuesCount; i++) fieldValue(&c, &values[i]);
    return end(NVML_SUCCESS);
}
#endif

// ---------------------------------------------------------------------------------------------------------------
// Processes.

// The compute (mps = 0) or MPS (mps = 1) processes of a GPU handle (its own and its MIG devices') or MIG handle.
static nvmlReturn_t runningProcesses(nvmlDevice_t device, unsigned *count, nvmlProcessInfo_t *infos, int mps,
                                     const char *symbol) {
    BEGIN(c, device, symbol, NULL);
    NEED(count);
    nvmlProcessInfo_t found[MAX_PROCS * (MAX_MIGS + 1)];
    unsigned n = 0;
    int migOn = (c.g->has & H_MIGMODE) && c.g->migCurrent == 1;
    if (c.m == NULL) {
        for (int i = 0; i < c.g->nprocs; i++) {
            if (c.g->procs[i].mps != mps) continue;
            found[n++] = (nvmlProcessInfo_t){ c.g->procs[i].pid, c.g->procs[i].mem, NO_INSTANCE, NO_INSTANCE };
        }
    }
    for (int m = 0; migOn && m < c.g->nmig; m++) {
        const MigDesc *mig = &c.g->mig[m];
        if (c.m != NULL && c.m != mig) continue;
        for (int i = 0; i < mig->nprocs; i++) {
            if (mig->procs[i].mps != mps) continue;
            found[n++] = (nvmlProcessInfo_t){ mig->procs[i].pid, mig->procs[i].mem,
                                              (mig->has & H_GI) ? mig->gi : NO_INSTANCE,
                                              (mig->has & H_CI) ? mig->ci : NO_INSTANCE };
        }
    }
    if (n == 0) {
        *count = 0;
        return end(NVML_SUCCESS);
    }
    if (infos == NULL || *count < n) {
        *count = n;
        return end(NVML_ERROR_INSUFFICIENT_SIZE);
    }
    memcpy(infos, found, n * sizeof found[0]);
    *count = n;
    return end(NVML_SUCCESS);
}

#ifndef FAKE_NVML_OLD_DRIVER
EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device, unsigned int *infoCount,
                                                            nvmlProcessInfo_t *infos) {
    return runningProcesses(device, infoCount, infos, 0, "nvmlDeviceGetComputeRunningProcesses_v3");
}
EXPORT nvmlReturn_t nvmlDeviceGetMPSComputeRunningProcesses_v3(nvmlDevice_t device, unsigned int *infoCount,
                                                               nvmlProcessInfo_t *infos) {
    return runningProcesses(device, infoCount, infos, 1, "nvmlDeviceGetMPSComputeRunningProcesses_v3");
}
#else
EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v2(nvmlDevice_t device, unsigned int *infoCount,
                                                            nvmlProcessInfo_t *infos) {
    return runningProcesses(device, infoCount, infos, 0, "nvmlDeviceGetComputeRunningProcesses_v2");
}
EXPORT nvmlReturn_t nvmlDeviceGetMPSComputeRunningProcesses_v2(nvmlDevice_t device, unsigned int *infoCount,
                                                               nvmlProcessInfo_t *infos) {
    return runningProcesses(device, infoCount, infos, 1, "nvmlDeviceGetMPSComputeRunningProcesses_v2");
}
#endif

// Samples newer than lastSeenTimeStamp (µs). Each sample is stamped with the time the description was read, or
// (`vary 1`) the time of the call, so a caller that passes back the newest stamp it saw sees each sample once.
EXPORT nvmlReturn_t nvmlDeviceGetProcessUtilization(nvmlDevice_t device, nvmlProcessUtilizationSample_t *utilization,
                                                    unsigned int *processSamplesCount,
                                                    unsigned long long lastSeenTimeStamp) {
    BEGIN(c, device, "nvmlDeviceGetProcessUtilization", NULL);
    NEED(processSamplesCount);
    const ProcUtil *samples = c.m != NULL ? c.m->putil : c.g->putil;
    unsigned n = (unsigned)(c.m != NULL ? c.m->nputil : c.g->nputil);
    unsigned long long stamp = g_machine->vary ? wallMicros() : g_loadedUs;
    if (n == 0 || stamp <= lastSeenTimeStamp) {
        *processSamplesCount = 0;
        return end(NVML_ERROR_NOT_FOUND);
    }
    if (utilization == NULL || *processSamplesCount < n) {
        *processSamplesCount = n;
        return end(NVML_ERROR_INSUFFICIENT_SIZE);
    }
    for (unsigned i = 0; i < n; i++) {
        utilization[i] = (nvmlProcessUtilizationSample_t){ samples[i].pid, stamp, samples[i].sm, samples[i].mem,
                                                           samples[i].enc, samples[i].dec };
    }
    *processSamplesCount = n;
    return end(NVML_SUCCESS);
}

// ---------------------------------------------------------------------------------------------------------------
// MIG.

#ifndef FAKE_NVML_OLD_DRIVER
EXPORT nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t device, unsigned int *currentMode, unsigned int *pendingMode) {
    BEGIN(c, device, "nvmlDeviceGetMigMode", NULL);
    NEED(currentMode);
    NEED(pendingMode);
    NOT_ON_MIG(c);
    HAS(c, H_MIGMODE);
    *currentMode = c.g->migCurrent;
    *pendingMode = c.g->migPending;
    return end(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(nvmlDevice_t device, unsigned int *count) {
    BEGIN(c, device, "nvmlDeviceGetMaxMigDeviceCount", NULL);
    NEED(count);
    NOT_ON_MIG(c);
    *count = ((c.g->has & H_MIGMODE) && c.g->migCurrent == 1) ? MAX_MIGS : 0;
    return end(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(nvmlDevice_t device, unsigned int index, nvmlDevice_t *migDevice) {
    BEGIN(c, device, "nvmlDeviceGetMigDeviceHandleByIndex", NULL);
    NEED(migDevice);
    if (c.m != NULL) return end(NVML_ERROR_INVALID_ARGUMENT);
    unsigned max = ((c.g->has & H_MIGMODE) && c.g->migCurrent == 1) ? MAX_MIGS : 0;
    if (index >= max) return end(NVML_ERROR_INVALID_ARGUMENT);
    if (index >= (unsigned)c.g->nmig) return end(NVML_ERROR_NOT_FOUND);
    *migDevice = &g_migHandles[c.index][index];
    return end(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetGpuInstanceId(nvmlDevice_t device, unsigned int *id) {
    BEGIN(c, device, "nvmlDeviceGetGpuInstanceId", NULL);
    NEED(id);
    if (c.m == NULL) return end(NVML_ERROR_INVALID_ARGUMENT);
    if (!(c.m->has & H_GI)) return end(NVML_ERROR_NOT_SUPPORTED);
    *id = c.m->gi;
    return end(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetComputeInstanceId(nvmlDevice_t device, unsigned int *id) {
    BEGIN(c, device, "nvmlDeviceGetComputeInstanceId", NULL);
    NEED(id);
    if (c.m == NULL) return end(NVML_ERROR_INVALID_ARGUMENT);
    if (!(c.m->has & H_CI)) return end(NVML_ERROR_NOT_SUPPORTED);
    *id = c.m->ci;
    return end(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetDeviceHandleFromMigDeviceHandle(nvmlDevice_t migDevice, nvmlDevice_t *device) {
    BEGIN(c, migDevice, "nvmlDeviceGetDeviceHandleFromMigDeviceHandle", NULL);
    NEED(device);
    if (c.m == NULL) return end(NVML_ERROR_INVALID_ARGUMENT);
    *device = &g_gpuHandles[c.index];
    return end(NVML_SUCCESS);
}
#endif

// ---------------------------------------------------------------------------------------------------------------
// NVLink.

// `nvlink`/`nvlinks` lines describe the links; without any, the GPU has no NVLink (NOT_SUPPORTED). A link number
// the block does not list is INVALID_ARGUMENT, as for a link beyond the device's count.
EXPORT nvmlReturn_t nvmlDeviceGetNvLinkState(nvmlDevice_t device, unsigned int link, unsigned int *isActive) {
    BEGIN(c, device, "nvmlDeviceGetNvLinkState", NULL);
    NEED(isActive);
    NOT_ON_MIG(c);
    if (!c.g->nvlinkDescribed) return end(NVML_ERROR_NOT_SUPPORTED);
    if (link >= NVML_NVLINK_MAX_LINKS || !c.g->nvlinks[link].present) return end(NVML_ERROR_INVALID_ARGUMENT);
    *isActive = c.g->nvlinks[link].active ? NVML_FEATURE_ENABLED : NVML_FEATURE_DISABLED;
    return end(NVML_SUCCESS);
}

// ---------------------------------------------------------------------------------------------------------------
// GPU Performance Monitoring: a sample records which device it was taken on, when, and the `vary` counter then;
// nvmlGpmMetricsGet answers the described averages for two samples of the same device, older one first.

#ifndef FAKE_NVML_OLD_DRIVER
#define GPM_SAMPLE_MAGIC 0x47504d53u

struct nvmlGpmSample_st {
    unsigned magic;
    int taken;            // 0 until nvmlGpm(Mig)SampleGet filled it
    int gpu, mig;         // GPU slot; MIG index for nvmlGpmMigSampleGet, else -1
    unsigned long long seq, k, takenUs;
};

static unsigned long long g_gpmSeq;
static int g_gpmLive;  // allocated, not yet freed (fakeNvmlGpmSamplesAllocated)

// Test hook (not an NVML function): GPM sample buffers allocated and not freed, to check that a client frees them.
EXPORT int fakeNvmlGpmSamplesAllocated(void) {
    pthread_mutex_lock(&g_mutex);
    int n = g_gpmLive;
    pthread_mutex_unlock(&g_mutex);
    return n;
}

static int validSample(nvmlGpmSample_t s) { return s != NULL && s->magic == GPM_SAMPLE_MAGIC; }

EXPORT nvmlReturn_t nvmlGpmSampleAlloc(nvmlGpmSample_t *gpmSample) {
    nvmlReturn_t r = beginSystem();
    if (r != NVML_SUCCESS) return end(r);
    NEED(gpmSample);
    struct nvmlGpmSample_st *s = calloc(1, sizeof *s);
    if (s == NULL) return end(ERROR_MEMORY);
    s->magic = GPM_SAMPLE_MAGIC;
    s->mig = -1;
    g_gpmLive++;
    *gpmSample = s;
    return end(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlGpmSampleFree(nvmlGpmSample_t gpmSample) {
    nvmlReturn_t r = beginSystem();
    if (r != NVML_SUCCESS) return end(r);
    if (!validSample(gpmSample)) return end(NVML_ERROR_INVALID_ARGUMENT);
    gpmSample->magic = 0;
    free(gpmSample);
    g_gpmLive--;
    return end(NVML_SUCCESS);
}

// `gpm_support 1` makes a GPU supported; without the key it answers SUCCESS with isSupportedDevice 0, as an A100.
EXPORT nvmlReturn_t nvmlGpmQueryDeviceSupport(nvmlDevice_t device, nvmlGpmSupport_t *gpmSupport) {
    BEGIN(c, device, "nvmlGpmQueryDeviceSupport", NULL);
    NEED(gpmSupport);
    NOT_ON_MIG(c);
    if (gpmSupport->version != NVML_GPM_SUPPORT_VERSION) return end(NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
    gpmSupport->isSupportedDevice = (c.g->has & H_GPMSUP) ? c.g->gpmSupport : 0;
    return end(NVML_SUCCESS);
}

static nvmlReturn_t takeSample(const Ctx *c, nvmlGpmSample_t s, int mig) {
    s->taken = 1;
    s->gpu = c->index;
    s->mig = mig;
    s->seq = ++g_gpmSeq;
    s->k = c->k;
    s->takenUs = wallMicros();
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlGpmSampleGet(nvmlDevice_t device, nvmlGpmSample_t gpmSample) {
    BEGIN(c, device, "nvmlGpmSampleGet", NULL);
    if (!validSample(gpmSample)) return end(NVML_ERROR_INVALID_ARGUMENT);
    if (c.m != NULL) return end(NVML_ERROR_INVALID_ARGUMENT);  // MIG devices: nvmlGpmMigSampleGet on the GPU
    if (!((c.g->has & H_GPMSUP) && c.g->gpmSupport)) return end(NVML_ERROR_NOT_SUPPORTED);
    return end(takeSample(&c, gpmSample, -1));
}

// `device` is the GPU; the MIG device is named by its GPU instance id. The MIG block's `fail` lines apply too.
EXPORT nvmlReturn_t nvmlGpmMigSampleGet(nvmlDevice_t device, unsigned int gpuInstanceId, nvmlGpmSample_t gpmSample) {
    BEGIN(c, device, "nvmlGpmMigSampleGet", NULL);
    if (!validSample(gpmSample)) return end(NVML_ERROR_INVALID_ARGUMENT);
    if (c.m != NULL) return end(NVML_ERROR_INVALID_ARGUMENT);
    if (!((c.g->has & H_GPMSUP) && c.g->gpmSupport)) return end(NVML_ERROR_NOT_SUPPORTED);
    if (!((c.g->has & H_MIGMODE) && c.g->migCurrent == 1)) return end(NVML_ERROR_NOT_SUPPORTED);
    for (int m = 0; m < c.g->nmig; m++) {
        const MigDesc *mig = &c.g->mig[m];
        if (!(mig->has & H_GI) || mig->gi != gpuInstanceId) continue;
        nvmlReturn_t r = failCode(mig->fails, mig->nfails, "nvmlGpmMigSampleGet", NULL, 1);
        return end(r != NVML_SUCCESS ? r : takeSample(&c, gpmSample, m));
    }
    return end(NVML_ERROR_NOT_FOUND);
}

static int gpmPerSecond(unsigned id) {
    return id == NVML_GPM_METRIC_PCIE_TX_PER_SEC || id == NVML_GPM_METRIC_PCIE_RX_PER_SEC ||
           (id >= NVML_GPM_METRIC_NVLINK_TOTAL_RX_PER_SEC && id <= NVML_GPM_METRIC_NVLINK_L17_TX_PER_SEC) ||
           (id >= NVML_GPM_METRIC_NVLINK_L18_RX_PER_SEC && id <= 247);
}

// The NVLink link of a per-link rate id (and whether it is TX), or -1.
static int gpmLink(unsigned id, int *tx) {
    if (id >= NVML_GPM_METRIC_NVLINK_L0_RX_PER_SEC && id <= NVML_GPM_METRIC_NVLINK_L17_TX_PER_SEC) {
        *tx = (id - NVML_GPM_METRIC_NVLINK_L0_RX_PER_SEC) % 2;
        return (int)(id - NVML_GPM_METRIC_NVLINK_L0_RX_PER_SEC) / 2;
    }
    if (id >= NVML_GPM_METRIC_NVLINK_L18_RX_PER_SEC && id <= 247) {
        *tx = (id - NVML_GPM_METRIC_NVLINK_L18_RX_PER_SEC) % 2;
        return 18 + (int)(id - NVML_GPM_METRIC_NVLINK_L18_RX_PER_SEC) / 2;
    }
    return -1;
}

// The described average of metric `id` (0 with NOT_SUPPORTED when the block does not describe it). Under `vary 1`
// activities scale with the GPU's utilization at the newer sample and rates swing by up to 90 %.
static nvmlReturn_t gpmValue(const GpuDesc *g, const MigDesc *m, unsigned id, unsigned long long k, int vary, double *out) {
    const GpmValue *values = m != NULL ? m->gpm : g->gpm;
    int n = m != NULL ? m->ngpm : g->ngpm;
    int found = 0;
    double v = 0;
    for (int i = 0; i < n && !found; i++) {
        if (values[i].id == id) { v = values[i].value; found = 1; }
    }
    int tx = 0, link = gpmLink(id, &tx);
    if (!found && m == NULL && (g->has & H_GPMNVL)) {
        if (link >= 0 && g->nvlinks[link].present && g->nvlinks[link].active) {
            v = tx ? g->gpmNvlinkTx : g->gpmNvlinkRx;
            found = 1;
        } else if (id == NVML_GPM_METRIC_NVLINK_TOTAL_RX_PER_SEC || id == NVML_GPM_METRIC_NVLINK_TOTAL_TX_PER_SEC) {
            for (int l = 0; l < NVML_NVLINK_MAX_LINKS; l++) {
                if (g->nvlinks[l].present && g->nvlinks[l].active) v += id == NVML_GPM_METRIC_NVLINK_TOTAL_TX_PER_SEC ? g->gpmNvlinkTx : g->gpmNvlinkRx;
            }
            found = 1;
        }
    }
    if (!found) return NVML_ERROR_NOT_SUPPORTED;
    if (vary) {
        if (gpmPerSecond(id)) v *= 1.0 + (double)(k % 10) / 10.0;
        else if (m == NULL && (g->has & H_UTIL)) v = v * (double)((g->utilGpu + 7 * k) % 101) / 100.0;
    }
    *out = v;
    return NVML_SUCCESS;
}

static void gpmInfo(unsigned id, nvmlGpmMetricInfo_t *info) {
    static const struct { unsigned id; const char *shortName, *longName; } names[] = {
        { 1, "gr_util", "graphics engine utilization" }, { 2, "sm_util", "SM utilization" },
        { 3, "sm_occupancy", "SM occupancy" }, { 4, "integer_util", "integer pipe utilization" },
        { 5, "any_tensor_util", "tensor pipe utilization (any)" }, { 6, "dfma_tensor_util", "DFMA tensor utilization" },
        { 7, "hmma_tensor_util", "HMMA tensor utilization" }, { 8, "dmma_tensor_util", "DMMA tensor utilization" },
        { 9, "imma_tensor_util", "IMMA tensor utilization" }, { 10, "dram_bw_util", "DRAM bandwidth utilization" },
        { 11, "fp64_util", "FP64 pipe utilization" }, { 12, "fp32_util", "FP32 pipe utilization" },
        { 13, "fp16_util", "FP16 pipe utilization" }, { 20, "pcie_tx", "PCIe TX" }, { 21, "pcie_rx", "PCIe RX" },
    };
    info->shortName = info->longName = NULL;
    info->unit = gpmPerSecond(id) ? "MiB/s" : "%";
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (names[i].id == id) { info->shortName = names[i].shortName; info->longName = names[i].longName; }
    }
    if (info->shortName == NULL && gpmPerSecond(id)) info->shortName = info->longName = "nvlink";
}

EXPORT nvmlReturn_t nvmlGpmMetricsGet(nvmlGpmMetricsGet_t *metricsGet) {
    nvmlReturn_t r = beginSystem();
    if (r != NVML_SUCCESS) return end(r);
    NEED(metricsGet);
    if (metricsGet->version != NVML_GPM_METRICS_GET_VERSION) return end(NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
    if (metricsGet->numMetrics > FAKE_GPM_METRICS_MAX) return end(NVML_ERROR_INVALID_ARGUMENT);
    nvmlGpmSample_t s1 = metricsGet->sample1, s2 = metricsGet->sample2;
    if (!validSample(s1) || !validSample(s2) || !s1->taken || !s2->taken) return end(NVML_ERROR_INVALID_ARGUMENT);
    // Two samples of one device, the older first.
    if (s1->gpu != s2->gpu || s1->mig != s2->mig || s2->seq <= s1->seq) return end(NVML_ERROR_INVALID_ARGUMENT);
    if (s2->gpu >= g_machine->ngpus) return end(NVML_ERROR_INVALID_ARGUMENT);
    const GpuDesc *g = &g_machine->gpus[s2->gpu];
    const MigDesc *m = NULL;
    if (s2->mig >= 0) {
        if (!((g->has & H_MIGMODE) && g->migCurrent == 1) || s2->mig >= g->nmig) return end(NVML_ERROR_INVALID_ARGUMENT);
        m = &g->mig[s2->mig];
    }
    if ((r = failCode(g->fails, g->nfails, "*", NULL, 1)) != NVML_SUCCESS) return end(r);
    if ((r = failCode(g->fails, g->nfails, "nvmlGpmMetricsGet", NULL, 0)) != NVML_SUCCESS) return end(r);
    if (m != NULL && (r = failCode(m->fails, m->nfails, "nvmlGpmMetricsGet", NULL, 1)) != NVML_SUCCESS) return end(r);
    const Fail *fails = m != NULL ? m->fails : g->fails;
    int nfails = m != NULL ? m->nfails : g->nfails;
    for (unsigned i = 0; i < metricsGet->numMetrics; i++) {
        nvmlGpmMetric_t *metric = &metricsGet->metrics[i];
        metric->value = 0;
        metric->nvmlReturn = gpmValue(g, m, metric->metricId, s2->k, g_machine->vary, &metric->value);
        for (int f = 0; f < nfails; f++) {
            if (fails[f].gpm >= 0 && (unsigned)fails[f].gpm == metric->metricId) { metric->nvmlReturn = fails[f].code; metric->value = 0; }
        }
        gpmInfo(metric->metricId, &metric->metricInfo);
    }
    return end(NVML_SUCCESS);
}
#endif

// ---------------------------------------------------------------------------------------------------------------
// Events: each `xid` line of a registered GPU is delivered once, in file order.

EXPORT nvmlReturn_t nvmlEventSetCreate(nvmlEventSet_t *set) {
    nvmlReturn_t r = beginSystem();
    if (r != NVML_SUCCESS) return end(r);
    NEED(set);
    struct nvmlEventSet_st *s = calloc(1, sizeof *s);
    if (s == NULL) return end(ERROR_MEMORY);
    s->magic = EVENT_SET_MAGIC;
    *set = s;
    return end(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlEventSetFree(nvmlEventSet_t set) {
    nvmlReturn_t r = beginSystem();
    if (r != NVML_SUCCESS) return end(r);
    if (set == NULL || set->magic != EVENT_SET_MAGIC) return end(NVML_ERROR_INVALID_ARGUMENT);
    set->magic = 0;
    free(set);
    return end(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceRegisterEvents(nvmlDevice_t device, unsigned long long eventTypes, nvmlEventSet_t set) {
    BEGIN(c, device, "nvmlDeviceRegisterEvents", NULL);
    if (set == NULL || set->magic != EVENT_SET_MAGIC) return end(NVML_ERROR_INVALID_ARGUMENT);
    NOT_ON_MIG(c);
    set->types[c.index] |= eventTypes;
    return end(NVML_SUCCESS);
}

#ifndef FAKE_NVML_OLD_DRIVER
EXPORT nvmlReturn_t nvmlEventSetWait_v2(nvmlEventSet_t set, nvmlEventData_t *data, unsigned int timeoutms) {
    nvmlReturn_t r = beginSystem();
    if (r != NVML_SUCCESS) return end(r);
    if (set == NULL || set->magic != EVENT_SET_MAGIC || data == NULL) return end(NVML_ERROR_INVALID_ARGUMENT);
    unsigned long long deadline = monoMillis() + timeoutms;
    for (;;) {
        const Machine *m = g_machine;
        for (int i = 0; i < m->ngpus; i++) {
            if (set->types[i] == 0) continue;
            r = failCode(m->gpus[i].fails, m->gpus[i].nfails, "nvmlEventSetWait_v2", NULL, 0);
            if (r != NVML_SUCCESS) {
                pthread_mutex_unlock(&g_mutex);
                sleepMillis(10);  // the caller's retry loop must not spin
                return r;
            }
        }
        for (int i = 0; i < m->ngpus; i++) {
            if (!(set->types[i] & nvmlEventTypeXidCriticalError)) continue;
            const GpuDesc *g = &m->gpus[i];
            SlotState *s = &g_slots[i];
            const Xid *x = NULL;
            for (int j = 0; j < g->nxids && x == NULL; j++) {
                Delivered *d = deliveredEntry(s, &g->xids[j]);
                if (d != NULL && xidOccurrences(g, &g->xids[j], j + 1) > d->count) {
                    d->count++;
                    x = &g->xids[j];
                }
            }
            if (x == NULL) continue;
            data->device = &g_gpuHandles[i];
            data->eventType = nvmlEventTypeXidCriticalError;
            data->eventData = x->xid;
            data->gpuInstanceId = x->gi;
            data->computeInstanceId = x->ci;
            return end(NVML_SUCCESS);
        }
        unsigned long long now = monoMillis();
        if (now >= deadline) return end(NVML_ERROR_TIMEOUT);
        unsigned long long wait = deadline - now;
        pthread_mutex_unlock(&g_mutex);
        sleepMillis(wait < 20 ? (unsigned)wait : 20);
        pthread_mutex_lock(&g_mutex);
        if (g_initCount == 0) return end(NVML_ERROR_UNINITIALIZED);
        if (set->magic != EVENT_SET_MAGIC) return end(NVML_ERROR_INVALID_ARGUMENT);
        refresh();
    }
}
#endif

// ---------------------------------------------------------------------------------------------------------------
// Compile-time check: every entry point has the signature the exporter's function table expects.

__attribute__((unused)) static void checkSignatures(CNVMLFunctions *f) {
    f->nvmlInit_v2 = nvmlInit_v2;
    f->nvmlShutdown = nvmlShutdown;
    f->nvmlErrorString = nvmlErrorString;
    f->nvmlSystemGetDriverVersion = nvmlSystemGetDriverVersion;
    f->nvmlDeviceGetCount_v2 = nvmlDeviceGetCount_v2;
    f->nvmlDeviceGetHandleByIndex_v2 = nvmlDeviceGetHandleByIndex_v2;
    f->nvmlDeviceGetUUID = nvmlDeviceGetUUID;
    f->nvmlDeviceGetName = nvmlDeviceGetName;
    f->nvmlDeviceGetSerial = nvmlDeviceGetSerial;
    f->nvmlDeviceGetMinorNumber = nvmlDeviceGetMinorNumber;
    f->nvmlDeviceGetVbiosVersion = nvmlDeviceGetVbiosVersion;
    f->nvmlDeviceGetPciInfo_v3 = nvmlDeviceGetPciInfo_v3;
    f->nvmlDeviceGetUtilizationRates = nvmlDeviceGetUtilizationRates;
    f->nvmlDeviceGetMemoryInfo = nvmlDeviceGetMemoryInfo;
    f->nvmlDeviceGetTemperature = nvmlDeviceGetTemperature;
    f->nvmlDeviceGetPowerUsage = nvmlDeviceGetPowerUsage;
    f->nvmlDeviceGetEnforcedPowerLimit = nvmlDeviceGetEnforcedPowerLimit;
    f->nvmlDeviceGetClockInfo = nvmlDeviceGetClockInfo;
    f->nvmlDeviceGetPcieThroughput = nvmlDeviceGetPcieThroughput;
    f->nvmlDeviceGetCurrPcieLinkGeneration = nvmlDeviceGetCurrPcieLinkGeneration;
    f->nvmlDeviceGetCurrPcieLinkWidth = nvmlDeviceGetCurrPcieLinkWidth;
    f->nvmlDeviceGetFanSpeed = nvmlDeviceGetFanSpeed;
    f->nvmlDeviceGetPerformanceState = nvmlDeviceGetPerformanceState;
    f->nvmlDeviceGetTotalEccErrors = nvmlDeviceGetTotalEccErrors;
    f->nvmlDeviceGetProcessUtilization = nvmlDeviceGetProcessUtilization;
    f->nvmlEventSetCreate = nvmlEventSetCreate;
    f->nvmlDeviceRegisterEvents = nvmlDeviceRegisterEvents;
    f->nvmlEventSetFree = nvmlEventSetFree;
    f->nvmlDeviceGetNvLinkState = nvmlDeviceGetNvLinkState;
#ifndef FAKE_NVML_OLD_DRIVER
    f->nvmlGpmQueryDeviceSupport = nvmlGpmQueryDeviceSupport;
    f->nvmlGpmSampleAlloc = nvmlGpmSampleAlloc;
    f->nvmlGpmSampleFree = nvmlGpmSampleFree;
    f->nvmlGpmSampleGet = nvmlGpmSampleGet;
    f->nvmlGpmMigSampleGet = nvmlGpmMigSampleGet;
    f->nvmlGpmMetricsGet = nvmlGpmMetricsGet;
    f->nvmlSystemGetCudaDriverVersion_v2 = nvmlSystemGetCudaDriverVersion_v2;
    f->nvmlDeviceGetMemoryInfo_v2 = nvmlDeviceGetMemoryInfo_v2;
    f->nvmlDeviceGetTotalEnergyConsumption = nvmlDeviceGetTotalEnergyConsumption;
    f->nvmlDeviceGetCurrentClocksEventReasons = nvmlDeviceGetCurrentClocksEventReasons;
    f->nvmlDeviceGetFieldValues = nvmlDeviceGetFieldValues;
    f->nvmlDeviceGetComputeRunningProcesses = nvmlDeviceGetComputeRunningProcesses_v3;
    f->nvmlDeviceGetMPSComputeRunningProcesses = nvmlDeviceGetMPSComputeRunningProcesses_v3;
    f->nvmlDeviceGetMigMode = nvmlDeviceGetMigMode;
    f->nvmlDeviceGetMaxMigDeviceCount = nvmlDeviceGetMaxMigDeviceCount;
    f->nvmlDeviceGetMigDeviceHandleByIndex = nvmlDeviceGetMigDeviceHandleByIndex;
    f->nvmlDeviceGetGpuInstanceId = nvmlDeviceGetGpuInstanceId;
    f->nvmlDeviceGetComputeInstanceId = nvmlDeviceGetComputeInstanceId;
    f->nvmlDeviceGetDeviceHandleFromMigDeviceHandle = nvmlDeviceGetDeviceHandleFromMigDeviceHandle;
    f->nvmlEventSetWait_v2 = nvmlEventSetWait_v2;
#else
    f->nvmlDeviceGetCurrentClocksEventReasons = nvmlDeviceGetCurrentClocksThrottleReasons;
    f->nvmlDeviceGetComputeRunningProcesses = nvmlDeviceGetComputeRunningProcesses_v2;
    f->nvmlDeviceGetMPSComputeRunningProcesses = nvmlDeviceGetMPSComputeRunningProcesses_v2;
#endif
}
