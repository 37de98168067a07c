#!/bin/bash
# Fetch what the cgroup v2 guest lane needs, with apt only:
#   - qemu-system-x86 installed on the host (the one host package the lane needs);
#   - Debian's stock kernel package (linux-image-amd64's dependency) downloaded and unpacked into
#     .build/v2/kernel with dpkg -x, never installed on the host.
# Idempotent: does nothing when both are present.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
out=$top/.build/v2
mkdir -p "$out"

if ! command -v qemu-system-x86_64 >/dev/null; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends qemu-system-x86
fi

if ! ls "$out"/kernel/boot/vmlinuz-* >/dev/null 2>&1; then
	# The versioned image package linux-image-amd64 points at (e.g. linux-image-6.1.0-56-amd64).
	pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
	[ -n "$pkg" ] || { echo "fetch: cannot resolve linux-image-amd64's kernel package" >&2; exit 1; }
	(cd "$out" && rm -f linux-image-*.deb && apt-get download "$pkg")
	rm -rf "$out/kernel.tmp"
	dpkg -x "$out"/linux-image-*.deb "$out/kernel.tmp"
	mv "$out/kernel.tmp" "$out/kernel"
fi
ls "$out"/kernel/boot/vmlinuz-*
