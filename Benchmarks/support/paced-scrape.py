#!/usr/bin/env python3
"""A paced HTTP load for Benchmarks/exporter-soak.sh (wrk has no fixed-rate mode; wrk2 is not in Debian):
GET URL at RATE requests per second for SECONDS over CONNECTIONS kept-alive HTTP/1.1 connections (asyncio, one
process). Request i is due at start + i / RATE; a request whose connection is still busy waits for it, and its
latency is counted from when it was due (no coordinated omission). Prints one JSON object at the end:
requests, achieved rate, status counts, errors, latency percentiles (ms), bytes, and requests per second of the
run (per_second), so the caller can line them up with its memory samples.

    paced-scrape.py URL [--rate 1000] [--seconds 600] [--connections 32]
"""
import argparse
import asyncio
import json
import signal
import time
import urllib.parse


async def one_connection(host, port, path, queue, stats, timeout):
    reader = writer = None
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept-Encoding: identity\r\n\r\n".encode()
    while True:
        due = await queue.get()
        if due is None:
            break
        try:
            if writer is None:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
            writer.write(request)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
            lines = head.decode("latin-1").split("\r\n")
            status = lines[0].split(" ")[1]
            length = 0
            close = False
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.lower() == "content-length":
                    length = int(value.strip())
                elif name.lower() == "connection" and value.strip().lower() == "close":
                    close = True
            body = await asyncio.wait_for(reader.readexactly(length), timeout)
            stats["status"][status] = stats["status"].get(status, 0) + 1
            stats["bytes"] += len(head) + len(body)
            if close:
                writer.close()
                writer = None
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError) as error:
            kind = type(error).__name__
            stats["errors"][kind] = stats["errors"].get(kind, 0) + 1
            if writer is not None:
                writer.close()
            writer = None
        now = time.monotonic()
        stats["latencies"].append(now - due)
        second = int(now - stats["start"])
        stats["per_second"][second] = stats["per_second"].get(second, 0) + 1
    if writer is not None:
        writer.close()


async def run(args):
    url = urllib.parse.urlsplit(args.url)
    host, port = url.hostname, url.port or 80
    path = (url.path or "/") + (f"?{url.query}" if url.query else "")
    queue = asyncio.Queue()
    stats = {"status": {}, "errors": {}, "bytes": 0, "latencies": [], "per_second": {}, "start": time.monotonic()}
    workers = [asyncio.create_task(one_connection(host, port, path, queue, stats, args.timeout))
               for _ in range(args.connections)]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    start = stats["start"]
    issued = 0
    behind = 0
    while not stop.is_set():
        now = time.monotonic()
        if now - start >= args.seconds:
            break
        due_count = int((now - start) * args.rate) + 1
        while issued < due_count:
            queue.put_nowait(start + issued / args.rate)
            issued += 1
        # Requests due but not yet taken by a connection: the load is behind its pace.
        behind = max(behind, queue.qsize())
        await asyncio.sleep(min(0.005, 1 / args.rate))
    elapsed = time.monotonic() - start
    # Let the requests already due finish (bounded), then stop the connections.
    for _ in workers:
        queue.put_nowait(None)
    done, pending = await asyncio.wait(workers, timeout=args.timeout + 5)
    for task in pending:
        task.cancel()
    latencies = sorted(stats["latencies"])

    def pct(p):
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 3) if latencies else None

    completed = sum(stats["status"].values())
    ok = stats["status"].get("200", 0)
    return {
        "url": args.url, "target_rate": args.rate, "seconds": round(elapsed, 1), "connections": args.connections,
        "issued": issued, "completed": completed, "ok": ok, "rate": round(completed / elapsed, 1) if elapsed else 0,
        "ok_rate": round(ok / elapsed, 1) if elapsed else 0,
        "status": stats["status"], "errors": stats["errors"], "most_behind": behind,
        "p50_ms": pct(0.50), "p99_ms": pct(0.99), "max_ms": pct(1.0), "bytes": stats["bytes"],
        "per_second": [stats["per_second"].get(s, 0) for s in range(int(elapsed) + 1)],
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--timeout", type=float, default=5)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args))), flush=True)


if __name__ == "__main__":
    main()
