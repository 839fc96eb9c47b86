#!/usr/bin/env bash
# The cluster churn run (about CHURN_SECONDS, default 300): member processes killed, leaving,
# joining and one frozen past its lease under load; checks the activation ledgers for overlaps
# and that every ask was answered or failed clearly. Real etcd, real processes.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
export CHURN_SECONDS="${CHURN_SECONDS:-300}"
exec cargo test --release -p corelane-net --features etcd --test cluster_churn -- --ignored --nocapture
