#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
#
# check_pmem2.sh -- a real consumer of the ABI: Debian's libpmem2 (package
# libpmem2-dev, 1.12.1), whose <libpmem2/async.h> includes
# <libminiasync/vdm.h> when built with -DPMEM2_USE_MINIASYNC.
#
# Builds tests/pmem2_consumer.c against OUR headers and links it with
# -lpmem2 and our build/lib/libminiasync.so, checks that it loads our
# library, then runs it on a file under /dev/shm (see pmem2_consumer.c for
# what it covers). The file is removed by the program; a leftover from a
# killed run is removed here.
#
# Prints "ok"/"not ok" per check and "pmem2: N passed, N failed" last; exit
# status 1 on any failure. libpmem2-dev missing is a failure (.ci/run
# installs it); set SKIP_PMEM2=1 to skip on purpose.

set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
LIB=$ROOT/build/lib
OUT=$ROOT/build/pmem2_consumer
CC=${CC:-cc}
DIR=${PMEM2_TEST_DIR:-/dev/shm}

passed=0
failed=0
LOG=$(mktemp "${TMPDIR:-/tmp}/miniasync-pmem2.XXXXXX")
trap 'rm -f "$LOG"' EXIT INT TERM

ok() { passed=$((passed + 1)); echo "ok - $1"; }
not_ok() {
	failed=$((failed + 1))
	echo "not ok - $1"
	[ -s "$LOG" ] && sed 's/^/    /' "$LOG" | head -40
}
finish() {
	echo "pmem2: $passed passed, $failed failed"
	[ "$failed" -eq 0 ]
	exit $?
}

if [ -n "${SKIP_PMEM2:-}" ]; then
	echo "# SKIP_PMEM2 is set: libpmem2 consumer not run"
	finish
fi

if [ -f /usr/include/libpmem2.h ] && [ -f /usr/include/libpmem2/async.h ] &&
	pkg-config --exists libpmem2 2>/dev/null; then
	ok "libpmem2-dev $(pkg-config --modversion libpmem2) is installed"
else
	: > "$LOG"
	not_ok "libpmem2-dev is installed (apt-get install libpmem2-dev, or SKIP_PMEM2=1)"
	finish
fi

if [ -d /usr/include/libminiasync ]; then
	echo "# note: /usr/include/libminiasync exists; -I$ROOT/include comes first"
fi

# Our include directory first, so <libminiasync/vdm.h> from libpmem2's
# header is ours.
# shellcheck disable=SC2046 # pkg-config output is meant to be split
if $CC -std=gnu99 -Wall -Wextra -Werror -DPMEM2_USE_MINIASYNC=1 \
	-I"$ROOT/include" $(pkg-config --cflags libpmem2) \
	-o "$OUT" "$ROOT/tests/pmem2_consumer.c" \
	-L"$LIB" -Wl,-rpath,"$LIB" -lminiasync $(pkg-config --libs libpmem2) \
	> "$LOG" 2>&1; then
	ok "pmem2_consumer.c builds against our headers with -DPMEM2_USE_MINIASYNC=1"
else
	not_ok "pmem2_consumer.c builds against our headers with -DPMEM2_USE_MINIASYNC=1"
	finish
fi

if ldd "$OUT" > "$LOG" 2>&1 &&
	grep -qF "libminiasync.so.0 => $LIB/libminiasync.so.0" "$LOG"; then
	ok "it loads our libminiasync.so.0 from build/lib"
else
	not_ok "it loads our libminiasync.so.0 from build/lib"
fi

if [ ! -d "$DIR" ] || [ ! -w "$DIR" ]; then
	echo "$DIR is not a writable directory" > "$LOG"
	not_ok "a writable $DIR for the mapped file"
	finish
fi

"$OUT" "$DIR" > "$LOG" 2>&1
status=$?
cat "$LOG"
summary=$(grep '^pmem2 consumer: ' "$LOG" | tail -n 1)
rm -f "$DIR"/miniasync-pmem2-??????
if [ -z "$summary" ]; then
	: > "$LOG"
	not_ok "pmem2_consumer ran to the end (it crashed or hung)"
	finish
fi
n_pass=$(echo "$summary" | sed 's/.*: \([0-9]*\) passed.*/\1/')
n_fail=$(echo "$summary" | sed 's/.* \([0-9]*\) failed.*/\1/')
passed=$((passed + n_pass))
failed=$((failed + n_fail))
if [ "$status" -ne 0 ] && [ "$n_fail" -eq 0 ]; then
	echo "not ok - pmem2_consumer exit status $status with no failed check"
	failed=$((failed + 1))
fi
finish
