#ifndef CCRYPT_SHIM_H
#define CCRYPT_SHIM_H
#include <stdlib.h>
#include <string.h>
#include <crypt.h>

/// crypt_r with its (large) work area on the heap; writes the result into `out` (size `capacity`).
/// Returns 0 on success, -1 on failure (unknown hash method, malformed setting).
static inline int CCrypt_hash(const char *phrase, const char *setting, char *out, size_t capacity) {
    struct crypt_data *data = calloc(1, sizeof(struct crypt_data));
    if (data == NULL) return -1;
    const char *result = crypt_r(phrase, setting, data);
    int status = -1;
    if (result != NULL && result[0] != '*' && strlen(result) < capacity) {
        strcpy(out, result);
        status = 0;
    }
    explicit_bzero(data, sizeof(struct crypt_data));
    free(data);
    return status;
}
#endif
