#!/usr/bin/env bash
# Model-checks the SPSC ring, the park/wake protocol and the reply oneshot with loom.
# Builds the engine with --cfg loom in its own target directory.
set -euo pipefail
cd "$(dirname "$0")/.."
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}"
RUSTFLAGS="--cfg loom" cargo test -p corelane --release --lib --target-dir target/loom -- loom
