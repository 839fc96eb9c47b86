#!/usr/bin/env bash
# The whole test suite: unit, integration and doc tests of every crate (the cluster's against a
# real etcd, which scripts/deps.sh installs with protoc when missing) on glommio and again on the
# portable executor, the loom models of the
# lock-free pieces, then the engine's tests under AddressSanitizer; and the release checks (the
# crates with no optional feature, packaging, MSRV, cargo-deny). This is what CI runs (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo test --workspace --all-targets --features corelane-net/etcd
cargo test --workspace --doc --features corelane-net/etcd
# The same tests on the portable executor (what containers that refuse io_uring get).
CORELANE_EXECUTOR=portable cargo test --workspace --all-targets --features corelane-net/etcd
# The engine's examples run to the end (each checks what it prints).
for example in counter supervision pingpong prometheus; do
    cargo run -q -p corelane --features metrics --example "$example" >/dev/null
done
# The crates build with no optional feature at all (a production build's set).
cargo check -p corelane --no-default-features
cargo check -p corelane-net --no-default-features
# What a release would publish: packaged crates that build on their own, a declared minimum
# Rust version no dependency exceeds, and the dependency graph's licences and sources.
scripts/package.sh
scripts/msrv.sh
scripts/deny.sh
scripts/loom.sh
scripts/asan.sh
