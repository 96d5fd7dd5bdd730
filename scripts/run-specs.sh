#!/bin/sh
# run-specs.sh BUILDDIR [busted args and spec files; default: spec/] - the spec suite against one build.
#
# Runs busted under the Lua NETLUA_LUA names (lua5.4 by default; the
# build must be for that Lua: see the Makefile's LUA), then prints one
# closing line "N passed, N failed, N skipped" taken from busted's own
# summary.  Exits non-zero when anything failed.
set -u
build=${1:-build}; shift || true
lua=${NETLUA_LUA:-lua5.4}
export NETLUA_LUA="$lua"
cd "$(dirname "$0")/.."
out=$(mktemp)
pre=""
if [ "$build" = build-asan ]; then
  # the interpreter itself is not instrumented: load the runtime first
  LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
  export LD_PRELOAD
  export ASAN_OPTIONS=detect_leaks=0:abort_on_error=0:halt_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
fi
if [ -n "${NETLUA_VALGRIND:-}" ]; then
  pre="valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --trace-children=no"
fi
export NETLUA_BUILD="$build"
[ $# -gt 0 ] || set -- spec
rcfile=$(mktemp)
{ $pre $lua /usr/bin/busted --lpath="lua/?.lua;lua/?/init.lua;spec/?.lua" \
    --cpath="$build/?.so" -o utfTerminal "$@" 2>&1; echo $? >"$rcfile"; } |
  tee "$out"
rc=$(cat "$rcfile"); rm -f "$rcfile"
# busted: "N successes / N failures / N errors / N pending : T seconds"
line=$(sed 's/\x1b\[[0-9;]*m//g' "$out" | grep -E '^[0-9]+ success' | tail -n 1)
rm -f "$out"
if [ -z "$line" ]; then
  echo "0 passed, 1 failed"
  exit 1
fi
set -- $(echo "$line" | tr -c '0-9\n' ' ')
passed=$1 failures=$2 errors=$3 pending=$4
failed=$((failures + errors))
echo "$passed passed, $failed failed, $pending skipped ($lua)"
[ "$failed" -eq 0 ] && [ "$rc" -eq 0 ] || exit 1
