#!/bin/bash
# Fetch runc 1.1.5's own integration suite (tests/integration/*.bats) from Debian's source package, the
# tools it runs with, and build its Go test helpers. Idempotent: a second run only re-checks.
#
# Everything lands under $BUILD (default .build/runc-bats/ at the repository root):
#   apt/            a private apt (deb-src only) so the system's apt configuration is never touched
#   runc-1.1.5/     the unpacked source; the suite runs from its tests/integration/
#   images/         the busybox rootfs tarball built from the host's busybox-static
#
# The "+ds1" tarball has no vendor/, so the helpers are built in GOPATH mode against Debian's golang-*-dev
# packages (what dh-golang does). sd-helper is not built: it only serves RUNC_USE_SYSTEMD runs, and
# there is no systemd PID 1 here.
set -euo pipefail

ROOT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-$ROOT_DIR/.build/runc-bats}
RUNC_VERSION=1.1.5
SRC=$BUILD/runc-$RUNC_VERSION

# bats runs the suite; jq/gawk are used by its helpers; busybox-static is the image; the golang packages
# build recvtty and seccompagent.
PKGS=(bats jq gawk busybox-static dpkg-dev golang-go
	golang-github-containerd-console-dev golang-github-urfave-cli-dev golang-golang-x-sys-dev
	golang-github-opencontainers-specs-dev golang-github-sirupsen-logrus-dev golang-github-cyphar-filepath-securejoin-dev
	golang-github-seccomp-libseccomp-golang-dev libseccomp-dev pkg-config)

bash "$ROOT_DIR/scripts/apt-deps.sh" "${PKGS[@]}"

mkdir -p "$BUILD"
if [ ! -f "$SRC/tests/integration/helpers.bash" ]; then
	# dpkg-source applies Debian's patches, so the suite matches the installed /usr/sbin/runc (bookworm's
	# security updates patch tests as well as code).
	. "$ROOT_DIR/scripts/lib/debian-source.sh"
	debian_source "$BUILD/apt" bookworm runc "" "$SRC"
	[ -f "$SRC/tests/integration/helpers.bash" ] || { echo "fetch: the runc source has no tests/integration" >&2; exit 1; }
	case $(cat "$SRC/VERSION") in "$RUNC_VERSION"*) ;; *)
		echo "fetch: Debian's runc source is $(cat "$SRC/VERSION"), not $RUNC_VERSION" >&2; exit 1 ;; esac
fi

# The suite's get-images.sh downloads busybox and debian from the internet, which is not reachable here.
# Build the busybox image from the host's static busybox and replace get-images.sh with one that prints
# it. The debian image cannot be made offline: DEBIAN_IMAGE names a path that does not exist, so the one
# test that needs it (hooks.bats) fails in setup — it is listed in known-failures.
img_dir=$BUILD/images
busybox_tar=$img_dir/busybox.tar
if [ ! -f "$busybox_tar" ] || [ /bin/busybox -nt "$busybox_tar" ] || [ "$0" -nt "$busybox_tar" ]; then
	mkdir -p "$img_dir"
	tmp=$(mktemp -d "$img_dir/rootfs.XXXXXX")
	chmod 0755 "$tmp"
	trap 'rm -rf "$tmp"' EXIT
	# The top-level directories of docker's busybox image: no proc or sys (mask.bats replaces them with
	# symlinks, which must then fail to be mount points).
	mkdir -p "$tmp"/{bin,dev,etc,home,root,tmp,usr/bin,usr/sbin,sbin,var}
	chmod 1777 "$tmp/tmp"
	cp /bin/busybox "$tmp/bin/busybox"
	# One link per applet, in the directory busybox itself reports (what the docker busybox image has).
	chroot "$tmp" /bin/busybox --install -s
	# The docker busybox image ships these; tests read /etc/passwd and /etc/group (user "nobody", "root").
	cat >"$tmp/etc/passwd" <<'PW'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
PW
	cat >"$tmp/etc/group" <<'GR'
root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
lp:x:7:
mail:x:8:
kmem:x:9:
wheel:x:10:root
cdrom:x:11:
dialout:x:18:
floppy:x:19:
video:x:28:
audio:x:29:
tape:x:32:
www-data:x:33:
operator:x:37:
utmp:x:43:
plugdev:x:46:
staff:x:50:
lock:x:54:
netdev:x:82:
users:x:100:
nogroup:x:65534:
GR
	tar -C "$tmp" --numeric-owner -cf "$busybox_tar.tmp" .
	mv "$busybox_tar.tmp" "$busybox_tar"
	rm -rf "$tmp"
	trap - EXIT
fi
cat >"$SRC/tests/integration/get-images.sh" <<GI
#!/bin/bash
# Written by brisk's scripts/runc-bats/fetch.sh: offline images (see there).
echo "BUSYBOX_IMAGE=$busybox_tar"
echo "DEBIAN_IMAGE=$img_dir/debian-unavailable-offline.tar.xz"
GI
chmod +x "$SRC/tests/integration/get-images.sh"

# The helpers, at the paths helpers.bash expects (relative to the source root).
gopath=$BUILD/gopath
mkdir -p "$gopath/src/github.com/opencontainers" "$BUILD/gocache"
ln -sfn "$SRC" "$gopath/src/github.com/opencontainers/runc"
# seccompagent needs the "seccomp" build tag (cgo, libseccomp); without it it only prints "Not supported"
# and the seccomp-notify tests hang in the container's first notified syscall.
for cmd in recvtty seccompagent; do
	out=$SRC/contrib/cmd/$cmd/$cmd
	[ -x "$out" ] && [ "$out" -nt "$0" ] && continue
	(cd "$gopath/src/github.com/opencontainers/runc/contrib/cmd/$cmd" &&
		GO111MODULE=off GOPATH="$gopath:/usr/share/gocode" GOCACHE="$BUILD/gocache" \
			go build -tags seccomp -o "$out.tmp" . && mv "$out.tmp" "$out")
done
echo "fetch: runc $RUNC_VERSION suite ready in $SRC/tests/integration" >&2
