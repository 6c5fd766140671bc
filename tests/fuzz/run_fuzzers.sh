#!/usr/bin/env bash
# Runs every fuzz_* binary in BUILD_DIR/tests/fuzz for SECONDS each, starting
# from a small seed corpus, and exits non-zero if any of them finds a crash,
# a sanitizer error, a leak or a timeout.
#   usage: tests/fuzz/run_fuzzers.sh BUILD_DIR SECONDS
# Crash inputs are kept in $FUZZ_WORK_DIR (default: BUILD_DIR/fuzz-work) to be
# replayed with: BUILD_DIR/tests/fuzz/fuzz_gguf CRASH_FILE
set -euo pipefail

if [[ $# -ne 2 || ! "$2" =~ ^[0-9]+$ ]]; then
  echo "usage: $0 BUILD_DIR SECONDS" >&2
  exit 2
fi
build_dir=$(cd "$1" && pwd)
seconds=$2
repo_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
models_dir=${ROCMFORGE_MODELS_DIR:-$repo_dir/models}
work=${FUZZ_WORK_DIR:-$build_dir/fuzz-work}
mkdir -p "$work"

shopt -s nullglob
fuzzers=("$build_dir"/tests/fuzz/fuzz_*)
if [[ ${#fuzzers[@]} -eq 0 ]]; then
  echo "run_fuzzers: no fuzz_* binaries in $build_dir/tests/fuzz (configure with -DROCMFORGE_FUZZ=ON and build 'fuzzers')" >&2
  exit 2
fi

# ---- Seed corpora -----------------------------------------------------------
# Little-endian integers and GGUF strings, written with printf only (no tools
# beyond bash), so the seeds are real, valid GGUF files.
le() {  # le BYTES VALUE
  local n=$1 v=$2 i out=""
  for ((i = 0; i < n; i++)); do out+=$(printf '\\x%02x' $(((v >> (8 * i)) & 255))); done
  printf "$out"
}
u32() { le 4 "$1"; }
u64() { le 8 "$1"; }
gstr() { u64 "${#1}"; printf '%s' "$1"; }
zeros() { head -c "$1" /dev/zero; }

gguf_seeds() {  # writes small valid GGUF files into $1
  local dir=$1
  mkdir -p "$dir"
  # v3: scalars of several types, string/int/float arrays, a nested array, and
  # two tensors (F32 {4,2} at 0, Q8_0 {32} at 32). Header+kv+infos = 411 bytes,
  # padded to 416.
  {
    printf 'GGUF'; u32 3; u64 2; u64 7
    gstr general.architecture; u32 8; gstr llama
    gstr llama.block_count; u32 4; u32 2
    gstr llama.rope.freq_base; u32 6; printf '\x00\x40\x1c\x46'
    gstr tokenizer.ggml.add_bos_token; u32 7; printf '\x01'
    gstr tokenizer.ggml.tokens; u32 9; u32 8; u64 3; gstr '<unk>'; gstr '<s>'; gstr a
    gstr tokenizer.ggml.token_type; u32 9; u32 5; u64 3; u32 2; u32 3; u32 1
    gstr test.nested; u32 9; u32 9; u64 1; u32 10; u64 1; u64 7
    gstr a.weight; u32 2; u64 4; u64 2; u32 0; u64 0
    gstr b.weight; u32 1; u64 32; u32 8; u64 32
  } > "$dir/seed_v3.gguf"
  local len
  len=$(stat -c %s "$dir/seed_v3.gguf")
  zeros $(((32 - len % 32) % 32)) >> "$dir/seed_v3.gguf"
  { zeros 32; printf '\x00\x3c'; zeros 32; } >> "$dir/seed_v3.gguf"
  # v2 with metadata only, and one with a non-default alignment.
  { printf 'GGUF'; u32 2; u64 0; u64 1; gstr general.name; u32 8; gstr tiny; } > "$dir/seed_v2.gguf"
  {
    printf 'GGUF'; u32 3; u64 1; u64 1
    gstr general.alignment; u32 4; u32 64
    gstr t; u32 1; u64 16; u32 1; u64 0
  } > "$dir/seed_align.gguf"
  len=$(stat -c %s "$dir/seed_align.gguf")
  zeros $(((64 - len % 64) % 64 + 32)) >> "$dir/seed_align.gguf"
  # The first KiB of each real model: real key names and tokenizer arrays.
  for m in "$models_dir"/*.gguf; do head -c 1024 "$m" > "$dir/prefix_$(basename "$m")"; done
}

text_seeds() {  # generic seeds for text-input fuzzers (first byte = flags)
  local dir=$1
  mkdir -p "$dir"
  printf '\x00The quick brown fox jumps over the lazy dog.' > "$dir/english"
  printf '\x01Hello, world! 1234567890 tabs\tand\n newlines' > "$dir/mixed"
  printf '\x02<|im_start|>user\nhi<|im_end|><s></s>' > "$dir/special"
  printf '\x03h\xc3\xa9llo \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x99\x82 \xff\xfe' > "$dir/utf8"
}

# ---- Run --------------------------------------------------------------------
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export ROCMFORGE_MODELS_DIR=$models_dir

failed=()
for bin in "${fuzzers[@]}"; do
  [[ -x "$bin" && -f "$bin" ]] || continue
  name=$(basename "$bin")
  seeds="$work/$name-seeds"
  corpus="$work/$name-corpus"
  rm -rf "$seeds"
  mkdir -p "$corpus"
  if [[ $name == fuzz_gguf ]]; then gguf_seeds "$seeds"; else text_seeds "$seeds"; fi
  echo "run_fuzzers: $name for ${seconds}s"
  if "$bin" -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$work/$name-" "$corpus" "$seeds" > "$work/$name.log" 2>&1; then
    grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' "$work/$name.log" | sed "s/^/  $name /" || true
  else
    echo "run_fuzzers: $name FAILED; last lines of $work/$name.log:" >&2
    tail -n 40 "$work/$name.log" >&2
    failed+=("$name")
  fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
  echo "run_fuzzers: failures in: ${failed[*]} (crash inputs: $work/*-crash-*)" >&2
  exit 1
fi
echo "run_fuzzers: all fuzzers ran ${seconds}s without a crash"
