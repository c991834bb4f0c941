#!/usr/bin/env bash
# Builds device-bundle/: a stripped release accel-exporter plus the shared objects it needs that a non-Debian GPU
# machine may lack, for scripts/device-check.sh to run on a machine with no Swift toolchain and no network.
#
#   scripts/build-device-bundle.sh            # from anywhere; writes <repo>/device-bundle/
#
# Layout:
#   device-bundle/bin/accel-exporter   release build, --static-swift-stdlib, stripped
#   device-bundle/lib/*.so.*           libmicrohttpd, libsensors, zlib and their non-glibc dependencies (gnutls,
#                                      nettle, hogweed, gmp, p11-kit, tasn1, idn2, unistring, ffi), unpacked from
#                                      their Debian packages (apt-get download + dpkg-deb -x), else copied from the
#                                      system when the archive cannot be reached
#   device-bundle/MANIFEST             files, sizes, sha256, build date, git commit, glibc/GLIBCXX needs
#
# Run it as: LD_LIBRARY_PATH=device-bundle/lib device-bundle/bin/accel-exporter ...
#
# Not bundled, on purpose:
#   - glibc (libc, libm, libpthread, libdl, librt, ld-linux): it must be the host's own, matching the host's dynamic
#     loader; a foreign libc next to the host's ld.so crashes or refuses to load. The MANIFEST records the newest
#     GLIBC_ symbol version needed, i.e. the oldest host glibc that can run the bundle.
#   - libstdc++ and libgcc_s: present on any machine with PyTorch (and any desktop/server distribution), and a copy
#     older than what other host libraries expect breaks them. Exception: when the binary or a bundled library needs
#     a GLIBCXX_ version newer than Ubuntu 22.04's (GLIBCXX_3.4.30), libstdc++.so.6 is bundled too, since the host's
#     would then be too old.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
SCRATCH=${SCRATCH:-$REPO/.build-devbundle}
BUNDLE=$REPO/device-bundle
MAX_BYTES=${MAX_BUNDLE_BYTES:-$((60 * 1024 * 1024))}   # what travels to the GPU machine is capped at 64 MiB in all
HOST_GLIBCXX_MAX=3.4.30   # Ubuntu 22.04's libstdc++ (GCC 12)

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'build-device-bundle: %s\n' "$*" >&2; exit 1; }

# Sonames that come from the host, never from the bundle (see the header). Matched on the soname's prefix.
is_host_lib() {
    case "$1" in
        linux-vdso.so* | linux-gate.so* | ld-linux* | libc.so* | libm.so* | libpthread.so* | libdl.so* | librt.so* \
            | libutil.so* | libresolv.so* | libanl.so* | libmvec.so* | libstdc++.so* | libgcc_s.so*) return 0 ;;
        *) return 1 ;;
    esac
}

# Newest version of a symbol-version family (GLIBC_, GLIBCXX_) an ELF file references ("" if none).
max_version() {
    objdump -T "$2" 2>/dev/null | grep -o "(${1}_[0-9.]*)" | tr -d '()' | sed "s/^${1}_//" | sort -uV | tail -1 || true
}

for tool in swift ldd objdump strip sha256sum dpkg-query dpkg-deb; do
    command -v "$tool" >/dev/null || die "$tool is required"
done

# --- 1. the binary -------------------------------------------------------------------------------------------------
log "swift build (release, static Swift stdlib) in $SCRATCH"
scripts/build-release.sh accel-exporter --scratch-path "$SCRATCH"
BIN_SRC=$(swift build -c release --static-swift-stdlib --product accel-exporter --scratch-path "$SCRATCH" --show-bin-path)/accel-exporter
[[ -x $BIN_SRC ]] || die "no binary at $BIN_SRC"

WORK=$(mktemp -d)
DONE=0
# A failed build leaves no device-bundle/ behind, so a half-made or over-size one is never carried by mistake.
trap 'rm -rf "$WORK"; ((DONE)) || rm -rf "$BUNDLE"' EXIT
rm -rf "$BUNDLE"
mkdir -p "$BUNDLE/bin" "$BUNDLE/lib"
cp "$BIN_SRC" "$BUNDLE/bin/accel-exporter"
strip --strip-all "$BUNDLE/bin/accel-exporter"

# --- 2. the shared objects -----------------------------------------------------------------------------------------
# ldd prints the whole dependency closure (libmicrohttpd pulls in gnutls, which pulls in nettle, ...).
declare -A LIB_PATH=()   # soname -> resolved path on this machine
while read -r soname _ path _; do
    [[ $path == /* ]] || continue
    is_host_lib "$soname" && continue
    LIB_PATH[$soname]=$path
done < <(ldd "$BUNDLE/bin/accel-exporter")
for need in libmicrohttpd.so.12 libsensors.so.5; do
    [[ -n ${LIB_PATH[$need]:-} ]] || die "ldd does not list $need: did the link change? ($(ldd "$BUNDLE/bin/accel-exporter" | tr '\n' ' '))"
done

# Which Debian package ships a file: dpkg knows the path the package installed (/lib/... or /usr/lib/... on a
# merged-/usr system), so try the path as ldd gave it, its resolved form and the /usr-toggled twins of both.
owner_of() {
    local p real candidates=()
    p=$1
    real=$(readlink -f "$p")
    for c in "$p" "$real"; do
        candidates+=("$c")
        case "$c" in
            /usr/lib/*) candidates+=("${c#/usr}") ;;
            /lib/*) candidates+=("/usr$c") ;;
        esac
    done
    for c in "${candidates[@]}"; do
        dpkg-query -S "$c" 2>/dev/null | head -1 | cut -d: -f1 && return 0
    done
    return 1
}

declare -A SOURCE=()     # soname -> "deb pkg=version" | "copied from /path"

for soname in $(printf '%s\n' "${!LIB_PATH[@]}" | sort); do
    path=${LIB_PATH[$soname]}
    got=""
    if pkg=$(owner_of "$path") && [[ -n $pkg ]]; then
        version=$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null || true)
        dl=$WORK/dl-$soname
        mkdir -p "$dl"
        # The installed version first (what we linked against), else whatever the archive has now.
        if (cd "$dl" && { timeout 120 apt-get download -q "${pkg%%:*}=$version" >/dev/null 2>&1 \
                || timeout 120 apt-get download -q "${pkg%%:*}" >/dev/null 2>&1; }); then
            debs=("$dl"/*.deb)
            deb=${debs[0]}
            if [[ -f $deb ]]; then
                x=$WORK/x-$soname
                dpkg-deb -x "$deb" "$x"
                found=$(find "$x" \( -type f -o -type l \) -name "$soname" | head -1)
                if [[ -n $found ]]; then
                    cp -L "$found" "$BUNDLE/lib/$soname"
                    got="deb $(basename "$deb")"
                fi
            fi
        fi
    fi
    if [[ -z $got ]]; then
        log "WARNING: $soname: Debian package not downloadable (offline?); copying $path"
        cp -L "$path" "$BUNDLE/lib/$soname"
        got="copied from $path"
    fi
    chmod 0644 "$BUNDLE/lib/$soname"
    SOURCE[$soname]=$got
    log "lib/$soname <- $got"
done

# libstdc++: bundle only if something needs a GLIBCXX newer than a typical host has.
glibcxx_max=""
for f in "$BUNDLE/bin/accel-exporter" "$BUNDLE"/lib/*; do
    v=$(max_version GLIBCXX "$f")
    [[ -n $v ]] && glibcxx_max=$(printf '%s\n%s\n' "$glibcxx_max" "$v" | sed '/^$/d' | sort -V | tail -1)
done
if [[ -n $glibcxx_max ]] && [[ $(printf '%s\n%s\n' "$glibcxx_max" "$HOST_GLIBCXX_MAX" | sort -V | tail -1) != "$HOST_GLIBCXX_MAX" ]]; then
    src=$(ldd "$BUNDLE/bin/accel-exporter" | awk '$1 == "libstdc++.so.6" { print $3 }')
    log "GLIBCXX_$glibcxx_max > GLIBCXX_$HOST_GLIBCXX_MAX: bundling libstdc++.so.6 from $src"
    cp -L "$src" "$BUNDLE/lib/libstdc++.so.6"
    chmod 0644 "$BUNDLE/lib/libstdc++.so.6"
    SOURCE[libstdc++.so.6]="copied from $src (GLIBCXX_$glibcxx_max needed)"
fi

# Drop debug sections from the libraries too (Debian's are already stripped; this is cheap insurance).
for f in "$BUNDLE"/lib/*; do strip --strip-unneeded "$f" 2>/dev/null || true; done

# --- 3. verify -----------------------------------------------------------------------------------------------------
log "verify: --help with LD_LIBRARY_PATH=device-bundle/lib"
LD_LIBRARY_PATH=$BUNDLE/lib "$BUNDLE/bin/accel-exporter" --help >"$WORK/help.txt" 2>&1 \
    || { cat "$WORK/help.txt" >&2; die "accel-exporter --help failed"; }
grep -q -- '--web.listen-address' "$WORK/help.txt" || die "--help output does not mention --web.listen-address"

log "verify: every library resolves from the bundle or is a host (glibc/libstdc++/libgcc_s) library"
LDD_OUT=$(env -i LD_LIBRARY_PATH="$BUNDLE/lib" ldd "$BUNDLE/bin/accel-exporter")
bad=0
while read -r line; do
    soname=$(awk '{print $1}' <<<"$line")
    [[ -z $soname ]] && continue
    if [[ $line == *"not found"* ]]; then
        printf '  MISSING  %s\n' "$line" >&2; bad=1; continue
    fi
    if is_host_lib "$(basename "$soname")" && [[ ! -e $BUNDLE/lib/$(basename "$soname") ]]; then continue; fi
    if [[ $line != *"$BUNDLE/lib/"* ]]; then
        printf '  NOT FROM BUNDLE  %s\n' "$line" >&2; bad=1
    fi
done <<<"$LDD_OUT"
((bad == 0)) || { printf '%s\n' "$LDD_OUT" >&2; die "the bundle does not cover the binary's libraries"; }

# Stronger, where this machine allows a private mount namespace: hide the system's library directory entirely and
# run --help with only the bundle and copies of the host libraries (what a bare non-Debian host is guaranteed to
# have). Skipped (not failed) where unshare is refused.
HERMETIC="skipped (unshare -m unavailable)"
if command -v unshare >/dev/null && unshare -m true 2>/dev/null; then
    hostlibs=$WORK/hostlibs
    mkdir -p "$hostlibs"
    while read -r soname _ path _; do
        if [[ $path == /* ]] && is_host_lib "$soname" && [[ ! -e $BUNDLE/lib/$soname ]]; then cp -L "$path" "$hostlibs/"; fi
    done < <(ldd "$BUNDLE/bin/accel-exporter")
    interp=$(ldd "$BUNDLE/bin/accel-exporter" | awk '/ld-linux/ { print $1 }')
    cp -L "$interp" "$hostlibs/ld.so"
    libdir=$(dirname "$(readlink -f "$(ldd "$BUNDLE/bin/accel-exporter" | awk '$1 == "libc.so.6" { print $3 }')")")
    # shellcheck disable=SC2016 # expanded by the inner bash, from its arguments
    if unshare -m bash -c '
            mount -t tmpfs none "$1" || exit 90
            [ -z "$(ls -A "$1")" ] || exit 91
            exec "$2/ld.so" --inhibit-cache --library-path "$3:$2" "$4" --help' _ \
            "$libdir" "$hostlibs" "$BUNDLE/lib" "$BUNDLE/bin/accel-exporter" >"$WORK/hermetic.txt" 2>&1 \
        && grep -q -- '--web.listen-address' "$WORK/hermetic.txt"; then
        HERMETIC="passed (--help ran with $libdir hidden: only the bundle plus glibc/libstdc++/libgcc_s)"
    else
        cat "$WORK/hermetic.txt" >&2
        die "hermetic check failed: with $libdir hidden, the bundle does not run"
    fi
fi
log "hermetic check: $HERMETIC"

# --- 4. MANIFEST ---------------------------------------------------------------------------------------------------
glibc_max=""
glibc_lines=""
for f in "$BUNDLE/bin/accel-exporter" "$BUNDLE"/lib/*; do
    v=$(max_version GLIBC "$f")
    x=$(max_version GLIBCXX "$f")
    glibc_lines+=$(printf '  %-28s GLIBC_%s%s' "${f#"$BUNDLE"/}" "${v:-none}" "${x:+  GLIBCXX_$x}")$'\n'
    [[ -n $v ]] && glibc_max=$(printf '%s\n%s\n' "$glibc_max" "$v" | sed '/^$/d' | sort -V | tail -1)
done

total=0
files_section=""
while IFS= read -r -d '' f; do
    rel=${f#"$BUNDLE"/}
    size=$(stat -c %s "$f")
    total=$((total + size))
    files_section+=$(printf '%s  %10d  %s' "$(sha256sum "$f" | cut -d' ' -f1)" "$size" "$rel")$'\n'
done < <(find "$BUNDLE" -type f ! -name MANIFEST -print0 | sort -z)

commit=$(git -C "$REPO" rev-parse HEAD 2>/dev/null || echo unknown)
dirty=""
[[ -n $(git -C "$REPO" status --porcelain -- Sources Package.swift 2>/dev/null) ]] && dirty=" (plus uncommitted changes in Sources/ or Package.swift)"
{
    echo "accel-exporter device bundle"
    # shellcheck disable=SC1091
    echo "built:        $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n) ($(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME"), $(ldd --version | head -1))"
    echo "git commit:   $commit$dirty"
    echo "swift:        $(swift --version 2>&1 | head -1)"
    echo "min glibc:    $glibc_max (newest GLIBC_ symbol version referenced by the binary and the bundled libraries)"
    echo "GLIBCXX max:  ${glibcxx_max:-none} (host libstdc++ used unless lib/libstdc++.so.6 is listed below)"
    echo "hermetic:     $HERMETIC"
    echo "total bytes:  $total"
    echo
    echo "symbol versions:"
    printf '%s' "$glibc_lines"
    echo
    echo "library sources:"
    for s in $(printf '%s\n' "${!SOURCE[@]}" | sort); do printf '  %-22s %s\n' "$s" "${SOURCE[$s]}"; done
    echo
    echo "files (sha256, bytes, path):"
    printf '%s' "$files_section"
} >"$BUNDLE/MANIFEST"

((total <= MAX_BYTES)) || die "bundle is $total bytes, over the limit of $MAX_BYTES"
# shellcheck disable=SC2034 # read by the EXIT trap
DONE=1
cat "$BUNDLE/MANIFEST"
log "device-bundle ready: $((total / 1024)) KiB, min host glibc $glibc_max"
