#!/usr/bin/env bash
# Failover, measured: KILLS (default 20) SIGKILLs of a member (TTL 2 s), the time until every
# grain it owned answers again from a survivor; LEAVES (default 10) graceful leaves, the time
# until each moved grain answers from its new owner. Real etcd, real member processes.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo build -q --release -p corelane-net --features etcd --example cluster --example cluster_failover
exec target/release/examples/cluster_failover
