#!/usr/bin/env bash
# Install the Debian packages named as arguments that are not installed yet (apt-get, as root).
# Used by the make targets (mk/deps.mk) and the fetch scripts of the third-party suites (scripts/*/fetch.sh, scripts/criu/build.sh) so that `make demo` and `make test` work on a fresh Debian
# machine that has only a Rust toolchain. Quiet and quick when everything is there.
set -euo pipefail
command -v dpkg-query >/dev/null || { echo "apt-deps: not a Debian system; make sure these are installed: $*" >&2; exit 0; }
missing=()
for p in "$@"; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' || missing+=("$p")
done
((${#missing[@]})) || exit 0
[[ $(id -u) -eq 0 ]] || { echo "apt-deps: missing Debian packages ${missing[*]}; run as root (or install them) first" >&2; exit 1; }
echo "apt-deps: apt-get install ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
