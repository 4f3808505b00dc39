#!/usr/bin/env bash
# Builds ingressd and runs every test: unit tests (GoogleTest) and the
# end-to-end tests (real ingressd and upstream processes on loopback).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
cd build
ctest --output-on-failure -j 2 --timeout 300
