#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Compare the ABI facts printed by ctests/abi_probe.c with upstream's table.

Usage: compare_abi.py SHARED_EXPECTED COMMITTED_EXPECTED ACTUAL

SHARED_EXPECTED (../shared/abi-expected.tsv, the reference kept beside the
checkout) is used when it exists; otherwise COMMITTED_EXPECTED
(tests/abi-expected.tsv, a verbatim copy kept in the repository).

Each fact is one line: kind<TAB>name<TAB>member<TAB>value... Lines starting
with '#' and blank lines are ignored. A fact is identified by
(kind, name, member). Every expected fact must be present with the same
values, and the probe must print nothing else. Each difference is printed;
the last line is "abi: N passed, N failed". Exit status 1 on any failure.
"""

import os
import sys


def load(path):
    """Returns ({(kind, name, member): (values, lineno)}, [problems])."""
    facts = {}
    problems = []
    with open(path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.split("\t")
            if len(fields) < 4:
                problems.append(f"{path}:{lineno}: malformed line: {line!r}")
                continue
            key = tuple(fields[:3])
            if key in facts:
                problems.append(
                    f"{path}:{lineno}: duplicate fact {fmt_key(key)} "
                    f"(first on line {facts[key][1]})")
                continue
            facts[key] = (tuple(fields[3:]), lineno)
    return facts, problems


def fmt_key(key):
    kind, name, member = key
    return f"{kind} {name}" + ("" if member == "-" else f" .{member}")


def main(argv):
    if len(argv) != 4:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    shared, committed, actual_path = argv[1:]

    if os.path.exists(shared):
        expected_path = shared
        if os.path.exists(committed):
            with open(shared, "rb") as a, open(committed, "rb") as b:
                if a.read() != b.read():
                    print(f"warning: {committed} differs from {shared}; "
                          f"copy the reference again")
    elif os.path.exists(committed):
        expected_path = committed
    else:
        print(f"abi: neither {shared} nor {committed} exists")
        return 1
    print(f"abi: expected facts from {expected_path}")

    expected, problems = load(expected_path)
    actual, actual_problems = load(actual_path)
    problems += actual_problems

    passed = 0
    failed = len(problems)
    for p in problems:
        print(f"not ok {p}")

    for key, (want, _) in expected.items():
        if key not in actual:
            failed += 1
            print(f"not ok missing: {fmt_key(key)} (expected {' '.join(want)})")
            continue
        got = actual[key][0]
        if got != want:
            failed += 1
            print(f"not ok different: {fmt_key(key)}: expected "
                  f"{' '.join(want)}, got {' '.join(got)}")
        else:
            passed += 1

    for key, (got, lineno) in actual.items():
        if key not in expected:
            failed += 1
            print(f"not ok extra: {fmt_key(key)} = {' '.join(got)} "
                  f"({actual_path}:{lineno}; not in the expected table)")

    print(f"abi: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
