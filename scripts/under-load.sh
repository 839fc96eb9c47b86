#!/usr/bin/env bash
# Defaults under load: the peers (corelane under the builder's defaults and Idle::Spin, actix,
# kameo, ractor) on every workload, five processes per framework, first on a quiet machine,
# then with another process keeping one core busy; and the engine's latency workloads under
# the default idle policy, five processes each way. Prints each figure's max / min across
# processes (target <= 1.5) and every figure's loaded / quiet ratio (target within 3x).
#
#   scripts/under-load.sh [OUT_DIR]        (default target/under-load; ~15 minutes on 2 cores)
#
# Environment: ROUNDS (processes per framework, default 5), SCALE (workload sizes, default
# 0.5), PEERS_WORKLOADS (default: all).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-target/under-load}"
rounds="${ROUNDS:-5}"
scale="${SCALE:-0.5}"
mkdir -p "$out"
cargo build --release -q -p corelane-perf
cargo build --release -q -p corelane-bench --features peers --bin peers
perf=target/release/corelane-perf
peers=target/release/peers
engine=(pingpong-cross ask-external spawn-external)

hog_pid=""
stop_hog() { if [ -n "$hog_pid" ]; then kill "$hog_pid" 2>/dev/null || true; wait "$hog_pid" 2>/dev/null || true; hog_pid=""; fi; }
trap stop_hog EXIT

run_all() { # $1 = quiet | load
  # shellcheck disable=SC2086
  $peers ${PEERS_WORKLOADS:-} --rounds "$rounds" --scale "$scale" --json "$out/peers-$1.jsonl" | tee "$out/peers-$1.txt" || true
  local files=()
  for i in $(seq 1 "$rounds"); do
    # A process that cannot finish (a collapse past its timeouts) is reported, not fatal.
    if $perf "${engine[@]}" --quick --runs 1 --idle spin-then-park:50us --json "$out/engine-$1-$i.jsonl" > /dev/null 2> "$out/engine-$1-$i.err"; then
      files+=("$out/engine-$1-$i.jsonl")
    else
      echo "engine process $i ($1) failed: $(grep -m1 panicked "$out/engine-$1-$i.err" || tail -1 "$out/engine-$1-$i.err")"
    fi
  done
  echo "== engine workloads under the default idle policy ($1): one run per process, spread = max / min"
  if [ "${#files[@]}" -gt 0 ]; then
    $perf merge --out "$out/engine-$1.jsonl" "${files[@]}"
  fi
}

echo "== quiet"
run_all quiet
echo "== loaded: another process keeps one core busy"
# A busy loop the scheduler may put on any core, bounded in time in case this script dies.
timeout 3600 sh -c 'while :; do :; done' &
hog_pid=$!
run_all load
stop_hog
echo "== loaded / quiet (target: every figure within 3x)"
$perf compare "$out/peers-quiet.jsonl" "$out/peers-load.jsonl"
if [ -f "$out/engine-quiet.jsonl" ] && [ -f "$out/engine-load.jsonl" ]; then
  $perf compare "$out/engine-quiet.jsonl" "$out/engine-load.jsonl"
fi
