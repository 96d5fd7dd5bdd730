#!/bin/sh
# fuzz.sh SECONDS - build every libFuzzer target in fuzz/ and run each.
#
# Called by `make fuzz` (FUZZ_SECONDS, or FUZZ_RUNS to stop each target
# after that many executions instead; FUZZ_ONLY=NAME runs one target).
# Each fuzz/fuzz_NAME.c is built
# with clang -fsanitize=fuzzer,address,undefined into build/fuzz/, together
# with csrc/X.c for every "X.h" it includes, and run for SECONDS on a copy
# of fuzz/corpus_NAME/ (the seeds stay untouched).  Prints the number of
# executions each target reached; exits non-zero when any target found
# something (the crashing input is left in build/fuzz/).
set -eu
secs=${1:-60}
cd "$(dirname "$0")/.."
mkdir -p build/fuzz
failed=0
summary=""
for src in fuzz/fuzz_${FUZZ_ONLY:-*}.c; do
  name=$(basename "$src" .c)
  short=${name#fuzz_}
  deps=""
  for h in $(sed -n 's/^#include "\([A-Za-z0-9_]*\)\.h".*/\1/p' "$src"); do
    [ -f "csrc/$h.c" ] && deps="$deps csrc/$h.c"
  done
  # shellcheck disable=SC2086
  clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -Wall -Wextra -Icsrc -o "build/fuzz/$name" "$src" $deps
  work=$(mktemp -d /tmp/netlua-fuzz.XXXXXX)
  cp "fuzz/corpus_$short"/* "$work"/ 2>/dev/null || true
  log=$(mktemp)
  rc=0
  if [ -n "${FUZZ_RUNS:-}" ]; then limit="-runs=$FUZZ_RUNS"; else limit="-max_total_time=$secs"; fi
  "build/fuzz/$name" "$limit" -print_final_stats=1 \
    -artifact_prefix="build/fuzz/$name-" "$work" >"$log" 2>&1 || rc=$?
  runs=$(grep -E 'stat::number_of_executed_units' "$log" | awk '{print $2}' | tail -n 1)
  grep -E '^#[0-9]+ *DONE|ERROR|SUMMARY' "$log" || true
  line="$name: ${runs:-0} executions, exit $rc"
  echo "$line"
  summary="$summary$line
"
  if [ "$rc" -ne 0 ]; then
    tail -n 40 "$log"
    failed=1
  fi
  rm -rf "$work" "$log"
done
printf '%s' "$summary"
exit "$failed"
