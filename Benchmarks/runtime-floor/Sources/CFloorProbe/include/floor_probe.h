#ifndef FLOOR_PROBE_H
#define FLOOR_PROBE_H
/// VmHWM and VmRSS of this process, in KiB (-1 when /proc/self/status cannot be read).
void floor_memory(long *hwm, long *rss);
/// Prints `label hwm_kib=N rss_kib=N peak_kib=N` (what runtime-floor.sh reads) and flushes. `peak_kib` is the largest
/// VmHWM or VmRSS of this and every earlier report: the kernel does not raise VmHWM before MADV_PAGEOUT lowers the
/// RSS, so after a trim VmHWM alone can read below an RSS seen earlier.
void floor_report(const char *label);
/// MADV_PAGEOUT on every private, read-only file mapping: what accel-exporter's start-up trim does
/// (Sources/Exporter/MemoryTrim.swift).
void floor_page_out(void);
#endif
