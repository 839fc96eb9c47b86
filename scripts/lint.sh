#!/usr/bin/env bash
# Formatting and clippy, warnings as errors.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# The etcd membership provider too (needs protoc: scripts/deps.sh).
scripts/deps.sh
cargo clippy --workspace --all-targets --features corelane-net/etcd -- -D warnings
# The peers binary (actix, kameo, ractor; opt-in feature of corelane-bench).
cargo clippy -p corelane-bench --features peers --all-targets -- -D warnings
# The API docs build without a broken link or a warning.
RUSTDOCFLAGS="-D warnings" cargo doc -q --no-deps --all-features -p corelane -p corelane-proto -p corelane-net
