#!/usr/bin/env bash
# Builds, tests and times the GPU backend in ONE device call.
#
# The lent NVIDIA machine has nvcc but none of the Debian libraries the engine
# links (abseil, PCRE2, GTest), so the binaries are built here and travel with
# the call:
#
#   bench/gpu/run_on_device.sh pack     # here: build the CUDA targets, copy the
#                                       # binaries + their shared libraries to .device-bin/
#   (device tool) run command="bash bench/gpu/run_on_device.sh run" carry=[".device-bin"]
#
# `run` (on the device machine) writes under $OUT: nvidia-smi.txt, test_gpu.log
# (+ .xml), memcheck.log, bench_kernels.md, bench_decode.md, summary.txt.
# `RF_STAGES` (default "tests kernels decode memcheck q8"; set but empty: none, e.g. with RF_TEST_FILTER) picks the stages
# (also: gemm = the matrix-core GEMM table + cuBLAS fp16 peak, gemm_peak.log / bench_gemm.md);
# (also: mmq = the int8 MMQ GEMM's tests, memcheck of them and `bench_gpu_kernels mmq`);
# (also: sampler = `bench_gpu_kernels sampler` + `bench_gpu_decode Q4_K_M /tmp sample`);
# the stage `profile` runs two Q4_K_M decode steps under Nsight Compute (kernel
# durations only, clocks and caches left alone) and sums them per kernel
# (ncu_decode.csv, ncu_by_kernel.txt); `profile_batch` times batched decode steps
# (`bench_gpu_decode Q4_K_M /tmp batch 32 512`, RF_BATCH_N / RF_BATCH_CTX) and profiles two
# of them without and with a 64-token prefill chunk (ncu_batch_profile*.{csv,txt});
# `prefill_memcheck` runs compute-sanitizer over the dense-prefill option tests only;
# `mma_rate` = mma.sync's best int8 / f16 product rate (bench_gpu_kernels mma_rate);
# `mmq_source` = ncu --set full of one Q4_K gate/up MMQ launch per n in RF_MMQ_SOURCE_N
# (default "32 128"), exported per SASS instruction with its stall samples (mmq_src_N.csv);
# `matvec_source` = the same for the first three grouped batch-1 matvecs of a Q4_K_M decode step;
# `profile_smem` = one Q4_K_M decode step under ncu per kernel with its L1 / shared-memory
# split and time, for each RF_SMEM_CARVEOUTS value (default "-1"; RF_FUSIONS picks fusions).
# `profile_prefetch` = one Q4_K_M decode step under ncu per kernel: us, L2 hit rate and DRAM MB read, per
# RF_PREFETCHES value (default "0/0/0 16/8/8"; bench_gpu_decode's RF_PREFETCH "A/N/S[/C]"). Kernels serialized:
# it shows the prefetch kernels' own traffic, not whether a later matvec finds the lines (2026-11-27: the O
# projection read its 9.4 MB from DRAM after a prefetch here, though the prefetch is +2.9% in the graph).
# RF_DECODE_TYPES="Q3_K_M Q2_K" adds `bench_gpu_decode` runs of those file types after the stages.
# With .device-llamacpp carried (bench/gpu/llamacpp_peer.sh pack), every decode stage also runs
# llama.cpp's llama-bench (CUDA, sm_90) on the file it just timed: pp512 / tg128, peer_TYPE.log.
set -u
mode=${1:-run}
root=$(cd "$(dirname "$0")/../.." && pwd)
# RF_BIN / RF_BUILD let several people pack separate bundles (both under the
# repo root; RF_BIN must be carried by name).
bin=$root/${RF_BIN:-.device-bin}

if [[ $mode == pack ]]; then
  set -e
  build=$root/${RF_BUILD:-build-gpu-cuda}
  # sm_90 machine code only ("90-real"): the same code runs on the H100, and the
  # bundle carries no PTX copy of every kernel (RF_CUDA_ARCH=90 puts it back).
  cmake -S "$root" -B "$build" -G Ninja -DROCMFORGE_GPU=cuda -DCMAKE_CUDA_ARCHITECTURES="${RF_CUDA_ARCH:-90-real}" \
    -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc -DROCMFORGE_BUILD_SERVER=OFF >/dev/null
  # RF_PACK="bench/gpu/bench_gpu_decode": a smaller bundle (a call that also carries
  # llama.cpp's, bench/gpu/llamacpp_peer.sh, must fit the same 64 MiB with the tree).
  read -ra paths <<<"${RF_PACK:-tests/gpu/test_gpu bench/gpu/bench_gpu_kernels bench/gpu/bench_gpu_decode}"
  ninja -C "$build" -j2 "${paths[@]##*/}"
  rm -rf "$bin" && mkdir -p "$bin"
  for p in "${paths[@]}"; do
    cp "$build/$p" "$bin/"
    strip --strip-unneeded "$bin/${p##*/}"
  done
  # The working tree (models included) and the carried bundles share a 64 MiB limit.
  source "$root/bench/device_bundle.sh"
  bundle_pack "$bin"
  exit 0
fi

# ---- run (device machine)
out=${OUT:-/tmp/rf-gpu-out}
mkdir -p "$out"
if [[ -f $bin/bin.txz || -f $bin/bin.tgz ]]; then
  source "$root/bench/device_bundle.sh"
  bundle_unpack "$bin" /tmp/rf-bin && bin=/tmp/rf-bin
fi
export LD_LIBRARY_PATH=$bin/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export ROCMFORGE_MODELS_DIR=$root/models
cd "$root"
summary=$out/summary.txt
: >"$summary"
note() { echo "$*" | tee -a "$summary"; }
nvidia-smi >"$out/nvidia-smi.txt" 2>&1
note "device: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1)"
note "date: $(date -u +%FT%TZ)"

budget=${RF_DEVICE_BUDGET_S:-560}  # the whole call must end inside the device tool's limit
stage() {  # stage NAME SECONDS CMD...: runs with a time limit (capped by what is left), logs
  local name=$1 limit=$2
  shift 2
  local left=$((budget - SECONDS))
  ((left < limit)) && limit=$left
  if ((limit < 10)); then note "$name: skipped (no time left)"; return 1; fi
  local t0=$SECONDS
  timeout "$limit" "$@" >"$out/$name" 2>&1
  local rc=$?
  note "$name: exit $rc in $((SECONDS - t0)) s"
  return $rc
}

stages=" ${RF_STAGES-tests kernels decode memcheck q8} "  # set but empty: no stages (RF_TEST_FILTER alone)
want() { [[ $stages == *" $1 "* ]]; }

# ncu_by_kernel CSV STEPS TOP: an `ncu --csv` kernel-duration log summed per kernel
# and divided by the STEPS profiled, largest first (TOP rows, 0 = all).
ncu_by_kernel() {
  python3 - "$@" <<'PY'
import csv, sys, collections, re
steps = int(sys.argv[2]); top = int(sys.argv[3])
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
head = rows[0]; rows = rows[1:]
ki, mi, vi, ui = head.index('Kernel Name'), head.index('Metric Name'), head.index('Metric Value'), head.index('Metric Unit')
tot = collections.defaultdict(float); cnt = collections.Counter()
for r in rows:
    if r[mi] != 'gpu__time_duration.sum': continue
    v = float(r[vi].replace(',', '')); u = r[ui]
    us = v / 1000 if u in ('ns', 'nsecond') else v * 1000 if u in ('ms', 'msecond') else v
    name = r[ki].replace('(anonymous namespace)::', '').replace('<unnamed>::', '').replace('unnamed>::', '').replace('rocmforge::gpu::', '').replace('void ', '')
    depth = 0
    for i, ch in enumerate(name):
        depth += ch == '<'; depth -= ch == '>'
        if ch == '(' and depth == 0 and i > 0:
            name = name[:i]; break
    name = name[:110]
    tot[name] += us / steps; cnt[name] += 1
s = sum(tot.values())
print(f"per decode step (mean of {steps}): {s:.1f} us in {sum(cnt.values())//steps} kernels")
for k, v in sorted(tot.items(), key=lambda kv: -kv[1])[:top or None]:
    print(f"{v:9.1f} us {100*v/s:5.1f}%  x{cnt[k]//steps:4d}  {k}")
PY
}

if want profile; then
  stage decode_profile.log 150 "$bin/bench_gpu_decode" Q4_K_M /tmp profile  # also writes the model
  grep 'decode step' "$out/decode_profile.log" | sed 's/^/no ncu: /' | tee -a "$summary"
  stage ncu_decode.log 200 ncu --profile-from-start off --clock-control none --cache-control none \
    --metrics gpu__time_duration.sum --csv --log-file "$out/ncu_decode.csv" \
    "$bin/bench_gpu_decode" Q4_K_M /tmp profile
  ncu_by_kernel "$out/ncu_decode.csv" 2 0 | tee "$out/ncu_by_kernel.txt" | tee -a "$summary"
fi

if want profile_breakdown; then  # one Q8_0 and one Q4_K_M decode step per kernel and grid (matvec shapes), with DRAM read TB/s
  for m in Q8_0 Q4_K_M; do
    stage "ncu_break_$m.log" 150 ncu --profile-from-start off --clock-control none --cache-control none \
      --metrics gpu__time_duration.sum,dram__bytes_read.sum --csv --log-file "$out/ncu_break_$m.csv" \
      "$bin/bench_gpu_decode" "$m" /tmp profile  # also writes the model
    note "ncu, one $m decode step (bench/gpu/decode_breakdown.py):"
    python3 "$root/bench/gpu/decode_breakdown.py" "$out/ncu_break_$m.csv" 2 | tee "$out/break_$m.md" | tee -a "$summary"
    rm -f "/tmp/llama3-8b-$m.gguf"
  done
fi

if want profile_smem; then  # one Q4_K_M decode step per kernel: L1 / shared-memory split, us (per RF_SMEM_CARVEOUTS value, RF_FUSIONS)
  for c in ${RF_SMEM_CARVEOUTS:--1}; do
    RF_SMEM_CARVEOUT=$c stage "ncu_smem_$c.log" 120 ncu --profile-from-start off --clock-control none \
      --metrics launch__shared_mem_config_size,gpu__time_duration.sum --csv --log-file "$out/ncu_smem_$c.csv" \
      "$bin/bench_gpu_decode" Q4_K_M /tmp profile
    note "ncu, one Q4_K_M decode step, RF_SMEM_CARVEOUT=$c (shared-memory split bytes, launches, us):"
    python3 - "$out/ncu_smem_$c.csv" <<'PY' | tee -a "$summary"
import csv, sys, collections
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
head = rows[0]; rows = rows[1:]
ki, mi, vi, ii = (head.index(k) for k in ('Kernel Name', 'Metric Name', 'Metric Value', 'ID'))
launches = collections.OrderedDict()
for r in rows:
    launches.setdefault(r[ii], {'name': r[ki].replace('(anonymous namespace)::', '')[:70]})[r[mi]] = r[vi].replace(',', '')
steps = 2  # the profile mode profiles two decode steps
per = collections.OrderedDict()
for k in launches.values():
    a = per.setdefault((k['name'], k.get('launch__shared_mem_config_size')), [0, 0.0])
    a[0] += 1; a[1] += float(k['gpu__time_duration.sum']) / 1000
print(f"{sum(v[1] for v in per.values()) / steps:.1f} us a step (kernels serialized)")
for (name, cfg), (n, us) in per.items():
    print(f"{cfg:>7} x{n // steps:4d} {us / steps:8.1f} us  {name}")
PY
  done
fi

if want profile_prefetch; then  # one Q4_K_M decode step per kernel: us, L2 hit rate, DRAM MB, per RF_PREFETCHES value ("A/N/S[/C]", bench_gpu_decode)
  for pf in ${RF_PREFETCHES:-0/0/0 16/8/8}; do
    tag=${pf//\//_}
    RF_PREFETCH=$pf stage "ncu_pf_$tag.log" 150 ncu --profile-from-start off --clock-control none --cache-control none \
      --metrics gpu__time_duration.sum,lts__t_sector_hit_rate.pct,dram__bytes_read.sum --csv \
      --log-file "$out/ncu_pf_$tag.csv" "$bin/bench_gpu_decode" Q4_K_M /tmp profile
    note "ncu, one Q4_K_M decode step, RF_PREFETCH=$pf (launches, us, L2 hit %, DRAM MB read; kernels serialized):"
    python3 - "$out/ncu_pf_$tag.csv" <<'PY' | tee -a "$summary"
import csv, sys, collections
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
head = rows[0]; rows = rows[1:]
ki, mi, vi, ii, ui = (head.index(k) for k in ('Kernel Name', 'Metric Name', 'Metric Value', 'ID', 'Metric Unit'))
scale = {'ns': 1e-3, 'nsecond': 1e-3, 'us': 1, 'usecond': 1, 'ms': 1e3, 'msecond': 1e3,
         'byte': 1e-6, 'Kbyte': 1e-3, 'Mbyte': 1, 'Gbyte': 1e3, '%': 1}
launches = collections.OrderedDict()
for r in rows:
    launches.setdefault(r[ii], {'name': r[ki].replace('(anonymous namespace)::', '')[:70]})[r[mi]] = \
        float(r[vi].replace(',', '')) * scale.get(r[ui], 1)
steps = 2
per = collections.OrderedDict()
for k in launches.values():
    a = per.setdefault(k['name'], [0, 0.0, 0.0, 0.0])
    a[0] += 1; a[1] += k['gpu__time_duration.sum']; a[2] += k['lts__t_sector_hit_rate.pct']; a[3] += k['dram__bytes_read.sum']
print(f"{sum(v[1] for v in per.values()) / steps:.1f} us a step (kernels serialized)")
for name, (n, us, hit, mb) in per.items():
    print(f"x{n // steps:4d} {us / steps:8.1f} us  L2 hit {hit / n:5.1f}%  DRAM {mb / steps:8.1f} MB  {name}")
PY
  done
fi

if want profile_prefill; then  # where a pp512 step's time goes (one forward of 512 tokens under ncu)
  RF_PROFILE_PP=1 RF_DECODE_QUICK=1 stage ncu_prefill.log 200 ncu --profile-from-start off --clock-control none \
    --cache-control none --metrics gpu__time_duration.sum --csv --log-file "$out/ncu_prefill.csv" \
    "$bin/bench_gpu_decode" Q4_K_M /tmp
  note "ncu, one pp512 forward (Q4_K_M), top 20 kernels:"
  ncu_by_kernel "$out/ncu_prefill.csv" 1 20 | tee "$out/ncu_prefill.txt" | tee -a "$summary"
fi

if want profile_batch; then  # where a batched decode step's time goes (docs/gpu.md, "Batched decode step")
  bn=${RF_BATCH_N:-32} bctx=${RF_BATCH_CTX:-512}
  stage decode_batch.log 130 "$bin/bench_gpu_decode" Q4_K_M /tmp batch "$bn" "$bctx"  # also writes the model
  grep -E '^\||prefilled|batched decode' "$out/decode_batch.log" | tee -a "$summary"
  for v in profile profile-chunk; do  # two steps without / with the 64-token prefill chunk
    stage "ncu_batch_$v.log" 70 ncu --profile-from-start off --clock-control none --cache-control none \
      --metrics gpu__time_duration.sum --csv --log-file "$out/ncu_batch_$v.csv" \
      "$bin/bench_gpu_decode" Q4_K_M /tmp batch "$bn" "$bctx" "$v"
    note "ncu, batch $bn at context $bctx, $v (top 15 kernels):"
    ncu_by_kernel "$out/ncu_batch_$v.csv" 2 15 | tee "$out/ncu_batch_$v.txt" | tee -a "$summary"
  done
fi

if want mmq; then  # the int8 MMQ GEMM (kernels/matmul_mmq.hip): its tests, memcheck of them, MMQ vs v5 per shape
  stage test_mmq.log 120 "$bin/test_gpu" --gtest_filter='*Mmq*:*GemmGroup*:*GpuModel*'
  grep -E '^\[  (PASSED|FAILED|SKIPPED) |^\[  FAILED  \]|32-decode step|agreement' "$out/test_mmq.log" | tee -a "$summary"
  stage memcheck_mmq.log 150 compute-sanitizer --tool memcheck --error-exitcode 3 --print-limit 20 \
    "$bin/test_gpu" --gtest_filter='*GpuMmq.*'
  grep -E 'ERROR SUMMARY|Invalid|FAILED' "$out/memcheck_mmq.log" | head -20 | tee -a "$summary"
  stage bench_mmq.md 150 "$bin/bench_gpu_kernels" mmq
  cat "$out/bench_mmq.md" | tee -a "$summary"
fi
if want gemm_group; then  # grouped vs separate batched GEMMs; dense vs in-loop crossover per shape
  stage bench_gemm_group.md 120 "$bin/bench_gpu_kernels" gemm_group
  cat "$out/bench_gemm_group.md" | tee -a "$summary"
  stage bench_crossover.md 150 "$bin/bench_gpu_kernels" crossover
  cat "$out/bench_crossover.md" | tee -a "$summary"
fi
if want attn; then  # decode attention: SIMT vs matrix cores (gpu::DecodeAttnConfig; RF_DECODE_ATTN=simt|mma)
  stage bench_attention.md 100 "$bin/bench_gpu_kernels" attention
  cat "$out/bench_attention.md" | tee -a "$summary"
  for k in ${RF_ATTN_NCU_KERNELS:-1}; do  # ncu --set full of one kernel (-1 SIMT, 1 matrix cores) at 32 x 512
    stage "ncu_attn_k$k.log" 60 ncu --set full -k regex:'GroupedAttention|DecodeMma' --launch-skip 5 --launch-count 1 \
      "$bin/bench_gpu_kernels" attention1 "${RF_ATTN_NCU_SEQS:-32}" "${RF_ATTN_NCU_CTX:-512}" "$k"
    grep -E "Duration|DRAM Throughput|Issue Slots|Registers Per|Achieved Occupancy|No Eligible|Memory Throughput" \
      "$out/ncu_attn_k$k.log" | sed "s/^/[kernel $k] /" | tee -a "$summary"
  done
  for k in simt mma; do  # batched steps (32 x 512, N = 1..32, + prefill chunks)
    RF_DECODE_ATTN=$k stage "decode_batch_$k.log" 100 "$bin/bench_gpu_decode" Q4_K_M /tmp batch "${RF_BATCH_N:-32}" "${RF_BATCH_CTX:-512}"
    grep -E '^\| N=(1|8|16|24|32)( \||, GEMM narrow 0|, producer| \+ (16|32|64|96)-token prefill chunk( \(|, GEMM narrow 0))' \
      "$out/decode_batch_$k.log" | grep -v dense | sed "s/^/[$k] /" | tee -a "$summary"
  done
  for k in ${RF_ATTN_STEP_NCU:-mma}; do  # one 32-decode step's kernels under ncu (durations)
    RF_DECODE_ATTN=$k stage "ncu_batch_$k.log" 60 ncu --profile-from-start off --clock-control none --cache-control none \
      --metrics gpu__time_duration.sum --csv --log-file "$out/ncu_batch_$k.csv" \
      "$bin/bench_gpu_decode" Q4_K_M /tmp batch "${RF_BATCH_N:-32}" "${RF_BATCH_CTX:-512}" profile
    note "ncu, batch step with $k attention (top 12 kernels):"
    ncu_by_kernel "$out/ncu_batch_$k.csv" 2 12 | tee -a "$summary"
  done
fi
if want attn_tg; then  # tg128 (RF_DECODE_QUICK) per MODEL:KERNEL, in this order
  for run in ${RF_ATTN_TG_RUNS:-Q8_0:simt Q8_0:mma Q4_K_M:mma Q4_K_M:simt}; do
    m=${run%%:*} k=${run#*:}
    RF_DECODE_QUICK=1 RF_DECODE_ATTN=$k stage "decode_${m}_$k.log" 70 "$bin/bench_gpu_decode" "$m" /tmp
    grep -E 'tg128|^\| llama3' "$out/decode_${m}_$k.log" | sed "s/^/[$m $k] /" | tee -a "$summary"
  done
fi
if want mma_rate; then  # mma.sync's best int8 / f16 product rate on this card (kernels/mma_rate_probe.h)
  stage mma_rate.log 30 "$bin/bench_gpu_kernels" mma_rate
  cat "$out/mma_rate.log" | tee -a "$summary"
fi
if want batch_step; then  # batched decode steps only (no ncu): grouping on / off, dense from 65
  stage decode_batch.log 150 "$bin/bench_gpu_decode" Q4_K_M /tmp batch "${RF_BATCH_N:-32}" "${RF_BATCH_CTX:-512}"
  grep -E '^\||prefilled|batched decode' "$out/decode_batch.log" | tee -a "$summary"
fi
if [[ -n ${RF_TEST_FILTER:-} ]]; then  # a subset of test_gpu instead of the `tests` stage
  stage test_gpu.log 230 "$bin/test_gpu" --gtest_filter="$RF_TEST_FILTER" --gtest_output="xml:$out/test_gpu.xml"
fi
want tests && stage test_gpu.log 230 "$bin/test_gpu" --gtest_output="xml:$out/test_gpu.xml"
[[ -f $out/test_gpu.log ]] && grep -E '^\[  (PASSED|FAILED|SKIPPED) |^\[  FAILED  \]|tests ran' "$out/test_gpu.log" | tee -a "$summary"
[[ -f $out/test_gpu.log ]] && grep -E 'agreement|max \|logit' "$out/test_gpu.log" | tee -a "$summary"

if want numerics; then  # Q4_K_M GPU-vs-CPU agreement under other matvec shapes
  for cfg in 64,0 32,1; do
    RF_MATVEC=$cfg stage "numerics_mv$cfg.log" 60 "$bin/test_gpu" --gtest_filter='*Q4KM*'
    grep -E 'agreement' "$out/numerics_mv$cfg.log" | sed "s/^/RF_MATVEC=$cfg: /" | tee -a "$summary"
  done
fi

if want gemm; then  # the matrix-core GEMM table + the dense fp16 peak (cuBLAS via PyTorch) on this card
  stage gemm_peak.log 90 python3 -c '
import torch
a = torch.randn(8192, 8192, dtype=torch.float16, device="cuda")
b = torch.randn(8192, 8192, dtype=torch.float16, device="cuda")
for _ in range(5): torch.matmul(a, b)
ts = []
for _ in range(20):
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record(); torch.matmul(a, b); e.record(); torch.cuda.synchronize(); ts.append(s.elapsed_time(e))
ts.sort(); ms = ts[len(ts) // 2]
print(f"dense fp16 peak (torch.matmul 8192^3, cuBLAS, median of 20): {ms:.3f} ms = {2 * 8192**3 / ms / 1e9:.1f} TFLOP/s")
'
  cat "$out/gemm_peak.log" | tee -a "$summary"
  stage bench_gemm.md 150 "$bin/bench_gpu_kernels" gemm
  cat "$out/bench_gemm.md" >>"$summary"
fi
if want gemm_ncu; then  # stall reasons and memory traffic of one batched-decode and one prefill GEMM
  for shape in "Q4_K 4096 14336 16" "Q4_K 4096 14336 2048"; do
    tag=$(echo "$shape" | tr ' ' '_')
    stage "ncu_gemm_$tag.log" 60 ncu --clock-control none -k regex:GemmMma --launch-skip 10 --launch-count 1 \
      --section SpeedOfLight --section MemoryWorkloadAnalysis --section WarpStateStats --section Occupancy \
      "$bin/bench_gpu_kernels" gemm1 $shape
    grep -E "Duration|Throughput|Stall|Achieved Occupancy|Registers|L1/TEX Hit|L2 Hit|Mem Busy|Max Bandwidth|Warp Cycles" \
      "$out/ncu_gemm_$tag.log" | sed "s/^/[$tag] /" | tee -a "$summary"
  done
fi

# ncu_export BASE SECTION...: from the report BASE.ncu-rep, BASE.csv (every SASS
# instruction with its stall samples) and BASE_details.txt (the named sections);
# the report is gzipped.
ncu_export() {
  local base=$1 sec sections=()
  shift
  for sec in "$@"; do sections+=(--section "$sec"); done
  ncu -i "$base.ncu-rep" --page source --print-source sass --csv >"$base.csv" 2>&1
  ncu -i "$base.ncu-rep" --page details "${sections[@]}" >"${base}_details.txt" 2>&1
  note "$(basename "$base"): $(wc -l <"$base.csv") csv lines"
  gzip -f "$base.ncu-rep"
}

if want mmq_source; then  # where the MMQ kernel's warps stall, per SASS instruction (ncu source counters)
  for n in ${RF_MMQ_SOURCE_N:-32 128}; do
    stage "ncu_mmq_src_$n.log" 120 ncu --clock-control none -k regex:GemmMmq --launch-skip 10 --launch-count 1 \
      --set full --import-source yes -f -o "$out/mmq_src_$n" "$bin/bench_gpu_kernels" mmq1 Q4_K 14336+14336 4096 "$n"
    ncu_export "$out/mmq_src_$n" WarpStateStats SchedulerStats ComputeWorkloadAnalysis InstructionStats
  done
fi

if want matvec_source; then  # where the batch-1 matvecs' warps stall (Q4_K_M decode step), per SASS instruction
  # The first three grouped matvec launches of one decode step: Q/K/V, then gate/up, then the next layer's Q/K/V.
  stage ncu_matvec_src.log 180 ncu --profile-from-start off --clock-control none -k regex:MatVecQPairKernel \
    --launch-count 3 --set full --import-source yes -f -o "$out/matvec_src" "$bin/bench_gpu_decode" Q4_K_M /tmp profile
  ncu_export "$out/matvec_src" SpeedOfLight WarpStateStats SchedulerStats MemoryWorkloadAnalysis
  rm -f /tmp/llama3-8b-Q4_K_M.gguf
fi

if want sampler; then  # sampler on near-flat rows (radix / refined / batched passes); tg128 at T 0.7, top-p 0.9
  stage bench_sampler.md 60 "$bin/bench_gpu_kernels" sampler
  cat "$out/bench_sampler.md" | tee -a "$summary"
  stage decode_sample.md 100 "$bin/bench_gpu_decode" Q4_K_M /tmp sample
  cat "$out/decode_sample.md" | tee -a "$summary"
fi
want kernels && stage bench_kernels.md 100 "$bin/bench_gpu_kernels" ${RF_KERNELS_ARGS:-}  # e.g. matvec
[[ -f $out/bench_kernels.md ]] && cat "$out/bench_kernels.md" >>"$summary"

: >"$out/bench_decode.md"
decode() {
  stage "decode_$1.log" "$2" "$bin/bench_gpu_decode" "$1" /tmp
  cat "$out/decode_$1.log" >>"$out/bench_decode.md"
  # The peer on the same file in the same call, where its bundle is carried
  # (bench/gpu/llamacpp_peer.sh pack; carry .device-llamacpp).
  if [[ -f $root/.device-llamacpp/bin.txz && -f /tmp/llama3-8b-$1.gguf ]]; then
    stage "peer_$1.log" 240 bash "$root/bench/gpu/llamacpp_peer.sh" run "/tmp/llama3-8b-$1.gguf"
    note "llama.cpp on the same file ($1):"
    grep -E '^\||llama.cpp from|error|failed' "$out/peer_$1.log" | tee -a "$summary"
  fi
  rm -f "/tmp/llama3-8b-$1.gguf"
}
if want sweep; then  # tg128 per batch-1 matvec shape (RF_MATVEC, see bench_gpu_decode.cc)
  for cfg in ${RF_SWEEP:-32,0 64,1 32,1}; do
    RF_MATVEC=$cfg stage "decode_Q4_K_M_mv$cfg.log" 60 "$bin/bench_gpu_decode" Q4_K_M /tmp
    grep -E 'matvec config|tg128 without|^\| llama3' "$out/decode_Q4_K_M_mv$cfg.log" | tee -a "$summary"
  done
fi
# memcheck of the dense-prefill option tests alone (GpuBackend::SetDensePrefill; quick)
want prefill_memcheck && stage memcheck_prefill.log 100 compute-sanitizer --tool memcheck --error-exitcode 3 \
  --print-limit 20 "$bin/test_gpu" --gtest_filter='*DensePrefill*:*F16Producers*:*DequantizeGridsAndX16*'
[[ -f $out/memcheck_prefill.log ]] && grep -E 'ERROR SUMMARY|Invalid|FAILED|PASSED' "$out/memcheck_prefill.log" |
  head -20 | tee -a "$summary"
want decode && decode Q4_K_M 120

# memcheck over the kernel tests (the model tests only repeat the same kernels);
# RF_MEMCHECK_FILTER narrows it to the suites a change touched.
want memcheck && stage memcheck.log 280 compute-sanitizer --tool memcheck --error-exitcode 3 --print-limit 20 \
  "$bin/test_gpu" --gtest_filter="${RF_MEMCHECK_FILTER:-*GpuOps.*:*GpuMatMul*:*GpuMatVec*:*GpuGemmGroup*:*GpuDense*:*GpuSampling.*:*GpuAttention*:*GpuPrefetch*:*GpuPdl*:*GpuMmq*:*DensePrefill*:*F16Producers*:*DequantizeGridsAndX16*:*GpuDecodeFusion*}"
[[ -f $out/memcheck.log ]] && grep -E 'ERROR SUMMARY|Invalid|FAILED' "$out/memcheck.log" | head -20 | tee -a "$summary"

want q8 && decode Q8_0 120
for t in ${RF_DECODE_TYPES:-}; do decode "$t" 120; done  # more file types, e.g. "Q3_K_M Q2_K"
cat "$out/bench_decode.md" >>"$summary"
echo "---- summary"; cat "$summary"
# The device tool returns at most 8 files: everything but the summary goes in one archive.
(cd "$out" && tar -czf /tmp/rf-logs.tgz --exclude=summary.txt --exclude=logs.tgz . &&
  find . -type f ! -name summary.txt -delete && mv /tmp/rf-logs.tgz logs.tgz)
