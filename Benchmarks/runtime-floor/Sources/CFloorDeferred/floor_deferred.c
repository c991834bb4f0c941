#include "floor_deferred.h"
#include <dlfcn.h>
#include <stddef.h>

/* accel-exporter's NEEDED entries beyond what the Swift runtime itself needs (libc, libm, libstdc++, libgcc_s). */
static const char *const kLibraries[] = {
    "libz.so.1", "libcrypt.so.1", "libyaml-0.so.2", "libsensors.so.5", "libgnutls.so.30", "libmicrohttpd.so.12",
    "libcurl-gnutls.so.4",
};

int floor_load_libraries_deferred(void) {
    int failed = 0;
    void *curl = NULL;
    for (size_t i = 0; i < sizeof kLibraries / sizeof kLibraries[0]; i++) {
        void *handle = dlopen(kLibraries[i], RTLD_NOW | RTLD_GLOBAL);
        if (handle == NULL) failed++;
        curl = handle;  /* the last one */
    }
    void *ssh = dlopen("libssh2.so.1", RTLD_NOW | RTLD_NOLOAD);
    if (ssh != NULL) {
        int (*init)(int) = (int (*)(int))dlsym(ssh, "libssh2_init");
        if (init != NULL) init(0x0001); /* LIBSSH2_INIT_NO_CRYPTO */
    }
    int (*global_init)(long) = curl == NULL ? NULL : (int (*)(long))dlsym(curl, "curl_global_init");
    if (global_init == NULL || global_init(3 /* CURL_GLOBAL_DEFAULT */) != 0) failed += 100;
    return failed;
}
