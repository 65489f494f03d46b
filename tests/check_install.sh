#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
#
# check_install.sh PREFIX -- checks an install made by
# `make install PREFIX=PREFIX` the way users consume it (ABI.md 2.2):
#
#  1. the installed files (GNU layout): lib/libminiasync.so.0, the
#     libminiasync.so symlink, lib/libminiasync.a, include/libminiasync.h and
#     every include/libminiasync/*.h of the source tree, lib/pkgconfig/
#     libminiasync.pc (Version: Cargo.toml's), lib/libminiasync/cmake/
#     libminiasync-config{,-version}.cmake, the man pages of man/; every
#     installed header compiles alone against the prefix;
#  2. a program built only with `pkg-config --cflags --libs libminiasync`
#     copies through the sync and the threads mover (runtime_wait) and runs
#     against the installed library; the same program links statically from
#     the installed archive with `pkg-config --static`, and fully statically
#     (-static); `pkg-config --static --libs` lists every library rustc
#     names for the archive (NATIVE_STATIC_LIBS, from
#     `--print native-static-libs`; `make check-install` sets it);
#  3. a CMake project using find_package(libminiasync) with
#     CMAKE_PREFIX_PATH=PREFIX builds and runs; a newer version request fails;
#  4. `make uninstall PREFIX=PREFIX` leaves nothing but empty directories;
#  5. a staged install (DESTDIR=... PREFIX=/usr) puts everything under
#     DESTDIR with a .pc that says /usr, and its uninstall removes it all.
#
# Prints "ok"/"not ok" per check and "install: N passed, N failed" last;
# exit status 1 if any check failed.

set -u

if [ $# -ne 1 ]; then
	echo "usage: $0 PREFIX" >&2
	exit 2
fi
PREFIX=$1
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CC=${CC:-cc}
MAKE=${MAKE:-make}
# The product version, written once in Cargo.toml.
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/Cargo.toml" | head -n 1)
# A newer minor version than ours, which the CMake version file must refuse.
NEWER=$(echo "$VERSION" | awk -F. '{ print $1 "." $2 + 1 }')

passed=0
failed=0
WORK=$(mktemp -d "${TMPDIR:-/tmp}/miniasync-install.XXXXXX")
trap 'rm -rf "$WORK"' EXIT INT TERM

ok() {
	passed=$((passed + 1))
	echo "ok - $1"
}

not_ok() {
	failed=$((failed + 1))
	echo "not ok - $1"
	if [ $# -gt 1 ] && [ -s "$2" ]; then
		sed 's/^/    /' "$2" | head -40
	fi
}

# check DESCRIPTION COMMAND...: runs COMMAND, output kept for the report.
check() {
	what=$1
	shift
	if "$@" > "$WORK/out" 2>&1; then
		ok "$what"
	else
		not_ok "$what" "$WORK/out"
	fi
}

is_file() { [ -f "$1" ] && [ ! -L "$1" ]; }
is_link_to() { [ -L "$1" ] && [ "$(readlink "$1")" = "$2" ] && [ -e "$1" ]; }

# ---- 1. installed files -------------------------------------------------------

L=$PREFIX/lib
I=$PREFIX/include

check "lib/libminiasync.so.0 is a file" is_file "$L/libminiasync.so.0"
check "lib/libminiasync.so -> libminiasync.so.0" is_link_to "$L/libminiasync.so" libminiasync.so.0
check "no lib/libminiasync.so.$VERSION" test ! -e "$L/libminiasync.so.$VERSION"
check "lib/libminiasync.a is a file" is_file "$L/libminiasync.a"
check "include/libminiasync.h is a file" is_file "$I/libminiasync.h"

missing=""
for h in "$ROOT"/include/libminiasync/*.h; do
	n=$(basename "$h")
	if ! is_file "$I/libminiasync/$n"; then
		missing="$missing $n"
	elif ! cmp -s "$h" "$I/libminiasync/$n"; then
		missing="$missing $n(differs)"
	fi
done
if [ -z "$missing" ]; then
	ok "include/libminiasync/ has every header of the source tree"
else
	echo "not installed or different:$missing" > "$WORK/out"
	not_ok "include/libminiasync/ has every header of the source tree" "$WORK/out"
fi

PC=$L/pkgconfig/libminiasync.pc
check "lib/pkgconfig/libminiasync.pc is a file" is_file "$PC"
check "libminiasync.pc says Version: $VERSION" grep -qx "Version: $VERSION" "$PC"
check "libminiasync.pc says Name: libminiasync" grep -qx "Name: libminiasync" "$PC"
check "libminiasync.pc has no Requires and no -lpthread in Libs (as upstream)" \
	sh -c "! grep -E '^Requires|^Libs:.*-lpthread' '$PC'"
check "lib/libminiasync/cmake/libminiasync-config.cmake is a file" \
	is_file "$L/libminiasync/cmake/libminiasync-config.cmake"
check "lib/libminiasync/cmake/libminiasync-config-version.cmake is a file" \
	is_file "$L/libminiasync/cmake/libminiasync-config-version.cmake"

nman=0
missing=""
for m in "$ROOT"/man/*.[37]; do
	[ -e "$m" ] || continue
	nman=$((nman + 1))
	n=$(basename "$m")
	sec=${n##*.}
	is_file "$PREFIX/share/man/man$sec/$n" || missing="$missing $n"
done
if [ "$nman" -eq 0 ]; then
	echo "# man/ has no pages: nothing to check under share/man"
elif [ -z "$missing" ]; then
	ok "share/man has the $nman pages of man/"
else
	echo "not installed:$missing" > "$WORK/out"
	not_ok "share/man has the $nman pages of man/" "$WORK/out"
fi

# Every public header (upstream's set; the generated *_types.h files are
# fragments those include) compiles on its own from the prefix alone.
bad=""
for h in libminiasync.h libminiasync/future.h libminiasync/vdm.h \
	libminiasync/runtime.h libminiasync/data_mover_sync.h \
	libminiasync/data_mover_threads.h; do
	printf '#include <%s>\nint main(void) { return 0; }\n' "$h" > "$WORK/one.c"
	if ! $CC -std=c99 -Wall -Wextra -Werror -I"$I" -c "$WORK/one.c" \
		-o "$WORK/one.o" > "$WORK/hdr.log" 2>&1; then
		bad="$bad $h"
		cat "$WORK/hdr.log" >> "$WORK/hdr.all"
	fi
done
if [ -z "$bad" ]; then
	ok "every public header compiles alone with only -I\$PREFIX/include"
else
	{ echo "failed:$bad"; cat "$WORK/hdr.all"; } > "$WORK/out"
	not_ok "every public header compiles alone with only -I\$PREFIX/include" "$WORK/out"
fi

# ---- 2. pkg-config consumer ----------------------------------------------------

export PKG_CONFIG_PATH="$L/pkgconfig"
unset PKG_CONFIG_LIBDIR PKG_CONFIG_SYSROOT_DIR 2>/dev/null || true

check "pkg-config finds libminiasync $VERSION in the prefix" \
	sh -c "[ \"\$(pkg-config --modversion libminiasync)\" = '$VERSION' ]"
check "pkg-config flags point into the prefix" \
	sh -c "pkg-config --cflags --libs libminiasync | tee /dev/stderr |
		grep -q -- '-I$I .*-L$L -lminiasync'"

CONSUMER=$ROOT/tests/install_consumer.c
# shellcheck disable=SC2046 # pkg-config output is meant to be split
if $CC -std=gnu99 -Wall -Wextra -Werror -o "$WORK/consumer" "$CONSUMER" \
	$(pkg-config --cflags --libs libminiasync) > "$WORK/out" 2>&1; then
	ok "the consumer builds with pkg-config --cflags --libs libminiasync"
	check "it loads libminiasync.so.0 from the prefix" \
		sh -c "LD_LIBRARY_PATH='$L' ldd '$WORK/consumer' |
			grep -F 'libminiasync.so.0 => $L/libminiasync.so.0'"
	check "it copies through the sync and threads movers" \
		env LD_LIBRARY_PATH="$L" "$WORK/consumer"
else
	not_ok "the consumer builds with pkg-config --cflags --libs libminiasync" "$WORK/out"
fi

# Static: the installed archive, with pkg-config's --static flags.
static_libs=$(pkg-config --static --libs libminiasync | sed 's/-lminiasync\b/-l:libminiasync.a/')
# shellcheck disable=SC2086
if $CC -std=gnu99 -Wall -Wextra -Werror -o "$WORK/consumer-static" "$CONSUMER" \
	$(pkg-config --cflags libminiasync) $static_libs > "$WORK/out" 2>&1; then
	ok "the consumer links statically from lib/libminiasync.a with pkg-config --static"
	check "the static consumer needs no libminiasync.so and runs" \
		sh -c "! readelf -d '$WORK/consumer-static' | grep -q 'libminiasync' &&
			'$WORK/consumer-static'"
else
	not_ok "the consumer links statically from lib/libminiasync.a with pkg-config --static" \
		"$WORK/out"
fi
# Fully static (libc too): only what pkg-config --static gives.
# shellcheck disable=SC2086
if $CC -static -std=gnu99 -Wall -Wextra -Werror -o "$WORK/consumer-allstatic" "$CONSUMER" \
	$(pkg-config --cflags libminiasync) $static_libs > "$WORK/out" 2>&1; then
	ok "the consumer links with -static and pkg-config --static"
	check "the -static consumer has no dynamic section and runs" \
		sh -c "! readelf -d '$WORK/consumer-allstatic' | grep -q NEEDED &&
			'$WORK/consumer-allstatic'"
else
	not_ok "the consumer links with -static and pkg-config --static" "$WORK/out"
fi
# Every library rustc says the archive needs is in Libs.private, except libc
# (always linked) and libgcc_s (the compiler driver links the unwinder;
# naming libgcc_s would break -static links).
missing=""
for l in ${NATIVE_STATIC_LIBS:-}; do
	case $l in
	-lc | -lgcc_s) continue ;;
	esac
	case " $(pkg-config --static --libs libminiasync) " in
	*" $l "*) ;;
	*) missing="$missing $l" ;;
	esac
done
if [ -z "${NATIVE_STATIC_LIBS:-}" ]; then
	echo "NATIVE_STATIC_LIBS is not set (run through make check-install)" > "$WORK/out"
	not_ok "pkg-config --static lists what rustc's native-static-libs names" "$WORK/out"
elif [ -n "$missing" ]; then
	echo "rustc: $NATIVE_STATIC_LIBS; not in libminiasync.pc:$missing" > "$WORK/out"
	not_ok "pkg-config --static lists what rustc's native-static-libs names" "$WORK/out"
else
	ok "pkg-config --static lists what rustc's native-static-libs names ($NATIVE_STATIC_LIBS)"
fi

# ---- 3. CMake consumer -----------------------------------------------------------

if command -v cmake > /dev/null 2>&1; then
	B=$WORK/cmake-build
	if cmake -S "$ROOT/tests/cmake_consumer" -B "$B" -DCMAKE_PREFIX_PATH="$PREFIX" \
		-DCMAKE_C_COMPILER="$CC" -DMINIASYNC_WANT_VERSION="$VERSION" > "$WORK/out" 2>&1 &&
		cmake --build "$B" >> "$WORK/out" 2>&1; then
		ok "a find_package(libminiasync $VERSION) project configures and builds"
		cp "$WORK/out" "$WORK/cmake.log"
		check "find_package set MINIASYNC_LIBRARIES to the installed library" \
			grep -F "include $I, library $L/libminiasync.so" "$WORK/cmake.log"
		check "the CMake consumer loads the installed libminiasync.so.0" \
			sh -c "ldd '$B/consumer' | grep -F 'libminiasync.so.0 => $L/libminiasync.so.0'"
		check "the CMake consumer copies through the sync and threads movers" \
			"$B/consumer"
	else
		not_ok "a find_package(libminiasync $VERSION) project configures and builds" \
			"$WORK/out"
	fi
	if cmake -S "$ROOT/tests/cmake_consumer" -B "$WORK/cmake-newer" \
		-DCMAKE_PREFIX_PATH="$PREFIX" -DMINIASYNC_WANT_VERSION="$NEWER" \
		> "$WORK/out" 2>&1; then
		not_ok "find_package(libminiasync $NEWER) is refused by the version file" "$WORK/out"
	else
		ok "find_package(libminiasync $NEWER) is refused by the version file"
	fi
else
	echo "not ok - cmake is not installed (apt-get install cmake)" > "$WORK/out"
	not_ok "cmake is available for the find_package consumer" "$WORK/out"
fi

# ---- 4. uninstall ---------------------------------------------------------------

left() { find "$1" ! -type d | sort; }
if $MAKE -C "$ROOT" --no-print-directory uninstall PREFIX="$PREFIX" > "$WORK/out" 2>&1; then
	ok "make uninstall PREFIX=$PREFIX"
	left "$PREFIX" > "$WORK/left"
	if [ -s "$WORK/left" ]; then
		not_ok "uninstall leaves only empty directories" "$WORK/left"
	else
		ok "uninstall leaves only empty directories"
	fi
else
	not_ok "make uninstall PREFIX=$PREFIX" "$WORK/out"
fi

# ---- 5. staged install (DESTDIR), as distribution packages do it -----------------

D=$WORK/stage
if $MAKE -C "$ROOT" --no-print-directory install DESTDIR="$D" PREFIX=/usr \
	> "$WORK/out" 2>&1; then
	ok "make install DESTDIR=... PREFIX=/usr"
	check "the staged tree is under DESTDIR/usr" \
		sh -c "[ -f '$D/usr/lib/libminiasync.so.0' ] && [ -z \"\$(find '$D' -mindepth 1 -maxdepth 1 ! -name usr)\" ]"
	check "the staged libminiasync.pc says prefix=/usr" \
		sh -c "grep -qx 'prefix=/usr' '$D/usr/lib/pkgconfig/libminiasync.pc' &&
			! grep -F '$D' '$D/usr/lib/pkgconfig/libminiasync.pc'"
	$MAKE -C "$ROOT" --no-print-directory uninstall DESTDIR="$D" PREFIX=/usr \
		> "$WORK/out" 2>&1
	left "$D" > "$WORK/left"
	if [ -s "$WORK/left" ]; then
		not_ok "the staged uninstall leaves only empty directories" "$WORK/left"
	else
		ok "the staged uninstall leaves only empty directories"
	fi
else
	not_ok "make install DESTDIR=... PREFIX=/usr" "$WORK/out"
fi

echo "install: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
