#!/usr/bin/env bash
# llama.cpp's CUDA build as the peer on the device machine: the same GGUF file,
# the same call, beside bench_gpu_decode (run_on_device.sh runs it after each
# decode stage when the bundle is carried).
#
# The device machine reaches no registry, so llama.cpp is built here and
# travels like our own binaries. Its source comes from the npm registry: the
# package node-llama-cpp carries the llama.cpp release it binds as a git
# bundle (llama/gitRelease.bundle).
#
#   bench/gpu/llamacpp_peer.sh pack    # here: fetch, build llama-bench for sm_90
#                                      # with nvcc, pack it to .device-llamacpp/
#   (device tool) run ... carry=[".device-bin-final", ".device-llamacpp"]
#   bench/gpu/llamacpp_peer.sh run MODEL.gguf   # on the device (run_on_device.sh does it)
#
# Nothing here is a dependency of ROCmForge: llama.cpp is a measuring stick.
# The build takes ~15 min on a 2-core machine (the trimmed kernel set below),
# so it is not part of CI; the bundle's source version is printed with its numbers.
set -euo pipefail
mode=${1:-}
root=$(cd "$(dirname "$0")/../.." && pwd)
version=${NODE_LLAMA_CPP_VERSION:-3.22.1}
bundle=$root/.device-llamacpp

if [[ $mode == pack ]]; then
  work=${RF_PEER_WORK:-$root/build-llamacpp}
  mkdir -p "$work"
  cd "$work"
  if [[ ! -d src ]]; then
    npm pack --silent "node-llama-cpp@$version" >/dev/null
    tar -xzf "node-llama-cpp-$version.tgz" package/llama/gitRelease.bundle
    git clone -q package/llama/gitRelease.bundle src
    # The whole CUDA build packs to ~41 MB (nvcc-compressed kernels that xz cannot
    # shrink); the device call carries the working tree (~43 MB) and the bundles
    # within 64 MiB. So this build leaves out the int8 GEMM (MMQ) kernels of weight
    # types the benchmark files do not hold (their dispatch aborts instead) and,
    # below, the flash-attention kernels (llama-bench then runs -fa 0, its
    # historical default). The kernels that run are llama.cpp's own, unchanged.
    cuda=src/ggml/src/ggml-cuda
    for f in "$cuda"/template-instances/mmq-instance-*.cu; do
      t=$(basename "$f" .cu)
      t=${t#mmq-instance-}
      t=${t^^}
      [[ " ${RF_PEER_MMQ_TYPES:-Q4_0 Q8_0 Q4_K Q5_K Q6_K} " == *" $t "* ]] && continue
      rm "$f"
      sed -i "s|mul_mat_q_case<GGML_TYPE_$t>(ctx, args, stream);|GGML_ABORT(\"$t MMQ: left out of this build\");|" \
        "$cuda/mmq.cu"
    done
  fi
  # sm_90 machine code only (the H100), no NCCL / OpenSSL / tests / server: llama-bench alone.
  [[ -f build/CMakeCache.txt ]] || cmake -S src -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES=90-real -DGGML_CUDA_FA="${RF_PEER_FA:-OFF}" \
    -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc -DGGML_NATIVE=OFF -DGGML_CUDA_NCCL=OFF -DLLAMA_OPENSSL=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DBUILD_SHARED_LIBS=OFF >/dev/null
  ninja -C build -j"$(nproc)" llama-bench
  rm -rf "$bundle" && mkdir -p "$bundle"
  cp build/bin/llama-bench "$bundle/"
  strip --strip-unneeded "$bundle/llama-bench"
  git -C src log -1 --format="llama.cpp from node-llama-cpp@$version %H" >"$bundle/VERSION"
  # The CUDA runtime and cuBLAS (13.x, as nvcc here) are the device's own
  # (/usr/local/cuda/lib64 there), and so is the driver's libcuda.
  source "$root/bench/device_bundle.sh"
  bundle_pack "$bundle" 'libcuda|libcudart|libcublas|libcublasLt'
  exit 0
fi

if [[ $mode == run ]]; then  # run MODEL.gguf: pp512 / tg128, three repetitions
  model=$2
  dir=/tmp/llamacpp-peer
  if [[ ! -x $dir/llama-bench ]]; then
    source "$root/bench/device_bundle.sh"
    bundle_unpack "$bundle" "$dir"
  fi
  export LD_LIBRARY_PATH=$dir/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  cat "$dir/VERSION"
  # -fa 0: the flash-attention kernels are not in the default build (see pack).
  exec "$dir/llama-bench" -m "$model" -p 512 -n 128 -ngl 99 -fa "${RF_PEER_FA_RUN:-0}" -r 3 -o md
fi

echo "usage: $0 pack | run MODEL.gguf" >&2
exit 2
