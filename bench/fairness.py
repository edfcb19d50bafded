#!/usr/bin/env python3
"""Fairness under heavy reads (issue 14): can 16 clients listing every
connection monitor (the reference API's unpaged list) delay a light request?

Starts `vpnmon serve --no-probe` (release build, loopback, a fresh data
directory), bulk-loads N monitors (customer gateways on 127.1.0.0/16: no
traffic is sent, probing is off), logs in, and then for DURATION seconds runs
16 processes that each GET /v5/{p}/connection-monitors in a loop, while one
client GETs a single monitor sequentially and records each latency. RSS of
the server is sampled every 0.2 s. Prints one JSON line (also appended to
bench/results/fairness.jsonl):

  light_p50_ms, light_p99_ms, light_max_ms, light_requests,
  heavy_lists, heavy_mb_per_list, rss_idle_mb, rss_peak_mb

Usage: python3 bench/fairness.py [--monitors 44000] [--duration 30]
(build first: cargo build --release)
"""

import argparse
import http.client
import json
import multiprocessing as mp
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "vpnmon")
PASSWORD = "Bench-pass-1234"


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def login(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    body = json.dumps({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "password": PASSWORD, "domain": {"name": "vpnmon"}}}},
        "scope": {"project": {"name": "local-1"}}}})
    c.request("POST", "/v3/auth/tokens", body, {"Content-Type": "application/json"})
    r = c.getresponse()
    data = json.loads(r.read())
    assert r.status == 201, data
    return r.getheader("X-Subject-Token"), data["token"]["project"]["id"]


def heavy(port, token, project, stop_at, out):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    n, size = 0, 0
    while time.time() < stop_at:
        c.request("GET", f"/v5/{project}/connection-monitors", headers={"X-Auth-Token": token})
        r = c.getresponse()
        b = r.read()
        assert r.status == 200, b[:200]
        n += 1
        size = len(b)
    out.put((n, size))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--monitors", type=int, default=44000)
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--clients", type=int, default=16)
    args = ap.parse_args()
    if not os.path.exists(BIN):
        sys.exit(f"{BIN} is missing: run cargo build --release first")
    tmp = tempfile.mkdtemp(prefix="vpnmon-fairness-")
    data = os.path.join(tmp, "data")
    env = dict(os.environ, VPNMON_ADMIN_PASSWORD=PASSWORD, RUST_LOG="warn")
    n = args.monitors
    last = f"127.1.{(n - 1) // 256}.{(n - 1) % 256}"
    subprocess.run([BIN, "admin", "bulk-monitors", "--data-dir", data, "--addresses",
                    f"127.1.0.0-{last}", "--eip-pool", "127.0.0.2"],
                   check=True, env=env, stdout=subprocess.DEVNULL)
    srv = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1:0", "--data-dir", data,
                            "--no-probe", "--metrics-listen", "off", "--eip-pool", "127.0.0.2",
                            "--probe-allow", "127.0.0.0/8"],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        port = None
        for line in srv.stdout:
            if line.startswith("listening on "):
                port = int(line.strip().rsplit(":", 1)[1])
                break
        assert port, "the server did not start"
        token, project = login(port)
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        c.request("GET", f"/v5/{project}/connection-monitors?limit=1",
                  headers={"X-Auth-Token": token})
        r = c.getresponse()
        page = json.loads(r.read())
        assert page["total_count"] == n, page
        one = page["connection_monitors"][0]["id"]
        time.sleep(1.0)
        idle = rss_mb(srv.pid)

        stop_at = time.time() + args.duration
        out = mp.Queue()
        procs = [mp.Process(target=heavy, args=(port, token, project, stop_at, out))
                 for _ in range(args.clients)]
        for p in procs:
            p.start()
        time.sleep(1.0)  # let the heavy load build up
        lat, peak = [], idle
        next_sample = 0.0
        while time.time() < stop_at - 0.5:
            t0 = time.perf_counter()
            c.request("GET", f"/v5/{project}/connection-monitors/{one}",
                      headers={"X-Auth-Token": token})
            r = c.getresponse()
            r.read()
            assert r.status == 200
            lat.append((time.perf_counter() - t0) * 1000.0)
            if time.time() >= next_sample:
                peak = max(peak, rss_mb(srv.pid))
                next_sample = time.time() + 0.2
            time.sleep(0.01)
        lists, size = 0, 0
        for _ in procs:
            k, s = out.get()
            lists += k
            size = max(size, s)
        for p in procs:
            p.join()
        lat.sort()
        q = lambda f: round(lat[min(len(lat) - 1, int(f * len(lat)))], 2)
        res = {
            "bench": "fairness", "date": time.strftime("%Y-%m-%d"), "monitors": n,
            "clients": args.clients, "duration_s": args.duration,
            "light_requests": len(lat), "light_p50_ms": q(0.5), "light_p99_ms": q(0.99),
            "light_max_ms": round(lat[-1], 2), "heavy_lists": lists,
            "heavy_mb_per_list": round(size / 1e6, 2), "rss_idle_mb": round(idle, 1),
            "rss_peak_mb": round(peak, 1), "rss_ratio": round(peak / idle, 2),
        }
        print(json.dumps(res))
        with open(os.path.join(ROOT, "bench", "results", "fairness.jsonl"), "a") as f:
            f.write(json.dumps(res) + "\n")
    finally:
        srv.send_signal(signal.SIGTERM)
        try:
            srv.wait(timeout=20)
        except subprocess.TimeoutExpired:
            srv.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
