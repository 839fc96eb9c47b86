#!/usr/bin/env bash
# Soak: a node (in its own process) under a mix of the remote attacks of issue 11 and
# legitimate asks, on loopback, for SOAK_SECONDS (default 600). Prints the node's resident
# memory after warm-up and at the end and the legitimate asks' latency throughout; fails when
# memory grew more than 10 % after warm-up, the asks' p99 passed 10 ms, or the node died.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --release -p corelane-net --example soak -- "${SOAK_SECONDS:-600}"
