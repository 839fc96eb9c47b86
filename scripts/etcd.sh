#!/usr/bin/env bash
# A throwaway etcd on loopback for the cluster tests: data in a temp dir, no fsync, quiet.
# Installs etcd (scripts/deps.sh) when it is missing.
#
#   scripts/etcd.sh start [CLIENT_PORT]   start in the background; prints the endpoint and the
#                                         state dir (for stop); default port 23790
#   scripts/etcd.sh stop STATE_DIR        stop it and delete its data
#   scripts/etcd.sh run DATA_DIR CLIENT_PORT PEER_PORT
#                                         run in the foreground (exec: the caller's child is etcd
#                                         itself, so tests can freeze, kill and restart it)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
command -v etcd >/dev/null 2>&1 || "$here/deps.sh"

run() {
    local dir="$1" client="$2" peer="$3"
    exec etcd --name corelane-test --data-dir "$dir" --unsafe-no-fsync \
        --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
        --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
        --initial-cluster "corelane-test=http://127.0.0.1:$peer" --log-level error --logger zap
}

healthy() {
    # etcd answers {"health":"true"} on /health once it has a leader.
    { exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
    printf 'GET /health HTTP/1.0\r\n\r\n' >&3
    grep -q '"health":"true"' <&3
    local ok=$?
    exec 3>&-
    return $ok
}

case "${1:-}" in
    run)
        [ $# -eq 4 ] || { echo "usage: $0 run DATA_DIR CLIENT_PORT PEER_PORT" >&2; exit 2; }
        run "$2" "$3" "$4"
        ;;
    start)
        client="${2:-23790}"
        peer=$((client + 1))
        state="$(mktemp -d /tmp/corelane-etcd.XXXXXX)"
        ( run "$state/data" "$client" "$peer" ) >"$state/log" 2>&1 &
        echo $! >"$state/pid"
        for _ in $(seq 100); do
            if healthy "$client"; then
                echo "etcd at 127.0.0.1:$client (state $state)"
                exit 0
            fi
            sleep 0.1
        done
        echo "etcd did not become healthy; log:" >&2
        cat "$state/log" >&2
        kill "$(cat "$state/pid")" 2>/dev/null || true
        exit 1
        ;;
    stop)
        [ -n "${2:-}" ] && [ -f "$2/pid" ] || { echo "usage: $0 stop STATE_DIR" >&2; exit 2; }
        kill "$(cat "$2/pid")" 2>/dev/null || true
        rm -rf "$2"
        ;;
    *)
        echo "usage: $0 start [CLIENT_PORT] | stop STATE_DIR | run DATA_DIR CLIENT_PORT PEER_PORT" >&2
        exit 2
        ;;
esac
