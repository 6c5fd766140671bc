#!/usr/bin/env bash
# Validates the deployment files without a cluster:
#   1. kubectl kustomize renders every overlay
#   2. the rendered objects pass the Kubernetes schemas (npm: kubernetes-models)
#      and our pod security rules
#   3. promtool check rules on the alert/recording rules
#   4. every metric the dashboard and rules query is exported by a real router
#      and worker (started here with the bundled model, scraped after a request)
#   5. the Dockerfile passes dockerfilelint
#   scripts/validate-deploy.sh PATH/TO/rocmforge
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:?usage: scripts/validate-deploy.sh PATH/TO/rocmforge}
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
work=${DEPLOY_WORK:-$root/build/deploy}
mkdir -p "$work"

echo "--- npm tools"
if [[ ! -d $work/tools/node_modules/kubernetes-models ]]; then
  mkdir -p "$work/tools"
  cp "$root/deploy/validate/package.json" "$work/tools/"
  (cd "$work/tools" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
fi
ln -sfn "$work/tools/node_modules" "$root/deploy/validate/node_modules"
trap 'rm -f "$root/deploy/validate/node_modules"' EXIT

echo "--- kustomize"
renders=()
for overlay in "$root"/deploy/kubernetes/overlays/*/; do
  name=$(basename "$overlay")
  kubectl kustomize "$overlay" >"$work/render-$name.yaml" 2>"$work/render-$name.log" ||
    { cat "$work/render-$name.log"; exit 1; }
  echo "rendered $name: $(grep -c '^kind:' "$work/render-$name.yaml") objects"
  renders+=("$work/render-$name.yaml")
done

echo "--- schemas"
node "$root/deploy/validate/validate-manifests.mjs" "${renders[@]}"

echo "--- promtool"
promtool check rules "$root/deploy/prometheus/rules.yaml"

echo "--- metric names against a live router + worker"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
# Two consecutive free ports: the router's metrics and the worker's right after it.
for _ in $(seq 1 50); do
  mport=$(free_port)
  python3 -c "import socket,sys; s=socket.socket(); s.bind(('127.0.0.1',$mport+1))" 2>/dev/null && break
done
log="$work/serve.log"
"$bin" serve --model "$root/models/tiny-llama-spm-f16.gguf" --host 127.0.0.1 --port "$port" \
  --metrics-port "$mport" --device cpu >"$log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -f "$root/deploy/validate/node_modules"' EXIT
for _ in $(seq 1 120); do
  grep -q "rocmforge serving on" "$log" && break
  kill -0 $pid 2>/dev/null || { cat "$log"; echo "serve exited early" >&2; exit 1; }
  sleep 0.5
done
grep -q "rocmforge serving on" "$log" || { cat "$log"; echo "serve did not become ready" >&2; exit 1; }
"$bin" generate --server "127.0.0.1:$port" --prompt "In the beginning" --max-tokens 8 --temperature 0 >/dev/null
"$bin" generate --server "127.0.0.1:$port" --prompt "In the beginning" --max-tokens 4 --temperature 0 --session s1 >/dev/null
# serve gives worker i the metrics port after the router's: mport + 1 + i.
worker_mport=$((mport + 1))
curl -sf "http://127.0.0.1:$mport/metrics" >"$work/router.metrics"
curl -sf "http://127.0.0.1:$worker_mport/metrics" >"$work/worker.metrics"
node "$root/deploy/validate/check-metric-names.mjs" "$root/deploy/grafana/rocmforge.json" \
  "$root/deploy/prometheus/rules.yaml" "$work/router.metrics" "$work/worker.metrics"

echo "--- Dockerfile lint"
"$work/tools/node_modules/.bin/dockerfilelint" "$root/Dockerfile"
echo "validate-deploy: ok"
