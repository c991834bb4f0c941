#!/usr/bin/env bash
# `make check-images`: the release binaries run in a Debian root that holds exactly the runtime packages
# deploy/Containerfile and deploy/Containerfile.adapter install, and nothing else. No container engine is needed
# (none runs on the development machines): the root comes from debootstrap (variant minbase, this machine's Debian
# suite and apt mirror), the programs run in it under chroot.
#
# 1. Builds the release binaries (static Swift stdlib, as `make release` and the Containerfiles do) in a scratch
#    path of their own, .build-release, so a debug build in .build is left alone.
# 2. Reads each Containerfile's runtime packages (the apt-get install of its last stage) and debootstraps a root
#    with them; the finished root is cached as a tarball named after the suite and the package list.
# 3. In the root: no library the binary needs is missing (ldd), `accel-exporter --version`, the exporter serving
#    /metrics and /readyz as uid 65534 (the images' USER) with promtool checking the exposition,
#    `accel-metrics-adapter --help`, and the adapter (in its own root) serving discovery over HTTP and /healthz over
#    HTTPS with the certificate it generates, fed by that exporter.
#
# Needs root (chroot, mount): run as root or with sudo. First run: the release build (tens of minutes on 2 cores)
# and two debootstraps (a few minutes); later runs: about half a minute.
# Environment: SCRATCH (default .build-release), MIRROR (default: this machine's apt source), KEEP_ROOTS=1 keeps
# the unpacked roots for a look.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
SCRATCH=${SCRATCH:-.build-release}
case "$SCRATCH" in /*) ;; *) SCRATCH="$repo/$SCRATCH" ;; esac
roots="$SCRATCH/image-roots"
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi

fail() { echo "check-runtime-root: FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }

# shellcheck disable=SC1091 # the machine's own file
suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
[ -n "$suite" ] || fail "no VERSION_CODENAME in /etc/os-release"
for file in deploy/Containerfile deploy/Containerfile.adapter; do
  grep -q "RUNTIME_IMAGE=debian:${suite}-slim" "$file" \
    || fail "$file's runtime image is not debian:${suite}-slim: a root of this machine's suite would prove nothing about it"
done

# This machine's Debian mirror: the first non-security URI of its apt sources (deb822 or one-line format).
if [ -z "${MIRROR:-}" ]; then
  MIRROR=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ {for (i = 2; i <= NF; i++) print $i}' | grep -v -- -security | head -n1 || true)
  [ -n "$MIRROR" ] || MIRROR=$(grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
    | awk '{for (i = 2; i <= NF; i++) if ($i ~ /^(http|https|file):/) {print $i; exit}}' | grep -v -- -security | head -n1 || true)
  [ -n "$MIRROR" ] || fail "no apt mirror found in /etc/apt/sources.list*; set MIRROR"
fi

for tool in debootstrap curl; do
  if ! command -v "$tool" >/dev/null; then
    echo "installing $tool" >&2
    $SUDO apt-get install -y -qq --no-install-recommends "$tool" >/dev/null
  fi
done

# The runtime packages of a Containerfile: the apt-get install in its last stage.
runtime_packages() {
  python3 - "$1" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
last = text[text.rfind("\nFROM "):]
command = re.search(r"apt-get install((?:[^&]|\\\n)*)", last).group(1)
print(" ".join(t for t in command.replace("\\\n", " ").split() if not t.startswith("-")))
EOF
}

step "release build (static Swift stdlib) in $SCRATCH"
scripts/build-release.sh accel-exporter --scratch-path "$SCRATCH"
scripts/build-release.sh accel-metrics-adapter --scratch-path "$SCRATCH"
bin=$(swift build -c release --static-swift-stdlib --scratch-path "$SCRATCH" --show-bin-path)

mounted=()
pids=()
cleanup() {
  for pid in "${pids[@]}"; do $SUDO kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  for m in "${mounted[@]}"; do $SUDO umount "$m" 2>/dev/null || true; done
  if [ "${KEEP_ROOTS:-0}" != 1 ]; then
    for name in exporter adapter; do
      [ -d "$roots/$name" ] && ! mountpoint -q "$roots/$name/proc" && $SUDO rm -rf "$roots/$name"
    done
  fi
  return 0
}
trap cleanup EXIT

# make_root NAME PACKAGES…: $roots/NAME, a minbase root of this suite plus PACKAGES, from the cache when it has one.
make_root() {
  local name=$1; shift
  local key tarball root="$roots/$name"
  key=$(echo "$suite $*" | sha256sum | cut -c1-12)
  tarball="$roots/$name-$suite-$key.tar.gz"
  $SUDO rm -rf "$root"
  mkdir -p "$roots"
  if [ -f "$tarball" ]; then
    echo "root for $name from the cache ($(basename "$tarball"))"
    mkdir -p "$root"
    $SUDO tar -xzf "$tarball" -C "$root"
  else
    echo "debootstrap --variant=minbase $suite from $MIRROR, with: $*"
    $SUDO debootstrap --variant=minbase --include="$(echo "$*" | tr ' ' ',')" \
      --keyring=/usr/share/keyrings/debian-archive-keyring.gpg "$suite" "$root" "$MIRROR" > "$roots/$name-debootstrap.log" 2>&1 \
      || { tail -n 30 "$roots/$name-debootstrap.log" >&2; fail "debootstrap for $name"; }
    $SUDO chroot "$root" apt-get clean
    $SUDO tar -czf "$tarball.tmp" -C "$root" . && mv "$tarball.tmp" "$tarball"
  fi
  # What the image would hold beyond minbase is exactly the Containerfile's list: every package named is installed.
  for package in "$@"; do
    # shellcheck disable=SC2016 # dpkg-query's format, not the shell's
    $SUDO chroot "$root" dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
      || fail "$package is not installed in the $name root"
  done
}

# in_root ROOT COMMAND…: run as the images' USER (65534:65534), for at most 10 s.
in_root() { local root=$1; shift; timeout 10 $SUDO chroot --userspec=65534:65534 "$root" "$@"; }
# start_in_root ROOT LOG COMMAND…: the same in the background; the subshell execs, so $! is the program itself (or
# sudo, which passes signals on) and cleanup stops it.
start_in_root() {
  local root=$1 log=$2; shift 2
  ( exec $SUDO chroot --userspec=65534:65534 "$root" "$@" ) > "$log" 2>&1 &
  pids+=($!)
}

# mount_proc ROOT: a container always has /proc; the Swift runtime reads the program's arguments from
# /proc/self/cmdline, so without it a binary runs as if given no flags at all.
mount_proc() { $SUDO mount -t proc proc "$1/proc" && mounted+=("$1/proc"); }

check_libraries() {
  local root=$1 binary=$2 missing
  missing=$($SUDO chroot "$root" ldd "$binary" | grep 'not found' || true)
  [ -z "$missing" ] || fail "$binary in its root misses: $missing"
  echo "ldd $binary: every library found ($($SUDO chroot "$root" ldd "$binary" | grep -c '=>') loaded)"
}

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

wait_http() {  # wait_http URL [curl options…]: up to 15 s for a 200
  local url=$1; shift
  for _ in $(seq 1 75); do
    if curl -fsS -o /dev/null "$@" "$url" 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  return 1
}

step "exporter root: $(runtime_packages deploy/Containerfile)"
# shellcheck disable=SC2046 # one word per package
make_root exporter $(runtime_packages deploy/Containerfile)
exporter_root="$roots/exporter"
$SUDO install -s -m 0755 "$bin/accel-exporter" "$exporter_root/usr/bin/accel-exporter"
check_libraries "$exporter_root" /usr/bin/accel-exporter
mount_proc "$exporter_root"
version=$(in_root "$exporter_root" /usr/bin/accel-exporter --version) || fail "accel-exporter --version"
[[ "$version" =~ ^[0-9]+\.[0-9]+ ]] || fail "accel-exporter --version printed '$version', not a version"
echo "accel-exporter --version: $version"
exporter_port=$(free_port)
start_in_root "$exporter_root" "$roots/exporter.log" /usr/bin/accel-exporter --web.listen-address="127.0.0.1:$exporter_port" \
  --no-kubernetes.watch-pods --no-collector.kubelet --log.format=json
wait_http "http://127.0.0.1:$exporter_port/readyz" || { cat "$roots/exporter.log" >&2; fail "the exporter never became ready"; }
curl -fsS "http://127.0.0.1:$exporter_port/metrics" > "$roots/exporter-metrics.prom" || fail "GET /metrics"
grep -q '^accel_exporter_build_info{' "$roots/exporter-metrics.prom" || fail "/metrics lacks accel_exporter_build_info"
if command -v promtool >/dev/null; then
  promtool check metrics < "$roots/exporter-metrics.prom" || fail "promtool check metrics on the exporter's /metrics"
fi
echo "exporter in its root: ready, /metrics $(wc -l < "$roots/exporter-metrics.prom") lines, peak RSS $(awk '/VmHWM/ {print $2, $3}' "/proc/${pids[0]}/status" 2>/dev/null || echo '?')"

step "adapter root: $(runtime_packages deploy/Containerfile.adapter)"
# shellcheck disable=SC2046
make_root adapter $(runtime_packages deploy/Containerfile.adapter)
adapter_root="$roots/adapter"
$SUDO install -s -m 0755 "$bin/accel-metrics-adapter" "$adapter_root/usr/bin/accel-metrics-adapter"
check_libraries "$adapter_root" /usr/bin/accel-metrics-adapter
mount_proc "$adapter_root"
in_root "$adapter_root" /usr/bin/accel-metrics-adapter --help > "$roots/adapter-help.txt" || fail "accel-metrics-adapter --help"
grep -q -- '--secure-port' "$roots/adapter-help.txt" || fail "accel-metrics-adapter --help does not list its flags"
echo "accel-metrics-adapter --help: $(wc -l < "$roots/adapter-help.txt") lines"
plain_port=$(free_port)
secure_port=$(free_port)
start_in_root "$adapter_root" "$roots/adapter.log" /usr/bin/accel-metrics-adapter --secure-port "$secure_port" \
  --bind-address 127.0.0.1 --insecure-port "$plain_port" --exporters.targets "127.0.0.1:$exporter_port" \
  --authorization-mode AlwaysAllow --log.format=json
wait_http "http://127.0.0.1:$plain_port/healthz" || { cat "$roots/adapter.log" >&2; fail "the adapter never answered /healthz"; }
curl -fsS "http://127.0.0.1:$plain_port/apis/custom.metrics.k8s.io/v1beta2" | grep -q '"APIResourceList"' \
  || fail "the adapter's discovery document"
# HTTPS with the self-signed localhost certificate the adapter generates at start outside a cluster: this checks
# that GnuTLS serving works in the image's root, not whom to trust, hence --insecure.
wait_http "https://127.0.0.1:$secure_port/healthz" --insecure || { cat "$roots/adapter.log" >&2; fail "HTTPS /healthz"; }
echo "adapter in its root: discovery over HTTP, /healthz over HTTPS (its generated certificate)"

echo "check-runtime-root: 2 passed, 0 failed"
