#!/usr/bin/env python3
"""The fake API server's seed (scripts/fake-apiserver.py --seed) for the pods a fake kubelet
(fake-kubelet.py) gives the devices to: one Running pod per device, <prefix>-<i> in <namespace> on <node>, at
127.0.0.1, labelled app=<app>. Prints the JSON.

    pod-seed.py --devices ID,ID,... --namespace NS --pod-prefix PREFIX --node NODE --app APP
"""
import argparse
import json
import sys


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--pod-prefix", required=True)
    parser.add_argument("--node", required=True)
    parser.add_argument("--app", required=True)
    args = parser.parse_args()
    count = len(args.devices.split(","))
    pods = [{"apiVersion": "v1", "kind": "Pod",
             "metadata": {"namespace": args.namespace, "name": f"{args.pod_prefix}-{i}", "labels": {"app": args.app}},
             "spec": {"nodeName": args.node}, "status": {"phase": "Running", "podIP": "127.0.0.1"}}
            for i in range(count)]
    json.dump({"objects": pods}, sys.stdout)


if __name__ == "__main__":
    main()
