#!/usr/bin/env bash
# Runs the engine's unit and integration tests under AddressSanitizer (use after free, double
# free, out-of-bounds accesses in the engine's unsafe code, including what user code reached
# through it). The toolchain is stable, so the sanitizer flag is enabled with RUSTC_BOOTSTRAP;
# the standard library is not rebuilt (its allocations still go through ASan's allocator).
# Builds in its own target directory. Leak checking is off: runtimes in tests are dropped at
# process exit by design in a few places, and leaks are not what this looks for.
set -euo pipefail
cd "$(dirname "$0")/.."
target="$(rustc -vV | sed -n 's/^host: //p')"
export RUSTC_BOOTSTRAP=1
export RUSTFLAGS="-Zsanitizer=address -Cunsafe-allow-abi-mismatch=sanitizer"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1:malloc_fill_byte=170:max_free_fill_size=4096}"
cargo test -p corelane --lib --tests --target "$target" --target-dir target/asan "$@"
