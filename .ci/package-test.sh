#!/usr/bin/env bash
# The Debian package, end to end (issue 15 item 2). As root:
#  1. builds it with cargo-deb from the binary already built (PROFILE, dev
#     by default: the build the tests used; cargo-deb strips it);
#  2. checks its files, modes, owners, conffiles and dependencies;
#  3. installs it with dpkg into a throwaway Debian 12 root (debootstrap,
#     minbase), where its postinst makes the system user vpnmon, and
#     verifies the installed unit with systemd-analyze;
#  4. starts the installed binary in that root as vpnmon with CAP_NET_RAW
#     and no other capability (what the unit grants), inside a lab network
#     namespace this script builds, checks the process's capabilities, runs
#     `vpnmon doctor` there, and shows that it probes a lab host.
# Everything it made (root, namespace, processes) is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${PROFILE:-dev}
case "$PROFILE" in dev) dir=debug ;; *) dir=$PROFILE ;; esac
BIN="$PWD/target/$dir/vpnmon"
CARGO_DEB_VERSION=2.9.3

fail() { echo "package test: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "package test: skipping, needs root"; exit 0; }
[ -x "$BIN" ] || fail "$BIN is not built (cargo build --locked -p vpnmon)"

if ! command -v cargo-deb >/dev/null || ! cargo deb --version | grep -q "$CARGO_DEB_VERSION"; then
    cargo install --locked --quiet "cargo-deb@$CARGO_DEB_VERSION"
fi
command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap >/dev/null
command -v dpkg-shlibdeps >/dev/null || apt-get install -y -qq dpkg-dev >/dev/null

work=$(mktemp -d /tmp/vpnmon-package.XXXXXX)
lab="vpnmonpkg$$"
root="$work/root"
server=""
pid=""
cleanup() {
    set +e
    # $server is the background subshell running as_vpnmon; $pid is the
    # vpnmon process itself (not our child: wait by polling).
    [ -n "$pid" ] && kill "$pid" 2>/dev/null
    for _ in $(seq 50); do
        [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
    "$BIN" lab down --name "$lab" >/dev/null 2>&1
    mountpoint -q "$root/proc" && umount "$root/proc"
    rm -rf "$work"
}
trap cleanup EXIT

echo "== package: build"
cargo deb -p vpnmon --no-build --profile "$PROFILE" --output "$work/vpnmon.deb" >/dev/null
deb="$work/vpnmon.deb"
dpkg-deb -I "$deb"
dpkg-deb -c "$deb" | tee "$work/files"

echo "== package: files and permissions"
want() { # MODE OWNER PATH
    grep -Eq "^$1 $2 +[0-9]+ [0-9-]+ [0-9:]+ (\./)?$3\$" "$work/files" ||
        fail "no $3 with mode $1 and owner $2 in the package"
}
want '-rwxr-xr-x' '0/0' 'usr/bin/vpnmon'
want '-rw-r-----' '0/0' 'etc/vpnmon/vpnmon.toml'
want '-rw-r--r--' '0/0' 'lib/systemd/system/vpnmon.service'
want '-rw-r--r--' '0/0' 'usr/share/doc/vpnmon/README.md'
want '-rw-r--r--' '0/0' 'usr/share/doc/vpnmon/copyright'
want '-rw-r--r--' '0/0' 'usr/share/doc/vpnmon/prometheus/vpnmon.rules.yml'
# Exactly these files (directories aside).
awk '$1 ~ /^-/ {sub(/^\.\//, "", $6); print $6}' "$work/files" | sort >"$work/regular"
sort >"$work/expected" <<'FILES'
etc/vpnmon/vpnmon.toml
lib/systemd/system/vpnmon.service
usr/bin/vpnmon
usr/share/doc/vpnmon/README.md
usr/share/doc/vpnmon/copyright
usr/share/doc/vpnmon/prometheus/prometheus.yml
usr/share/doc/vpnmon/prometheus/vpnmon.rules.test.yml
usr/share/doc/vpnmon/prometheus/vpnmon.rules.yml
FILES
diff -u "$work/expected" "$work/regular" || fail "the package's files differ from the expected list"
dpkg-deb -f "$deb" Depends | grep -q adduser || fail "Depends lacks adduser"
dpkg-deb -I "$deb" conffiles | grep -qx /etc/vpnmon/vpnmon.toml ||
    fail "/etc/vpnmon/vpnmon.toml is not a conffile"
grep -q 'AmbientCapabilities=CAP_NET_RAW$' packaging/debian/vpnmon.service
# The service may start only once its user exists.
dpkg-deb -I "$deb" postinst >"$work/postinst"
user_at=$(grep -n 'adduser --system' "$work/postinst" | head -1 | cut -d: -f1)
start_at=$(grep -n 'deb-systemd-invoke' "$work/postinst" | head -1 | cut -d: -f1)
[ -n "$user_at" ] && [ -n "$start_at" ] && [ "$user_at" -lt "$start_at" ] ||
    fail "postinst starts the service (line $start_at) before it makes the user (line $user_at)"

echo "== package: install into a throwaway Debian root"
debootstrap --variant=minbase --include=adduser,init-system-helpers,systemd bookworm "$root" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 ||
    { tail -20 "$work/debootstrap.log"; fail "debootstrap failed"; }
cp "$deb" "$root/tmp/vpnmon.deb"
chroot "$root" dpkg -i /tmp/vpnmon.deb
chroot "$root" getent passwd vpnmon | grep -q ':/var/lib/vpnmon:/usr/sbin/nologin$' ||
    fail "no system user vpnmon: $(chroot "$root" getent passwd vpnmon)"
stat_of() { chroot "$root" stat -c '%A %U:%G' "$1"; }
[ "$(stat_of /etc/vpnmon/vpnmon.toml)" = "-rw-r----- root:vpnmon" ] || fail "config: $(stat_of /etc/vpnmon/vpnmon.toml)"
[ "$(stat_of /var/lib/vpnmon)" = "drwx------ vpnmon:vpnmon" ] || fail "state dir: $(stat_of /var/lib/vpnmon)"
[ "$(stat_of /usr/bin/vpnmon)" = "-rwxr-xr-x root:root" ] || fail "binary: $(stat_of /usr/bin/vpnmon)"
chroot "$root" /usr/bin/vpnmon --version
systemd-analyze verify --root="$root" /lib/systemd/system/vpnmon.service 2>&1 | tee "$work/verify"
if grep -v 'Failed to put bus name\|Operation not permitted' "$work/verify" | grep -qi 'vpnmon.service'; then
    fail "systemd-analyze verify reports problems in the unit"
fi

echo "== package: the installed binary as vpnmon with only CAP_NET_RAW, in a lab"
"$BIN" lab up --name "$lab" >/dev/null
mount -t proc proc "$root/proc"
as_vpnmon() {
    ip netns exec "$lab" chroot "$root" setpriv --reuid=vpnmon --regid=vpnmon --init-groups \
        --inh-caps=-all,+net_raw --ambient-caps=-all,+net_raw --bounding-set=-all,+net_raw "$@"
}
as_vpnmon /usr/bin/vpnmon doctor --config /etc/vpnmon/vpnmon.toml --eip-pool 198.18.0.1 \
    --listen 127.0.0.1:18480 --metrics-listen off | tee "$work/doctor" || true
if grep -v '^clock: ' "$work/doctor" | grep -v '^no problems found$' | grep -q .; then
    fail "doctor found problems in the installed setup"
fi
as_vpnmon env VPNMON_ADMIN_PASSWORD='Package-pass-123' /usr/bin/vpnmon serve \
    --config /etc/vpnmon/vpnmon.toml --eip-pool 198.18.0.1 --probe-allow 198.18.0.0/15 \
    --listen 127.0.0.1:18480 --metrics-listen off >"$work/server.out" 2>"$work/server.log" &
server=$!
for _ in $(seq 100); do
    grep -q '^listening on' "$work/server.out" && break
    kill -0 "$server" 2>/dev/null || { cat "$work/server.log"; fail "the server exited"; }
    sleep 0.1
done
pid=$(pgrep -f -n '^/usr/bin/vpnmon serve --config /etc/vpnmon/vpnmon.toml')
status="/proc/$pid/status"
uid=$(chroot "$root" id -u vpnmon)
grep -Eq "^Uid:\s+$uid\s" "$status" || fail "the server is not uid $uid: $(grep Uid "$status")"
for cap in CapEff CapPrm CapBnd CapAmb; do
    grep -Eq "^$cap:\s+0000000000002000$" "$status" || fail "$(grep "^$cap" "$status"): want CAP_NET_RAW alone"
done
for f in vpnmon.db vpnmon.key; do
    [ "$(stat_of "/var/lib/vpnmon/$f")" = "-rw------- vpnmon:vpnmon" ] ||
        fail "/var/lib/vpnmon/$f: $(stat_of "/var/lib/vpnmon/$f")"
done
cli() {
    ip netns exec "$lab" env VPNMON_ENDPOINT=http://127.0.0.1:18480 VPNMON_USER=admin \
        VPNMON_PASSWORD='Package-pass-123' PSK='Abcd1234!x' XDG_CACHE_HOME="$work/cache" \
        XDG_CONFIG_HOME="$work/config" "$BIN" "$@"
}
cli login >/dev/null
cli gateway create --name pkg-gw --vpc-id 1b5e0d5a-7e55-4d5a-9d4e-3f1f5a6b7c8d \
    --subnet-id 2c6f1e6b-8f66-4e6b-8e5f-4a2a6b7c8d9e --local-subnet 192.168.0.0/24 >/dev/null
cli customer-gateway create --ip 198.18.1.10 --name pkg-cgw >/dev/null
cli connection create --gateway pkg-gw --customer-gateway pkg-cgw --peer-subnet 10.10.0.0/16 \
    --psk-env PSK --name pkg-conn >/dev/null
mon=$(cli monitor create --connection pkg-conn -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
for _ in $(seq 40); do
    n=$(cli monitor stats "$mon" --since 5m --period 1 -o json |
        python3 -c 'import json,sys; d=json.load(sys.stdin)["datapoints"]; print(sum(1 for p in d if p["link_packet_loss_rate"] == 0 and (p["link_average_latency"] or 0) > 0))')
    [ "$n" -ge 2 ] && break
    sleep 1
done
[ "$n" -ge 2 ] || { cat "$work/server.log"; fail "no windows with replies after 40 s"; }
cli monitor stats "$mon" --since 5m --period 1
echo "package test: ok ($n windows with replies from the installed binary as vpnmon with CAP_NET_RAW only)"
