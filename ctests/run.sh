#!/bin/sh
# Runs each C test program given as an argument (optionally under $RUNNER)
# and counts the programs that pass, fail and skip: exit status 77 means
# "skipped" (automake's convention: the test needs something this machine
# lacks, e.g. a DSA device), 0 passed, anything else failed. Programs named
# dml_* are skipped without running when SKIP_DML is set. Prints the total
# as "C suite: N passed, N failed, N skipped"; exit status 1 if any program
# failed.
passed=0
failed=0
skipped=0
failures=""
skips=""
for t in "$@"; do
	if [ "${t#*/dml_}" != "$t" ] && [ -n "$SKIP_DML" ]; then
		skipped=$((skipped + 1))
		skips="$skips $t"
		continue
	fi
	echo "== $t"
	${RUNNER:-} "$t"
	rc=$?
	if [ "$rc" -eq 0 ]; then
		passed=$((passed + 1))
	elif [ "$rc" -eq 77 ]; then
		skipped=$((skipped + 1))
		skips="$skips $t"
	else
		failed=$((failed + 1))
		failures="$failures $t"
	fi
done
[ -n "$skips" ] && echo "skipped programs:$skips"
[ -n "$failures" ] && echo "failed programs:$failures"
echo "C suite: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
