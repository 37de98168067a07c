#!/bin/bash
# Build CRIU 4.2.1 from Debian's source tarball and install it as /usr/local/sbin/criu.
#
# Why not bookworm's criu package: criu 3.17 cannot run on recent kernels (`criu check` fails on the vDSO on
# 6.x kernels), and brisk's checkpoint/restore (and runc's) drive whatever `criu` is on PATH. CRIU 4.2.1
# (Debian sid's source) builds against bookworm's -dev packages and passes `criu check` here.
#
# Idempotent: when $PREFIX/sbin/criu already exists and passes `criu check`, nothing is done.
# Everything downloaded or built lands under $BUILD (default .build/criu/ at the repository root):
#   apt/           a private apt (deb-src only, sid) so the system's apt configuration is never touched
#   criu-4.2.1/    the unpacked upstream tarball, built in place
set -euo pipefail

ROOT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-$ROOT_DIR/.build/criu}
PREFIX=${PREFIX:-/usr/local}
CRIU_VERSION=4.2.1
SRC=$BUILD/criu-$CRIU_VERSION
BIN=$PREFIX/sbin/criu

if [ -x "$BIN" ] && "$BIN" check >/dev/null 2>&1; then
	echo "criu: $BIN $("$BIN" --version | sed -n 's/^Version: //p') passes 'criu check'; nothing to do" >&2
	exit 0
fi

# What `make criu` in CRIU's tree needs: protobuf-c (images are protobuf), libnl-3 (network dump), libcap,
# libnet (TCP repair), libbsd/libgnutls/libnftables (optional features CRIU enables when present:
# setproctitle, TLS page server, nftables network locking), uuid-dev (libuuid), dpkg-dev (dpkg-source is
# not needed for the .orig tarball, but apt-get source wants it), xz-utils to unpack.
PKGS=(build-essential pkg-config dpkg-dev xz-utils libprotobuf-dev libprotobuf-c-dev protobuf-c-compiler
	protobuf-compiler python3-protobuf libnl-3-dev libnl-route-3-dev libcap-dev libnet1-dev libbsd-dev
	libgnutls28-dev libnftables-dev uuid-dev iproute2)
bash "$ROOT_DIR/scripts/apt-deps.sh" "${PKGS[@]}"

mkdir -p "$BUILD"
tarball=$BUILD/apt/dl/criu_$CRIU_VERSION.orig.tar.xz
if [ ! -f "$tarball" ]; then
	apt_dir=$BUILD/apt
	mkdir -p "$apt_dir"/{sources.list.d,state/lists/partial,cache/archives/partial,dl}
	echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian sid main" \
		>"$apt_dir/sources.list"
	: >"$apt_dir/state/status"
	A=(-oDir::Etc::SourceList="$apt_dir/sources.list" -oDir::Etc::SourceParts="$apt_dir/sources.list.d"
		-oDir::State="$apt_dir/state" -oDir::State::status="$apt_dir/state/status" -oDir::Cache="$apt_dir/cache"
		-oDebug::NoLocking=1 -oAPT::Sandbox::User=root)
	apt-get "${A[@]}" -qq update
	# Only the upstream tarball is needed (no Debian patches: the build is upstream's `make criu`). Some
	# mirrors lack the .debian.tar.xz, so apt-get source may fail after fetching the tarball: the tarball
	# is then checked here against the sha256 of the signed Sources index instead. Pin the version: sid moves on.
	ver=$(apt-cache "${A[@]}" showsrc criu | sed -n 's/^Version: \('"$CRIU_VERSION"'-.*\)/\1/p' | head -1)
	[ -n "$ver" ] || { echo "criu: criu $CRIU_VERSION is not in Debian sid's Sources any more" >&2; exit 1; }
	(cd "$apt_dir/dl" && apt-get "${A[@]}" -qq source --download-only "criu=$ver") >"$apt_dir/source.log" 2>&1 || true
	want=$(apt-cache "${A[@]}" showsrc criu | awk -v f="criu_$CRIU_VERSION.orig.tar.xz" 'length($1)==64 && $3==f {print $1; exit}')
	got=$(sha256sum "$tarball" 2>/dev/null | cut -d' ' -f1)
	if [ -z "$want" ] || [ "$got" != "$want" ]; then
		rm -f "$tarball"
		echo "criu: $tarball missing or its sha256 ($got) is not the Sources index's ($want)" >&2
		exit 1
	fi
fi

if [ ! -f "$SRC/Makefile" ]; then
	tmp=$(mktemp -d "$BUILD/unpack.XXXXXX")
	tar -C "$tmp" -xJf "$tarball"
	rm -rf "$SRC"
	mv "$tmp/criu-$CRIU_VERSION" "$SRC"
	rmdir "$tmp"
fi

# Only the criu binary: no docs (asciidoc), no plugins (amdgpu/cuda need libdrm/cuda), no crit/lib installs.
make -C "$SRC" -j"$(nproc)" criu >"$BUILD/build.log" 2>&1 || { tail -30 "$BUILD/build.log" >&2; exit 1; }
install -D -m 0755 "$SRC/criu/criu" "$BIN"
if ! out=$("$BIN" check 2>&1); then
	echo "criu: the freshly built $BIN fails 'criu check':" >&2
	echo "$out" >&2
	exit 1
fi
echo "criu: installed $BIN ($CRIU_VERSION), 'criu check' passes" >&2
