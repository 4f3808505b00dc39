#!/usr/bin/env bash
# Builds ingressd and runs the demo: three demo upstreams (alpaca, bandicoot,
# be-default) on loopback and ingressd serving examples/ on :8080.
# Try:  curl -H 'Host: alpaca.example.com' localhost:8080/
# Stop with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh >/dev/null
bin=build/ingressd
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
"$bin" echo --name alpaca --port 9001 & pids+=($!)
"$bin" echo --name bandicoot --port 9002 & pids+=($!)
"$bin" echo --name be-default --port 9003 & pids+=($!)
"$bin" serve --manifests examples --http-port "${HTTP_PORT:-8080}" --https-port "${HTTPS_PORT:-8443}" & pids+=($!)
cat <<MSG

ingressd demo is up. Try:
  curl -H 'Host: alpaca.example.com' localhost:${HTTP_PORT:-8080}/
  curl -H 'Host: bandicoot.example.com' localhost:${HTTP_PORT:-8080}/a/
  curl -H 'Host: bandicoot.example.com' localhost:${HTTP_PORT:-8080}/
  curl -H 'Host: anything.else' localhost:${HTTP_PORT:-8080}/
  curl -k --http2 -H 'Host: alpaca.example.com' https://localhost:${HTTPS_PORT:-8443}/
  curl localhost:10254/debug/routes
Edit a file in examples/ and ingressd reloads it. Ctrl-C stops everything.

MSG
wait "${pids[3]}"
