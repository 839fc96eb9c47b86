#!/usr/bin/env bash
# What the cluster tests need beyond a Rust toolchain, installed when missing (idempotent):
# etcd (the `etcd-server` package) for the membership tests, and `protoc` (`protobuf-compiler`,
# with the well-known types of `libprotobuf-dev`) for the `etcd-client` crate's build (the `etcd`
# feature of corelane-net). The perf harness (the README's first command) needs none of them.
set -euo pipefail
need=()
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
command -v protoc >/dev/null 2>&1 || need+=(protobuf-compiler)
[ -e /usr/include/google/protobuf/descriptor.proto ] || need+=(libprotobuf-dev)
[ ${#need[@]} -eq 0 ] && exit 0
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "deps.sh: need root (or sudo) to install: ${need[*]}" >&2; exit 1; }
    sudo="sudo"
fi
echo "deps.sh: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# etcd-server's maintainer scripts would start a system etcd on the default ports: keep it off.
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod +x /usr/sbin/policy-rc.d
    trap '$sudo rm -f /usr/sbin/policy-rc.d' EXIT
fi
$sudo apt-get update -qq >/dev/null || true
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
