#!/usr/bin/env bash
# Installs what ingressd needs to build, test and benchmark, from Debian packages only.
set -euo pipefail
pkgs=(build-essential cmake ninja-build pkg-config
      libyaml-cpp-dev libyaml-dev libre2-dev libaprutil1-dev nlohmann-json3-dev libfmt-dev libcli11-dev libssl-dev libcurl4-openssl-dev
      libgtest-dev libgmock-dev libbenchmark-dev
      python3 curl apache2-utils
      python3-h2 nghttp2-client libnghttp2-dev testssl.sh
      clang-14 libclang-rt-14-dev libfuzzer-14-dev llvm-14)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
