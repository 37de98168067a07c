#!/bin/bash
# Run runc 1.1.5's integration suite (fetched by fetch.sh) against a runc-compatible binary.
#
#   run.sh [-r RUNC] [-o OUTDIR] [-e EXPECTED] [-k KNOWN_FAILURES] [FILE.bats ...]
#
#   -r  the binary under test (the suite's own RUNC variable); default /usr/sbin/runc
#   -o  where results go; default .build/runc-bats/results-<basename of RUNC>
#   -e  a list of tests ("file.bats: test name", one a line) to run, which must pass; any of them that
#       does not, and is not in the known-failures list, makes run.sh exit 1. Without -e, run.sh runs
#       every test and only reports.
#   -k  known failures ("file.bats: test name<TAB or two spaces># reason"); default known-failures beside
#       this script
#   FILE.bats  run only these files (default: all of tests/integration/*.bats)
#
# Writes OUTDIR/results.tsv ("pass|skip|fail<TAB>file.bats: test name"), OUTDIR/<file>.tap, and prints
# the counts. Must run as root. Everything the suite creates lives in a temporary directory that is
# removed at the end, with its containers deleted, its mounts unmounted and its processes killed, even
# when the run fails or is interrupted.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT_DIR=$(cd "$HERE/../.." && pwd)
BUILD=${BUILD:-$ROOT_DIR/.build/runc-bats}
SUITE=$BUILD/runc-1.1.5/tests/integration

runc_bin=/usr/sbin/runc
out=""
expected=""
known=$HERE/known-failures
while getopts "r:o:e:k:" opt; do
	case $opt in
	r) runc_bin=$OPTARG ;;
	o) out=$OPTARG ;;
	e) expected=$OPTARG ;;
	k) known=$OPTARG ;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))

[ "$(id -u)" = 0 ] || { echo "run.sh: the suite must run as root" >&2; exit 2; }
[ -f "$SUITE/helpers.bash" ] || { echo "run.sh: no suite at $SUITE: run scripts/runc-bats/fetch.sh" >&2; exit 2; }
runc_bin=$(readlink -f "$runc_bin")
[ -x "$runc_bin" ] || { echo "run.sh: $runc_bin is not an executable" >&2; exit 2; }
[ -z "$out" ] && out=$BUILD/results-$(basename "$runc_bin")
out=$(realpath -m "$out")
for f in "$expected" "$known"; do
	[ -z "$f" ] || [ -f "$f" ] || { echo "run.sh: no such list: $f" >&2; exit 2; }
done

expected_names=""
[ -n "$expected" ] && expected_names=$(sed -E '/^#/d; /^$/d' "$expected")
known_names=""
[ -n "$known" ] && known_names=$(sed -E '/^#/d; s/[[:space:]]+#.*$//; /^$/d' "$known")
# With -e the known failures are not run: some of them leave a helper behind that holds bats' output
# open (update.bats' own recvtty), which would stall their file until the timeout.
to_run=$(grep -vxF -f <(printf '%s\n' "$known_names") <<<"$expected_names" || true)
if [ $# -gt 0 ]; then
	files=("$@")
elif [ -n "$expected" ]; then
	# Only the files, and below only the tests, that the list names.
	mapfile -t files < <(sed -E '/^$/d; s/^([^:]+\.bats): .*/\1/' <<<"$to_run" | sort -u)
else
	files=()
	for f in "$SUITE"/*.bats; do
		f=$(basename "$f")
		# Its setup needs the debian image, which cannot be had offline (see fetch.sh); it then fails
		# before recvtty has written its pid file, the stray recvtty holds bats' output pipe, and the
		# file hangs until the timeout. Not run.
		if [ "$f" = hooks.bats ] && ! (eval "$("$SUITE/get-images.sh")" && [ -f "$DEBIAN_IMAGE" ]); then
			echo "run.sh: not running $f: no debian image" >&2
			continue
		fi
		files+=("$f")
	done
fi

# An anchored bats --filter regex matching exactly the listed tests of file $1 (test names are literal
# text: escape every ERE metacharacter).
filter_for() {
	local f=$1
	awk -v p="$f: " 'index($0, p) == 1' <<<"$to_run" | sed -E "s/^[^:]+\.bats: //; s/[][\\.^\$*+?(){}|]/\\\\&/g" |
		paste -sd'|' | sed -E 's/^(.*)$/^(\1)$/'
}

# One run at a time: the cgroup cleanup below cannot tell two runs' cgroups apart.
mkdir -p "$BUILD"
exec 9>"$BUILD/run.lock"
flock -n 9 || { echo "run.sh: another run.sh is running (lock $BUILD/run.lock)" >&2; exit 2; }

mkdir -p "$out"
: >"$out/results.tsv"
tmp=$(mktemp -d /tmp/brisk-runc-bats.XXXXXX)
chmod 0755 "$tmp"

# The suite puts containers' cgroups under this parent; remove what the run left there, but only if the
# parent did not exist before (it is then ours).
cg_parent=runc-cgroups-integration-test
cg_preexisting=()
for d in /sys/fs/cgroup/*/"$cg_parent" /sys/fs/cgroup/"$cg_parent"; do
	[ -d "$d" ] && cg_preexisting+=("$d")
done

bats_pgid=""
cleanup() {
	set +e
	# Containers first: every state root the suite made is somewhere below $tmp.
	local d ct
	while read -r d; do
		for ct in $("$runc_bin" --root "$d" list -q 2>/dev/null); do
			"$runc_bin" --root "$d" delete -f "$ct" >/dev/null 2>&1
		done
	done < <(find "$tmp" -maxdepth 4 -type d 2>/dev/null)
	# Helpers (recvtty, seccompagent) and anything else bats started: its process group, and the
	# session script(1) made for it.
	[ -n "$bats_pgid" ] && kill -KILL -- "-$bats_pgid" 2>/dev/null
	if [ -n "${bats_sid:-}" ]; then
		for p in $(ps -o pid= -s "$bats_sid" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
	fi
	# Mounts below $tmp, deepest first.
	findmnt -rn -o TARGET | grep -F "$tmp/" | sort -r | while read -r m; do umount -l "$m"; done
	rm -rf "$tmp"
	local cg pre p
	for cg in /sys/fs/cgroup/*/"$cg_parent" /sys/fs/cgroup/"$cg_parent"; do
		[ -d "$cg" ] || continue
		pre=""
		for p in "${cg_preexisting[@]}"; do [ "$p" = "$cg" ] && pre=1; done
		[ -n "$pre" ] && continue
		find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null
	done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# True when a TAP file has its "1..N" plan and N results.
tap_complete() {
	local plan n
	plan=$(sed -n 's/^1\.\.\([0-9][0-9]*\)$/\1/p' "$1" 2>/dev/null | head -1)
	[ -n "$plan" ] || return 1
	n=$(grep -cE '^(not )?ok [0-9]+ ' "$1" 2>/dev/null || true)
	[ "$n" -ge "$plan" ]
}

start=$(date +%s)
for f in "${files[@]}"; do
	f=$(basename "$f")
	[ -f "$SUITE/$f" ] || { echo "run.sh: no test file $SUITE/$f" >&2; exit 2; }
	echo "run.sh: $f" >&2
	# Its own process group so that a hung file, and whatever it started, can be killed as a whole.
	# (No BATS_TEST_TIMEOUT: in bats 1.8.2 its watchdog outlives each test and stalls the file by its full
	# length.) The timeout bounds a whole file.
	# Under script(1): the suite expects a terminal (foreground `runc run` with the default
	# "terminal": true opens /dev/tty), as runc's own CI gives it.
	# A previous run's complete TAP must not pass for this one's (see tap_complete below).
	rm -f "$out/$f.tap"
	set +e
	(cd "$SUITE" && TMPDIR=$tmp RUNC=$runc_bin SHELL=/bin/bash \
		BATS_ONE_FILE=$f BATS_ONE_OUT=$out/$f.tap BATS_ONE_FILTER=$([ -n "$expected" ] && filter_for "$f") \
		exec setsid timeout -k 10 900 script -qefc \
		'exec bats --tap ${BATS_ONE_FILTER:+--filter "$BATS_ONE_FILTER"} "$BATS_ONE_FILE" >"$BATS_ONE_OUT" 2>&1' \
		/dev/null) </dev/null >/dev/null 2>&1 &
	bats_pgid=$!
	# A test that fails between starting its own recvtty and killing it (update.bats "update devices
	# [minimal transition rules]") leaves that recvtty holding bats' output open, and bats then
	# never exits. So once the TAP has every result its plan announced, give bats a moment and then
	# end the file's process group (script(1) exits, and the pty hangup ends what is left in it).
	# script(1) runs bats in a session of its own; remember it to end its strays (such a recvtty is
	# in a background process group there, which the pty hangup does not reach).
	bats_sid=""
	while kill -0 "$bats_pgid" 2>/dev/null; do
		if [ -z "$bats_sid" ]; then
			script_pid=$(ps -o pid= --ppid "$bats_pgid" 2>/dev/null | head -1 | tr -d ' ')
			[ -n "$script_pid" ] && bats_sid=$(ps -o pid= --ppid "$script_pid" 2>/dev/null | head -1 | tr -d ' ')
		fi
		if tap_complete "$out/$f.tap"; then
			sleep 5
			kill -TERM -- "-$bats_pgid" 2>/dev/null
			break
		fi
		sleep 1
	done
	wait "$bats_pgid"
	set -e
	kill -KILL -- "-$bats_pgid" 2>/dev/null || true
	bats_pgid=""
	if [ -n "$bats_sid" ]; then
		for p in $(ps -o pid= -s "$bats_sid" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
	fi
	# TAP: "ok N name", "ok N name # skip (reason)", "not ok N name".
	awk -v f="$f" '
		/^not ok [0-9]+ / { sub(/^not ok [0-9]+ /, ""); sub(/ # timeout.*$/, ""); print "fail\t" f ": " $0; next }
		/^ok [0-9]+ .* # skip/ { sub(/^ok [0-9]+ /, ""); sub(/ # skip.*$/, ""); print "skip\t" f ": " $0; next }
		/^ok [0-9]+ / { sub(/^ok [0-9]+ /, ""); print "pass\t" f ": " $0 }
	' "$out/$f.tap" >>"$out/results.tsv"
done
elapsed=$(($(date +%s) - start))

count() { grep -c "^$1	" "$out/results.tsv" || true; }
echo "run.sh: $(basename "$runc_bin"): pass $(count pass) skip $(count skip) fail $(count fail) in ${elapsed}s (results in $out)" >&2

[ -z "$expected" ] && exit 0
# Tests listed in $expected that did not pass, minus the known failures.
bad=0
while IFS= read -r t; do
	[ -z "$t" ] && continue
	grep -qxF "pass	$t" "$out/results.tsv" && continue
	if grep -qxF "$t" <<<"$known_names"; then
		echo "run.sh: known failure (not run): $t" >&2
		continue
	fi
	st=$(grep -F "	$t" "$out/results.tsv" | head -1 | cut -f1)
	echo "run.sh: FAIL (${st:-not run}): $t" >&2
	bad=1
done <<<"$expected_names"
exit $bad
