#!/usr/bin/env bash
# The trading example of corelane-net on a throwaway etcd: three nodes (order books as grains, a
# singleton risk monitor, an end-of-day report every ten seconds on a cluster-wide cron
# schedule) and a client placing orders for SECONDS (default 24). KILL_AFTER seconds in (default
# 8) node b is SIGKILLed; the client prints what moved and how long it was unreachable.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TOTAL=${SECONDS_TOTAL:-24}
KILL_AFTER=${KILL_AFTER:-8}
RATE=${RATE:-500}
scripts/deps.sh
cargo build -q --release -p corelane-net --features etcd --example trading
bin=target/release/examples/trading
out=$(scripts/etcd.sh start 23891)
state=$(echo "$out" | sed 's/.*state \(.*\))/\1/')
declare -A pid
cleanup() { kill "${pid[@]}" 2>/dev/null || true; scripts/etcd.sh stop "$state"; }
trap cleanup EXIT
for id in a b c; do
    "$bin" node 127.0.0.1:23891 "$id" > >(sed -u "s/^/[node $id] /") 2>/dev/null &
    pid[$id]=$!
done
"$bin" client 127.0.0.1:23891 "$SECONDS_TOTAL" "$RATE" > >(sed -u "s/^/[client] /") 2>/dev/null &
client=$!
sleep "$KILL_AFTER"
echo "[demo] SIGKILL node b"
kill -9 "${pid[b]}"
wait "${pid[b]}" 2>/dev/null || true
unset 'pid[b]'
wait "$client"
