#!/usr/bin/env bash
# Checks the declared minimum Rust version (`rust-version` in Cargo.toml) against what can be
# checked with the one toolchain this machine has: no dependency that a published crate builds
# with (normal and build dependencies, on this host, all features) declares a newer one. The
# project's own code is held to it by clippy's `incompatible_msrv` lint (scripts/lint.sh), which
# reads the same field. An older toolchain cannot be fetched here, so this is not a build with
# the old compiler; it catches what usually breaks one.
set -euo pipefail
cd "$(dirname "$0")/.."
host="$(rustc -vV | sed -n 's/^host: //p')"
declared="$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)"
deps="$(for c in corelane corelane-proto corelane-net; do
    cargo tree -p "$c" --all-features -e normal,build --target "$host" --prefix none -f '{p}' 2>/dev/null
done | awk '{print $1 "@" $2}' | sed 's/@v/@/' | sort -u)"
cargo metadata --format-version 1 --all-features 2>/dev/null | DECLARED="$declared" DEPS="$deps" python3 -c '
import json, os, sys
m = json.load(sys.stdin)
want = set(os.environ["DEPS"].split())
declared = os.environ["DECLARED"]
def key(v):
    parts = [int(x) for x in v.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))
newer = sorted(
    (p["name"], p["version"], p["rust_version"])
    for p in m["packages"]
    if p["name"] + "@" + p["version"] in want and p.get("rust_version") and key(p["rust_version"]) > key(declared)
)
print(f"declared rust-version {declared}; {len(want)} dependencies checked")
for n, v, r in newer:
    print(f"  {n} {v} needs Rust {r}")
sys.exit(1 if newer else 0)
'
