#!/usr/bin/env bash
# The whole test suite: unit, integration and doc tests of every crate, the loom models of the
# lock-free pieces, then the engine's tests under AddressSanitizer. This is what CI runs (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --all-targets
cargo test --workspace --doc
scripts/loom.sh
scripts/asan.sh
