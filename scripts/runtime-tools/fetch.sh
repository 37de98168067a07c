#!/bin/bash
# Fetch the OCI runtime-tools validation suite (opencontainers/runtime-tools validation/*, the suite youki
# and crun run in CI) from Debian's source package and build it. Idempotent: a second run only re-checks.
#
# Everything lands under $BUILD (default .build/runtime-tools/ at the repository root):
#   apt/         a private apt (deb-src only; scripts/lib/debian-source.sh)
#   src/         the unpacked source; the tests run from here (they read rootfs-amd64.tar.gz and
#                runtimetest from their working directory)
#   src/validation/NAME.t, src/runtimetest   the built suite
#
# Which package: bookworm's 0.9.0+git20220423.g0105384-2 cannot be had here (the mirror answers 404 for
# its .orig and .debian tarballs), trixie's 0.9.0.109.ge931285-1 can (its tarballs, not its .dsc:
# debian_source unpacks those by hand). It is a later snapshot of the same upstream branch.
#
# Built in GOPATH mode against Debian's golang-*-dev packages (what dh-golang does; the source has no
# vendor/). One import has no Debian package, github.com/mndrix/tap-go (a TAP writer): tap-go/ beside this
# script stands in for it.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT_DIR=$(cd "$HERE/../.." && pwd)
BUILD=${BUILD:-$ROOT_DIR/.build/runtime-tools}
SUITE=trixie
PKG=golang-github-opencontainers-runtime-tools
VERSION=0.9.0.109.ge931285-1
SRC=$BUILD/src

# The package's Build-Depends that the validation suite and runtimetest import, plus google-uuid (an
# import of validation/util that the library part, all Debian builds, does not have).
PKGS=(dpkg-dev patch xz-utils golang-go golang-github-blang-semver-dev golang-github-hashicorp-go-multierror-dev
	golang-github-mrunalp-fileutils-dev golang-github-opencontainers-specs-dev
	golang-github-opencontainers-selinux-dev golang-github-sirupsen-logrus-dev golang-github-urfave-cli-dev
	golang-github-xeipuuv-gojsonschema-dev golang-gocapability-dev golang-golang-x-sys-dev
	golang-github-google-uuid-dev)
bash "$ROOT_DIR/scripts/apt-deps.sh" "${PKGS[@]}"

mkdir -p "$BUILD"
stamp=$SRC/.brisk-version
if [ "$(cat "$stamp" 2>/dev/null)" != "$VERSION" ]; then
	. "$ROOT_DIR/scripts/lib/debian-source.sh"
	debian_source "$BUILD/apt" "$SUITE" "$PKG" "$VERSION" "$SRC"
	echo "$VERSION" >"$stamp"
fi

# GOPATH: the source at its import path, Debian's packages behind it, the tap-go stand-in, and
# blang/semver at the /v4 path the source imports (Debian ships v4 at the unversioned path).
gopath=$BUILD/gopath
mkdir -p "$gopath/src/github.com/opencontainers" "$gopath/src/github.com/mndrix" "$gopath/src/github.com/blang/semver" \
	"$BUILD/gocache"
ln -sfn "$SRC" "$gopath/src/github.com/opencontainers/runtime-tools"
ln -sfn "$HERE/tap-go" "$gopath/src/github.com/mndrix/tap-go"
ln -sfn /usr/share/gocode/src/github.com/blang/semver "$gopath/src/github.com/blang/semver/v4"
gobuild() {
	(cd "$gopath/src/github.com/opencontainers/runtime-tools" &&
		GO111MODULE=off GOPATH="$gopath:/usr/share/gocode" GOCACHE="$BUILD/gocache" go build "$@")
}

# runtimetest runs inside the containers (copied into each bundle): static, as upstream's Makefile builds it.
newer() { [ -x "$1" ] && [ "$1" -nt "$0" ] && [ "$1" -nt "$HERE/tap-go/tap.go" ] && [ "$1" -nt "$stamp" ]; }
if ! newer "$SRC/runtimetest"; then
	CGO_ENABLED=0 gobuild -tags "netgo osusergo" -o runtimetest.tmp ./cmd/runtimetest
	mv "$SRC/runtimetest.tmp" "$SRC/runtimetest"
fi
n=0
for d in "$SRC"/validation/*/; do
	name=$(basename "$d")
	[ "$name" = util ] && continue
	[ -f "$d/$name.go" ] || continue
	out=$SRC/validation/$name.t
	n=$((n + 1))
	newer "$out" && continue
	gobuild -o "validation/$name.t.tmp" "./validation/$name"
	mv "$out.tmp" "$out"
done
echo "fetch: runtime-tools $VERSION: runtimetest and $n validation tests ready in $SRC" >&2
