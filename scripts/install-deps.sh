#!/usr/bin/env bash
# Installs everything ROCmForge needs to build, test and run on Debian 12 /
# Ubuntu, from the distribution's packages. Run as root (or with sudo).
#   scripts/install-deps.sh            build + run + test dependencies
#   scripts/install-deps.sh --minimal  only what building and running the CPU service needs
set -euo pipefail
minimal=0
[[ "${1:-}" == "--minimal" ]] && minimal=1

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

pkgs=(
  build-essential cmake ninja-build pkg-config git ca-certificates ccache
  libgrpc++-dev protobuf-compiler-grpc protobuf-compiler libprotobuf-dev
  libabsl-dev prometheus-cpp-dev libpcre2-dev
)
if [[ $minimal -eq 0 ]]; then
  pkgs+=(
    libgtest-dev nlohmann-json3-dev          # tests
    clang-14 libclang-rt-14-dev              # libFuzzer targets
    hipcc libamdhip64-dev librocrand-dev     # HIP compile-only build for AMD targets
    prometheus                               # promtool for the alert rules
    curl procps python3 openssl               # deploy checks; TLS test certificates
  )
  # kubectl (for `kubectl kustomize`) and Node.js (schema validation) may already
  # come from other repositories; Debian's packages would conflict with those.
  command -v kubectl >/dev/null || pkgs+=(kubernetes-client)
  command -v node >/dev/null || pkgs+=(nodejs)
  command -v npm >/dev/null || pkgs+=(npm)
fi

$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${pkgs[@]}"
