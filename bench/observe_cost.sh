#!/usr/bin/env bash
# What observability costs: throughput of ingressd with per-route metrics and
# the access log on (JSON lines to a file on /tmp) against both off
# (--request-metrics=false --access-log off), and metrics alone for reference.
# Issue #8's bar: metrics + access log cost under 5% of throughput.
#
# Setup: one upstream (nginx `return 200` with a 100-byte body; `ingressd echo`
# when nginx is missing), three ingressd processes with --workers 1 on
# loopback, identical but for those flags. Load: wrk -t1 -c64 on a keep-alive
# route. Runs rotate between the three (the order changes every round) so
# that drift in the machine hits all; the log file is truncated before each run.
#   bench/observe_cost.sh [ROUNDS] [DURATION]      (default 5 rounds, 5s)
# Prints requests/s per run, the medians and the median ratios; also
# ingressd's CPU time per request (process_cpu_seconds_total, all threads,
# the log writer included), which shifts less when the machine is shared.
set -euo pipefail
cd "$(dirname "$0")/.."  # the repository root from here on
ROUNDS=${1:-5}
DUR=${2:-5s}
BIN=${INGRESSD_BIN:-build/ingressd}
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 1; }
[ -x "$BIN" ] || { echo "no ingressd binary at $BIN (set INGRESSD_BIN)" >&2; exit 1; }

work=$(mktemp -d /tmp/observe-cost.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_http() {  # wait_http PORT [HOST]
  for _ in $(seq 100); do
    curl -s -o /dev/null -H "Host: ${2:-localhost}" "http://127.0.0.1:$1/" && return 0
    sleep 0.1
  done
  echo "port $1 did not answer" >&2; return 1
}

UP=$(free_port)
if command -v nginx >/dev/null; then
  upstream="nginx return 200"
  cat > "$work/upstream.conf" <<CONF
worker_processes 1; daemon off; pid $work/up.pid; error_log $work/up.err;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 10000000;
  server { listen 127.0.0.1:$UP;
    location / { return 200 "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"; } } }
CONF
  nginx -c "$work/upstream.conf" & pids+=($!)
else
  upstream="ingressd echo"
  "$BIN" echo --name up --port "$UP" >"$work/echo.log" 2>&1 & pids+=($!)
fi
wait_http "$UP"

mkdir -p "$work/m"
sed -e "s/@HOST@/bench.example.com/" -e "s/@UP@/$UP/" bench/configs/one-route.yaml > "$work/m/bench.yaml"

LOG="$work/access.log"
declare -A PX AD
start() {  # start NAME ACCESS_LOG REQUEST_METRICS
  PX[$1]=$(free_port); AD[$1]=$(free_port)
  "$BIN" serve --manifests "$work/m" --bind 127.0.0.1 --http-port "${PX[$1]}" --admin-port "${AD[$1]}" \
    --https-port 0 --workers 1 --access-log "$2" --request-metrics "$3" >"$work/$1.out" 2>&1 & pids+=($!)
  wait_http "${PX[$1]}" bench.example.com
}
start on "$LOG" true
start met off true
start off off false

cpu() { curl -s "http://127.0.0.1:${AD[$1]}/metrics" | awk '/^process_cpu_seconds_total/ {print $2}'; }
run() {  # run NAME → "requests/s  CPU-µs-per-request" (ingressd's own CPU, all its threads)
  : > "$LOG"
  local out c0 c1 n
  c0=$(cpu "$1")
  out=$(wrk -t1 -c64 -d"$DUR" -H 'Host: bench.example.com' "http://127.0.0.1:${PX[$1]}/")
  c1=$(cpu "$1")
  if grep -q "Non-2xx" <<<"$out"; then echo "non-2xx answers in run $1:" >&2; echo "$out" >&2; exit 1; fi
  n=$(awk '/requests in/ {print $1}' <<<"$out")
  awk -v rps="$(awk '/^Requests\/sec/ {print $2}' <<<"$out")" -v c0="$c0" -v c1="$c1" -v n="$n" \
    'BEGIN {printf "%s %.3f\n", rps, (c1 - c0) * 1e6 / n}'
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

echo "upstream: $upstream; ingressd $("$BIN" version | awk '{print $2}'), 1 worker; wrk -t1 -c64 -d$DUR; $ROUNDS rounds"
echo "on = metrics + access log, met = metrics only, off = neither"
echo "round   on req/s  met req/s  off req/s  on/off  met/off   CPU µs/req on  met  off"
declare -A RPS CPU
ratios=(); mratios=(); on_all=(); off_all=(); met_all=(); con_all=(); coff_all=(); lines=0
orders=("on met off" "off on met" "met off on")
for r in $(seq "$ROUNDS"); do
  for k in ${orders[$(( (r - 1) % 3 ))]}; do
    read -r RPS[$k] CPU[$k] <<<"$(run "$k")"
    [ "$k" = on ] && lines=$(wc -l < "$LOG")
  done
  ratio=$(awk -v a="${RPS[on]}" -v b="${RPS[off]}" 'BEGIN {printf "%.4f", a/b}')
  mratio=$(awk -v a="${RPS[met]}" -v b="${RPS[off]}" 'BEGIN {printf "%.4f", a/b}')
  printf "%5d  %9.0f  %9.0f  %9.0f  %6s  %7s   %13s  %4s  %4s\n" "$r" "${RPS[on]}" "${RPS[met]}" "${RPS[off]}" \
    "$ratio" "$mratio" "${CPU[on]}" "${CPU[met]}" "${CPU[off]}"
  on_all+=("${RPS[on]}"); off_all+=("${RPS[off]}"); met_all+=("${RPS[met]}"); ratios+=("$ratio"); mratios+=("$mratio")
  con_all+=("${CPU[on]}"); coff_all+=("${CPU[off]}")
done
dropped=$(curl -s "http://127.0.0.1:${AD[on]}/metrics" | awk '/^ingressd_access_log_dropped_total/ {print $2}')
ratio_med=$(printf "%s\n" "${ratios[@]}" | median)
mratio_med=$(printf "%s\n" "${mratios[@]}" | median)
ratio_min=$(printf "%s\n" "${ratios[@]}" | sort -g | head -1)
ratio_max=$(printf "%s\n" "${ratios[@]}" | sort -g | tail -1)
con_med=$(printf "%s\n" "${con_all[@]}" | median)
coff_med=$(printf "%s\n" "${coff_all[@]}" | median)
echo "the last log-on run wrote $lines lines; access-log lines dropped in total: ${dropped:-?}"
printf "median req/s: on %.0f, metrics only %.0f, off %.0f\n" "$(printf "%s\n" "${on_all[@]}" | median)" \
  "$(printf "%s\n" "${met_all[@]}" | median)" "$(printf "%s\n" "${off_all[@]}" | median)"
printf "median ingressd CPU per request: on %.2f µs, off %.2f µs (%+.1f%%)\n" "$con_med" "$coff_med" \
  "$(awk -v a="$con_med" -v b="$coff_med" 'BEGIN {print (a/b-1)*100}')"
awk -v r="$ratio_med" -v lo="$ratio_min" -v hi="$ratio_max" -v m="$mratio_med" \
  'BEGIN {printf "median ratio on/off: %.3f (min %.3f, max %.3f): %+.1f%% throughput with metrics + access log; metrics alone %+.1f%%\n", r, lo, hi, (r-1)*100, (m-1)*100}'
