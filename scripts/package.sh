#!/usr/bin/env bash
# Packages the crates meant for users (corelane, corelane-proto, corelane-net) as `cargo
# publish` would, builds each from its package, and stops before uploading: what a release
# would publish compiles on its own, with its licence files and readme. perf and bench are
# publish = false.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo publish --dry-run --allow-dirty --workspace --exclude corelane-perf --exclude corelane-bench
