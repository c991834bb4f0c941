#include "floor_libraries.h"
#include <crypt.h>
#include <curl/curl.h>
#include <dlfcn.h>
#include <gnutls/gnutls.h>
#include <math.h>
#include <microhttpd.h>
#include <sensors/error.h>
#include <yaml.h>
#include <zlib.h>

int floor_load_libraries(void) {
    volatile const char *sink;
    sink = gnutls_check_version(NULL);
    sink = MHD_get_version();
    sink = sensors_strerror(0);
    sink = yaml_get_version_string();
    sink = zlibVersion();
    sink = crypt_preferred_method();
    (void)sink;
    volatile double x = sin(1.0);
    (void)x;
    void *ssh = dlopen("libssh2.so.1", RTLD_NOW | RTLD_NOLOAD);
    if (ssh != NULL) {
        int (*init)(int) = (int (*)(int))dlsym(ssh, "libssh2_init");
        if (init != NULL) init(0x0001); /* LIBSSH2_INIT_NO_CRYPTO */
    }
    return (int)curl_global_init(CURL_GLOBAL_DEFAULT);
}
