#!/usr/bin/env bash
# Compile-only GPU builds (CI has no GPU): the same kernel sources built
#  - as HIP for AMD targets with Debian's hipcc (ROCm 5.2 toolchain: gfx90a = CDNA2
#    wave64, gfx940 = CDNA3, gfx1030 = RDNA2 wave32; gfx942/gfx1100 need a newer ROCm,
#    which the container image uses), and
#  - as CUDA for sm_90 with nvcc, through kernels/gpu_runtime.h.
#   scripts/build-gpu.sh BUILD_ROOT [hip|cuda ...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
B=${1:-$root/build}
shift || true
flavours=("$@")
[[ ${#flavours[@]} -eq 0 ]] && flavours=(hip cuda)
# By default only the device code and the GPU backend are compiled (what CI
# checks; CMAKE_OPTIMIZE_DEPENDENCIES lets a static library build without its
# dependencies). GPU_BUILD_TARGETS="all" also builds test_gpu and the GPU benchmarks.
targets=(${GPU_BUILD_TARGETS:-rf_kernels rf_backend_gpu})
[[ ${targets[0]} == all ]] && targets=()
common=(-DCMAKE_BUILD_TYPE=Release -DROCMFORGE_BUILD_SERVER=OFF -DCMAKE_OPTIMIZE_DEPENDENCIES=ON)
# One flavour after the other, each starting its longest files first (the
# kernels' source order, kernels/CMakeLists.txt) and building the rest on the
# other core meanwhile. Side by side (tried) was no faster on two cores (10:57
# and 12:36 against 11:03 min cold): either way the stage ended on
# matmul_small_batch.hip alone (HIP ~390 s, CUDA ~215 s of one core), now
# split by weight type into three files.
for f in "${flavours[@]}"; do
  case $f in
    hip)
      "$root/scripts/build.sh" "$B/gpu-hip" "${common[@]}" -DROCMFORGE_GPU=hip \
        -DCMAKE_CXX_COMPILER=hipcc -DGPU_TARGETS="${HIP_TARGETS:-gfx90a;gfx940;gfx1030}" -- "${targets[@]}"
      ;;
    cuda)
      export PATH=/usr/local/cuda/bin:$PATH
      "$root/scripts/build.sh" "$B/gpu-cuda" "${common[@]}" -DROCMFORGE_GPU=cuda \
        -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCHS:-90}" \
        -- "${targets[@]}"
      ;;
    *) echo "unknown GPU flavour $f" >&2; exit 2 ;;
  esac
done
