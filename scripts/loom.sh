#!/usr/bin/env bash
# Model-checks the SPSC ring, the park/wake protocol and the reply oneshot with loom.
# Builds the engine with --cfg corelane_loom in its own target directory (a cfg of its own: a
# bare `loom` cfg would switch dependencies that know it, concurrent-queue among them, to loom
# too).
set -euo pipefail
cd "$(dirname "$0")/.."
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}"
RUSTFLAGS="--cfg corelane_loom" cargo test -p corelane --release --lib --target-dir target/loom -- loom
