#!/usr/bin/env bash
# Regenerates the annotation table at the end of docs/migrating-from-ingress-nginx.md from the binary
# (`ingressd migrate --table`); tests/unit/annotations_test.cc checks that they agree.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${INGRESSD_BIN:-build/ingressd}
doc=docs/migrating-from-ingress-nginx.md
head=$(sed -n '1,/^| annotation | ingressd | notes |$/p' "$doc" | sed '$d')
{ printf '%s\n' "$head"; "$BIN" migrate --table; } > "$doc.new"
mv "$doc.new" "$doc"
