#!/usr/bin/env bash
# Scans ingressd's TLS listener with testssl.sh (Debian package testssl.sh, binary `testssl`), on loopback.
#
# Starts an echo upstream and ingressd on 127.0.0.1 with a test certificate (a throw-away CA → leaf for
# scan.example.com, made with the openssl CLI), runs testssl against 127.0.0.1:PORT with SNI scan.example.com,
# keeps the report in bench/testssl-summary.txt, and stops everything it started by pid.
#
#   bench/testssl.sh                  # --fast scan (a few minutes on 2 cores)
#   TESTSSL_FLAGS="-p -S -P -f -h -U" bench/testssl.sh      # chosen sections instead of the default run
#   KEY=rsa bench/testssl.sh          # an RSA-2048 leaf instead of ECDSA P-256 (ECDHE-RSA suites)
#   OUT=- bench/testssl.sh            # report on stdout only
#
# Environment: INGRESSD_BIN (default build/ingressd), OUT (default bench/testssl-summary.txt), KEY (ec|rsa),
# TESTSSL (default: testssl, else testssl.sh), TESTSSL_FLAGS (default: --fast), HSTS (the --hsts value,
# default max-age=31536000), TIMEOUT_S (the scan's time limit, default 900).
# Not part of ctest: it is slow.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
bin=${INGRESSD_BIN:-$repo/build/ingressd}
out=${OUT:-$here/testssl-summary.txt}
key_type=${KEY:-ec}
flags=${TESTSSL_FLAGS:---fast}
hsts=${HSTS:-max-age=31536000}
timeout_s=${TIMEOUT_S:-900}
host=scan.example.com

testssl_bin=${TESTSSL:-}
if [ -z "$testssl_bin" ]; then
  testssl_bin=$(command -v testssl || command -v testssl.sh || true)
fi
[ -n "$testssl_bin" ] || { echo "testssl not found (apt-get install testssl.sh)" >&2; exit 2; }
[ -x "$bin" ] || { echo "ingressd not found at $bin (build it, or set INGRESSD_BIN)" >&2; exit 2; }

work=$(mktemp -d /tmp/ingressd-testssl.XXXXXX)
pids=()
cleanup() {
  local p i
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for i in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

wait_port() {  # port pid
  local i
  for i in $(seq 1 100); do
    kill -0 "$2" 2>/dev/null || { echo "process $2 exited before port $1 opened" >&2; return 1; }
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "port $1 did not open within 10 s" >&2
  return 1
}

# --- certificates ------------------------------------------------------------
newkey=(-newkey ec -pkeyopt ec_paramgen_curve:P-256)
[ "$key_type" = rsa ] && newkey=(-newkey rsa:2048)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/ca.key" -out "$work/ca.crt" \
  -days 30 -subj "/CN=ingressd testssl CA" -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -new "${newkey[@]}" -nodes -keyout "$work/leaf.key" -out "$work/leaf.csr" -subj "/CN=$host" 2>/dev/null
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature%s\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:%s\n' \
  "$([ "$key_type" = rsa ] && echo ,keyEncipherment)" "$host" >"$work/leaf.ext"
openssl x509 -req -in "$work/leaf.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" -set_serial "0x$(openssl rand -hex 16)" -days 30 \
  -sha256 -extfile "$work/leaf.ext" -out "$work/leaf.crt" 2>/dev/null
cat "$work/leaf.crt" "$work/ca.crt" >"$work/chain.crt"

# --- upstream and ingressd -----------------------------------------------------
up_port=$(free_port)
"$bin" echo --name scan --port "$up_port" >"$work/echo.log" 2>&1 &
pids+=($!)
wait_port "$up_port" "${pids[-1]}"

mkdir -p "$work/manifests"
{
  cat <<EOF
apiVersion: v1
kind: Service
metadata: {name: scan, namespace: default}
spec: {ports: [{port: 8080, targetPort: 8080}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: scan-1, namespace: default, labels: {kubernetes.io/service-name: scan}}
addressType: IPv4
ports: [{port: $up_port}]
endpoints: [{addresses: ["127.0.0.1"], conditions: {ready: true}}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: scan, namespace: default}
spec:
  tls: [{hosts: [$host], secretName: scan-tls}]
  rules:
  - host: $host
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: scan, port: {number: 8080}}}}]}
---
apiVersion: v1
kind: Secret
metadata: {name: scan-tls, namespace: default}
type: kubernetes.io/tls
stringData:
  tls.crt: |
EOF
  sed 's/^/    /' "$work/chain.crt"
  echo "  tls.key: |"
  sed 's/^/    /' "$work/leaf.key"
} >"$work/manifests/scan.yaml"

http_port=$(free_port)
https_port=$(free_port)
admin_port=$(free_port)
"$bin" serve --manifests "$work/manifests" --bind 127.0.0.1 --http-port "$http_port" --https-port "$https_port" \
  --admin-port "$admin_port" --workers 1 --access-log off --hsts "$hsts" >"$work/ingressd.log" 2>&1 &
pids+=($!)
wait_port "$https_port" "${pids[-1]}"
if grep -q ' error ' "$work/ingressd.log"; then
  cat "$work/ingressd.log" >&2
  exit 1
fi

# --- scan --------------------------------------------------------------------------
commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$repo" status --porcelain -- src 2>/dev/null | grep -q . && echo " (src/ has uncommitted changes)" || true)
echo "scanning https://$host:$https_port (127.0.0.1) with $testssl_bin $flags ..." >&2
set +e
# shellcheck disable=SC2086 # flags are words
timeout --kill-after=10 "$timeout_s" "$testssl_bin" --quiet --color 0 --warnings off --sneaky $flags \
  --ip 127.0.0.1 "https://$host:$https_port/" >"$work/report.txt" 2>&1 </dev/null
rc=$?
set -e

{
  echo "# testssl.sh against ingressd"
  echo "#"
  echo "# date:      $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "# ingressd:  commit $commit$dirty, --workers 1, --hsts \"$hsts\""
  echo "# testssl:   $testssl_bin $(dpkg-query -W -f='${Version}' testssl.sh 2>/dev/null || true)"
  echo "# openssl:   $(openssl version)"
  echo "# command:   bench/testssl.sh (KEY=$key_type; $testssl_bin --quiet --color 0 --warnings off --sneaky $flags --ip 127.0.0.1 https://$host:PORT/)"
  echo "# cert:      $key_type leaf for $host signed by a throw-away CA (not trusted: chain-of-trust findings are expected)"
  echo "# exit code: $rc"
  echo
  # Drop the lines that change each run and say nothing about ingressd (ports, timings, temp paths).
  sed -e "s/:$https_port/:PORT/g" -e "s/ $https_port / PORT /g" -e '/^ *Start 20/d' -e '/^ *Done 20/d' \
    -e '/seconds from localtime/d' -e '/No engine or GOST support/d' "$work/report.txt"
} >"$work/summary.txt"

if [ "$out" = - ]; then
  cat "$work/summary.txt"
else
  cp "$work/summary.txt" "$out"
  echo "report: $out (testssl exit code $rc)" >&2
fi
