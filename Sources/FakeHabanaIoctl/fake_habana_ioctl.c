#define _GNU_SOURCE
#include "fake_habana_ioctl.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/types.h>
#include <fcntl.h>
#include <pthread.h>

// struct hl_info_args (include/uapi/drm/habanalabs_accel.h), 24 bytes.
typedef struct {
    uint64_t return_pointer;
    uint32_t return_size;
    uint32_t op;
    uint32_t period_ms;
    uint32_t pad;
} info_args;

enum { OP_HW_IP_INFO = 0, OP_DRAM_USAGE = 2, OP_DEVICE_UTILIZATION = 6 };
enum { MAX_FDS = 4096, NAME_LENGTH = 32 };

// Descriptor → the control node's file name (empty: not one). Written under a lock; the exporter opens and asks
// from one thread, so contention is nil.
static char names[MAX_FDS][NAME_LENGTH];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void note(int fd, const char *path) {
    if (fd < 0 || fd >= MAX_FDS) return;
    const char *base = path != NULL ? strrchr(path, '/') : NULL;
    base = base != NULL ? base + 1 : path;
    pthread_mutex_lock(&lock);
    if (base != NULL && strstr(base, "_controlD") != NULL && strlen(base) < NAME_LENGTH) {
        strcpy(names[fd], base);
    } else {
        names[fd][0] = '\0';
    }
    pthread_mutex_unlock(&lock);
}

typedef int (*open_fn)(const char *, int, ...);
typedef int (*openat_fn)(int, const char *, int, ...);
typedef int (*close_fn)(int);
typedef int (*ioctl_fn)(int, unsigned long, ...);

#define NEXT(name, type) static type next_##name; if (next_##name == NULL) next_##name = (type)dlsym(RTLD_NEXT, #name)

// open and open64 are the same call under two names (x86-64): one body, the next definition looked up by name.
static int open_noting(const char *symbol, open_fn *next, const char *path, int flags, mode_t mode) {
    if (*next == NULL) *next = (open_fn)dlsym(RTLD_NEXT, symbol);
    int fd = (*next)(path, flags, mode);
    note(fd, path);
    return fd;
}

int open(const char *path, int flags, ...) {
    va_list ap;
    va_start(ap, flags);
    mode_t mode = (flags & O_CREAT) ? va_arg(ap, mode_t) : 0;
    va_end(ap);
    static open_fn next;
    return open_noting("open", &next, path, flags, mode);
}

int open64(const char *path, int flags, ...) {
    va_list ap;
    va_start(ap, flags);
    mode_t mode = (flags & O_CREAT) ? va_arg(ap, mode_t) : 0;
    va_end(ap);
    static open_fn next;
    return open_noting("open64", &next, path, flags, mode);
}

int openat(int dirfd, const char *path, int flags, ...) {
    va_list ap;
    va_start(ap, flags);
    mode_t mode = (flags & O_CREAT) ? va_arg(ap, mode_t) : 0;
    va_end(ap);
    NEXT(openat, openat_fn);
    int fd = next_openat(dirfd, path, flags, mode);
    note(fd, path);
    return fd;
}

int close(int fd) {
    note(fd, NULL);
    NEXT(close, close_fn);
    return next_close(fd);
}

// `name=UTIL,SIZE,FREE[,FAILS]` from the environment; 0 when listed. FAILS (default 0): how many of the node's
// first HW_IP_INFO calls fail with EBUSY: a transient failure, for the retry tests.
static int lookup(const char *name, unsigned long long *util, unsigned long long *size, unsigned long long *free_bytes,
                  unsigned long long *fails) {
    const char *table = getenv("FAKE_HABANA_INFO");
    if (table == NULL) return -1;
    size_t length = strlen(name);
    for (const char *entry = table; entry != NULL && *entry != '\0';) {
        if (strncmp(entry, name, length) == 0 && entry[length] == '=') {
            *fails = 0;
            int fields = sscanf(entry + length + 1, "%llu,%llu,%llu,%llu", util, size, free_bytes, fails);
            return fields >= 3 ? 0 : -1;
        }
        entry = strchr(entry, ';');
        if (entry != NULL) entry++;
    }
    return -1;
}

// HW_IP_INFO calls seen per node (by name, so a reopened node keeps its count).
enum { MAX_NODES = 64 };
static char counted[MAX_NODES][NAME_LENGTH];
static unsigned long long hw_ip_calls[MAX_NODES];

static unsigned long long count_hw_ip_call(const char *name) {
    pthread_mutex_lock(&lock);
    unsigned long long seen = 0;
    for (int i = 0; i < MAX_NODES; i++) {
        if (counted[i][0] == '\0') strcpy(counted[i], name);
        if (strcmp(counted[i], name) == 0) {
            seen = hw_ip_calls[i]++;
            break;
        }
    }
    pthread_mutex_unlock(&lock);
    return seen;
}

// 1: not a control node (pass on); 0: answered; -1: failed with errno set.
static int answer(int fd, info_args *args) {
    char name[NAME_LENGTH] = "";
    if (fd >= 0 && fd < MAX_FDS) {
        pthread_mutex_lock(&lock);
        strcpy(name, names[fd]);
        pthread_mutex_unlock(&lock);
    }
    if (name[0] == '\0') return 1;
    unsigned long long util, size, free_bytes, fails;
    if (lookup(name, &util, &size, &free_bytes, &fails) != 0) {
        errno = ENODEV;
        return -1;
    }
    unsigned char *out = (unsigned char *)(uintptr_t)args->return_pointer;
    uint64_t value64;
    uint32_t value32;
    switch (args->op) {
    case OP_HW_IP_INFO:  // dram_size follows sram_base_address and dram_base_address
        if (args->return_size < 24) break;
        if (count_hw_ip_call(name) < fails) {
            errno = EBUSY;
            return -1;
        }
        memset(out, 0, args->return_size);
        value64 = size;
        memcpy(out + 16, &value64, sizeof(value64));
        return 0;
    case OP_DRAM_USAGE:  // dram_free_mem, then ctx_dram_mem (0: a control node has no context)
        if (args->return_size < 16) break;
        memset(out, 0, args->return_size);
        value64 = free_bytes;
        memcpy(out, &value64, sizeof(value64));
        return 0;
    case OP_DEVICE_UTILIZATION:
        if (args->return_size < 8) break;
        memset(out, 0, args->return_size);
        value32 = (uint32_t)util;
        memcpy(out, &value32, sizeof(value32));
        return 0;
    default:
        break;
    }
    errno = EINVAL;
    return -1;
}

int ioctl(int fd, unsigned long request, ...) {
    va_list ap;
    va_start(ap, request);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    if (request == (unsigned long)_IOWR('d', 0x40, info_args) || request == (unsigned long)_IOWR('H', 0x01, info_args)) {
        int rc = answer(fd, (info_args *)arg);
        if (rc <= 0) return rc;
    }
    NEXT(ioctl, ioctl_fn);
    return next_ioctl(fd, request, arg);
}
