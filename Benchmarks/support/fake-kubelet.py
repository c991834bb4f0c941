#!/usr/bin/env python3
"""A kubelet pod-resources endpoint (v1.PodResourcesLister) on a unix socket, for Benchmarks/adapter-chaos.sh:
List answers that pod I of --pods holds device --devices[I] under --resource; GetAllocatableResources lists every
device; Get answers for those pods. Messages are encoded by hand (protobuf wire format) so that only grpcio is
needed (Debian: python3-grpcio, for /usr/bin/python3). Runs until SIGTERM or SIGKILL: the chaos script restarts
it to play a restarting kubelet.

    fake-kubelet.py --socket PATH --devices UUID,UUID,... [--namespace fleet] [--pod-prefix real-pod]
                    [--resource nvidia.com/gpu]
"""
import argparse
import os
import signal
import threading

import grpc


def varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field(number, payload):
    """A length-delimited field (strings and messages)."""
    if isinstance(payload, str):
        payload = payload.encode()
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def container_devices(resource, ids):
    return field(1, resource) + b"".join(field(2, i) for i in ids)


def pod_resources(name, namespace, resource, device):
    container = field(1, "main") + field(2, container_devices(resource, [device]))
    return field(1, name) + field(2, namespace) + field(3, container)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--socket", required=True)
    parser.add_argument("--devices", required=True)
    parser.add_argument("--namespace", default="fleet")
    parser.add_argument("--pod-prefix", default="real-pod")
    parser.add_argument("--resource", default="nvidia.com/gpu")
    args = parser.parse_args()
    devices = [d for d in args.devices.split(",") if d]
    pods = {f"{args.pod_prefix}-{i}": pod_resources(f"{args.pod_prefix}-{i}", args.namespace, args.resource, d)
            for i, d in enumerate(devices)}
    list_answer = b"".join(field(1, p) for p in pods.values())
    allocatable = field(1, container_devices(args.resource, devices))

    def get(request, context):
        # GetPodResourcesRequest: pod_name = 1, pod_namespace = 2 (short strings: one-byte lengths).
        name, i = "", 0
        while i < len(request):
            key, length = request[i], request[i + 1]
            value = request[i + 2:i + 2 + length].decode()
            if key >> 3 == 1:
                name = value
            i += 2 + length
        if name not in pods:
            context.abort(grpc.StatusCode.NOT_FOUND, f"pod {name} not found")
        return field(1, pods[name])

    identity = lambda b: b  # noqa: E731 - the messages are bytes already
    handlers = {
        "List": grpc.unary_unary_rpc_method_handler(lambda r, c: list_answer, identity, identity),
        "GetAllocatableResources": grpc.unary_unary_rpc_method_handler(lambda r, c: allocatable, identity, identity),
        "Get": grpc.unary_unary_rpc_method_handler(get, identity, identity),
    }
    server = grpc.server(__import__("concurrent.futures").futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("v1.PodResourcesLister", handlers),))
    if os.path.exists(args.socket):
        os.unlink(args.socket)
    server.add_insecure_port("unix:" + args.socket)
    server.start()
    print(f"fake-kubelet: {len(pods)} pods on {args.socket}", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    server.stop(0)


if __name__ == "__main__":
    main()
