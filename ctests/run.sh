#!/bin/sh
# Runs each C test program given as an argument (optionally under $RUNNER),
# counts the programs that pass and fail, and prints the total as
# "C suite: N passed, N failed". Exit status 1 if any program failed.
passed=0
failed=0
failures=""
for t in "$@"; do
	if [ "${t#*/dml_}" != "$t" ] && [ -n "$SKIP_DML" ]; then
		continue
	fi
	echo "== $t"
	if ${RUNNER:-} "$t"; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		failures="$failures $t"
	fi
done
[ -n "$failures" ] && echo "failed programs:$failures"
echo "C suite: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
