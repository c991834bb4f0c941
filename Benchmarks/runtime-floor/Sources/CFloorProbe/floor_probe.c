#include "floor_probe.h"
#include <stdio.h>
#include <sys/mman.h>

void floor_memory(long *hwm, long *rss) {
    *hwm = *rss = -1;
    FILE *status = fopen("/proc/self/status", "r");
    if (status == NULL) return;
    char line[256];
    while (fgets(line, sizeof line, status) != NULL) {
        sscanf(line, "VmHWM: %ld", hwm);
        sscanf(line, "VmRSS: %ld", rss);
    }
    fclose(status);
}

static long peak;

void floor_report(const char *label) {
    long hwm, rss;
    floor_memory(&hwm, &rss);
    if (hwm > peak) peak = hwm;
    if (rss > peak) peak = rss;
    printf("%s hwm_kib=%ld rss_kib=%ld peak_kib=%ld\n", label, hwm, rss, peak);
    fflush(stdout);
}

void floor_page_out(void) {
    FILE *maps = fopen("/proc/self/maps", "r");
    if (maps == NULL) return;
    char line[1024];
    while (fgets(line, sizeof line, maps) != NULL) {
        unsigned long start, end, offset, inode;
        char perms[8], device[16];
        if (sscanf(line, "%lx-%lx %7s %lx %15s %lu", &start, &end, perms, &offset, device, &inode) != 6) continue;
        if (inode == 0 || perms[1] == 'w' || perms[3] != 'p') continue;
        madvise((void *)start, end - start, 21 /* MADV_PAGEOUT, linux/mman.h */);
    }
    fclose(maps);
}
