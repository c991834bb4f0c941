#define _GNU_SOURCE
#include "ccurl.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_result = CURLE_FAILED_INIT;
static int ssh_crypto_skipped = 0;

/* Debian's libcurl links libssh2, and curl_global_init calls libssh2_init(0), which initialises all of OpenSSL's
 * libcrypto for SCP and SFTP: about 1.5 MiB resident, for protocols every handle here refuses (CURLOPT_PROTOCOLS_STR
 * is "http,https"). libssh2 initialises its crypto only on the first libssh2_init, so calling it first with
 * LIBSSH2_INIT_NO_CRYPTO (0x0001, libssh2.h) makes curl's call a no-op. Looked up, not linked: a libcurl without
 * libssh2 has nothing to skip. */
static void skip_ssh_crypto(void) {
    void *ssh = dlopen("libssh2.so.1", RTLD_NOW | RTLD_NOLOAD);
    if (ssh == NULL) return;
    int (*init)(int) = (int (*)(int))dlsym(ssh, "libssh2_init");
    if (init != NULL && init(0x0001) == 0) ssh_crypto_skipped = 1;
    dlclose(ssh);
}

static void global_init(void) {
    skip_ssh_crypto();
    global_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int ccurl_ssh_crypto_skipped(void) { return ssh_crypto_skipped; }

CURLcode ccurl_global_init(void) {
    pthread_once(&global_once, global_init);
    return global_result;
}

CURLcode ccurl_setopt_long(CURL *handle, CURLoption option, long value) { return curl_easy_setopt(handle, option, value); }

CURLcode ccurl_setopt_pointer(CURL *handle, CURLoption option, const void *value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode ccurl_setopt_offset(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode ccurl_setopt_write(CURL *handle, ccurl_data_fn function, void *context) {
    CURLcode result = curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, function);
    return result != CURLE_OK ? result : curl_easy_setopt(handle, CURLOPT_WRITEDATA, context);
}

CURLcode ccurl_setopt_header(CURL *handle, ccurl_data_fn function, void *context) {
    CURLcode result = curl_easy_setopt(handle, CURLOPT_HEADERFUNCTION, function);
    return result != CURLE_OK ? result : curl_easy_setopt(handle, CURLOPT_HEADERDATA, context);
}

CURLcode ccurl_setopt_xferinfo(CURL *handle, ccurl_xferinfo_fn function, void *context) {
    CURLcode result = curl_easy_setopt(handle, CURLOPT_XFERINFOFUNCTION, function);
    if (result == CURLE_OK) result = curl_easy_setopt(handle, CURLOPT_XFERINFODATA, context);
    return result != CURLE_OK ? result : curl_easy_setopt(handle, CURLOPT_NOPROGRESS, 0L);
}

CURLcode ccurl_getinfo_long(CURL *handle, CURLINFO info, long *value) { return curl_easy_getinfo(handle, info, value); }

int ccurl_memory_file(const char *name, const void *bytes, size_t length) {
    int fd = memfd_create(name, MFD_CLOEXEC);
    if (fd < 0) return -1;
    const char *next = bytes;
    size_t left = length;
    while (left > 0) {
        ssize_t written = write(fd, next, left);
        if (written < 0) {
            if (errno == EINTR) continue;
            int saved = errno;
            close(fd);
            errno = saved;
            return -1;
        }
        next += written;
        left -= (size_t)written;
    }
    if (lseek(fd, 0, SEEK_SET) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}
