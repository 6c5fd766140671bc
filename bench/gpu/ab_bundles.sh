#!/usr/bin/env bash
# A/B of builds (device machine): several bench_gpu_decode executables, built
# with different flags and packed side by side in one bundle (xz packs their
# shared device code once), run in turn on MODEL for ROUNDS rounds with
# RF_DECODE_QUICK=1 (pp512, tg128 and any A/B lines the environment asks for).
# For changes that only a build flag switches (e.g. -DRF_PDL_EARLY_RELEASE):
# one process per build, alternating, so each sees the same machine state.
#   usage: bench/gpu/ab_bundles.sh MODEL ROUNDS BUNDLE_DIR EXE...   (logs: $OUT/ab_EXE_ROUND.log)
#   e.g.   bash bench/gpu/ab_bundles.sh Q4_K_M 2 .device-bin-ab decode_final decode_early
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
model=$1 rounds=$2 bundle=$3
shift 3
out=${OUT:-/tmp/rf-ab-out}
mkdir -p "$out"
source "$root/bench/device_bundle.sh"
bin=/tmp/ab-bin
bundle_unpack "$root/$bundle" "$bin" || exit 1
export ROCMFORGE_MODELS_DIR=$root/models RF_DECODE_QUICK=1 LD_LIBRARY_PATH=$bin/lib
for ((r = 1; r <= rounds; ++r)); do
  for exe in "$@"; do
    log=$out/ab_${exe}_$r.log
    timeout 300 "$bin/$exe" "$model" /tmp >"$log" 2>&1
    echo "== $exe round $r (exit $?)"
    grep -E '^tg128 with graphs|^\| llama3' "$log"
  done
done
