#ifndef CSENSORS_SHIM_H
#define CSENSORS_SHIM_H
#include <stdio.h>
#include <sensors/sensors.h>
#include <sensors/error.h>
#endif
