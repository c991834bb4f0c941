#ifndef CSENSORS_SHIM_H
#define CSENSORS_SHIM_H
#include <stdio.h>
#include <sensors/sensors.h>
#include <sensors/error.h>

/// libsensors reports configuration errors through a global function pointer; Swift 6 cannot assign a C global
/// safely, so the assignment lives here. Call only while holding the caller's libsensors lock.
static inline void CSensors_setParseErrorHandler(void (*handler)(const char *err, const char *filename, int lineno)) {
    sensors_parse_error_wfn = handler;
}
#endif
