#!/bin/bash
# The cgroup v2 lane: build on the host, then run the cgroup tests inside a pure cgroup v2 guest
# (run.sh) from the host-built binaries, and report one pass/fail line.
#   - brisk-runtime's cgroups unit tests and its host tests (runtime/tests/cgroups_*.rs);
#   - integration suites named in $V2_TESTS: by default the CLI suites that touch cgroups
#     (cli_cgroups cli_lifecycle cli_exec cli_process cli_namespaces) and, through containerd (the
#     guest runs the host's binaries), ctr_cgroups (OOM event order, v2 metrics) and ctr_task
#     (pause/resume, exec, delete) on containerd 2.1 (V2_CTR_FILTER), each for runc and brisk.
# With V2_CGROUP=v1 the same guest mounts only cgroup v1 hierarchies, every controller including
# those this hybrid CI host leaves unmounted (net_cls/net_prio, hugetlb, rdma): `make test-v1-guest`.
# Usage: test-v2.sh   (env: CARGO, V2_TESTS, V2_CGROUP, and run.sh's V2_* knobs)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
guest_build

mode=${V2_CGROUP:-v2}
list=$out/$mode-tests.list
: >"$list"
echo "$(exes -p brisk-runtime --lib) cgroups" >>"$list"
# The eBPF device filter test needs a cgroup2 hierarchy, which the v1 guest does not mount.
skip=""
[ "$mode" = v1 ] && skip="--skip bpf_device_filter_decides_open"
for t in $(cd runtime/tests && ls cgroups_*.rs | sed 's/\.rs$//'); do
	echo "$(exes -p brisk-runtime --test "$t") $skip" >>"$list"
done
# ctr suites: containerd 2.1 only by default (under TCG each containerd start takes seconds; the
# host lane runs all three releases). V2_CTR_FILTER="" runs every release.
for t in ${V2_TESTS:-cli_cgroups cli_lifecycle cli_exec cli_process cli_namespaces ctr_cgroups ctr_task}; do
	filter=""
	case $t in ctr_*) filter=${V2_CTR_FILTER-v2_1} ;; esac
	echo "$(exes -p brisk-integration --test "$t") $filter" >>"$list"
done

guest=$out/$mode-guest-tests.sh
{
	guest_script "$list" "$mode"
	cat <<GUEST
leftover=\$(find /sys/fs/cgroup/ -mindepth 1 -maxdepth 2 -type d -name 'brisk-*' 2>/dev/null | tr '\n' ' ')
[ -z "\$leftover" ] || { echo "v2: cgroups left behind: \$leftover"; failed="\$failed leftovers"; }
if [ -z "\$failed" ]; then echo "V2-GUEST-RESULT: PASS"; else echo "V2-GUEST-RESULT: FAIL\$failed"; fi
GUEST
} >"$guest"
chmod +x "$guest"
echo "v2: running $(wc -l <"$list") test binaries in the $mode guest (console: $out/$mode-console.log)"
bash scripts/v2-guest/run.sh "$guest" "$out/$mode-console.log"
