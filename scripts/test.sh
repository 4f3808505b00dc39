#!/usr/bin/env bash
# Builds ingressd and runs every test: unit tests (GoogleTest) and the
# end-to-end tests (real ingressd and upstream processes on loopback), then
# the same suite under AddressSanitizer+UBSan and under ThreadSanitizer, and a
# short libFuzzer smoke of every fuzz target.
#   QUICK=1 scripts/test.sh    only the plain build and suite
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
(cd build && ctest --output-on-failure -j 2 --timeout 300)
[ "${QUICK:-0}" = 1 ] && exit 0

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
for san in address thread; do
  dir=build-${san}
  echo "== suite under the ${san} sanitizer"
  # -O1 -g1: what the sanitizers recommend, line tables for their stacks, and
  # about half the compile time of -O2 -g (CI runs three builds and the fuzz build).
  cmake -S . -B "$dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DINGRESSD_SANITIZE=$san \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" >/dev/null
  cmake --build "$dir" -j "$(nproc)"
  (cd "$dir" && INGRESSD_SANITIZED=$san ASAN_OPTIONS=halt_on_error=1:detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
     TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 ctest --output-on-failure -j 2 --timeout 600)
done
if [ -x scripts/fuzz.sh ]; then
  echo "== fuzz smoke"
  FUZZ_JOBS=${FUZZ_JOBS:-$(nproc)} bash scripts/fuzz.sh "${FUZZ_SECONDS:-20}"
fi
echo "all suites passed"
