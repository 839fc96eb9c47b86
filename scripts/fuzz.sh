#!/usr/bin/env bash
# Fuzzes the wire decoders with cargo-fuzz (libFuzzer), each for FUZZ_SECONDS (default 60): the
# frame decoder, the envelope decoder, the system-message and error decoders, and a node's
# inbound stream (the sans-IO StreamReader the transport runs, fed arbitrary chunks). Name
# targets as arguments to run only those. Installs cargo-fuzz if missing. The toolchain is stable, so the
# sanitizer flags cargo-fuzz needs are enabled with RUSTC_BOOTSTRAP. Corpora and crashes stay in
# proto/fuzz/{corpus,artifacts} (not committed).
set -euo pipefail
cd "$(dirname "$0")/../proto"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
secs="${FUZZ_SECONDS:-60}"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(frame_decoder envelope_decoder system_messages stream_reader)
for target in "${targets[@]}"; do
    RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" -- -max_total_time="$secs" -max_len=4096
done
