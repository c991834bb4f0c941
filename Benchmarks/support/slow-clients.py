#!/usr/bin/env python3
"""Slow clients for Benchmarks/ceilings.sh: N connections from one loopback source address, each sending a request
line and then one header byte per interval, never finishing the request (issue 15, case 4). A connection the
server closes is opened again, at most once per interval, as a stubborn client would. Runs until SIGTERM or
--seconds, then prints one line of counts as JSON.

    slow-clients.py --port P [--host 127.0.0.1] [--source 127.0.0.1] [--connections 600] [--interval 1]
"""
import argparse
import json
import selectors
import signal
import socket
import time


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--source", default="127.0.0.1")
    parser.add_argument("--connections", type=int, default=600)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=0)
    args = parser.parse_args()
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    signal.signal(signal.SIGINT, lambda *_: stop.update(now=True))
    counts = {"opened": 0, "closed_by_server": 0, "connect_failed": 0, "bytes_sent": 0, "max_open": 0}
    sockets = [None] * args.connections

    def open_one():
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((args.source, 0))
            s.settimeout(2)
            s.connect((args.host, args.port))
            s.setblocking(False)
            s.send(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        except OSError:
            s.close()
            counts["connect_failed"] += 1
            return None
        counts["opened"] += 1
        return s

    started = time.monotonic()
    while not stop["now"] and (args.seconds == 0 or time.monotonic() - started < args.seconds):
        tick = time.monotonic()
        for i in range(args.connections):
            s = sockets[i]
            if s is None:
                sockets[i] = open_one()
                continue
            try:
                # Anything the server sent (an error page) or a closed socket: the server dropped us.
                data = s.recv(4096)
                if data == b"" or data:
                    raise ConnectionResetError
            except BlockingIOError:
                pass
            except OSError:
                s.close()
                sockets[i] = None
                counts["closed_by_server"] += 1
                continue
            try:
                counts["bytes_sent"] += s.send(b"a")
            except BlockingIOError:
                pass
            except OSError:
                s.close()
                sockets[i] = None
                counts["closed_by_server"] += 1
            if stop["now"]:
                break
        counts["max_open"] = max(counts["max_open"], sum(1 for s in sockets if s is not None))
        time.sleep(max(0.0, args.interval - (time.monotonic() - tick)))
    counts["open_at_end"] = sum(1 for s in sockets if s is not None)
    for s in sockets:
        if s is not None:
            s.close()
    print(json.dumps(counts), flush=True)


if __name__ == "__main__":
    main()
