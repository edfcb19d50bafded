#!/usr/bin/env bash
# Screenshots of the dashboard from a real lab run, for docs/: a lab
# (network namespace, 198.18.0.0/15 answering) with a clean group, 30 %
# loss, 20 +- 5 ms delay and a dead group; vpnmon probing in the lab; after
# MINUTES of probing, Chromium (inside the lab too, on its loopback) takes
# the overview and one detail page. Run as root, after `cargo build` and
# `npm ci` in tests/browser. Traffic never leaves the lab's namespace.
#
#   scripts/dashboard-lab-screenshots.sh [MINUTES] [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
minutes="${1:-8}"
out="$(realpath -m "${2:-docs}")"
bin="${VPNMON_BIN:-$PWD/target/debug/vpnmon}"
lab=vpnmon-shots
data="$(mktemp -d)"
export VPNMON_ADMIN_PASSWORD='Admin-pass-123'

cleanup() {
    if [ -n "${server:-}" ]; then
        kill "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    "$bin" lab down --name "$lab" >/dev/null 2>&1 || true
    rm -rf "$data"
}
trap cleanup EXIT

"$bin" lab up --name "$lab"
"$bin" lab impair --name "$lab" --targets 198.18.20.0/24 --loss 30
"$bin" lab impair --name "$lab" --targets 198.18.30.0/24 --delay 20ms --jitter 5ms
"$bin" lab impair --name "$lab" --targets 198.18.40.0/24 --loss 100

inlab() { ip netns exec "$lab" "$@"; }
# Not through the shell function: `ip netns exec` becomes vpnmon itself, so
# $! is vpnmon's PID.
ip netns exec "$lab" "$bin" serve --data-dir "$data" --listen 127.0.0.1:18080 --metrics-listen off \
    --eip-pool 198.18.0.1-198.18.0.8 --probe-allow 198.18.0.0/15 >"$data/serve.log" 2>&1 &
server=$!
for _ in $(seq 50); do
    grep -q 'listening on' "$data/serve.log" && break
    sleep 0.2
done

export VPNMON_ENDPOINT=http://127.0.0.1:18080 VPNMON_USER=admin VPNMON_PASSWORD="$VPNMON_ADMIN_PASSWORD"
export XDG_CACHE_HOME="$data/cache" PSK='Abcd1234!x'
cli() { inlab env VPNMON_ENDPOINT="$VPNMON_ENDPOINT" VPNMON_USER="$VPNMON_USER" \
    VPNMON_PASSWORD="$VPNMON_PASSWORD" XDG_CACHE_HOME="$XDG_CACHE_HOME" PSK="$PSK" "$bin" "$@"; }
id_of() { python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'; }
cli login >/dev/null
gw=$(cli gateway create --vpc-id 1b5e0d5a-7e55-4d5a-9d4e-3f1f5a6b7c8d \
    --subnet-id 2c6f1e6b-8f66-4e6b-8e5f-4a2a6b7c8d9e --local-subnet 192.168.0.0/24 -o json | id_of)
detail=
for spec in frankfurt:198.18.10.5 lagos-30pct-loss:198.18.20.5 tokyo-20ms:198.18.30.5 \
    oslo-down:198.18.40.5; do
    name=${spec%%:*} addr=${spec#*:}
    cgw=$(cli customer-gateway create --ip "$addr" --name "$name" -o json | id_of)
    conn=$(cli connection create --gateway "$gw" --customer-gateway "$cgw" --name "$name" \
        --peer-subnet "10.$((RANDOM % 200)).0.0/16" --psk-env PSK -o json | id_of)
    mon=$(cli monitor create --connection "$conn" -o json | id_of)
    [ "$name" = lagos-30pct-loss ] && detail=$mon
done
echo "probing for $minutes minutes..."
sleep $((minutes * 60))
inlab env VPNMON_BASE=http://127.0.0.1:18080 VPNMON_USER=admin VPNMON_PASSWORD="$VPNMON_PASSWORD" \
    VPNMON_MONITOR="$detail" VPNMON_SCREENSHOTS="$out" node tests/browser/lab-screenshots.mjs
