#!/bin/sh
# fuzz.sh SECONDS - build the Telnet engine's libFuzzer target and run it.
#
# Called by `make fuzz` (FUZZ_SECONDS).  Builds fuzz/fuzz_telnet.c with
# clang -fsanitize=fuzzer,address,undefined into build/fuzz/, runs it for
# SECONDS on a copy of fuzz/corpus (the seeds stay untouched), and prints
# the number of executions reached.  Exits non-zero on a finding.
set -eu
secs=${1:-60}
cd "$(dirname "$0")/.."
mkdir -p build/fuzz
clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -Icsrc -o build/fuzz/fuzz_telnet fuzz/fuzz_telnet.c csrc/telnet_engine.c
work=$(mktemp -d /tmp/netlua-fuzz.XXXXXX)
cp fuzz/corpus/* "$work"/ 2>/dev/null || true
log=$(mktemp)
rc=0
build/fuzz/fuzz_telnet -max_total_time="$secs" -print_final_stats=1 \
  -artifact_prefix=build/fuzz/ "$work" >"$log" 2>&1 || rc=$?
runs=$(grep -E 'stat::number_of_executed_units' "$log" | awk '{print $2}' | tail -n 1)
grep -E '^#[0-9]+ *DONE|ERROR|SUMMARY' "$log" || true
echo "fuzz_telnet: ${runs:-0} executions in ${secs}s, exit $rc"
rm -rf "$work"
[ "$rc" -eq 0 ] || { tail -n 40 "$log"; rm -f "$log"; exit "$rc"; }
rm -f "$log"
