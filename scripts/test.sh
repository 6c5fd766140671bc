#!/usr/bin/env bash
# The whole test suite, as CI runs it (after scripts/install-deps.sh).
# Stages (all by default; pick with STAGES="release asan ..."):
#   release  Release build of everything, every CTest test (unit + integration;
#            GPU tests are not built without a GPU backend)
#   asan     ASan + UBSan build of the engine's unit tests
#   tsan     TSan build of the scheduler, engine loop and server tests
#   fuzz     libFuzzer targets (GGUF reader, tokenizers), a short run each
#   gpu      compile-only builds of the kernels: HIP for AMD targets, CUDA for sm_90
#   deploy   kustomize render + schema validation, promtool, dashboard metric names, Dockerfile lint
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
B=${BUILD_ROOT:-$root/build}
mkdir -p "$B"
STAGES=${STAGES:-"release asan tsan fuzz gpu deploy"}
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
TSAN_TARGETS=${TSAN_TARGETS:-"rocmforge test_sched_scheduler test_kv_block_pool test_kv_prefix_cache \
  test_engine_helpers test_backend_cpu_ops test_worker_service test_worker_lifecycle test_router_relay \
  test_router_placement"}
TSAN_TESTS=${TSAN_TESTS:-"^(Scheduler|BlockPool|KvCacheManager|PrefixCache|PrefixHash|TokenStreamTest|ThreadPoolTest|WorkerServiceTest|WorkerServiceLifecycle|WorkerLifecycle|RouterRelay|RouterPlacement)[.]"}
export CTEST_OUTPUT_ON_FAILURE=1
passed=0 failed=0 failed_stages=()
# The sanitizer builds: -O1 -g1, what the sanitizers' own docs advise (reports
# keep file:line stacks); half the compile time of RelWithDebInfo's -O2 -g.
san_build=(-DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG"
  "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG")

# Runs ctest and adds its counts to the totals.
run_ctest() {
  local dir=$1; shift
  local out
  out=$(ctest --test-dir "$dir" -j "$(nproc)" --timeout 300 "$@" 2>&1)
  local rc=$?
  if [[ $rc -ne 0 ]]; then
    # The failing tests' own output (CTEST_OUTPUT_ON_FAILURE puts it after the
    # test's result line), so a CI log says why and not only which.
    echo "--- output of the failing tests"
    echo "$out" | awk '/\*\*\*(Failed|Exception|Timeout)|Subprocess aborted|SEGFAULT/ {show=1; n=0}
      show && (/^ *Start +[0-9]+:/ || /^ *[0-9]+\/[0-9]+ Test +#[0-9]+: .*(Passed|sec)$/ && !/\*\*\*|aborted|SEGFAULT/) {show=0}
      show && n++ < 300 {print}'
    echo "--- end of failing output"
  fi
  echo "$out" | tail -n 40
  local line
  line=$(echo "$out" | grep -E "tests passed, [0-9]+ tests? failed out of [0-9]+" | tail -1)
  if [[ -n $line ]]; then
    local f t
    f=$(echo "$line" | sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/')
    t=$(echo "$line" | sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\2/')
    passed=$((passed + t - f)); failed=$((failed + f))
  elif [[ $rc -ne 0 ]]; then
    failed=$((failed + 1))
  fi
  return $rc
}

stage() {  # stage NAME: prints a banner and times it
  echo
  echo "=== stage $1 ($(date -u +%H:%M:%S)) ==="
}

finish_stage() {  # finish_stage NAME RC
  if [[ $2 -ne 0 ]]; then failed_stages+=("$1"); fi
  echo "=== stage $1: $([[ $2 -eq 0 ]] && echo ok || echo FAILED) ($(date -u +%H:%M:%S)) ==="
}

for s in $STAGES; do
  stage "$s"
  rc=0
  case $s in
    release)
      scripts/build.sh "$B/release" -DCMAKE_BUILD_TYPE=Release -DROCMFORGE_BUILD_BENCH=ON || rc=1
      [[ $rc -eq 0 ]] && { run_ctest "$B/release" || rc=1; }
      ;;
    asan)
      scripts/build.sh "$B/asan" "${san_build[@]}" -DROCMFORGE_SANITIZE=address,undefined \
        -DROCMFORGE_BUILD_SERVER=OFF -DROCMFORGE_BUILD_BENCH=OFF || rc=1
      [[ $rc -eq 0 ]] && { ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 run_ctest "$B/asan" -L unit || rc=1; }
      ;;
    tsan)
      # The threaded parts: scheduler + KV manager (driven by the engine thread),
      # the engine loop, the thread pool, and the gRPC servers (worker, router).
      scripts/build.sh "$B/tsan" "${san_build[@]}" -DROCMFORGE_SANITIZE=thread \
        -DROCMFORGE_BUILD_BENCH=OFF -- $TSAN_TARGETS || rc=1
      [[ $rc -eq 0 ]] && { TSAN_OPTIONS="suppressions=$root/tests/integration/support/tsan_suppressions.txt halt_on_error=1 second_deadlock_stack=1" \
        run_ctest "$B/tsan" -R "$TSAN_TESTS" || rc=1; }
      ;;
    fuzz)
      scripts/build.sh "$B/fuzz" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang-14 \
        -DCMAKE_CXX_COMPILER=clang++-14 -DROCMFORGE_FUZZ=ON -DROCMFORGE_BUILD_SERVER=OFF \
        -DROCMFORGE_BUILD_TESTS=OFF -DROCMFORGE_BUILD_BENCH=OFF || rc=1
      [[ $rc -eq 0 ]] && { tests/fuzz/run_fuzzers.sh "$B/fuzz" "$FUZZ_SECONDS" && passed=$((passed + 1)) || { rc=1; failed=$((failed + 1)); }; }
      ;;
    gpu)
      scripts/build-gpu.sh "$B" && passed=$((passed + 1)) || { rc=1; failed=$((failed + 1)); }
      ;;
    deploy)
      scripts/validate-deploy.sh "$B/release/cli/rocmforge" && passed=$((passed + 1)) || { rc=1; failed=$((failed + 1)); }
      ;;
    *) echo "unknown stage $s"; rc=1 ;;
  esac
  finish_stage "$s" $rc
done

echo
if [[ ${#failed_stages[@]} -gt 0 ]]; then echo "failed stages: ${failed_stages[*]}"; fi
echo "tests: $passed passed, $failed failed"
[[ ${#failed_stages[@]} -eq 0 ]]
