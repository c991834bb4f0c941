// The habanalabs driver's INFO ioctl on a Gaudi control device, for the exporter's Gaudi source.
//
// Layouts and numbers follow the kernel uAPI (include/uapi/drm/habanalabs_accel.h; before 6.3
// include/uapi/misc/habanalabs.h), restated here with fixed-width types; see
// ../shared/reference/hardware-interfaces.md §7. Only what the exporter reads is declared. The ioctl request is a
// macro (_IOWR) and ioctl(2) is variadic: neither is called from Swift (STYLE.md), so both live in the .c file.
#ifndef CHABANALABS_H
#define CHABANALABS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// HL_INFO_* opcodes.
enum {
    CHabanaLabs_INFO_HW_IP_INFO = 0,
    CHabanaLabs_INFO_DRAM_USAGE = 2,
    CHabanaLabs_INFO_DEVICE_UTILIZATION = 6,
};

/// struct hl_info_args: 24 bytes. `period_ms` shares its slot with the other per-opcode arguments.
typedef struct {
    uint64_t return_pointer;
    uint32_t return_size;
    uint32_t op;
    uint32_t period_ms;
    uint32_t pad;
} CHabanaLabsInfoArgs;

/// The leading fields of struct hl_info_hw_ip_info (the kernel copies at most `return_size` bytes).
typedef struct {
    uint64_t sram_base_address;
    uint64_t dram_base_address;
    /// DRAM available to users, bytes (the driver's reserved part already taken off).
    uint64_t dram_size;
} CHabanaLabsHWIPInfoPrefix;

/// struct hl_info_dram_usage.
typedef struct {
    /// Device-wide free user DRAM, bytes.
    uint64_t dram_free_mem;
    /// DRAM of the caller's compute context (0 on a control device, which has none).
    uint64_t ctx_dram_mem;
} CHabanaLabsDRAMUsage;

/// struct hl_info_device_utilization: percent.
typedef struct {
    uint32_t utilization;
    uint32_t pad;
} CHabanaLabsUtilization;

/// The INFO request: `_IOWR('d', DRM_COMMAND_BASE + 0, struct hl_info_args)` on the accel driver's
/// `/dev/accel/accel_controlD<N>`, `_IOWR('H', 0x01, struct hl_info_args)` on the older misc driver's
/// `/dev/hl_controlD<N>`.
unsigned long CHabanaLabs_infoRequest(int legacy);

/// Issues one INFO ioctl: `op` answered into `buffer` (at most `size` bytes). 0, or -errno.
int CHabanaLabs_info(int fd, int legacy, uint32_t op, void *buffer, uint32_t size);

#ifdef __cplusplus
}
#endif

#endif
