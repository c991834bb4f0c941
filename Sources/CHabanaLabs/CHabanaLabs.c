#include "CHabanaLabs.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>

// DRM_IOCTL_BASE is 'd' and DRM_COMMAND_BASE 0x40 (include/uapi/drm/drm.h); the habanalabs INFO command is the
// driver's first (HL_IOCTL_INFO 0x00). The misc-driver era used its own 'H' type with INFO as 0x01.
_Static_assert(sizeof(CHabanaLabsInfoArgs) == 24, "struct hl_info_args is 24 bytes");

unsigned long CHabanaLabs_infoRequest(int legacy) {
    return legacy ? (unsigned long)_IOWR('H', 0x01, CHabanaLabsInfoArgs)
                  : (unsigned long)_IOWR('d', 0x40 + 0x00, CHabanaLabsInfoArgs);
}

int CHabanaLabs_info(int fd, int legacy, uint32_t op, void *buffer, uint32_t size) {
    CHabanaLabsInfoArgs args;
    memset(&args, 0, sizeof(args));
    memset(buffer, 0, size);
    args.return_pointer = (uint64_t)(uintptr_t)buffer;
    args.return_size = size;
    args.op = op;
    int rc;
    do {
        rc = ioctl(fd, CHabanaLabs_infoRequest(legacy), &args);
    } while (rc < 0 && errno == EINTR);
    return rc < 0 ? -errno : 0;
}
