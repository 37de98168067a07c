#!/bin/bash
# Run podman 4.3.1's own system tests (fetched by fetch.sh) as root with one OCI runtime, in a podman
# world private to this run, and print the bats summary.
#
#   run.sh -r RUNTIME [-o OUT] [BATS_FILE...]     default files: $DEFAULT_FILES below
#
# Private: storage (graphroot/runroot, vfs), tmp_dir, file locks, events log, network config dir,
# containers.conf/registries.conf/storage.conf (CONTAINERS_*), volumes. The whole run is inside a new
# network namespace (only loopback; podman's CNI bridge and firewall rules land there) and a new mount
# namespace (storage and shm mounts vanish with it), where the host paths podman and its CNI plugins
# write regardless of configuration (/var/lib/containers: image blob cache, /var/lib/cni: IPAM state,
# /run/netns: netns bind mounts, /etc/cni/net.d: lock file) are covered by private directories; those
# of them that did not exist before are created empty for that and removed afterwards. Container
# cgroups go under podman's usual /libpod_parent and are removed by podman.
#
# No registry is reachable: quay.io/libpod/testimage is replaced by a local stand-in (busybox-static
# plus what the suite looks for: /home/podman/{testimage-id,pause}, WORKDIR, CMD, labels). Tests that
# need alpine's own files, pulls, builds from the network, systemd or a remote podman fail or skip
# with both runtimes alike; compare the two runs, not the absolute numbers.
set -euo pipefail

ROOT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-$ROOT_DIR/.build/podman-bats}
SRC=$BUILD/podman-4.3.1
# Host paths podman, buildah, the runtimes and CNI write whatever the configuration says (image blob
# cache, IPAM state, netns bind mounts, CNI lock, runtime state dirs): private in the run's namespace.
PRIVATE_DIRS="/var/lib/containers /var/lib/cni /run/netns /etc/cni/net.d /run/runc /run/brisk"
DEFAULT_FILES="030-run 032-sig-proxy 035-logs 040-ps 045-start 050-stop 055-rm 060-mount 075-exec 080-pause 130-kill 160-volumes 190-run-ipcns 280-update 420-cgroups"

runtime= out=
while getopts "r:o:" o; do
	case $o in
	r) runtime=$OPTARG ;;
	o) out=$OPTARG ;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ -n "$runtime" ] && [ -x "$runtime" ] || { echo "run.sh: -r RUNTIME (an executable) is required" >&2; exit 2; }
runtime=$(readlink -f "$runtime")
files=("$@")
[ ${#files[@]} -gt 0 ] || read -ra files <<<"$DEFAULT_FILES"
[ -f "$SRC/test/system/helpers.bash" ] || { echo "run.sh: run fetch.sh first" >&2; exit 2; }

if [ -z "${PODMAN_BATS_INNER:-}" ]; then
	W=$(mktemp -d /tmp/brisk-podman-bats.XXXXXX)
	cleanup() {
		# Containers were removed inside the namespaces; conmons that outlived that, then the world.
		for p in /proc/[0-9]*; do
			if { tr "\\0" " " <"$p/cmdline"; } 2>/dev/null | grep -q "^/usr/bin/conmon .*$W"; then kill -9 "${p#/proc/}" 2>/dev/null || true; fi
		done
		for d in $created; do [ -e "$d" ] || continue; rmdir "$d" 2>/dev/null || echo "run.sh: $d is not empty, left in place" >&2; done
		rm -rf "$W"
	}
	created=
	trap cleanup EXIT
	mkdir -p "$W"/{root,runroot,tmp,net,vol}
	for d in $PRIVATE_DIRS; do
		[ -d "$d" ] || { mkdir -p "$d"; created="$d $created"; }
	done
	# podman's default cgroup parent (cgroupfs manager) is never removed by podman: remove it (and its
	# conmon child) afterwards if this run created it.
	for h in /sys/fs/cgroup/*/; do
		[ -L "${h%/}" ] || [ -d "${h}libpod_parent" ] || created="$created ${h}libpod_parent/conmon ${h}libpod_parent"
	done
	export PODMAN_BATS_WORLD=$W
	cat >"$W/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
[engine]
runtime = "under-test"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$W/events.log"
lock_type = "file"
tmp_dir = "$W/tmp"
volume_path = "$W/vol"
[engine.runtimes]
under-test = ["$runtime"]
[network]
network_backend = "cni"
network_config_dir = "$W/net"
CONF
	echo 'unqualified-search-registries = []' >"$W/registries.conf"
	cat >"$W/storage.conf" <<CONF
[storage]
driver = "vfs"
runroot = "$W/runroot"
graphroot = "$W/root"
CONF
	export CONTAINERS_CONF=$W/containers.conf CONTAINERS_REGISTRIES_CONF=$W/registries.conf CONTAINERS_STORAGE_CONF=$W/storage.conf

	echo "run.sh: runtime $runtime, world $W, files: ${files[*]}" >&2
	set +e
	PODMAN_BATS_INNER=1 unshare --net --mount --propagation private "$0" -r "$runtime" ${out:+-o "$out"} "${files[@]}"
	rc=$?
	set -e
	exit $rc
fi

# Inside the new namespaces.
ip link set lo up 2>/dev/null || busybox ip link set lo up
for d in $PRIVATE_DIRS; do
	p=$PODMAN_BATS_WORLD/host${d//\//_}
	mkdir -p "$p"
	[ "$d" != /etc/cni/net.d ] || cp -a /etc/cni/net.d/. "$p/"
	mount --bind "$p" "$d"
done
# podman's shm lock segment (/dev/shm/libpod_lock), for tests that bring their own containers.conf.
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm
# buildah's bundles and the tests' scratch files.
export TMPDIR=$PODMAN_BATS_WORLD/tmp-bats
mkdir -p "$TMPDIR"
# What the tests leave behind (buildah's RUN containers are not podman's), removed before leaving
# the namespaces.
inner_cleanup() {
	podman pod rm -a -f -t 0 >/dev/null 2>&1 || true
	podman rm -a -f -t 0 >/dev/null 2>&1 || true
	for id in $("$runtime" list -q 2>/dev/null); do "$runtime" delete -f "$id" >/dev/null 2>&1 || true; done
}
trap inner_cleanup EXIT

# The testimage stand-in.
R=$PODMAN_BATS_WORLD/rootfs
mkdir -p "$R"/{bin,dev,etc,proc,sys,tmp,root,run,var/tmp,home/podman,usr/bin,usr/sbin,sbin}
chmod 1777 "$R/tmp"
cp /bin/busybox "$R/bin/busybox"
chroot "$R" /bin/busybox --install -s
printf 'root:x:0:0:root:/root:/bin/sh\nbin:x:1:1:bin:/bin:/sbin/nologin\ndaemon:x:2:2:daemon:/sbin:/sbin/nologin\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n' >"$R/etc/passwd"
printf 'root:x:0:root\nbin:x:1:root,bin,daemon\ndaemon:x:2:root,bin,daemon\nnobody:x:65534:\n' >"$R/etc/group"
echo 'NAME="brisk testimage stand-in"' >"$R/etc/os-release"
date +%Y%m%d >"$R/home/podman/testimage-id"
touch --date=@1600000000 "$R/home/podman/testimage-id"
printf 'echo Confirmed: testimage pause invoked as $0\nwhile :; do\n    sleep 0.1\ndone\n' >"$R/home/podman/pause"
chmod 755 "$R/home/podman/pause"
tar --numeric-owner -C "$R" -cf "$PODMAN_BATS_WORLD/testimage.tar" .
rm -rf "$R"
podman import -q \
	--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
	--change 'WORKDIR /home/podman' \
	--change 'CMD ["/bin/echo", "This container is intended for podman CI testing"]' \
	--change 'LABEL created_by=brisk-scripts/podman-bats/run.sh' \
	--change 'LABEL created_at=2022-06-15T00:00:00Z' \
	"$PODMAN_BATS_WORLD/testimage.tar" quay.io/libpod/testimage:20220615 >/dev/null
rm -f "$PODMAN_BATS_WORLD/testimage.tar"
cd "$SRC"
paths=()
for f in "${files[@]}"; do paths+=("test/system/${f%.bats}.bats"); done
PODMAN=/usr/bin/podman BATS_TMPDIR=$TMPDIR bats --tap "${paths[@]}" | tee "${out:-/dev/null}" | grep -E '^(not ok|ok)' | awk '
	/^ok/ && / # skip/ { skip++; next }
	/^ok/ { pass++; next }
	/^not ok/ { fail++; print }
	END { printf "podman-bats: %d passed, %d failed, %d skipped\n", pass, fail, skip }'
