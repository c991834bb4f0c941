// A fake habanalabs driver at the syscall boundary, for tests. umockdev fakes /sys and /dev (its control nodes are
// PTYs) but cannot answer this driver's INFO ioctl, so the real exporter runs with this library preloaded *before*
// umockdev's: it notes which descriptors were opened on a control node (`accel_controlD<N>`, `hl_controlD<N>`) and
// answers HW_IP_INFO, DRAM_USAGE and DEVICE_UTILIZATION on them from $FAKE_HABANA_INFO,
// `accel_controlD0=UTIL,DRAM_SIZE,DRAM_FREE[,FAILS];accel_controlD1=…`, where FAILS (default 0) makes the node's
// first FAILS HW_IP_INFO calls fail with EBUSY. A node it does not list answers ENODEV; every other call goes on to
// the next definition (umockdev's, then libc's).
#ifndef FAKE_HABANA_IOCTL_H
#define FAKE_HABANA_IOCTL_H
int open(const char *path, int flags, ...);
int open64(const char *path, int flags, ...);
int openat(int dirfd, const char *path, int flags, ...);
int close(int fd);
int ioctl(int fd, unsigned long request, ...);
#endif
