#!/usr/bin/env bash
# The whole test suite: unit, integration and doc tests of every crate (the cluster's against a
# real etcd, which scripts/deps.sh installs with protoc when missing), the loom models of the
# lock-free pieces, then the engine's tests under AddressSanitizer. This is what CI runs (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo test --workspace --all-targets --features corelane-net/etcd
cargo test --workspace --doc --features corelane-net/etcd
scripts/loom.sh
scripts/asan.sh
