#!/usr/bin/env bash
# Configures and builds one flavour of ROCmForge with CMake + Ninja.
#   scripts/build.sh BUILD_DIR [extra cmake args...] [-- ninja targets...]
# Used by the README, CI (scripts/test.sh) and the CPU container image alike.
set -euo pipefail
dir=${1:?usage: scripts/build.sh BUILD_DIR [cmake args] [-- targets]}
shift
cmake_args=() targets=()
while [[ $# -gt 0 ]]; do
  if [[ $1 == "--" ]]; then shift; targets=("$@"); break; fi
  cmake_args+=("$1"); shift
done
root=$(cd "$(dirname "$0")/.." && pwd)
# ccache makes repeated builds (several sanitizer flavours, local iteration) cheap.
if command -v ccache >/dev/null && [[ -z ${NO_CCACHE:-} ]]; then
  # nvcc too (the CUDA flavour of the GPU stage): ccache 4.x caches its objects.
  cmake_args=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache
              -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache "${cmake_args[@]}")
  # Paths relative to the checkout in the cache keys, so another clone of the
  # same tree (CI's) hits what this one built.
  export CCACHE_BASEDIR=$root CCACHE_NOHASHDIR=1
fi
cmake -S "$root" -B "$dir" -G Ninja "${cmake_args[@]}" >"$dir.configure.log" 2>&1 ||
  { cat "$dir.configure.log"; exit 1; }
jobs=${JOBS:-$(nproc)}
ninja -C "$dir" -j "$jobs" "${targets[@]}"
