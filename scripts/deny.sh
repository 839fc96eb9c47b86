#!/usr/bin/env bash
# cargo-deny over the dependency graph (deny.toml): licences, bans (duplicates, wildcard
# versions) and sources, then security advisories when the RustSec database can be fetched
# (it lives on GitHub, which a machine with only package registries cannot reach: then the
# script says so and the advisories are not checked). Installs cargo-deny when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo-deny >/dev/null; then
    cargo install cargo-deny --locked --version '^0.20'
fi
cargo deny check licenses bans sources
if cargo deny fetch >/dev/null 2>&1; then
    cargo deny check --disable-fetch advisories
else
    echo "deny.sh: advisories NOT checked: the RustSec advisory database could not be fetched" >&2
fi
