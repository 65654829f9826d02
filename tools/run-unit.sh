#!/usr/bin/env bash
# Runs the Criterion unit tests; fails on a failing test and on any
# LeakSanitizer or sanitizer report (Criterion's forked tests pass anyway).
set -uo pipefail
bin=$1
log=$(mktemp)
ASAN_OPTIONS=detect_leaks=1 "$bin" --color=never -j2 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
if grep -qE "LeakSanitizer|AddressSanitizer|runtime error:" "$log"; then
    echo "unit tests: sanitizer report above" >&2
    rc=1
fi
rm -f "$log"
exit $rc
