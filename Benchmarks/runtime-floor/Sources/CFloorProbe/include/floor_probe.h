#ifndef FLOOR_PROBE_H
#define FLOOR_PROBE_H
/// VmHWM and VmRSS of this process, in KiB (-1 when /proc/self/status cannot be read).
void floor_memory(long *hwm, long *rss);
/// MADV_PAGEOUT on every private, read-only file mapping: what accel-exporter's start-up trim does
/// (Sources/Exporter/MemoryTrim.swift).
void floor_page_out(void);
#endif
