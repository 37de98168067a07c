#!/bin/bash
# Run the OCI runtime-tools validation suite (built by fetch.sh) against a runc-compatible binary, the way
# its README says: `RUNTIME=... validation/NAME.t`, one TAP stream per test binary.
#
#   run.sh [-r RUNTIME] [-o OUTDIR] [-e EXPECTED] [-k KNOWN_FAILURES] [NAME ...]
#
#   -r  the binary under test (the suite's RUNTIME); default /usr/sbin/runc
#   -o  where results go; default .build/runtime-tools/results-<basename of RUNTIME>
#   -e  a list of assertions ("NAME.t: description", one a line) that must pass; any of them that does not,
#       and is not in the known-failures list, makes run.sh exit 1. Without -e, only report.
#   -k  known failures ("NAME.t: description<TAB or two spaces># reason"; "NAME.t: *" is every assertion of
#       that test); default known-failures beside this script
#   NAME  run only these tests (validation/NAME.t); default: every test the -e list names, or all of them
#
# An assertion is named by its test and its description (and "NAME.t: (the test exits 0)" is one more); a description that repeats in one test gets
# " [2]", " [3]", ... in order, so that a test point that is not written (the test stopped early) does not
# shift the names of the others. Writes OUTDIR/results.tsv ("pass|fail|skip|todo<TAB>NAME.t: description"),
# OUTDIR/NAME.tap (stdout and stderr of each test) and OUTDIR/exit.tsv (each test's exit status), and
# prints the counts. Must run as root. The suite's bundles go to a temporary directory that is removed at
# the end, with the containers made from them deleted and the cgroups the suite names removed, even when
# the run fails or is interrupted.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT_DIR=$(cd "$HERE/../.." && pwd)
BUILD=${BUILD:-$ROOT_DIR/.build/runtime-tools}
SRC=$BUILD/src

# Some configs have no mount namespace (linux_ns_itype.t "inherit namespace mnt"): runc, and brisk as
# runc, then mount in the caller's namespace and make its / rslave (runc's prepareRoot). Run the
# whole suite in a private mount namespace of its own so the host's mounts and propagation stay as
# they are; the runtime and the suite's checks share that namespace, so the checks are unchanged.
if [ -z "${BRISK_RUNTIME_TOOLS_MNTNS:-}" ]; then
	exec env BRISK_RUNTIME_TOOLS_MNTNS=1 unshare --mount --propagation private -- "$0" "$@"
fi

runtime=/usr/sbin/runc
out=""
expected=""
known=$HERE/known-failures
while getopts "r:o:e:k:" opt; do
	case $opt in
	r) runtime=$OPTARG ;;
	o) out=$OPTARG ;;
	e) expected=$OPTARG ;;
	k) known=$OPTARG ;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))

[ "$(id -u)" = 0 ] || { echo "run.sh: the suite must run as root" >&2; exit 2; }
[ -x "$SRC/runtimetest" ] || { echo "run.sh: no suite in $SRC: run scripts/runtime-tools/fetch.sh" >&2; exit 2; }
runtime=$(readlink -f "$runtime")
[ -x "$runtime" ] || { echo "run.sh: $runtime is not an executable" >&2; exit 2; }
[ -z "$out" ] && out=$BUILD/results-$(basename "$runtime")
out=$(realpath -m "$out")
for f in "$expected" "$known"; do
	[ -z "$f" ] || [ -f "$f" ] || { echo "run.sh: no such list: $f" >&2; exit 2; }
done
expected_names=""
[ -n "$expected" ] && expected_names=$(sed -E '/^#/d; /^$/d' "$expected")
known_names=""
[ -n "$known" ] && known_names=$(sed -E '/^#/d; s/(\t|  +)#.*$//; /^$/d' "$known")

if [ $# -gt 0 ]; then
	tests=("$@")
	# Only the listed assertions of these tests are expected.
	expected_names=$(grep -F -f <(printf '%s.t: \n' "${tests[@]%.t}") <<<"$expected_names" || true)
elif [ -n "$expected" ]; then
	mapfile -t tests < <(sed -E 's/^([^:]+)\.t: .*/\1/' <<<"$expected_names" | sort -u)
else
	tests=()
	for t in "$SRC"/validation/*.t; do tests+=("$(basename "$t" .t)"); done
fi

mkdir -p "$BUILD"
exec 9>"$BUILD/run.lock"
flock -n 9 || { echo "run.sh: another run.sh is running (lock $BUILD/run.lock)" >&2; exit 2; }

mkdir -p "$out"
: >"$out/results.tsv"
: >"$out/exit.tsv"
tmp=$(mktemp -d /tmp/brisk-runtime-tools.XXXXXX)
chmod 0755 "$tmp"

# The cgroups the suite's configs name (runtime-tools cgroups/cgroups.go: AbsCgroupPath "/cgrouptest",
# RelCgroupPath "testdir/cgrouptest/container", relative to the runtime's own cgroup); removed at the end
# when they did not exist before.
cg_dirs() {
	local d
	for d in /sys/fs/cgroup/*/cgrouptest /sys/fs/cgroup/*/testdir /sys/fs/cgroup/*/*/testdir /sys/fs/cgroup/*/*/*/testdir; do
		[ -d "$d" ] && echo "$d"
	done
	return 0
}
cg_pre=$(cg_dirs)

test_pgid=""
delete_ours() {
	# The suite names its containers with random UUIDs and puts their bundles in $tmp: delete the
	# containers whose bundle is there.
	local id bundle
	for id in $("$runtime" list -q 2>/dev/null); do
		bundle=$("$runtime" state "$id" 2>/dev/null | sed -n 's/^ *"bundle": *"\(.*\)",*$/\1/p')
		case $bundle in "$tmp"/*) "$runtime" delete -f "$id" >/dev/null 2>&1 || true ;; esac
	done
}
cleanup() {
	set +e
	[ -n "$test_pgid" ] && kill -KILL -- "-$test_pgid" 2>/dev/null
	delete_ours
	findmnt -rn -o TARGET | grep -F "$tmp/" | sort -r | while read -r m; do umount -l "$m"; done
	rm -rf "$tmp"
	local d
	for d in $(cg_dirs); do
		grep -qxF "$d" <<<"$cg_pre" && continue
		find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
	done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start=$(date +%s)
for t in "${tests[@]}"; do
	t=${t%.t}
	[ -x "$SRC/validation/$t.t" ] || { echo "run.sh: no test $SRC/validation/$t.t" >&2; exit 2; }
	# Its own process group, so that a hung test and whatever it started can be ended as a whole.
	set +e
	(cd "$SRC" && TMPDIR=$tmp RUNTIME=$runtime exec setsid timeout -k 10 180 "validation/$t.t") \
		</dev/null >"$out/$t.tap" 2>&1 &
	test_pgid=$!
	wait "$test_pgid"
	rc=$?
	set -e
	kill -KILL -- "-$test_pgid" 2>/dev/null || true
	test_pgid=""
	delete_ours
	printf '%s\t%s\n' "$rc" "$t.t" >>"$out/exit.tsv"
	# "ok N - desc", "not ok N - desc", "ok N # SKIP reason", "not ok N - desc # TODO".
	awk -v t="$t.t" '
		function name(d) { seen[d]++; return t ": " d (seen[d] > 1 ? " [" seen[d] "]" : "") }
		/^(not )?ok [0-9]+ # SKIP/ { d = $0; sub(/^(not )?ok [0-9]+ # SKIP ?/, "", d); print "skip\t" name("SKIP " d); next }
		/^(not )?ok [0-9]+ .* # TODO$/ { d = $0; sub(/^(not )?ok [0-9]+ - /, "", d); sub(/ # TODO$/, "", d); print "todo\t" name(d); next }
		/^not ok [0-9]+ / { d = $0; sub(/^not ok [0-9]+ (- )?/, "", d); print "fail\t" name(d); next }
		/^ok [0-9]+ / { d = $0; sub(/^ok [0-9]+ (- )?/, "", d); print "pass\t" name(d) }
	' "$out/$t.tap" >>"$out/results.tsv"
	# The test's own verdict (a test can stop with an error after its last test point, or before the
	# first) is one more assertion.
	printf '%s\t%s\n' "$([ "$rc" = 0 ] && echo pass || echo fail)" "$t.t: (the test exits 0)" >>"$out/results.tsv"
done
elapsed=$(($(date +%s) - start))

count() { grep -c "^$1	" "$out/results.tsv" || true; }
echo "run.sh: $(basename "$runtime"): ${#tests[@]} tests, assertions: pass $(count pass) fail $(count fail) skip $(count skip) todo $(count todo) in ${elapsed}s (results in $out)" >&2

[ -z "$expected" ] && exit 0
bad=0
# The listed assertions that did not pass (comm: both sides sorted the same way).
missing=$(LC_ALL=C comm -23 <(LC_ALL=C sort -u <<<"$expected_names") \
	<(awk -F'\t' '$1 == "pass" { print $2 }' "$out/results.tsv" | LC_ALL=C sort -u))
while IFS= read -r a; do
	[ -z "$a" ] && continue
	if grep -qxF -e "$a" -e "${a%%: *}: *" <<<"$known_names"; then
		echo "run.sh: known failure: $a" >&2
		continue
	fi
	st=$(awk -F'\t' -v a="$a" '$2 == a { print $1; exit }' "$out/results.tsv")
	echo "run.sh: FAIL (${st:-not run}): $a" >&2
	bad=1
done <<<"$missing"
exit $bad
