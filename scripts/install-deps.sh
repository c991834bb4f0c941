#!/usr/bin/env bash
# Installs what building, running and testing need on a Debian machine, and nothing when it is all there.
# Used by `make run`, `make test` and CI (.ci/run). Swift itself must already be installed.
set -euo pipefail

# python3-grpcio: the fake kubelet that `make run` (and Benchmarks/adapter-chaos.sh) start with Debian's python3.
# tinyproxy: the real forward proxy the proxy tests go through (its service is not started; the tests run their own).
packages=(libmicrohttpd-dev libsensors-dev zlib1g-dev libyaml-dev libgnutls28-dev libcurl4-gnutls-dev libcrypt-dev openssl chromium pkg-config umockdev prometheus curl python3 python3-pip python3-grpcio tinyproxy)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian's prometheus package may start a server on :9090 where an init system runs; tests start their own.

# The strict OpenMetrics parser the tests use (promtool 2.42 lints only the text format).
if ! python3 -c 'import prometheus_client' 2>/dev/null; then
  python3 -m pip install --quiet prometheus-client 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages prometheus-client
fi

# NVIDIA's own Python bindings (PyPI nvidia-ml-py), to check the fake NVML against NVML's real interface.
if ! python3 -c 'import pynvml' 2>/dev/null; then
  python3 -m pip install --quiet nvidia-ml-py 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages nvidia-ml-py
fi

# The OTLP receiver the exporter's OpenTelemetry tests push to (scripts/otlp-receiver.py): PyPI's decoder for
# OTLP's messages, and grpcio for its gRPC service.
if ! python3 -c 'import opentelemetry.proto.collector.metrics.v1.metrics_service_pb2_grpc, grpc' 2>/dev/null; then
  python3 -m pip install --quiet opentelemetry-proto grpcio 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages opentelemetry-proto grpcio
fi

# The manifest and image checks (scripts/check-manifests.py: kubernetes-validate, checkov, the Prometheus Operator
# and cert-manager schemas, hadolint), pinned in scripts/check-requirements.txt. They get a virtual environment of
# their own, .build-checks/venv: checkov pins older packaging, boto3 and networkx than the machine's Python has,
# and installing it there would downgrade them for everything else.
checks_venv="$(cd "$(dirname "$0")/.." && pwd)/.build-checks/venv"
checks_requirements="$(cd "$(dirname "$0")" && pwd)/check-requirements.txt"
if ! cmp -s "$checks_requirements" "$checks_venv/.requirements" 2>/dev/null; then
  echo "installing the manifest checks into $checks_venv" >&2
  if ! python3 -m venv "$checks_venv" 2>/dev/null; then
    # Debian's own python3 makes virtual environments only with python3-venv (pyenv's Python has it built in).
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    rm -rf "$checks_venv"
    python3 -m venv "$checks_venv"
  fi
  "$checks_venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$checks_requirements"
  cp "$checks_requirements" "$checks_venv/.requirements"
fi
