#!/usr/bin/env bash
# Builds the `rocmforge` binary (CPU only), starts the service (router + one CPU
# worker) with the bundled model, streams one completion through the public gRPC
# API, then stops the service. Everything comes from this repository.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mkdir -p build
scripts/build.sh build/quickstart -DCMAKE_BUILD_TYPE=Release -DROCMFORGE_BUILD_TESTS=OFF \
  -DROCMFORGE_BUILD_BENCH=OFF -- rocmforge
bin=build/quickstart/cli/rocmforge
model=models/tiny-llama-spm-f16.gguf
port=${PORT:-50051}
log=$(mktemp)
"$bin" serve --model "$model" --port "$port" --metrics-port "${METRICS_PORT:-9090}" --device cpu >"$log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 120); do
  grep -q "rocmforge serving on" "$log" && break
  kill -0 $pid 2>/dev/null || { cat "$log"; echo "quickstart: the service did not start" >&2; exit 1; }
  sleep 0.5
done
echo "--- service is up on 127.0.0.1:$port; streaming a completion:" >&2
"$bin" generate --server "127.0.0.1:$port" --prompt "${PROMPT:-In the beginning God created}" \
  --max-tokens "${MAX_TOKENS:-48}" --temperature 0
echo
