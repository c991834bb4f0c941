#ifndef FLOOR_LIBRARIES_H
#define FLOOR_LIBRARIES_H
/// Calls one function of each system library accel-exporter links, and initialises libcurl as the exporter does
/// (libssh2 without OpenSSL first, Sources/CCurl). Returns curl_global_init's result (0: CURLE_OK).
int floor_load_libraries(void);
#endif
