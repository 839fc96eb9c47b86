#!/usr/bin/env bash
# Relocation of named actors, measured: ACTORS (default 10 000) named actors over three member
# processes; ROUNDS (default 3) times the member hosting the most is SIGKILLed (TTL 2 s), and
# the time until every one of its actors answers again from a survivor is reported, with the
# etcd requests made per relocated actor. Real etcd, real member processes.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo build -q --release -p corelane-net --features etcd --example cluster --example cluster_relocation
exec target/release/examples/cluster_relocation
