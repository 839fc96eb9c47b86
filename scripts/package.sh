#!/usr/bin/env bash
# Packages the crates meant for users (corelane, corelane-proto, corelane-net) as `cargo
# publish` would, builds each from its package, and stops before uploading: what a release
# would publish compiles on its own, with its licence files and readme. perf and bench are
# publish = false.
set -euo pipefail
cd "$(dirname "$0")/.."
# The dry run verifies each crate against the others' packages through a local overlay
# registry. Cargo takes a registry crate of a given version as immutable: it extracts its
# sources once and reuses what it built from them, so a second run at the same version would
# verify against the first run's code. Drop both (the extractions, never crates.io's, and
# what was built of these crates).
find "${CARGO_HOME:-$HOME/.cargo}/registry/src" -mindepth 2 -maxdepth 2 -path '*/-*/corelane*' -exec rm -rf {} + 2>/dev/null || true
rm -rf target/package/tmp-registry
cargo clean -q -p corelane -p corelane-proto -p corelane-net
cargo publish --dry-run --allow-dirty --workspace --exclude corelane-perf --exclude corelane-bench
