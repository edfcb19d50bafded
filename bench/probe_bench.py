#!/usr/bin/env python3
"""vpnmon probe engine vs fping, side by side, on lab targets.

Run as root (it builds network namespaces). Everything it sends stays inside
the namespaces it creates, addressed in 198.18.0.0/15, and every run is
bounded in count and time.

    sudo python3 bench/probe_bench.py --monitors 1000
    sudo python3 bench/probe_bench.py --monitors 100000 --measure 30

Lab: namespace `vb-gw` holds the gateway EIPs (198.18.0.1-8) and runs vpnmon
and fping; `vb-hosts` answers every address of 198.18.0.0/15 with kernel
echo (one `local` route; targets start at 198.18.1.0); `vb-slow` answers
198.19.200.0/24 through the lab's userspace responder with a fixed 20 ms
delay. veth pairs join them.

For N monitors (3 probes per 10 s window each, i.e. 0.3 N probes/s):
  vpnmon: the whole process (engine, store writes, rollups) is measured over
  --measure seconds after --warmup: CPU s per 1000 probes (utime+stime from
  /proc), achieved probe rate vs schedule, mean send lateness and the share
  sent > 5 ms late, RSS growth per monitor (vs the same binary with no
  monitors: at the end, and the mean and largest of once-a-second readings), false loss (received/sent with kernel echo), window RTTs from
  the stored datapoints (p50/p99 of per-window max).
  fping: the same targets at the same per-target rate (-p 3333 ms) for the
  same time, split over several processes above 6000 probes/s (fping's
  sequence-number cap is 65535 per 10 s); CPU from wait4 rusage.
  Delay check (--delay-monitors): monitors to the 20 ms responder; RTT error
  = measured - 20 ms, for vpnmon (per-probe RTTs are not stored, so window
  min/avg/max) and fping (-C per-probe RTTs).
  Alarm rules (--alarm-rules): the same vpnmon measurement twice in one run,
  without rules and with one Cloud Eye rule per monitor
  (link_packet_loss_rate >= 50 %, period 1, count 2, no actions: evaluated
  with every window as it is stored; already `ok`, as after their first
  window), to give the steady-state cost of evaluation as a ratio of CPU per
  probe. The rules are written into the seeded SQLite store
  before vpnmon starts, in the body format the API stores.
Prints one JSON line per tool and a table; --out appends the JSON lines.
"""

import argparse
import ipaddress
import json
import math
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

NS_GW, NS_HOSTS, NS_SLOW = "vb-gw", "vb-hosts", "vb-slow"
EIP_POOL = "198.18.0.1-198.18.0.8"
FAST_BASE = ipaddress.IPv4Address("198.18.1.0")
SLOW_BASE = ipaddress.IPv4Address("198.19.200.1")
SLOW_NET = ipaddress.ip_network("198.19.200.0/24")
MAX_MONITORS = 110000  # 198.18.1.0 + N stays below the slow group
API = "127.0.0.1:18080"
METRICS = "127.0.0.1:19180"
HZ = os.sysconf("SC_CLK_TCK")
FPING_MAX_PPS = 6000


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def sh(*args, check=True, **kw):
    return subprocess.run(list(args), check=check, text=True, capture_output=True, **kw)


def in_ns(ns, *args):
    return ["ip", "netns", "exec", ns, *args]


def lab_down():
    for ns in (NS_GW, NS_HOSTS, NS_SLOW):
        sh("ip", "netns", "del", ns, check=False)


def lab_up():
    lab_down()
    for ns in (NS_GW, NS_HOSTS, NS_SLOW):
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
    # gw <-> hosts (kernel echo), gw <-> slow (responder)
    sh("ip", "link", "add", "vb-g0", "netns", NS_GW, "type", "veth", "peer", "name", "vb-h0", "netns", NS_HOSTS)
    sh("ip", "link", "add", "vb-g1", "netns", NS_GW, "type", "veth", "peer", "name", "vb-s0", "netns", NS_SLOW)
    sh("ip", "-n", NS_GW, "addr", "add", "198.19.255.1/30", "dev", "vb-g0")
    sh("ip", "-n", NS_HOSTS, "addr", "add", "198.19.255.2/30", "dev", "vb-h0")
    sh("ip", "-n", NS_GW, "addr", "add", "198.19.255.5/30", "dev", "vb-g1")
    sh("ip", "-n", NS_SLOW, "addr", "add", "198.19.255.6/30", "dev", "vb-s0")
    for ns, dev in ((NS_GW, "vb-g0"), (NS_GW, "vb-g1"), (NS_HOSTS, "vb-h0"), (NS_SLOW, "vb-s0")):
        sh("ip", "-n", ns, "link", "set", dev, "up")
    # The gateway's EIPs are local addresses of vb-gw.
    sh("ip", "-n", NS_GW, "addr", "add", "198.18.0.1/29", "dev", "lo")
    sh("ip", "-n", NS_GW, "route", "add", "198.18.0.0/15", "via", "198.19.255.2", "dev", "vb-g0")
    sh("ip", "-n", NS_GW, "route", "add", "198.19.200.0/24", "via", "198.19.255.6", "dev", "vb-g1")
    # Every address answers (anyip), except the gateway's /24, which routes back.
    sh("ip", "-n", NS_HOSTS, "route", "add", "local", "198.18.0.0/15", "dev", "lo")
    sh("ip", "-n", NS_HOSTS, "route", "add", "198.18.0.0/24", "via", "198.19.255.1")
    sh("ip", "-n", NS_SLOW, "route", "add", "local", "198.19.200.0/24", "dev", "lo")
    sh("ip", "-n", NS_SLOW, "route", "add", "198.18.0.0/24", "via", "198.19.255.5")
    for ns in (NS_HOSTS, NS_SLOW):
        sh(*in_ns(ns, "sysctl", "-qw", "net.ipv4.icmp_ratelimit=0"))
        sh(*in_ns(ns, "sysctl", "-qw", "net.ipv4.icmp_msgs_per_sec=1000000000"))
    sh(*in_ns(NS_SLOW, "sysctl", "-qw", "net.ipv4.icmp_echo_ignore_all=1"))


def targets(base, n):
    return [str(base + i) for i in range(n)]


def proc_cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ  # utime + stime


def proc_rss_kb(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def urlopen_in_ns(url):
    # The API listens inside vb-gw; reach it through curl in the namespace.
    return sh(*in_ns(NS_GW, "curl", "-s", "--max-time", "5", url)).stdout


class Vpnmon:
    def __init__(self, binary, data_dir, interval, extra=()):
        self.binary, self.data_dir, self.interval = binary, data_dir, interval
        self.extra = list(extra)
        self.proc = None

    def seed(self, addresses):
        if not addresses:
            return
        spec = f"{addresses[0]}-{addresses[-1]}"
        t0 = time.time()
        sh(*in_ns(NS_GW, self.binary, "admin", "bulk-monitors", "--data-dir", self.data_dir,
                  "--eip-pool", EIP_POOL, "--addresses", spec, "-o", "json"))
        return time.time() - t0

    def start(self):
        env = dict(os.environ, VPNMON_ADMIN_PASSWORD="Bench-pass-123", RUST_LOG="warn")
        self.proc = subprocess.Popen(
            in_ns(NS_GW, self.binary, "serve", "--data-dir", self.data_dir, "--listen", API,
                  "--metrics-listen", METRICS, "--eip-pool", EIP_POOL, "--probe-allow", "198.18.0.0/15",
                  "--probe-interval", f"{self.interval}s", *self.extra),
            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        deadline = time.time() + 120
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("vpnmon exited during start")
            if line.startswith("listening on"):
                return
        raise RuntimeError("vpnmon did not start")

    def metrics(self):
        text = urlopen_in_ns(f"http://{METRICS}/metrics")
        out = {}
        for line in text.splitlines():
            m = re.match(r"^(vpnmon_probe_[a-z0-9_]+) ([0-9.eE+-]+|NaN)$", line)
            if m:
                out[m.group(1)] = float(m.group(2))
        return out

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# One rule per monitor, as the API stores it (crates/store/src/sql/alarms.rs:
# `body` is the rule as shown, `eval` the evaluator's memory).
RULE_BODY = json.dumps({
    "alarm_id": "@ID@", "alarm_name": "bench-loss", "alarm_description": "",
    "metric": {"namespace": "SYS.VPN", "metric_name": "link_packet_loss_rate",
               "dimensions": [{"name": "evpn_connection_id", "value": "@CONN@"}]},
    "condition": {"comparison_operator": ">=", "count": 2, "filter": "average", "period": 1,
                  "unit": "%", "value": 50.0, "suppress_duration": 0},
    "alarm_enabled": True, "alarm_level": 2, "alarm_type": "MULTI_INSTANCE",
    "alarm_action_enabled": False, "alarm_actions": [], "ok_actions": [],
    "insufficientdata_actions": [], "enterprise_project_id": "0",
    "update_time": 0, "alarm_state": "ok"}, separators=(",", ":"))
# Already `ok` with data just before the start, as rules are after their first window: the
# measurement is of the steady state, not of 100 000 rules leaving insufficient_data at once
# (each such change is a history record and a rule write; see BENCHMARKS.md).
RULE_EVAL = {"breaches": 0, "last_data_ms": 0, "last_notice_ms": None, "alarm_notified": None}


def add_alarm_rules(data):
    """One rule per seeded monitor, on its connection; returns how many."""
    db = sqlite3.connect(os.path.join(data, "vpnmon.db"))
    now_ms = int(time.time() * 1000)
    # Ids `al` + 22 base-62 digits: zero-padded decimal row numbers are that.
    db.execute(
        "INSERT INTO alarms (id, project_id, created_us, connection_id, period, enabled, state, "
        "watch_ms, body, eval) "
        "SELECT aid, project_id, ? + n, vpn_connection_id, 1, 1, 'ok', ?, "
        "replace(replace(?, '@ID@', aid), '@CONN@', vpn_connection_id), ? FROM ("
        "  SELECT printf('al%022d', n) AS aid, n, project_id, vpn_connection_id FROM ("
        "    SELECT row_number() OVER () AS n, project_id, vpn_connection_id FROM connection_monitors))",
        (now_ms * 1000, now_ms, RULE_BODY.replace('"update_time":0', f'"update_time":{now_ms}'),
         json.dumps(dict(RULE_EVAL, last_data_ms=now_ms), separators=(",", ":"))))
    # Each rule's row of newest data time (migration 0013), at the start, as the
    # server writes them.
    db.execute("INSERT INTO alarm_data (id, last_data_ms) SELECT id, ? FROM alarms", (now_ms,))
    db.commit()
    n = db.execute("SELECT COUNT(*) FROM alarms").fetchone()[0]
    db.close()
    return n


def measure_vpnmon(binary, n, delay_n, warmup, measure, interval, extra=(), alarm_rules=False):
    data = tempfile.mkdtemp(prefix="vpnmon-bench-")
    try:
        v = Vpnmon(binary, data, interval, extra)
        log(f"vpnmon: seeding {n} + {delay_n} monitors")
        seed_s = v.seed(targets(FAST_BASE, n)) if n else 0.0
        if delay_n:
            v.seed(targets(SLOW_BASE, delay_n))
        rules = add_alarm_rules(data) if alarm_rules else 0
        if alarm_rules:
            log(f"vpnmon: {rules} alarm rules added")
        v.start()
        pid = v.proc.pid
        log(f"vpnmon: started (pid {pid}); warm-up {warmup} s, then measuring {measure} s")
        time.sleep(warmup)
        c0, m0, t0 = proc_cpu(pid), v.metrics(), time.time()
        # RSS once a second over the measurement: one reading at the end
        # varies by +-5 MB at 100 000 monitors with where it falls between
        # the server's batch writes and its once-a-minute heap trim.
        samples = []
        while time.time() < t0 + measure:
            samples.append(proc_rss_kb(pid))
            time.sleep(min(1.0, max(0.0, t0 + measure - time.time())))
        c1, m1, t1 = proc_cpu(pid), v.metrics(), time.time()
        rss = proc_rss_kb(pid)
        samples.append(rss)
        peak = proc_rss_kb(pid, "VmHWM")
        v.stop()
        d = lambda k: m1.get(k, 0) - m0.get(k, 0)
        sent = d("vpnmon_probe_sent_total")
        recv = d("vpnmon_probe_received_total")
        wall = t1 - t0
        total = n + delay_n
        res = {
            "tool": "vpnmon", "monitors": total, "alarm_rules": rules, "measure_s": round(wall, 1), "seed_s": round(seed_s or 0, 1),
            "probes": int(sent), "received": int(recv),
            "cpu_s": round(c1 - c0, 3),
            "cpu_s_per_1000_probes": round((c1 - c0) * 1000 / sent, 4) if sent else None,
            "cpu_us_per_probe": round((c1 - c0) * 1e6 / sent, 2) if sent else None,
            "pps": round(sent / wall, 1),
            "pps_scheduled": round(total * 3 / interval, 1),
            "rate_vs_schedule_pct": round(100 * sent / wall / (total * 3 / interval), 2) if total else None,
            "lateness_mean_ms": round(d("vpnmon_probe_send_lateness_seconds_total") * 1000 / sent, 3) if sent else None,
            "late_over_5ms_pct": round(100 * d("vpnmon_probe_sent_late_over_5ms_total") / sent, 3) if sent else None,
            "skipped": int(d("vpnmon_probe_skipped_total")),
            "loss_pct": round(100 * (sent - recv) / sent, 4) if sent else None,
            "rx_queue_drops": int(d("vpnmon_probe_rx_queue_drops_total")),
            # Share of matched replies whose RTT starts at the kernel's
            # transmit timestamp (the rest at the clock read before the send).
            "tx_kernel_stamped_pct": round(100.0 * (1 - d("vpnmon_probe_tx_timestamp_missing_total") / recv), 3) if recv else None,
            "rss_kb": rss,
            "rss_mean_kb": round(sum(samples) / len(samples)),
            "rss_max_kb": max(samples),
            "peak_rss_kb": peak,
        }
        if alarm_rules:
            db = sqlite3.connect(os.path.join(data, "vpnmon.db"))
            res["alarm_states"] = dict(db.execute("SELECT state, COUNT(*) FROM alarms GROUP BY state").fetchall())
            db.close()
        db = sqlite3.connect(os.path.join(data, "vpnmon.db"))
        lo = int(t0 * 1000) - interval * 1000
        rows = db.execute(
            "SELECT c.body, p.rtt_min_ms, p.rtt_avg_ms, p.rtt_max_ms, p.sent, p.received FROM monitor_points p "
            "JOIN connection_monitors c ON c.id = p.monitor_id WHERE p.window_start_ms >= ?", (lo,)).fetchall()
        db.close()
        fast, slow = [], []
        wsent = wrecv = 0
        for body, mn, avg, mx, s, r in rows:
            dst = json.loads(body)["destination_ip"]
            if ipaddress.IPv4Address(dst) in SLOW_NET:
                if mx is not None:
                    slow.append((mn, avg, mx))
            else:
                wsent += s
                wrecv += r
                if mx is not None:
                    fast.append(mx)
        res["windows"] = len(rows)
        res["window_loss_pct_kernel_echo"] = round(100 * (wsent - wrecv) / wsent, 4) if wsent else None
        if fast:
            fast.sort()
            res["rtt_window_max_p50_ms"] = round(pct(fast, 50), 4)
            res["rtt_window_max_p99_ms"] = round(pct(fast, 99), 4)
        if slow:
            errs = sorted(x - 20.0 for t in slow for x in t)
            res["delay20_err_p50_ms"] = round(pct(errs, 50), 3)
            res["delay20_err_p99_ms"] = round(pct(errs, 99), 3)
        return res
    finally:
        shutil.rmtree(data, ignore_errors=True)


def pct(sorted_vals, p):
    if not sorted_vals:
        return float("nan")
    k = (len(sorted_vals) - 1) * p / 100
    f, c = math.floor(k), math.ceil(k)
    return sorted_vals[f] + (sorted_vals[c] - sorted_vals[f]) * (k - f)


def run_fping(tlist, measure, tag):
    """fping on `tlist` at 0.3 probes/s per target for about `measure` s."""
    if not tlist:
        return None
    count = max(1, round(measure * 0.3))
    procs = max(1, math.ceil(len(tlist) * 0.3 / FPING_MAX_PPS))
    chunks = [tlist[i::procs] for i in range(procs)]
    running = []
    t0 = time.time()
    for ch in chunks:
        f = tempfile.NamedTemporaryFile("w", delete=False, prefix="vb-targets-")
        f.write("\n".join(ch) + "\n")
        f.close()
        per_target_ms = 10000 / 3
        interval_ms = per_target_ms / len(ch)
        args = in_ns(NS_GW, "fping", "-C", str(count), "-p", f"{per_target_ms:.0f}", "-i", f"{interval_ms:.3f}",
                     "-t", "1000", "-q", "-f", f.name)
        # fping writes its -C results to stderr at the end: a file, not a
        # pipe, so a large result cannot block it.
        errf = tempfile.TemporaryFile("w+")
        p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=errf)
        running.append((p, f.name, errf))
    log(f"fping ({tag}): {len(tlist)} targets, {procs} process(es), {count} probes each")
    cpu = rss = 0.0
    xmt = rcv = 0
    rtts = []
    for p, fname, errf in running:
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        errf.seek(0)
        err = errf.read()
        errf.close()
        os.unlink(fname)
        cpu += ru.ru_utime + ru.ru_stime
        rss += ru.ru_maxrss
        for line in err.splitlines():
            m = re.match(r"^(\S+)\s+:((?:\s+(?:[\d.]+|-))+)\s*$", line)
            if m:
                vals = m.group(2).split()
                xmt += len(vals)
                got = [float(x) for x in vals if x != "-"]
                rcv += len(got)
                rtts.extend(got)
    wall = time.time() - t0
    rtts.sort()
    res = {"tool": "fping", "tag": tag, "targets": len(tlist), "processes": procs, "wall_s": round(wall, 1),
           "probes": xmt, "received": rcv, "cpu_s": round(cpu, 3),
           "cpu_s_per_1000_probes": round(cpu * 1000 / xmt, 4) if xmt else None,
           "cpu_us_per_probe": round(cpu * 1e6 / xmt, 2) if xmt else None,
           "pps": round(xmt / wall, 1), "loss_pct": round(100 * (xmt - rcv) / xmt, 4) if xmt else None,
           "rss_kb_sum": int(rss)}
    if rtts:
        if tag == "delay20":
            errs = [x - 20.0 for x in rtts]
            res["delay20_err_p50_ms"] = round(pct(errs, 50), 3)
            res["delay20_err_p99_ms"] = round(pct(errs, 99), 3)
        else:
            res["rtt_p50_ms"] = round(pct(rtts, 50), 4)
            res["rtt_p99_ms"] = round(pct(rtts, 99), 4)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--monitors", type=int, default=1000)
    ap.add_argument("--delay-monitors", type=int, default=100, help="monitors to the 20 ms responder (0: skip)")
    ap.add_argument("--warmup", type=float, default=15)
    ap.add_argument("--measure", type=float, default=30)
    ap.add_argument("--interval", type=int, default=10)
    ap.add_argument("--bin", default="target/release/vpnmon")
    ap.add_argument("--skip-fping", action="store_true")
    ap.add_argument("--out", help="append JSON result lines here")
    ap.add_argument("--serve-arg", action="append", default=[], help="extra `vpnmon serve` argument (repeatable)")
    ap.add_argument("--alarm-rules", action="store_true",
                    help="measure vpnmon again with one alarm rule per monitor; report the CPU ratio")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("probe_bench.py builds network namespaces: run it as root")
    if not 0 < a.monitors <= MAX_MONITORS or not 0 <= a.delay_monitors <= 250:
        sys.exit(f"--monitors must be 1..{MAX_MONITORS}, --delay-monitors 0..250")
    binary = os.path.abspath(a.bin)
    if not os.path.exists(binary):
        sys.exit(f"{binary} missing: cargo build --release")
    lab_up()
    responder = None
    try:
        if a.delay_monitors:
            responder = subprocess.Popen(
                in_ns(NS_SLOW, binary, "lab", "responder", "--group", f"{SLOW_NET}=20:0",
                      "--stop-after", str(int(a.warmup + a.measure) * 4 + 120)),
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
        results = []
        base = measure_vpnmon(binary, 0, 0, 3, 2, a.interval, a.serve_arg)
        r = measure_vpnmon(binary, a.monitors, a.delay_monitors, a.warmup, a.measure, a.interval, a.serve_arg)
        r["serve_args"] = " ".join(a.serve_arg)
        r["rss_per_monitor_bytes"] = round((r["rss_kb"] - base["rss_kb"]) * 1024 / max(1, r["monitors"]), 1)
        # Mean and largest of the once-a-second readings during the measurement.
        r["rss_mean_per_monitor_bytes"] = round((r["rss_mean_kb"] - base["rss_kb"]) * 1024 / max(1, r["monitors"]), 1)
        r["rss_max_per_monitor_bytes"] = round((r["rss_max_kb"] - base["rss_kb"]) * 1024 / max(1, r["monitors"]), 1)
        r["rss_baseline_kb"] = base["rss_kb"]
        # Peak (VmHWM) includes the start: loading every monitor at once.
        r["peak_rss_per_monitor_bytes"] = round((r["peak_rss_kb"] - base["peak_rss_kb"]) * 1024 / max(1, r["monitors"]), 1)
        results.append(r)
        if a.alarm_rules:
            ra = measure_vpnmon(binary, a.monitors, a.delay_monitors, a.warmup, a.measure, a.interval,
                                a.serve_arg, alarm_rules=True)
            ra["serve_args"] = " ".join(a.serve_arg)
            if r.get("cpu_us_per_probe") and ra.get("cpu_us_per_probe"):
                ra["cpu_ratio_vs_no_rules"] = round(ra["cpu_us_per_probe"] / r["cpu_us_per_probe"], 3)
            results.append(ra)
        if not a.skip_fping:
            results.append(run_fping(targets(FAST_BASE, a.monitors), a.measure, "kernel"))
            if a.delay_monitors:
                results.append(run_fping(targets(SLOW_BASE, a.delay_monitors), a.measure, "delay20"))
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        for res in results:
            if res:
                res["at"] = stamp
                res["load1"] = os.getloadavg()[0]
                line = json.dumps(res, sort_keys=True)
                print(line)
                if a.out:
                    with open(a.out, "a") as f:
                        f.write(line + "\n")
        v = results[0]
        if a.alarm_rules and len(results) > 1:
            ra = results[1]
            print(f"N={a.monitors}: vpnmon {v['cpu_us_per_probe']} us/probe without rules, "
                  f"{ra['cpu_us_per_probe']} us/probe with {ra['alarm_rules']} rules "
                  f"-> ratio {ra.get('cpu_ratio_vs_no_rules')}; rule states {ra.get('alarm_states')}")
        f = next((x for x in results if x and x.get("tool") == "fping"), None)
        if f and f.get("cpu_us_per_probe") and v.get("cpu_us_per_probe"):
            print(f"N={a.monitors}: vpnmon {v['cpu_us_per_probe']} us/probe vs fping {f['cpu_us_per_probe']} us/probe "
                  f"-> ratio {v['cpu_us_per_probe'] / f['cpu_us_per_probe']:.3f}")
    finally:
        if responder and responder.poll() is None:
            responder.terminate()
            responder.wait()
        lab_down()


if __name__ == "__main__":
    main()
