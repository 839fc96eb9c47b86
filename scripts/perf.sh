#!/usr/bin/env bash
# Runs the perf harness's default suite RUNS times (default 3), each as its own process, and
# keeps every run's JSON Lines under perf-results/. Extra arguments go to corelane-perf.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${RUNS:-3}"
mkdir -p perf-results
cargo build --release -p corelane-perf
stamp=$(date -u +%Y%m%dT%H%M%SZ)
for i in $(seq 1 "$runs"); do
  ./target/release/corelane-perf --json "perf-results/$stamp-run$i.jsonl" "$@"
done
