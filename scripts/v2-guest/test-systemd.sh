#!/bin/bash
# The systemd cgroup driver lane: build on the host, then boot the v2 guest with systemd as PID 1
# (run.sh with V2_INIT=systemd) and run, from the host-built binaries:
#   - brisk-runtime's cgroups unit tests (path parsing, slice expansion, properties, D-Bus
#     marshalling, and the real-dbus-daemon exchange);
#   - integration/tests/cli_systemd.rs (runc --systemd-cgroup and brisk --systemd-cgroup side by
#     side), plus the suites named in $SYSTEMD_CLI_TESTS (default ctr_systemd: the driver
#     through containerd 1.6 and each shim);
#   - cli_systemd once more with dbus stopped (the fallback to /run/systemd/private).
# systemd mounts the cgroup hierarchies itself: unified by default; set
# V2_CMDLINE=systemd.unified_cgroup_hierarchy=0 for a hybrid guest.
# Usage: test-systemd.sh   (env: CARGO, SYSTEMD_CLI_TESTS, and run.sh's V2_* knobs)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
guest_build

list=$out/systemd-tests.list
: >"$list"
echo "$(exes -p brisk-runtime --lib) cgroups" >>"$list"
for t in cli_systemd ${SYSTEMD_CLI_TESTS-ctr_systemd}; do
	echo "$(exes -p brisk-integration --test "$t")" >>"$list"
done

guest=$out/systemd-guest-tests.sh
{
	guest_script "$list" systemd
	cat <<GUEST
if [ "\$(cat /proc/1/comm)" != systemd ] || [ ! -d /run/systemd/system ]; then
	echo "systemd-guest: PID 1 is \$(cat /proc/1/comm), not systemd"
	failed="\$failed not-systemd"
fi
echo "systemd-guest: \$(systemctl --version | head -1); cgroup: \$(stat -fc %T /sys/fs/cgroup); system bus: \$(ls /run/dbus/system_bus_socket 2>&1)"
# Again without the system bus: both runtimes fall back to systemd's private socket.
systemctl stop dbus.socket dbus.service
if systemctl -q is-active dbus.socket || systemctl -q is-active dbus.service; then
	echo "systemd-guest: the system bus is still up"; failed="\$failed dbus-still-up"
fi
echo "=== systemd: cli_systemd without the system bus (/run/systemd/private)"
"\$(sed -n 2p $list | cut -d' ' -f1)" --test-threads=1 || failed="\$failed cli_systemd-private"
leftover=\$(systemctl list-units --all --plain --no-legend 'brisk-*.scope' 'brisk-*.slice' | awk '{print \$1}' | tr '\n' ' ')
[ -z "\$leftover" ] || { echo "systemd: units left behind: \$leftover"; failed="\$failed leftovers"; }
if [ -z "\$failed" ]; then echo "V2-GUEST-RESULT: PASS"; else echo "V2-GUEST-RESULT: FAIL\$failed"; fi
GUEST
} >"$guest"
chmod +x "$guest"
echo "systemd: running $(wc -l <"$list") test binaries in the systemd guest (console: $out/systemd-console.log)"
V2_INIT=systemd bash scripts/v2-guest/run.sh "$guest" "$out/systemd-console.log"
