#ifndef FLOOR_DEFERRED_H
#define FLOOR_DEFERRED_H
/// Loads the system libraries accel-exporter links with dlopen, as a program would that loads them after its
/// start-up trim rather than through the loader, and initialises libcurl as the exporter does. Returns the number of
/// libraries that failed to load plus 100 when curl_global_init failed (0: all well).
int floor_load_libraries_deferred(void);
#endif
