#!/usr/bin/env bash
# Builds the libFuzzer targets (clang-14, ASan + UBSan) into build-fuzz/ and
# runs each one for SECONDS (default 30) on a copy of its corpus in fuzz/corpus/,
# with its dictionary and a max_len that suits it. Exits non-zero when any
# target reports a crash, a leak, a sanitizer error, a timeout or an OOM;
# reproducers are kept in the artifacts directory printed at the end.
#
#   scripts/fuzz.sh [SECONDS]
#
# Environment:
#   FUZZ_TARGETS="chunked path"   only these targets (names without _fuzzer)
#   FUZZ_MERGE=1                  merge the new interesting inputs into fuzz/corpus/ (-merge=1)
#   FUZZ_ARTIFACTS=DIR            where crash/leak/timeout reproducers go (default: a temp dir)
#   FUZZ_FLAGS="-jobs=1 ..."      extra libFuzzer flags
#   FUZZ_JOBS=N                   build parallelism (default 1: the machine is shared)
#   ASAN_OPTIONS, UBSAN_OPTIONS   passed through
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
secs=${1:-30}
targets=(${FUZZ_TARGETS:-http1_request http1_response chunked path manifest compile})

if [ ! -f build-fuzz/CMakeCache.txt ]; then
  CC=clang-14 CXX=clang++-14 cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" -DINGRESSD_FUZZ=ON -DBUILD_TESTING=OFF -DINGRESSD_SANITIZE=OFF || exit 2
fi
cmake --build build-fuzz --target fuzzers -j "${FUZZ_JOBS:-1}" || exit 2

work=$(mktemp -d /tmp/ingressd-fuzz.XXXXXX)
artifacts=${FUZZ_ARTIFACTS:-$work/artifacts}
mkdir -p "$artifacts"
# Symbolised stacks; leaks are reported (libFuzzer's -detect_leaks is on by default).
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
command -v llvm-symbolizer-14 >/dev/null && export ASAN_SYMBOLIZER_PATH=$(command -v llvm-symbolizer-14)

failed=()
summary=()
for t in "${targets[@]}"; do
  bin=build-fuzz/fuzz/${t}_fuzzer
  case $t in
    manifest | compile) dict=fuzz/yaml.dict max_len=4096 ;;
    path) dict=fuzz/http.dict max_len=512 ;;
    *) dict=fuzz/http.dict max_len=4096 ;;
  esac
  [ -x "$bin" ] || { echo "no such target: $t" >&2; exit 2; }
  corpus=$work/corpus/$t
  mkdir -p "$corpus"
  cp -r "fuzz/corpus/${t}_fuzzer/." "$corpus/" 2>/dev/null
  log=$work/$t.log
  echo "== $t: ${secs}s (log: $log)"
  # shellcheck disable=SC2086
  "$bin" "$corpus" -max_total_time="$secs" -max_len="$max_len" -dict="$dict" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$artifacts/$t-" ${FUZZ_FLAGS:-} >"$log" 2>&1
  rc=$?
  last=$(grep -E '^#[0-9]+' "$log" | tail -1)
  execs=$(grep -m1 'stat::number_of_executed_units' "$log" | awk '{print $2}')
  summary+=("$t: rc=$rc execs=${execs:-?} ${last#*	}")
  if [ $rc -ne 0 ] || grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|libFuzzer)|runtime error:|FUZZ_CHECK failed' "$log" ||
    ls "$artifacts/$t-"* >/dev/null 2>&1; then
    failed+=("$t")
    echo "!! $t failed:"
    grep -E -A30 'ERROR:|runtime error:|FUZZ_CHECK failed' "$log" | head -60
    ls -1 "$artifacts/$t-"* 2>/dev/null
  fi
  if [ "${FUZZ_MERGE:-0}" = 1 ]; then
    "$bin" -merge=1 -max_len="$max_len" "$root/fuzz/corpus/${t}_fuzzer" "$corpus" >>"$log" 2>&1
  fi
done

echo
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]} (reproducers in $artifacts; logs in $work)"
  exit 1
fi
echo "OK: no crash, leak, sanitizer report or timeout"
rm -rf "$work"
