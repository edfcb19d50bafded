#!/usr/bin/env bash
# Runs the lab tests (crates/lab and vpnmon's tests/lab.rs) as an
# unprivileged user, to show that they need no root: a test that may not
# build a lab runs itself again inside `unshare --user --net --mount` and
# passes there. As root it drops to uid/gid 65534 first; as anyone else it
# runs the tests as that user. Needs unprivileged user namespaces (on Ubuntu
# 24.04: sysctl kernel.apparmor_restrict_unprivileged_userns=0).
set -euo pipefail
cd "$(dirname "$0")/.."

mapfile -t bins < <(
    cargo test --locked -p lab -p vpnmon --test lab --no-run --message-format=json 2>/dev/null |
        python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "lab":
        print(m["executable"])
'
)
[ "${#bins[@]}" -eq 2 ] || { echo "expected 2 lab test binaries, found: ${bins[*]}" >&2; exit 1; }

as_user=()
if [ "$(id -u)" -eq 0 ]; then
    as_user=(setpriv --reuid=65534 --regid=65534 --clear-groups env HOME=/tmp TMPDIR=/tmp)
fi
for bin in "${bins[@]}"; do
    echo "== $(basename "$bin") as uid $([ "${#as_user[@]}" -gt 0 ] && echo 65534 || id -u)"
    out=$("${as_user[@]}" "$bin" --test-threads=1 --nocapture 2>&1) || { echo "$out"; exit 1; }
    echo "$out" | grep -E "passed inside|SKIP|skipping|test result" || true
    if echo "$out" | grep -qE "SKIP|skipping"; then
        echo "lab tests skipped instead of running in a user namespace" >&2
        exit 1
    fi
done
