#!/usr/bin/env bash
# brisk demo: on a fresh Debian machine, install containerd if missing, build
# brisk, start a private containerd (own root/state/socket under a temp dir),
# import a locally built busybox image and run
#   ctr run --rm --runtime io.containerd.brisk.v2 ... echo "hello from brisk"
# then stop containerd and remove everything it made.
#
# Env: DEMO_RUNTIME (default io.containerd.brisk.v2; io.containerd.runc.v2 to
#      compare), CONTAINERD_BIN_DIR (default: containerd from PATH, e.g. a
#      .build/containerd-<v>/bin from scripts/fetch-containerd.sh),
#      SKIP_BUILD=1 to use an existing target/release binary.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUNTIME="${DEMO_RUNTIME:-io.containerd.brisk.v2}"
IMAGE_REF="docker.io/library/busybox:brisk"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

[[ $(id -u) -eq 0 ]] || { echo "demo.sh: must run as root (containerd needs it)" >&2; exit 1; }

# 1. packages
missing=()
command -v containerd >/dev/null || missing+=(containerd)
command -v runc >/dev/null || missing+=(runc)
[[ -x /bin/busybox ]] && /bin/busybox --list >/dev/null 2>&1 || missing+=(busybox-static)
# The build links libseccomp (-lseccomp needs the -dev package's libseccomp.so).
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  for p in libseccomp-dev pkg-config; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' || missing+=("$p")
  done
fi
if ((${#missing[@]})); then
  say "installing ${missing[*]} from apt"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}"
fi
BIN_DIR="${CONTAINERD_BIN_DIR:-$(dirname "$(command -v containerd)")}"
CONTAINERD="$BIN_DIR/containerd"
CTR="$BIN_DIR/ctr"
say "using $("$CONTAINERD" --version)"

# 2. build brisk
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  command -v cargo >/dev/null || { echo "demo.sh: cargo not found (install a Rust toolchain, or SKIP_BUILD=1 with a built target/release)" >&2; exit 1; }
  say "cargo build --release"
  (cd "$ROOT" && cargo build --release -p containerd-shim-brisk-v2)
fi
SHIM="${SHIM_BIN:-$ROOT/target/release/containerd-shim-brisk-v2}"
[[ -d "$SHIM" ]] && SHIM="$SHIM/containerd-shim-brisk-v2"
if [[ "$RUNTIME" == io.containerd.brisk.v2 && ! -x "$SHIM" ]]; then
  echo "demo.sh: $SHIM not built" >&2
  exit 1
fi

# 3. private containerd
TMP="$(mktemp -d /tmp/brisk-demo-XXXXXX)"
NS="brisk-demo-${TMP##*-}"
ADDR="$TMP/containerd.sock"
CPID=""
RUN_EXISTED=0; [[ -e /run/containerd ]] && RUN_EXISTED=1

ctr() { "$CTR" --address "$ADDR" --namespace "$NS" "$@"; }

cleanup() {
  set +e
  if [[ -n "$CPID" ]] && kill -0 "$CPID" 2>/dev/null; then
    for t in $(ctr task ls -q 2>/dev/null); do
      ctr task kill -a -s SIGKILL "$t" >/dev/null 2>&1
      ctr task delete -f "$t" >/dev/null 2>&1
    done
    for c in $(ctr containers ls -q 2>/dev/null); do ctr containers delete "$c" >/dev/null 2>&1; done
    kill -TERM "$CPID"
    for _ in $(seq 100); do kill -0 "$CPID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$CPID" 2>/dev/null
    wait "$CPID" 2>/dev/null
  fi
  # Shims of this containerd carry its private address on their command line.
  for p in /proc/[0-9]*; do
    if { tr '\0' '\n' <"$p/cmdline"; } 2>/dev/null | grep -qxF "$ADDR"; then kill -KILL "${p#/proc/}" 2>/dev/null; fi
  done
  # Container processes live in the cgroups of our private namespace.
  for cg in /sys/fs/cgroup/*/"$NS"; do
    [[ -d "$cg" ]] || continue
    find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -KILL 2>/dev/null
  done
  sleep 0.2
  awk -v d="$TMP" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null
  for cg in /sys/fs/cgroup/*/"$NS"; do
    [[ -d "$cg" ]] && find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
  rm -rf "/run/containerd/runc/$NS" "/run/containerd/brisk/$NS"
  # Shims put sockets in /run/containerd/s whatever the state dir; drop the
  # shared dirs only if this demo created them and they are empty.
  if [[ "$RUN_EXISTED" == 0 ]]; then
    rmdir /run/containerd/s /run/containerd/runc /run/containerd/brisk /run/containerd/fifo /run/containerd 2>/dev/null
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT

mkdir -p "$TMP/bin" "$TMP/root" "$TMP/state" "$TMP/fifo"
ln -s "$SHIM" "$TMP/bin/containerd-shim-brisk-v2"
[[ -x "$BIN_DIR/containerd-shim-runc-v2" ]] && ln -s "$BIN_DIR/containerd-shim-runc-v2" "$TMP/bin/containerd-shim-runc-v2"

major="$("$CONTAINERD" --version | awk '{print $3}' | sed 's/^v//; s/\..*//')"
if [[ "$major" -ge 2 ]]; then
  cfgver=3
  disabled='"io.containerd.grpc.v1.cri", "io.containerd.cri.v1.runtime", "io.containerd.cri.v1.images", "io.containerd.podsandbox.controller.v1.podsandbox", "io.containerd.nri.v1.nri"'
else
  cfgver=2
  disabled='"io.containerd.grpc.v1.cri", "io.containerd.nri.v1.nri"'
fi
cat >"$TMP/config.toml" <<TOML
version = $cfgver
root = "$TMP/root"
state = "$TMP/state"
disabled_plugins = [$disabled, "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "$ADDR"
[ttrpc]
  address = "$ADDR.ttrpc"
[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "$TMP/root/opt"
TOML

say "starting a private containerd in $TMP"
PATH="$TMP/bin:$BIN_DIR:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
  "$CONTAINERD" --config "$TMP/config.toml" >"$TMP/containerd.log" 2>&1 &
CPID=$!
for _ in $(seq 300); do
  ctr version >/dev/null 2>&1 && break
  kill -0 "$CPID" 2>/dev/null || { cat "$TMP/containerd.log" >&2; exit 1; }
  sleep 0.1
done
ctr version >/dev/null

# 4. busybox OCI image from the host's static busybox (no registry access)
say "building $IMAGE_REF from /bin/busybox"
L="$TMP/image/rootfs"; O="$TMP/image/oci"
mkdir -p "$L"/{bin,dev,etc,proc,sys,tmp,root,usr/bin,var} "$O/blobs/sha256"
chmod 1777 "$L/tmp"
cp /bin/busybox "$L/bin/busybox"
for a in $(/bin/busybox --list); do [[ "$a" == busybox || "$a" == */* ]] || ln -sf busybox "$L/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$L/etc/passwd"
printf 'root:x:0:\n' >"$L/etc/group"
tar -C "$L" --numeric-owner --owner=0 --group=0 --sort=name --mtime=@0 -cf "$TMP/image/layer.tar" .
blob() { local d; d="$(sha256sum "$1" | cut -d' ' -f1)"; cp "$1" "$O/blobs/sha256/$d"; echo "$d"; }
size() { stat -c %s "$1"; }
layer="$(blob "$TMP/image/layer.tar")"
arch="$(dpkg --print-architecture 2>/dev/null || echo amd64)"
printf '{"architecture":"%s","os":"linux","config":{"Env":["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
  "$arch" "$layer" >"$TMP/image/config.json"
config="$(blob "$TMP/image/config.json")"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%d}]}' \
  "$config" "$(size "$TMP/image/config.json")" "$layer" "$(size "$TMP/image/layer.tar")" >"$TMP/image/manifest.json"
manifest="$(blob "$TMP/image/manifest.json")"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"platform":{"architecture":"%s","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"brisk"}}]}' \
  "$manifest" "$(size "$TMP/image/manifest.json")" "$arch" "$IMAGE_REF" >"$O/index.json"
printf '{"imageLayoutVersion":"1.0.0"}' >"$O/oci-layout"
tar -C "$O" -cf "$TMP/image/busybox-oci.tar" oci-layout index.json blobs
ctr images import "$TMP/image/busybox-oci.tar" >/dev/null
ctr images ls -q | grep -qxF "$IMAGE_REF"

# 5. the demo
say "ctr run --rm --runtime $RUNTIME $IMAGE_REF hello echo \"hello from brisk\""
ctr run --rm --runtime "$RUNTIME" --fifo-dir "$TMP/fifo" "$IMAGE_REF" hello echo "hello from brisk"
say "done; stopping containerd and cleaning up"
