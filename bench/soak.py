#!/usr/bin/env python3
"""Soak: vpnmon at 10 000 monitors for 30 minutes with API traffic and one
restart in the middle (issue 15 item 7).

Run as root (it builds the probe bench's lab namespaces; everything it sends
stays inside them, addressed in 198.18.0.0/15):

    sudo python3 bench/soak.py                       # 30 min, 10 000 monitors
    sudo python3 bench/soak.py --minutes 3 --monitors 1000   # a quick look

The lab is bench/probe_bench.py's (kernel echo for every target). The
monitors are bulk-loaded (`admin bulk-monitors`), then vpnmon (the release
binary) serves them on SQLite. A traffic process inside the gateway's
namespace drives the API all the time, about 10 requests/s: it creates a
customer gateway, a connection and a monitor, lists monitors page by page,
reads a random monitor's state and its last hour from Cloud Eye
(`metric-data`, raw windows), and deletes what it created a minute earlier,
so the set of monitors stays near the bulk-loaded size. At half time vpnmon
is stopped (SIGTERM) and started again on the same data directory.

Every 10 s it samples vpnmon's RSS, open file descriptors, the data
directory's size on disk, and the process CPU per probe sent over the last
10 s (utime+stime from /proc over `vpnmon_probe_sent_total`). It writes the
samples as JSON and a plot (SVG, four panels, the restart marked) to
bench/results/, and prints a summary: memory growth over each run after a
5-minute warm-up (least-squares slope over the run's span, as a share of its
mean) and over the last 20 minutes, end against start, as the issue words
it (that span holds the restart).
"""

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import probe_bench as pb  # noqa: E402

PASSWORD = "Bench-pass-123"
API = f"http://{pb.API}"
CHURN_BASE = 200  # API-created customer gateways at 198.18.200.1 and up


# ------------------------------------------------------------------ traffic
# Runs inside vb-gw (`--traffic`), where the API listens on loopback.

def call(method, path, token=None, body=None, timeout=30):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(API + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("X-Auth-Token", token)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            return r.status, (json.loads(raw) if raw else None), r.headers
    except urllib.error.HTTPError as e:
        return e.code, None, e.headers


def login():
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "password": PASSWORD, "domain": {"name": "vpnmon"}}}},
        "scope": {"project": {"name": "local-1"}}}}
    st, b, h = call("POST", "/v3/auth/tokens", body=body)
    if st != 201:
        raise RuntimeError(f"login: {st}")
    return h["X-Subject-Token"], b["token"]["project"]["id"]


def traffic(stats_path):
    counts = {}

    def note(kind, status):
        key = f"{kind} {status}"
        counts[key] = counts.get(key, 0) + 1

    token = project = None
    gateway = eip = None
    live = []  # (created_at, cgw, conn, monitor)
    seq = 0
    last_write = 0.0
    while True:
        try:
            if token is None:
                token, project = login()
                v5 = f"/v5/{project}"
                if gateway is None:
                    st, b, _ = call("POST", f"{v5}/vpn-gateways", token, {"vpn_gateway": {
                        "vpc_id": "1b5e0d5a-7e55-4d5a-9d4e-3f1f5a6b7c8d",
                        "connect_subnet": "2c6f1e6b-8f66-4e6b-8e5f-4a2a6b7c8d9e",
                        "local_subnets": ["192.168.0.0/24"],
                        "eip1": {"type": "5_bgp", "bandwidth_size": 10}}})
                    gateway = b["vpn_gateway"]["id"]
                    _, b, _ = call("GET", f"{v5}/vpn-gateways/{gateway}", token)
                    eip = b["vpn_gateway"]["eip1"]["id"]
            now = time.time()
            # One create of a monitored link a second, deleted a minute later.
            if now - last_write >= 1.0:
                last_write = now
                seq += 1
                addr = f"198.18.{CHURN_BASE + (seq // 250) % 50}.{seq % 250 + 1}"
                st, b, _ = call("POST", f"{v5}/customer-gateways", token,
                                {"customer_gateway": {"id_value": addr, "name": f"soak-{seq}"}})
                note("create cgw", st)
                if st == 201:
                    cgw = b["customer_gateway"]["id"]
                    st, b, _ = call("POST", f"{v5}/vpn-connection", token, {"vpn_connection": {
                        "vgw_id": gateway, "vgw_ip": eip, "cgw_id": cgw,
                        "peer_subnets": ["10.10.0.0/16"], "psk": "Abcd1234!x"}})
                    note("create connection", st)
                    conn = b["vpn_connection"]["id"] if st == 201 else None
                    mon = None
                    if conn:
                        st, b, _ = call("POST", f"{v5}/connection-monitors", token,
                                        {"connection_monitor": {"vpn_connection_id": conn}})
                        note("create monitor", st)
                        mon = b["connection_monitor"]["id"] if st == 201 else None
                    live.append((now, cgw, conn, mon))
                while live and now - live[0][0] > 60:
                    _, cgw, conn, mon = live.pop(0)
                    if mon:
                        note("delete monitor", call("DELETE", f"{v5}/connection-monitors/{mon}", token)[0])
                    if conn:
                        note("delete connection", call("DELETE", f"{v5}/vpn-connection/{conn}", token)[0])
                    note("delete cgw", call("DELETE", f"{v5}/customer-gateways/{cgw}", token)[0])
            # Reads: a page of monitors, one monitor's state and its last hour.
            st, b, _ = call("GET", f"{v5}/connection-monitors?limit=100", token)
            note("list monitors", st)
            mons = (b or {}).get("connection_monitors") or []
            if mons:
                m = random.choice(mons)
                note("state", call("GET", f"/vpnmon/{project}/monitors/{m['id']}/state", token)[0])
                to = int(time.time() * 1000)
                q = (f"/V1.0/{project}/metric-data?namespace=SYS.VPN&metric_name=link_average_latency"
                     f"&dim.0=evpn_connection_id,{m['vpn_connection_id']}&filter=average&period=1"
                     f"&from={to - 3600_000}&to={to}")
                note("ces metric-data", call("GET", q, token)[0])
            time.sleep(0.25)
        except (OSError, urllib.error.URLError, KeyError, TypeError, RuntimeError) as e:
            # vpnmon restarting: wait and log in again.
            note(f"error {type(e).__name__}", 0)
            token = None
            time.sleep(1)
        with open(stats_path + ".tmp", "w") as f:
            json.dump(counts, f)
        os.replace(stats_path + ".tmp", stats_path)


# ------------------------------------------------------------------ sampling

def dir_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.stat(os.path.join(root, f)).st_blocks * 512
            except FileNotFoundError:
                pass
    return total


def serve_pid(vp):
    # `ip netns exec` execs the binary, so the Popen PID is vpnmon's.
    return vp.proc.pid


def sample(vp, data, t0, last):
    pid = serve_pid(vp)
    cpu = pb.proc_cpu(pid)
    sent = vp.metrics().get("vpnmon_probe_sent_total", 0.0)
    s = {
        "t": round(time.time() - t0, 1),
        "rss_mb": round(pb.proc_rss_kb(pid) / 1024, 2),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
        "db_mb": round(dir_bytes(data) / 1e6, 2),
        "pid": pid,
        "cpu_s": cpu,
        "sent": sent,
    }
    if last and last["pid"] == pid and sent > last["sent"]:
        s["us_per_probe"] = round((cpu - last["cpu_s"]) / (sent - last["sent"]) * 1e6, 2)
    return s


def slope_share(points):
    """Least-squares growth over the points' span, as a share of their mean."""
    if len(points) < 3:
        return None
    n = len(points)
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    sxx = sum((p[0] - mx) ** 2 for p in points)
    sxy = sum((p[0] - mx) * (p[1] - my) for p in points)
    span = points[-1][0] - points[0][0]
    return (sxy / sxx) * span / my if sxx and my else None


# ------------------------------------------------------------------ plot

def svg(samples, restart_t, title):
    panels = [("rss_mb", "RSS (MB)"), ("fds", "open files"), ("db_mb", "data directory (MB)"),
              ("us_per_probe", "CPU per probe (µs)")]
    w, ph, left, top = 900, 170, 70, 40
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{top + ph * len(panels) + 30}" '
           f'font-family="sans-serif" font-size="11">',
           f'<rect width="100%" height="100%" fill="white"/>',
           f'<text x="{left}" y="20" font-size="14">{title}</text>']
    tmax = max(s["t"] for s in samples) or 1
    for i, (key, label) in enumerate(panels):
        y0 = top + i * ph
        pts = [(s["t"], s[key]) for s in samples if s.get(key) is not None]
        if not pts:
            continue
        vals = sorted(p[1] for p in pts)
        lo, hi = 0, vals[int(len(vals) * 0.99) - 1 if len(vals) > 100 else -1] * 1.15 or 1
        ix = lambda t: left + (t / tmax) * (w - left - 20)  # noqa: E731
        iy = lambda v: y0 + ph - 25 - (min(v, hi) - lo) / (hi - lo) * (ph - 45)  # noqa: E731
        out.append(f'<text x="{left}" y="{y0 + 12}">{label}</text>')
        out.append(f'<line x1="{left}" y1="{iy(0)}" x2="{w - 20}" y2="{iy(0)}" stroke="#999"/>')
        out.append(f'<line x1="{left}" y1="{iy(hi)}" x2="{left}" y2="{iy(0)}" stroke="#999"/>')
        for v in (0, hi / 2, hi):
            out.append(f'<text x="{left - 6}" y="{iy(v) + 4}" text-anchor="end">{v:.3g}</text>')
        for m in range(0, int(tmax / 60) + 1, 5):
            out.append(f'<text x="{ix(m * 60)}" y="{iy(0) + 14}" text-anchor="middle">{m} min</text>')
        if restart_t is not None:
            out.append(f'<line x1="{ix(restart_t)}" y1="{y0 + 16}" x2="{ix(restart_t)}" y2="{iy(0)}" '
                       f'stroke="#c33" stroke-dasharray="4 3"/>')
        # Split the line at the restart (a new process).
        segs, cur, pid = [], [], None
        for s in samples:
            if s.get(key) is None:
                continue
            if pid is not None and s["pid"] != pid:
                segs.append(cur)
                cur = []
            pid = s["pid"]
            cur.append(f"{ix(s['t']):.1f},{iy(s[key]):.1f}")
        segs.append(cur)
        for seg in segs:
            if seg:
                out.append(f'<polyline fill="none" stroke="#1f6fb4" stroke-width="1.5" points="{" ".join(seg)}"/>')
    out.append("</svg>")
    return "\n".join(out)


# ------------------------------------------------------------------ main

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--monitors", type=int, default=10000)
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--warmup-minutes", type=float, default=5)
    ap.add_argument("--binary", default="target/release/vpnmon")
    ap.add_argument("--out", default="bench/results")
    ap.add_argument("--traffic", help=argparse.SUPPRESS)  # internal: the traffic process
    a = ap.parse_args()
    if a.traffic:
        traffic(a.traffic)
        return
    if os.geteuid() != 0:
        sys.exit("soak: needs root (network namespaces)")
    binary = os.path.abspath(a.binary)
    tmp = tempfile.mkdtemp(prefix="vpnmon-soak.")
    data = os.path.join(tmp, "db")
    stats = os.path.join(tmp, "traffic.json")
    # The bulk load makes the admin user: with the password traffic logs in with.
    os.environ["VPNMON_ADMIN_PASSWORD"] = PASSWORD
    pb.lab_up()
    vp = pb.Vpnmon(binary, data, 10)
    tr = None
    try:
        pb.log(f"seeding {a.monitors} monitors")
        vp.seed(pb.targets(pb.FAST_BASE, a.monitors))
        vp.start()
        tr = subprocess.Popen(pb.in_ns(pb.NS_GW, sys.executable, os.path.abspath(__file__),
                                       "--traffic", stats), stderr=subprocess.DEVNULL)
        t0 = time.time()
        end = t0 + a.minutes * 60
        half = t0 + a.minutes * 30
        restart_t = None
        samples, last = [], None
        next_at = t0
        while time.time() < end:
            if restart_t is None and time.time() >= half:
                pb.log("restart (SIGTERM, start on the same data directory)")
                vp.stop()
                vp.start()
                restart_t = round(time.time() - t0, 1)
            s = sample(vp, data, t0, last)
            samples.append(s)
            last = s
            if len(samples) % 6 == 0:
                pb.log(f"t={s['t']:.0f}s rss={s['rss_mb']} MB fds={s['fds']} db={s['db_mb']} MB "
                       f"cpu/probe={s.get('us_per_probe')} µs")
            next_at += 10
            time.sleep(max(0, next_at - time.time()))
    finally:
        if tr:
            tr.send_signal(signal.SIGTERM)
            tr.wait()
        vp.stop()
        pb.lab_down()
    traffic_counts = json.load(open(stats)) if os.path.exists(stats) else {}

    warm = a.warmup_minutes * 60
    runs = []
    for seg_start, seg_end in ((0, restart_t), (restart_t, samples[-1]["t"] + 1)):
        pts = [(s["t"], s["rss_mb"]) for s in samples if seg_start + warm <= s["t"] < seg_end]
        runs.append(None if not pts else {
            "from_s": pts[0][0], "to_s": pts[-1][0],
            "rss_first_mb": pts[0][1], "rss_last_mb": pts[-1][1],
            "growth_share": slope_share(pts)})
    last20 = [s for s in samples if s["t"] >= samples[-1]["t"] - 20 * 60]
    probe_costs = sorted(s["us_per_probe"] for s in samples if s.get("us_per_probe"))
    summary = {
        "bench": "soak", "monitors": a.monitors, "minutes": a.minutes, "restart_s": restart_t,
        "samples": len(samples), "runs_after_warmup": runs,
        "last_20_min_rss_growth_share": (last20[-1]["rss_mb"] - last20[0]["rss_mb"]) / last20[0]["rss_mb"],
        "rss_mb_max": max(s["rss_mb"] for s in samples),
        "fds_max": max(s["fds"] for s in samples),
        "db_mb_first": samples[0]["db_mb"], "db_mb_last": samples[-1]["db_mb"],
        "us_per_probe_median": probe_costs[len(probe_costs) // 2] if probe_costs else None,
        "traffic": traffic_counts,
        "binary": binary, "time": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    os.makedirs(a.out, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M", time.gmtime())
    base = os.path.join(a.out, f"soak-{a.monitors}-{stamp}")
    with open(base + ".json", "w") as f:
        json.dump({"summary": summary, "samples": samples}, f, indent=1)
    with open(base + ".svg", "w") as f:
        f.write(svg(samples, restart_t,
                    f"vpnmon soak: {a.monitors} monitors, {a.minutes:g} min, API traffic, "
                    f"restart at {restart_t / 60:.1f} min ({summary['time']})"))
    print(json.dumps(summary))
    pb.log(f"wrote {base}.json and {base}.svg")


if __name__ == "__main__":
    main()
