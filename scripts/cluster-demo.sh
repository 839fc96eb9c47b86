#!/usr/bin/env bash
# Three member processes and a client process on a throwaway etcd (the `cluster` example of
# corelane-net): the client tells and asks grains and prints which member answered.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo build -q --release -p corelane-net --features etcd --example cluster
bin=target/release/examples/cluster
out=$(scripts/etcd.sh start 23890)
state=$(echo "$out" | sed 's/.*state \(.*\))/\1/')
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; scripts/etcd.sh stop "$state"; }
trap cleanup EXIT
for id in alpha beta gamma; do
    # Each member keeps its stdin open (a sleeping writer) until the demo ends.
    sleep 3600 | "$bin" node 127.0.0.1:23890 demo "$id" 2000 > >(sed "s/^/[$id] /") &
    pids+=($!)
done
"$bin" client 127.0.0.1:23890 demo 12 3
