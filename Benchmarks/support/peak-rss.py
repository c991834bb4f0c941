#!/usr/bin/env python3
"""The largest resident set of a process, sampled every millisecond from /proc/PID/statm.

    peak-rss.py PID DONE_FILE

Samples until DONE_FILE exists or the process is gone, then prints the largest RSS seen, in KiB. Started right after
the process, it catches the start-up's peak, which VmHWM can miss: the kernel does not update VmHWM before
MADV_PAGEOUT reclaims pages, and accel-exporter pages out its start-up code (docs/performance.md).
"""
import os
import sys
import time


def main():
    pid, done = sys.argv[1], sys.argv[2]
    page_kib = os.sysconf("SC_PAGE_SIZE") // 1024
    top = 0
    while not os.path.exists(done):
        try:
            with open(f"/proc/{pid}/statm") as f:
                top = max(top, int(f.read().split()[1]) * page_kib)
        except (OSError, IndexError, ValueError):
            break
        time.sleep(0.001)
    print(top, flush=True)


if __name__ == "__main__":
    main()
