#!/usr/bin/env bash
# SDK conformance suite: official Huawei Cloud Python SDK (3.1.219) against vpnmon.
# Usage: tests/sdk/run.sh [pytest args...]; VPNMON_BIN picks the binary.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$root/.venv-sdk"
export VPNMON_BIN="${VPNMON_BIN:-$root/target/debug/vpnmon}"

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
# (Re)install when the venv is new or requirements.txt changed since the last install.
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" != "$want" ]; then
    "$venv/bin/pip" install --disable-pip-version-check -q -r "$here/requirements.txt"
    echo "$want" > "$venv/.requirements.sha256"
fi

if [ ! -x "$VPNMON_BIN" ]; then
    echo "vpnmon binary not found: $VPNMON_BIN (build it with: cargo build -p vpnmon)" >&2
    exit 1
fi

cd "$here"
exec "$venv/bin/python" -m pytest -v -p no:cacheprovider "$here" "$@"
