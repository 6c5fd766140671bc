#!/usr/bin/env bash
# The worker load benchmark on the lent GPU machine, in ONE device call.
# The device has no gRPC/abseil libraries, so binaries are built here (CUDA
# build of the GPU backend + the gRPC worker) and travel with their shared libs:
#
#   bench/grpc/run_load_on_device.sh pack     # here -> .device-load/bin.txz
#   (device tool) run command="bash bench/grpc/run_load_on_device.sh run" carry=[".device-load"]
#
# `run` makes a Llama-3-8B-shaped Q4_K_M model with random weights on the device
# (`rocmforge make-model`), starts `rocmforge worker --device gpu`, and runs
# load_bench at N = LOAD_LEVELS (default 1,8,32,128) for each scheduler setting
# in CONFIGS (below). Output under $OUT. LOAD_SEEDS="1 2 3" runs every level
# once per job-mix seed (default 1): a repeat with another seed is a fresh mix of
# prompts, so the prefix cache cannot make it a different bench; the N = 1 level
# varies by ~4% between runs, so a ratio wants more than one pair.
set -u
mode=${1:-run}
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=$root/.device-load

if [[ $mode == pack ]]; then
  set -e
  build=$root/build-cuda-server
  "$root/scripts/build.sh" "$build" -DCMAKE_BUILD_TYPE=Release -DROCMFORGE_GPU=cuda \
    -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc -DCMAKE_CUDA_ARCHITECTURES=90-real -DROCMFORGE_BUILD_TESTS=OFF -- rocmforge load_bench
  rm -rf "$bin" && mkdir -p "$bin"
  cp "$build/cli/rocmforge" "$build/bench/load_bench" "$bin/"
  strip --strip-unneeded "$bin/rocmforge" "$bin/load_bench"
  grep -qx '/.device-load/' "$root/.git/info/exclude" 2>/dev/null || echo '/.device-load/' >>"$root/.git/info/exclude"
  source "$root/bench/device_bundle.sh"
  bundle_pack "$bin"
  exit 0
fi

out=${OUT:-/tmp/rf-load-out}
mkdir -p "$out"
source "$root/bench/device_bundle.sh"
bundle_unpack "$bin" /tmp/rf-load
b=/tmp/rf-load
export LD_LIBRARY_PATH=$b/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/device.txt"
model=/tmp/llama3-8b-q4_k_m.gguf
t0=$(date +%s)
# A second run in the same call (e.g. another WORKER_ARGS or environment) reuses the model.
[[ -s $model && -n ${REUSE_MODEL:-} ]] ||
  "$b/rocmforge" make-model --shape llama3-8b --type Q4_K_M --threads "$(nproc)" --quiet "$model" 2>&1 | tail -2
echo "make-model: $(( $(date +%s) - t0 )) s"
# One worker per scheduler setting in CONFIGS, space-separated, each
# MAX_BATCH_TOKENS:MAX_PREFILL_WITH_DECODES (default "512:-1", the worker's
# defaults): the per-step token budget and the prefill tokens a step may carry
# while streams decode trade prefill throughput against inter-token latency.
# metrics_step_summary BEFORE AFTER LABEL WALL_S: engine steps between two
# /metrics snapshots: count, mean step time, mean sequences and tokens per step, the
# share of the wall time the steps took (the rest: host work between steps), and
# the mean step's phases (rocmforge_step_phase_seconds_total).
metrics_step_summary() {
  awk -v label="$3" -v wall="$4" '
    FNR == 1 { f++ }
    /^rocmforge_step_duration_seconds_sum/ { ss[f] = $2 }
    /^rocmforge_step_duration_seconds_count/ { sc[f] = $2 }
    /^rocmforge_batch_size_sum/ { bs[f] = $2 }
    /^rocmforge_batch_tokens_sum/ { bt[f] = $2 }
    /^rocmforge_step_phase_seconds_total/ { split($1, a, "\""); ph[a[2], f] = $2; names[a[2]] = 1 }
    END {
      n = sc[2] - sc[1]; if (n <= 0) { print "steps " label ": none"; exit }
      t = ss[2] - ss[1]
      phases = ""
      split("plan forward sample stream", order, " ")
      for (i = 1; i <= 4; i++) if (order[i] in names)
        phases = phases sprintf(" %s %.2f", order[i], 1000 * (ph[order[i], 2] - ph[order[i], 1]) / n)
      printf "steps %s: %d steps, mean %.2f ms, mean batch %.1f seqs / %.1f tokens, steps %.1f s of %.1f s wall%s\n",
             label, n, 1000 * t / n, (bs[2] - bs[1]) / n, (bt[2] - bt[1]) / n, t, wall,
             phases == "" ? "" : ", ms a step:" phases
    }' "$1" "$2"
}
# steady_over_seeds TABLES: mean (min, max) of the steady tok/s column per level.
steady_over_seeds() {
  awk '/^\| *[0-9]+ \| [0-9]+ \| [0-9]+ \|/ { split($0, f, "|"); n = f[2] + 0; v = f[7] + 0;
         s[n] += v; c[n]++; if (!(n in lo) || v < lo[n]) lo[n] = v; if (v > hi[n]) hi[n] = v }
       END { for (n in s) printf "%d steady tok/s at N = %d over %d seeds: mean %.1f (min %.1f, max %.1f)\n",
               n, n, c[n], s[n] / c[n], lo[n], hi[n] }' "$1" | sort -n | cut -d" " -f2-
}
port=50061
for cfg in ${CONFIGS:-512:-1}; do
  # MBT:CAP[:nofill|:notrim]: nofill runs the worker with --no-fill-step-sizes,
  # notrim with --no-trim-step-sizes. CAP -1: the worker's default (the
  # backend's choice, Backend::DefaultPrefillCapWithDecodes).
  mbt=${cfg%%:*} rest=${cfg#*:}
  cap=${rest%%:*} fill_arg=""
  [[ $rest == *:nofill ]] && { fill_arg=--no-fill-step-sizes; cap=$cap-nofill; }
  [[ $rest == *:notrim ]] && { fill_arg=--no-trim-step-sizes; cap=$cap-notrim; }
  log=$out/worker-mbt$mbt-cap$cap.log
  "$b/rocmforge" worker --model "$model" --device gpu --host 127.0.0.1 --port $port --metrics-port 9091 \
    --max-batch-tokens "$mbt" --max-prefill-with-decodes "${cap%-no*}" $fill_arg --max-running "${MAX_RUNNING:-64}" \
    --ctx 4096 ${WORKER_ARGS:-} >"$log" 2>&1 &
  wpid=$!
  for _ in $(seq 1 240); do grep -q "listening on" "$log" && break; kill -0 $wpid 2>/dev/null || break; sleep 0.5; done
  grep -q "listening on" "$log" || { cat "$log"; exit 1; }
  echo "== --max-batch-tokens $mbt --max-prefill-with-decodes $cap --max-running ${MAX_RUNNING:-64} $fill_arg ${WORKER_ARGS:-}" |
    tee -a "$out/load_bench.txt"
  # One client run per level, with the worker's step metrics read after each:
  # the mean step time and batch size per level (metrics_step_summary below)
  # split a level's time into engine steps and what happens between them.
  snap=$out/metrics-mbt$mbt-cap$cap-before.txt
  curl -s http://127.0.0.1:9091/metrics >"$snap" || true
  levels=$out/levels-mbt$mbt-cap$cap.txt  # this worker's level tables, for the summary over seeds
  : >"$levels"
  for seed in ${LOAD_SEEDS:-1}; do
    for lvl in $(echo "${LOAD_LEVELS:-1,8,32,128}" | tr ',' ' '); do
      t_lvl=$(date +%s.%N)
      "$b/load_bench" --server 127.0.0.1:$port --concurrency "$lvl" --rounds "${ROUNDS:-1}" --seed "$seed" \
        ${LOAD_ARGS:-} 2>&1 | tee -a "$out/load_bench.txt" "$levels"
      wall=$(awk -v a="$(date +%s.%N)" -v b="$t_lvl" 'BEGIN { printf "%.2f", a - b }')
      next=$out/metrics-mbt$mbt-cap$cap-N$lvl-seed$seed.txt
      curl -s http://127.0.0.1:9091/metrics >"$next" || true
      metrics_step_summary "$snap" "$next" "N = $lvl (seed $seed)" "$wall" | tee -a "$out/load_bench.txt"
      snap=$next
    done
  done
  # Steady tok/s per level over the seeds (mean, min, max), from the tables above.
  if [[ ${LOAD_SEEDS:-1} == *" "* ]]; then
    steady_over_seeds "$levels" | tee -a "$out/load_bench.txt"
  fi
  if [[ -n ${EXTRA_LEVELS:-} ]]; then  # a second client run on the same worker, e.g. greedy at N = 1
    echo "== same worker: --concurrency $EXTRA_LEVELS ${EXTRA_ARGS:-}" | tee -a "$out/load_bench.txt"
    "$b/load_bench" --server 127.0.0.1:$port --concurrency "$EXTRA_LEVELS" --rounds "${ROUNDS:-1}" \
      ${EXTRA_ARGS:-} 2>&1 | tee -a "$out/load_bench.txt"
  fi
  curl -s http://127.0.0.1:9091/metrics | grep -E "^rocmforge_(batch_size|step_duration|preemptions|device_memory)" \
    >"$out/metrics-mbt$mbt-cap$cap.txt" || true
  kill -TERM $wpid; wait $wpid
  tail -3 "$log"
done
# The device tool returns at most 8 files: everything but the table goes in one archive.
(cd "$out" && tar -czf /tmp/rf-load-logs.tgz --exclude=load_bench.txt --exclude=logs.tgz . &&
  find . -type f ! -name load_bench.txt ! -name device.txt -delete && mv /tmp/rf-load-logs.tgz logs.tgz)
