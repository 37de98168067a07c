# Sourced by the fetch scripts that build a third-party test suite from a Debian source package
# (scripts/runc-bats/fetch.sh, scripts/runtime-tools/fetch.sh).
#
#   debian_source APTDIR SUITE PACKAGE VERSION DEST
#
# Downloads the source package PACKAGE at VERSION (empty: the suite's current one) from Debian SUITE (bookworm, trixie, ...) through a
# private apt under APTDIR (deb-src only, its own state and cache: the system's apt configuration is never
# read or touched), and unpacks it, with Debian's patches applied, into DEST (replaced if it exists).
# apt checks every file it downloads against the signed Sources index, so the files are authentic even
# when unpacked without the .dsc (below).
debian_source() {
	local apt_dir=$1 suite=$2 pkg=$3 version=$4 dest=$5
	mkdir -p "$apt_dir"/{sources.list.d,state/lists/partial,cache/archives/partial,dl}
	echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $suite main" \
		>"$apt_dir/sources.list"
	[ -f "$apt_dir/state/status" ] || : >"$apt_dir/state/status"
	local A=(-oDir::Etc::SourceList="$apt_dir/sources.list" -oDir::Etc::SourceParts="$apt_dir/sources.list.d"
		-oDir::State="$apt_dir/state" -oDir::State::status="$apt_dir/state/status" -oDir::Cache="$apt_dir/cache"
		-oDebug::NoLocking=1 -oAPT::Sandbox::User=root)
	apt-get "${A[@]}" -qq update
	local upstream dl=$apt_dir/dl
	# The mirror this project reaches has been seen to serve some files of a source package and not
	# others (404); apt keeps each file it got and checked, so go on with what came.
	(cd "$dl" && apt-get "${A[@]}" -qq source --download-only "$pkg${version:+=$version}") ||
		echo "debian_source: apt-get source $pkg${version:+=$version} did not get every file; trying with what it got" >&2
	if [ -z "$version" ]; then
		version=$(apt-cache "${A[@]}" showsrc "$pkg" | sed -n 's/^Version: //p' | sort -V | tail -1)
	fi
	# File names carry no epoch.
	version=${version#*:}
	upstream=${version%-*}
	local tmp
	tmp=$(mktemp -d "$(dirname "$dest")/unpack.XXXXXX")
	if [ -f "$dl/${pkg}_$version.dsc" ]; then
		# --no-check: apt verified the files already.
		dpkg-source --no-check -x "$dl/${pkg}_$version.dsc" "$tmp/src" >/dev/null
	elif [ -f "$dl/${pkg}_$upstream.orig.tar.xz" ] && [ -f "$dl/${pkg}_$version.debian.tar.xz" ]; then
		# A "3.0 (quilt)" package by hand: the upstream tarball, debian/ on top, then debian/patches/series
		# in order (what dpkg-source -x does).
		mkdir -p "$tmp/src"
		tar -C "$tmp/src" --strip-components=1 -xJf "$dl/${pkg}_$upstream.orig.tar.xz"
		tar -C "$tmp/src" -xJf "$dl/${pkg}_$version.debian.tar.xz"
		local p
		if [ -f "$tmp/src/debian/patches/series" ]; then
			while read -r p _; do
				case $p in '' | '#'*) continue ;; esac
				patch -s -d "$tmp/src" -p1 <"$tmp/src/debian/patches/$p"
			done <"$tmp/src/debian/patches/series"
		fi
	else
		rm -rf "$tmp"
		echo "debian_source: could not download $pkg $version from Debian $suite (see apt's errors above)" >&2
		return 1
	fi
	rm -rf "$dest"
	mv "$tmp/src" "$dest"
	rm -rf "$tmp"
}
