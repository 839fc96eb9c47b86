#!/usr/bin/env bash
# Fuzzes the wire decoders (frame decoder, envelope decoder) with cargo-fuzz (libFuzzer), each
# for FUZZ_SECONDS (default 60). Installs cargo-fuzz if missing. The toolchain is stable, so the
# sanitizer flags cargo-fuzz needs are enabled with RUSTC_BOOTSTRAP. Corpora and crashes stay in
# proto/fuzz/{corpus,artifacts} (not committed).
set -euo pipefail
cd "$(dirname "$0")/../proto"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
secs="${FUZZ_SECONDS:-60}"
for target in frame_decoder envelope_decoder; do
    RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" -- -max_total_time="$secs" -max_len=4096
done
