#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# check_man.sh -- formats every man page under man/ with groff and fails on
# any warning. A page that is only a `.so man3/<page>.3` link must point at a
# page that exists, and is formatted through the link (groff resolves it via
# -I and a temporary man3 -> man/ symlink). Other pages must also have .TH
# and a NAME section, so that man-db can index them, and a .TH footer
# naming the product version of Cargo.toml ("miniasync-rs X.Y.Z").
#
# Prints "man: N passed, N failed"; exit status 1 if any page failed.
# Skipped (exit 0) when groff is not installed.
#
# Usage: tests/check_man.sh [page...]   (default: man/*.3 man/*.7)

case $0 in
*/*) here=${0%/*} ;;
*) here=. ;;
esac
root=$(cd "$here/.." && pwd)
mandir="$root/man"
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/Cargo.toml" | head -n 1)

if ! command -v groff >/dev/null 2>&1; then
	echo "man: skipped (groff not found)"
	exit 0
fi

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT HUP INT TERM
ln -s "$mandir" "$tmp/man3"
ln -s "$mandir" "$tmp/man7"

if [ $# -eq 0 ]; then
	set -- "$mandir"/*.3 "$mandir"/*.7
fi

passed=0
failed=0
for page in "$@"; do
	if [ ! -f "$page" ]; then
		echo "FAIL $page: no such file"
		failed=$((failed + 1))
		continue
	fi
	case $page in
	/*) ;;
	*) page="$PWD/$page" ;;
	esac
	name=$(basename "$page")
	problem=""

	# A link page: a single .so request, optionally after comment lines.
	target=$(sed -n -e '/^\.\\"/d' -e 's/^\.so[ 	][ 	]*//p' "$page" | head -n 1)
	if [ -n "$target" ]; then
		lines=$(grep -vc '^\.\\"' "$page")
		if [ "$lines" -ne 1 ]; then
			problem="a .so link page must hold only the .so request"
		elif [ ! -f "$mandir/$(basename "$target")" ]; then
			problem="link target $target does not exist in man/"
		fi
	else
		grep -q '^\.TH ' "$page" || problem="no .TH line"
		grep -q '^\.SH NAME' "$page" || problem="${problem:+$problem; }no NAME section"
		# The .TH footer names the product version, Cargo.toml's.
		grep -q "^\.TH .*\"miniasync-rs $version\"" "$page" ||
			problem="${problem:+$problem; }.TH does not say \"miniasync-rs $version\" (Cargo.toml)"
	fi

	if [ -z "$problem" ]; then
		for dev in ps utf8; do
			out=$(cd "$tmp" && groff -man -ww -z -I "$tmp" -T "$dev" "$page" 2>&1)
			if [ -n "$out" ]; then
				problem="groff -T$dev: $out"
				break
			fi
		done
	fi

	if [ -n "$problem" ]; then
		echo "FAIL $name: $problem"
		failed=$((failed + 1))
	else
		passed=$((passed + 1))
	fi
done

echo "man: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
