#!/bin/bash
# Fetch podman 4.3.1's own system tests (test/system/*.bats) from Debian's source package and build the
# stand-in for their test image offline. Idempotent: a second run only re-checks.
#
# Everything lands under $BUILD (default .build/podman-bats/ at the repository root):
#   apt/            a private apt (deb-src only) so the system's apt configuration is never touched
#   podman-4.3.1/   the unpacked source; the suite runs from its test/system/
#   images/         testimage.tar: a stand-in for quay.io/libpod/testimage built from busybox-static
set -euo pipefail

ROOT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-$ROOT_DIR/.build/podman-bats}
PODMAN_VERSION=4.3.1
SRC=$BUILD/podman-$PODMAN_VERSION

PKGS=(bats jq busybox-static dpkg-dev podman conmon containernetworking-plugins uidmap tar)
bash "$ROOT_DIR/scripts/apt-deps.sh" "${PKGS[@]}"

mkdir -p "$BUILD"
if [ ! -f "$SRC/test/system/helpers.bash" ]; then
	apt_dir=$BUILD/apt
	mkdir -p "$apt_dir"/{sources.list.d,state/lists/partial,cache/archives/partial,dl}
	echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main" \
		>"$apt_dir/sources.list"
	echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main" \
		>>"$apt_dir/sources.list"
	: >"$apt_dir/state/status"
	A=(-oDir::Etc::SourceList="$apt_dir/sources.list" -oDir::Etc::SourceParts="$apt_dir/sources.list.d"
		-oDir::State="$apt_dir/state" -oDir::State::status="$apt_dir/state/status" -oDir::Cache="$apt_dir/cache"
		-oDebug::NoLocking=1 -oAPT::Sandbox::User=root)
	apt-get "${A[@]}" -qq update
	# The version installed, so the suite matches /usr/bin/podman (binNMU suffixes like +b3 are not
	# part of the source version).
	src_version=$(dpkg-query -W -f='${source:Version}' podman)
	(cd "$apt_dir/dl" && apt-get "${A[@]}" -qq source --download-only "podman=$src_version")
	dsc=$(ls "$apt_dir"/dl/libpod_"$PODMAN_VERSION"+ds1-*.dsc)
	tmp=$(mktemp -d "$BUILD/unpack.XXXXXX")
	dpkg-source --no-check -x "$dsc" "$tmp/podman" >/dev/null
	rm -rf "$SRC"
	mv "$tmp/podman" "$SRC"
	rm -rf "$tmp"
fi
echo "fetch: $SRC"
