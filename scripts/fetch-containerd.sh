#!/usr/bin/env bash
# Fetch the containerd releases the ctr tests run against, without touching the
# system's apt configuration:
#   1.6.20  bookworm's own package (installed system-wide via apt-get if missing)
#   1.7.24  Debian trixie  -> .build/containerd-1.7.24/
#   2.1.9   Debian sid     -> .build/containerd-2.1.9/
# (sid moves on: if it no longer carries 2.1.9 this fails and says what it has.)
# The trixie/sid .debs are downloaded with a private sources list and private
# apt state/cache dirs, then unpacked with `dpkg -x` (never installed).
# Idempotent: a version whose binaries already run is skipped.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${BUILD_DIR:-$ROOT/.build}"
APTDIR="$BUILD/apt"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

# version  suite  package-version-prefix
WANT=(
  "1.7.24 trixie 1.7.24"
  "2.1.9 sid 2.1.9"
)

log() { printf 'fetch-containerd: %s\n' "$*" >&2; }

# The tests also need runc (for the runc shim) and a static busybox (image).
ensure_system_containerd() {
  local missing=()
  [[ -x /usr/bin/containerd && -x /usr/bin/ctr && -x /usr/bin/containerd-shim-runc-v2 ]] || missing+=(containerd)
  command -v runc >/dev/null || missing+=(runc)
  [[ -x /bin/busybox ]] && { ldd /bin/busybox 2>&1 || true; } | grep -q 'not a dynamic' || missing+=(busybox-static)
  ((${#missing[@]})) || return 0
  log "installing ${missing[*]} from the system's apt sources"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}"
}

binaries_ok() {
  local dir="$1" want="$2"
  [[ -x "$dir/bin/containerd" && -x "$dir/bin/ctr" && -x "$dir/bin/containerd-shim-runc-v2" ]] || return 1
  "$dir/bin/containerd" --version 2>/dev/null | grep -q " $want" || return 1
  "$dir/bin/ctr" --version >/dev/null 2>&1 || return 1
}

apt_opts() {
  echo -oDir::Etc::SourceList="$APTDIR/sources.list" \
       -oDir::Etc::SourceParts="$APTDIR/sources.list.d" \
       -oDir::State="$APTDIR/state" \
       -oDir::State::status="$APTDIR/state/status" \
       -oDir::Cache="$APTDIR/cache" \
       -oAPT::Architecture="$(dpkg --print-architecture)" \
       -oAcquire::Languages=none \
       -oAPT::Sandbox::User=root \
       -oDebug::NoLocking=1
}

setup_private_apt() {
  mkdir -p "$APTDIR/sources.list.d" "$APTDIR/state/lists/partial" "$APTDIR/cache/archives/partial" "$APTDIR/debs"
  : > "$APTDIR/state/status"
  local suites=() s
  for w in "${WANT[@]}"; do read -r _ s _ <<<"$w"; suites+=("$s"); done
  : > "$APTDIR/sources.list"
  for s in $(printf '%s\n' "${suites[@]}" | sort -u); do
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR $s main" >> "$APTDIR/sources.list"
  done
  # shellcheck disable=SC2046
  apt-get $(apt_opts) update -qq
}

# Print the candidate version of package $1 from suite $2 matching prefix $3.
pick_version() {
  local pkg="$1" suite="$2" prefix="$3"
  # shellcheck disable=SC2046
  apt-cache $(apt_opts) madison "$pkg" 2>/dev/null \
    | awk -F'|' -v p="$prefix" -v s="$suite" '{gsub(/ /,"",$2); if (index($2,p)==1 && index($3,s)>0) print $2}' \
    | head -n1
}

fetch_one() {
  local ver="$1" suite="$2" prefix="$3"
  local dest="$BUILD/containerd-$ver"
  if binaries_ok "$dest" "$ver"; then
    log "containerd $ver already in $dest"
    return
  fi
  local fresh=0
  if [[ ! -f "$APTDIR/state/lists/.fetched" ]]; then
    setup_private_apt; touch "$APTDIR/state/lists/.fetched"; fresh=1
  fi
  local pkgver
  pkgver="$(pick_version containerd "$suite" "$prefix")"
  if [[ -z "$pkgver" && "$fresh" == 0 ]]; then
    # Cached lists may predate the package; refresh once.
    setup_private_apt
    pkgver="$(pick_version containerd "$suite" "$prefix")"
  fi
  if [[ -z "$pkgver" ]]; then
    log "no containerd $prefix* in Debian $suite; available:"
    # shellcheck disable=SC2046
    apt-cache $(apt_opts) policy containerd >&2 || true
    exit 1
  fi
  log "downloading containerd=$pkgver ($suite)"
  rm -rf "$dest.tmp"; mkdir -p "$dest.tmp"
  (
    cd "$APTDIR/debs"
    # shellcheck disable=SC2046
    apt-get $(apt_opts) download "containerd=$pkgver"
  )
  local deb
  deb="$(ls "$APTDIR"/debs/containerd_"${pkgver//:/%3a}"_*.deb | head -n1)"
  dpkg -x "$deb" "$dest.tmp/root"
  # Collect the binaries wherever the package put them (2.x may place the
  # runc shim outside /usr/bin).
  mkdir -p "$dest.tmp/bin"
  local b f
  for b in containerd ctr containerd-shim-runc-v2; do
    f="$(find "$dest.tmp/root" -type f -name "$b" -perm -u+x | head -n1)"
    if [[ -z "$f" ]]; then
      log "package containerd=$pkgver lacks $b; contents:"
      dpkg -c "$deb" >&2
      exit 1
    fi
    ln -sf "${f#"$dest.tmp/"}" "$dest.tmp/bin/$b"
  done
  echo "$pkgver" > "$dest.tmp/PACKAGE_VERSION"
  rm -rf "$dest"; mv "$dest.tmp" "$dest"
  # Symlinks were relative to $dest.tmp; re-point them at $dest.
  for b in containerd ctr containerd-shim-runc-v2; do
    ln -sfn "$(readlink "$dest/bin/$b" | sed 's#^#../#')" "$dest/bin/$b"
  done
  if ! binaries_ok "$dest" "$ver"; then
    log "containerd $ver binaries in $dest do not run on this host:"
    "$dest/bin/containerd" --version >&2 || true
    exit 1
  fi
  log "containerd $ver ready in $dest: $("$dest/bin/containerd" --version)"
}

ensure_system_containerd
log "system: $(/usr/bin/containerd --version)"
for w in "${WANT[@]}"; do
  # shellcheck disable=SC2086
  fetch_one $w
done
