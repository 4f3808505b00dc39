#!/usr/bin/env bash
# The steady figures: user-space instructions (callgrind) and system calls
# (strace) per proxied keep-alive request, measured as the difference between
# a run of N and one of 2N requests so that start-up cancels out.
# Same route for every proxy: Host routing to one upstream (nginx `return 200`
# with a 100-byte body), 16 keep-alive clients (h2load --h1), 1 worker.
#   bench/cost.sh [N]          (default N=20000)
# INGRESSD_ARGS replaces the logging flags (default "--access-log off"), e.g.
#   INGRESSD_ARGS="--access-log off --request-metrics=false" bench/cost.sh
#   INGRESSD_ARGS="--access-log /tmp/access.log" bench/cost.sh
# SKIP_STRACE=1 measures instructions only.
# ROUTE=rewrite measures a route with a path rewrite (rewrite-target, regex mode)
# and three request header edits instead (bench/configs/rewrite-route.yaml);
# ROUTE=httproute the same route as a Gateway API HTTPRoute with a path and a
# header match (bench/configs/httproute.yaml; requests carry x-bench: 1).
# HEADER="name: value" adds a request header (ROUTE=plain HEADER="x-bench: 1"
# is the Ingress baseline for the HTTPRoute).
set -euo pipefail
cd "$(dirname "$0")/.."  # the repository root from here on
N=${1:-20000}
read -r -a ARGS <<<"${INGRESSD_ARGS:---access-log off}"
BIN=${INGRESSD_BIN:-build/ingressd}
command -v valgrind >/dev/null && command -v strace >/dev/null && command -v h2load >/dev/null && command -v nginx >/dev/null || {
  apt-get install -y -qq valgrind strace nghttp2-client nginx-light >/dev/null
}
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -n "${KEEP_WORK:-}" ] && cp "$work"/callgrind.* "$KEEP_WORK"/ 2>/dev/null  # KEEP_WORK=DIR keeps the profiles
  rm -rf "$work"
}
trap cleanup EXIT
UP=19100; PX=19200; AD=19201
cat > "$work/upstream.conf" <<CONF
worker_processes 1; daemon off; pid $work/up.pid; error_log $work/up.err;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 10000000;
  server { listen 127.0.0.1:$UP;
    location / { return 200 "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"; } } }
CONF
nginx -c "$work/upstream.conf" & pids+=($!)
mkdir -p "$work/m"
case "${ROUTE:-plain}" in
  plain) CONFIG=bench/configs/one-route.yaml; REQ_PATH=/ ;;
  rewrite) CONFIG=bench/configs/rewrite-route.yaml; REQ_PATH=/app/v1/users ;;
  httproute) CONFIG=bench/configs/httproute.yaml; REQ_PATH=/; HEADER=${HEADER:-x-bench: 1} ;;
  *) echo "ROUTE must be plain, rewrite or httproute" >&2; exit 2 ;;
esac
sed -e "s/@HOST@/alpaca.example.com/" -e "s/@UP@/$UP/" "$CONFIG" > "$work/m/bench.yaml"

wait_port() { for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0; sleep 0.1; done; return 1; }
extra=()
[ -n "${HEADER:-}" ] && extra=(-H "$HEADER")
load() { h2load --h1 -n "$1" -c 16 -H ':authority: alpaca.example.com' "${extra[@]}" "http://127.0.0.1:$PX$REQ_PATH" | grep -q "$1 2xx" || { echo "load of $1 failed" >&2; exit 1; }; }
# run TOOL N → prints the tool's total for a run of N requests
run() {
  local tool=$1 n=$2 out="$work/$1.$2" pid child
  case $tool in
    callgrind) valgrind --tool=callgrind --callgrind-out-file="$out" "$BIN" serve --manifests "$work/m" --http-port $PX --admin-port $AD --workers 1 "${ARGS[@]}" >"$out.log" 2>&1 & pid=$! ;;
    strace) strace -f -c -o "$out" "$BIN" serve --manifests "$work/m" --http-port $PX --admin-port $AD --workers 1 "${ARGS[@]}" >"$out.log" 2>&1 & pid=$! ;;
  esac
  wait_port $PX
  load "$n"
  child=$(pgrep -P "$pid" -f "ingressd" || true)
  kill -TERM "${child:-$pid}" 2>/dev/null || true
  wait "$pid" || true
  case $tool in
    callgrind) grep -E '^totals:' "$out" | awk '{print $2}' ;;
    strace) awk '$NF=="total"{print $(NF-2)}' "$out" ;;
  esac
}
wait_port $UP || { echo "upstream did not start" >&2; exit 1; }
i1=$(run callgrind "$N"); i2=$(run callgrind $((2 * N)))
s1=0; s2=0
if [ "${SKIP_STRACE:-0}" != 1 ]; then s1=$(run strace "$N"); s2=$(run strace $((2 * N))); fi
awk -v i1="$i1" -v i2="$i2" -v s1="$s1" -v s2="$s2" -v n="$N" 'BEGIN {
  printf "ingressd: %.0f user-space instructions and %.2f system calls per proxied keep-alive request (N=%d)\n", (i2-i1)/n, (s2-s1)/n, n }'
echo "flags: ${ARGS[*]}; route: ${ROUTE:-plain}${HEADER:+; header: $HEADER}"
