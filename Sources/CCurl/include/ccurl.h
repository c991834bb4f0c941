// libcurl's variadic setopt/getinfo in typed form (Swift cannot call C variadics), and memfd_create for handing PEM
// bytes to curl's GnuTLS backend, which loads certificates and keys only from paths.
#ifndef CCURL_H
#define CCURL_H

#include <curl/curl.h>
#include <stddef.h>

typedef size_t (*ccurl_data_fn)(char *data, size_t size, size_t count, void *context);
typedef int (*ccurl_xferinfo_fn)(void *context, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow);

/// curl_global_init(CURL_GLOBAL_DEFAULT) exactly once, whichever thread asks first; its result every time.
/// Before it, libssh2 (when libcurl links it) is initialised without OpenSSL: see ccurl.c.
CURLcode ccurl_global_init(void);
/// 1 when ccurl_global_init found libssh2 loaded and initialised it without crypto; 0 otherwise.
int ccurl_ssh_crypto_skipped(void);

CURLcode ccurl_setopt_long(CURL *handle, CURLoption option, long value);
CURLcode ccurl_setopt_pointer(CURL *handle, CURLoption option, const void *value);
CURLcode ccurl_setopt_offset(CURL *handle, CURLoption option, curl_off_t value);
CURLcode ccurl_setopt_write(CURL *handle, ccurl_data_fn function, void *context);
CURLcode ccurl_setopt_header(CURL *handle, ccurl_data_fn function, void *context);
CURLcode ccurl_setopt_xferinfo(CURL *handle, ccurl_xferinfo_fn function, void *context);
CURLcode ccurl_getinfo_long(CURL *handle, CURLINFO info, long *value);

/// An anonymous in-memory file (close-on-exec) holding `length` bytes, rewound; -1 with errno set on failure. Its
/// path for curl is /proc/self/fd/<fd>: nothing reaches the disk, and closing the fd frees it.
int ccurl_memory_file(const char *name, const void *bytes, size_t length);

#endif
