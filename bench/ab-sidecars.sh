#!/bin/bash
# A/B of sidecar builds or node flags: each SPEC is "NODE_FLAGS|DIST_DIR|MESH_YAML" (empty parts take
# the defaults: no flags, ./dist, a one-endpoint mesh config like bench/proxy.ts's); words of NODE_FLAGS
# shaped NAME=VALUE are set in the sidecar's environment instead (MALLOC_ARENA_MAX=2). All sidecars run
# at once against one upstream; wrk at 32 connections visits them in turn, ROUNDS times, and each
# round prints every sidecar's CPU per request (utime+stime from /proc over that run ÷ requests).
# Side by side in one run is the only comparison a noisy machine allows.
#
#   npx tsc -p tsconfig.json && npx tsc -p bench/tsconfig.json
#   git worktree add /tmp/before HEAD~1 && (cd /tmp/before && ln -s "$PWD/../main/node_modules" . && npx tsc)
#   bash bench/ab-sidecars.sh 5 "|/tmp/before/dist" "|dist" "--single-threaded-gc|dist"
set -eu
ROUNDS=${1:?usage: ab-sidecars.sh ROUNDS SPEC...}; shift
ROOT=$(cd "$(dirname "$0")/.." && pwd)
W=$(mktemp -d); PIDS=(); PORTS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$W"; }
trap cleanup EXIT
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install -y wrk)" >&2; exit 2; }
node "$ROOT/dist/bench/upstream.js" 1 > "$W/upstream.log" & PIDS+=($!)
for _ in $(seq 50); do grep -q listening "$W/upstream.log" && break; sleep 0.1; done
UP=$(grep -o '127[.0-9]*:[0-9]*' "$W/upstream.log" | head -1)
printf 'services:\n  bench:\n    endpoints: [{ address: %s }]\n    loadBalancer: least-request\n    timeout: 10s\n    retry: { attempts: 3, perTryTimeout: 5s, on: [connect-failure, reset, gateway-error] }\n    circuitBreaker: { consecutiveFailures: 5, failureRate: { threshold: 0.5, window: 10s, minRequests: 20 } }\n' "$UP" > "$W/mesh.yaml"
i=0
for spec in "$@"; do
  IFS='|' read -r flags dist cfg <<< "$spec"
  dist=${dist:-$ROOT/dist}; cfg=${cfg:-$W/mesh.yaml}
  envs=(); nodeflags=()
  for word in $flags; do if [[ $word =~ ^[A-Za-z_][A-Za-z0-9_]*= ]]; then envs+=("$word"); else nodeflags+=("$word"); fi; done
  env "${envs[@]}" node "${nodeflags[@]}" "$dist/cli/meshlet.js" sidecar --service ab --config "$cfg" --outbound 127.0.0.1:0 --admin 127.0.0.1:0 --data-dir "$W/data$i" --access-log off > "$W/sidecar$i.log" 2>&1 & PIDS+=($!)
  for _ in $(seq 100); do grep -q '"outbound"' "$W/sidecar$i.log" && break; sleep 0.1; done
  PORTS+=("$(grep '"listener":"outbound"' "$W/sidecar$i.log" | grep -o '127[.0-9]*:[0-9]*' | head -1)")
  echo "[$i] $spec → ${PORTS[$i]}"
  i=$((i + 1))
done
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICK=$(getconf CLK_TCK)
for a in "${PORTS[@]}"; do wrk -t1 -c32 -d4s -H 'Host: bench' "http://$a/" > /dev/null; done # warm-up
for r in $(seq "$ROUNDS"); do
  line="round $r:"
  for j in "${!PORTS[@]}"; do
    pid=${PIDS[$((j + 1))]}; t0=$(cpu "$pid")
    n=$(wrk -t1 -c32 -d3s -H 'Host: bench' "http://${PORTS[$j]}/" | awk '/requests in/{print $1}')
    t1=$(cpu "$pid")
    line="$line  [$j] $(awk -v a="$t0" -v b="$t1" -v n="$n" -v t="$TICK" 'BEGIN{printf "%.1f µs", (b-a)*1e6/t/n}')"
  done
  echo "$line"
done
for j in "${!PORTS[@]}"; do
  echo "[$j] $(awk '/VmHWM|RssAnon|RssFile/{printf "%s %.1f MB  ", $1, $2/1024}' "/proc/${PIDS[$((j + 1))]}/status")"
done
