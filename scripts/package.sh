#!/usr/bin/env bash
# Packages the crates meant for users (corelane, corelane-proto, corelane-net) as `cargo
# publish` would, builds each from its package, and stops before uploading: what a release
# would publish compiles on its own, with its licence files and readme. perf and bench are
# publish = false.
set -euo pipefail
cd "$(dirname "$0")/.."
# The dry run verifies each crate against the others' packages through a local overlay
# registry, whose sources cargo extracts once per version: a second run at the same version
# would build against the first run's sources. Drop those extractions (never crates.io's).
find "${CARGO_HOME:-$HOME/.cargo}/registry/src" -mindepth 2 -maxdepth 2 -path '*/-*/corelane*' -exec rm -rf {} + 2>/dev/null || true
rm -rf target/package/tmp-registry
cargo publish --dry-run --allow-dirty --workspace --exclude corelane-perf --exclude corelane-bench
