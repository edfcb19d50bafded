//! Three `vpnmon serve` processes on one PostgreSQL, each in a network
//! namespace of its own, probing real hosts: every monitor is probed by
//! exactly one node that can send from its source address, a node killed
//! with SIGKILL hands its monitors over within the documented bounds, a
//! node that comes back takes its share again, and monitors follow an
//! address that moves between nodes.
//!
//! Topology (all addresses in the lab range 198.18.0.0/15):
//!
//! ```text
//!  node ns N1 (lo: 198.18.0.1, 198.18.0.100)  --veth--  hosts ns H1
//!  node ns N2 (lo: 198.18.0.2, 198.18.0.100)  --veth--  hosts ns H2
//!  node ns N3 (lo: 198.18.0.3, 198.18.0.100)  --veth--  hosts ns H3
//! ```
//!
//! Each node namespace routes the customer gateways (198.18.128.0/17) over
//! its veth to its own hosts namespace, where every such address is local
//! (`local 198.18.128.0/17 dev lo`) and the kernel answers; nftables there
//! counts the echo requests per destination. A request counted in H2 was
//! sent by node 2, so the counts say which node probed which monitor, and
//! how often. Monitors: 60 from each node's own address, 120 from the shared
//! 198.18.0.100 (configured on all three, so rendezvous hashing spreads
//! them). The nodes reach PostgreSQL over its Unix socket (namespaces share
//! the file system); .ci/pg-setup.sh allows the role's password there.
//!
//! Cadence: the default, 3 probes per 10 s window (0.3 probes/s per
//! destination). Needs root (namespaces), `ip`, `nft`, and
//! `VPNMON_TEST_DATABASE_URL`; skips saying why without them.

#[path = "support/pg.rs"]
mod pg_support;

use pg_support::{PG_ENV, drop_db, fresh_db};
use serde_json::Value;
use sqlx::{Connection, PgConnection, Row};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const NODES: usize = 3;
const PER_NODE: usize = 60;
const SHARED: usize = 120;
const SHARED_SRC: &str = "198.18.0.100";
const WINDOW_MS: i64 = 10_000;
/// How long each steady-state measurement lasts: two windows, 6 probes
/// per monitor.
const STEADY: Duration = Duration::from_secs(20);
const ADMIN_PASSWORD: &str = "Nodes-lab-pass-1";

fn own_src(i: usize) -> String {
    format!("198.18.0.{}", i + 1)
}
fn own_dst(i: usize, k: usize) -> String {
    format!("198.18.{}.{}", 128 + i, k + 1)
}
fn shared_dst(k: usize) -> String {
    format!("198.18.131.{}", k + 1)
}

fn run(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn why_not_runnable() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        == Some("0");
    if !root {
        return Some("needs root to build network namespaces".into());
    }
    for tool in ["ip", "nft"] {
        let found = Command::new(tool)
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !found {
            return Some(format!("`{tool}` is not installed"));
        }
    }
    None
}

/// The namespaces, veths and node processes of one run; removed on drop
/// (a failing test leaves nothing behind).
struct Topology {
    tag: String,
    nodes: Vec<Option<Child>>,
    dir: tempfile::TempDir,
    url: String,
}

impl Topology {
    fn node_ns(&self, i: usize) -> String {
        format!("vmn{}n{}", self.tag, i + 1)
    }
    fn hosts_ns(&self, i: usize) -> String {
        format!("vmn{}h{}", self.tag, i + 1)
    }

    fn build(url: String) -> Topology {
        let tag = uuid::Uuid::new_v4().simple().to_string()[..6].to_string();
        let t = Topology {
            tag,
            nodes: (0..NODES).map(|_| None).collect(),
            dir: tempfile::tempdir().unwrap(),
            url,
        };
        for i in 0..NODES {
            let (n, h) = (t.node_ns(i), t.hosts_ns(i));
            run(&["ip", "netns", "add", &n]);
            run(&["ip", "netns", "add", &h]);
            let near = format!("198.18.255.{}", 4 * i + 1);
            let far = format!("198.18.255.{}", 4 * i + 2);
            for cmd in [
                vec!["-n", &n, "link", "set", "lo", "up"],
                vec!["-n", &h, "link", "set", "lo", "up"],
                vec![
                    "-n", &n, "link", "add", "up0", "type", "veth", "peer", "name", "dn0", "netns",
                    &h,
                ],
                vec!["-n", &n, "addr", "add", &format!("{near}/30"), "dev", "up0"],
                vec!["-n", &h, "addr", "add", &format!("{far}/30"), "dev", "dn0"],
                vec!["-n", &n, "link", "set", "up0", "up"],
                vec!["-n", &h, "link", "set", "dn0", "up"],
                vec![
                    "-n",
                    &n,
                    "addr",
                    "add",
                    &format!("{}/32", own_src(i)),
                    "dev",
                    "lo",
                ],
                vec![
                    "-n",
                    &n,
                    "addr",
                    "add",
                    &format!("{SHARED_SRC}/32"),
                    "dev",
                    "lo",
                ],
                vec!["-n", &n, "route", "add", "198.18.128.0/17", "via", &far],
                vec![
                    "-n",
                    &h,
                    "route",
                    "add",
                    "local",
                    "198.18.128.0/17",
                    "dev",
                    "lo",
                ],
                vec!["-n", &h, "route", "add", "198.18.0.0/24", "via", &near],
            ] {
                let mut args = vec!["ip"];
                args.extend(cmd);
                run(&args);
            }
            // One counting rule per destination in every hosts namespace.
            let mut rules = String::from(
                "table ip vpnmon_count {\n chain input {\n  type filter hook input priority 0; policy accept;\n",
            );
            for d in all_destinations() {
                rules.push_str(&format!("  ip daddr {d} icmp type echo-request counter\n"));
            }
            rules.push_str(" }\n}\n");
            let file = t.dir.path().join(format!("count-{i}.nft"));
            std::fs::write(&file, rules).unwrap();
            run(&[
                "ip",
                "netns",
                "exec",
                &h,
                "nft",
                "-f",
                file.to_str().unwrap(),
            ]);
        }
        t
    }

    fn start(&mut self, i: usize) {
        let log =
            std::fs::File::create(self.dir.path().join(format!("node-{}.log", i + 1))).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.node_ns(i)])
            .arg(env!("CARGO_BIN_EXE_vpnmon"))
            .args(["serve", "--database-url", &self.url, "--node-name"])
            .arg(format!("node-{}", i + 1))
            .args(["--listen", "127.0.0.1:8080", "--metrics-listen", "off"])
            .args(["--probe-allow", "198.18.128.0/17", "--data-dir"])
            .arg(self.dir.path().join(format!("data-{i}")))
            .env("VPNMON_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start vpnmon serve");
        self.nodes[i] = Some(child);
    }

    /// SIGKILL (`ip netns exec` execs, so the child is vpnmon itself).
    fn kill(&mut self, i: usize) {
        let mut c = self.nodes[i].take().expect("the node runs");
        c.kill().unwrap();
        c.wait().unwrap();
    }

    fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("node-{}.log", i + 1)))
            .unwrap_or_default()
    }

    /// Echo requests counted so far: per hosts namespace, per destination.
    fn counts(&self) -> Vec<BTreeMap<String, u64>> {
        (0..NODES)
            .map(|i| {
                let out = Command::new("ip")
                    .args(["netns", "exec", &self.hosts_ns(i)])
                    .args(["nft", "-j", "list", "table", "ip", "vpnmon_count"])
                    .output()
                    .unwrap();
                assert!(out.status.success(), "nft list");
                let v: Value = serde_json::from_slice(&out.stdout).unwrap();
                let mut m = BTreeMap::new();
                for item in v["nftables"].as_array().unwrap() {
                    let Some(expr) = item["rule"]["expr"].as_array() else {
                        continue;
                    };
                    let dst = expr
                        .iter()
                        .find(|e| e["match"]["left"]["payload"]["field"] == "daddr")
                        .and_then(|e| e["match"]["right"].as_str());
                    let packets = expr.iter().find_map(|e| e["counter"]["packets"].as_u64());
                    if let (Some(d), Some(p)) = (dst, packets) {
                        m.insert(d.to_string(), p);
                    }
                }
                assert_eq!(m.len(), all_destinations().len(), "every rule counted");
                m
            })
            .collect()
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for c in self.nodes.iter_mut().flatten() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for i in 0..NODES {
            for ns in [self.node_ns(i), self.hosts_ns(i)] {
                let _ = Command::new("ip")
                    .args(["netns", "del", &ns])
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}

fn all_destinations() -> Vec<String> {
    let mut v: Vec<String> = (0..NODES)
        .flat_map(|i| (0..PER_NODE).map(move |k| own_dst(i, k)))
        .collect();
    v.extend((0..SHARED).map(shared_dst));
    v
}

/// Which hosts namespace (= node) saw each destination's requests between
/// two snapshots, and how many.
fn deltas(
    a: &[BTreeMap<String, u64>],
    b: &[BTreeMap<String, u64>],
) -> BTreeMap<String, Vec<(usize, u64)>> {
    let mut out = BTreeMap::new();
    for d in all_destinations() {
        let seen: Vec<(usize, u64)> = (0..NODES)
            .filter_map(|i| {
                let n = b[i][&d] - a[i][&d];
                (n > 0).then_some((i, n))
            })
            .collect();
        out.insert(d, seen);
    }
    out
}

/// Where a destination must be probed from in a steady state.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    /// By this node only.
    Node(usize),
    /// By exactly one of these nodes.
    OneOf([bool; NODES]),
    /// By nobody (no live node can send from its source).
    Nobody,
}

/// Measures for `STEADY` and checks every destination against `expect`:
/// probed by exactly one node, the expected one, at 0.3/s (6 requests in
/// 20 s, 5 to 7 with the snapshot's edges). Returns the node of each
/// probed destination.
fn steady(t: &Topology, phase: &str, expect: impl Fn(&str) -> Expect) -> BTreeMap<String, usize> {
    let a = t.counts();
    std::thread::sleep(STEADY);
    let b = t.counts();
    let mut failures = Vec::new();
    let mut owner = BTreeMap::new();
    for (d, seen) in deltas(&a, &b) {
        let e = expect(&d);
        match (e, seen.as_slice()) {
            (Expect::Nobody, []) => {}
            (Expect::Nobody, s) => failures.push(format!("{d}: probed by {s:?}, expected nobody")),
            (_, [(i, n)]) => {
                let right = match e {
                    Expect::Node(j) => *i == j,
                    Expect::OneOf(ok) => ok[*i],
                    Expect::Nobody => unreachable!(),
                };
                if !right {
                    failures.push(format!("{d}: probed by node {}, expected {e:?}", i + 1));
                }
                if !(5..=7).contains(n) {
                    failures.push(format!("{d}: {n} requests in {STEADY:?}, expected 6"));
                }
                owner.insert(d, *i);
            }
            (_, []) => failures.push(format!("{d}: not probed, expected {e:?}")),
            (_, s) => failures.push(format!("{d}: probed by several nodes {s:?}")),
        }
    }
    eprintln!(
        "{phase}: {} destinations probed, per node {:?}",
        owner.len(),
        (0..NODES)
            .map(|i| owner.values().filter(|&&o| o == i).count())
            .collect::<Vec<_>>()
    );
    if !failures.is_empty() {
        let n = failures.len();
        failures.truncate(20);
        let logs: String = (0..NODES)
            .map(|i| {
                let l = t.log(i);
                let tail: Vec<&str> = l.lines().rev().take(10).collect();
                format!(
                    "--- node-{} log (last lines) ---\n{}\n",
                    i + 1,
                    tail.join("\n")
                )
            })
            .collect();
        panic!("{phase}: {n} failures:\n{}\n{logs}", failures.join("\n"));
    }
    owner
}

async fn live_nodes(db: &mut PgConnection) -> BTreeMap<String, i64> {
    sqlx::query(
        "SELECT name, monitors FROM nodes \
         WHERE expires_us > (EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::BIGINT",
    )
    .fetch_all(db)
    .await
    .unwrap()
    .into_iter()
    .map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1)))
    .collect()
}

/// Waits until exactly `names` are live and probe `monitors` in all.
async fn until_nodes(db: &mut PgConnection, names: &[&str], monitors: i64) -> Duration {
    let start = Instant::now();
    loop {
        let live = live_nodes(db).await;
        let want: BTreeSet<&str> = names.iter().copied().collect();
        let have: BTreeSet<&str> = live.keys().map(String::as_str).collect();
        if have == want && live.values().sum::<i64>() == monitors {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "nodes {names:?} with {monitors} monitors: not within 40 s ({live:?})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Window starts stored per monitor id from `from_ms` on.
async fn windows(db: &mut PgConnection, from_ms: i64, to_ms: i64) -> BTreeMap<String, Vec<i64>> {
    let mut m: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for r in sqlx::query(
        "SELECT monitor_id, window_start_ms FROM monitor_points \
         WHERE window_start_ms >= $1 AND window_start_ms < $2 ORDER BY 1, 2",
    )
    .bind(from_ms)
    .bind(to_ms)
    .fetch_all(db)
    .await
    .unwrap()
    {
        m.entry(r.get(0)).or_default().push(r.get(1));
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_probe_each_monitor_once_and_hand_over_on_kill_restart_and_address_move() {
    let test = "three_nodes_probe_each_monitor_once_and_hand_over_on_kill_restart_and_address_move";
    let Ok(admin_url) = std::env::var(PG_ENV) else {
        eprintln!("SKIP {test}: {PG_ENV} not set (see .ci/pg-setup.sh)");
        return;
    };
    if let Some(why) = why_not_runnable() {
        eprintln!("SKIP {test}: {why}");
        return;
    }
    let socket_dir = "/var/run/postgresql";
    let port = admin_url
        .rsplit_once(':')
        .and_then(|(_, r)| r.split('/').next())
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or(5432);
    if !Path::new(&format!("{socket_dir}/.s.PGSQL.{port}")).exists() {
        eprintln!("SKIP {test}: no PostgreSQL socket in {socket_dir}");
        return;
    }
    let (db_name, tcp_url) = fresh_db(&admin_url).await;
    let _drop_db = DropDb(admin_url.clone(), db_name.clone());
    let credentials = admin_url
        .split_once("://")
        .and_then(|(_, r)| r.split_once('@'))
        .map(|(c, _)| c)
        .expect("user:password in the test URL");
    let socket_url = format!("postgres://{credentials}@/{db_name}?host={socket_dir}&port={port}");

    // Monitors first (one gateway per source address, from a pool entry
    // added just before, so each takes that address), then the nodes.
    let bulk = |pool: &str, addresses: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_vpnmon"))
            .args(["admin", "bulk-monitors", "--database-url", &tcp_url])
            .args(["--eip-pool", pool, "--addresses", addresses])
            .env("VPNMON_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "bulk-monitors: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    for i in 0..NODES {
        bulk(
            &own_src(i),
            &format!("{}-{}", own_dst(i, 0), own_dst(i, PER_NODE - 1)),
        );
    }
    bulk(
        SHARED_SRC,
        &format!("{}-{}", shared_dst(0), shared_dst(SHARED - 1)),
    );
    let mut db = PgConnection::connect(&tcp_url).await.unwrap();
    let monitors: BTreeMap<String, (String, String)> = sqlx::query(
        "SELECT id, body::json->>'source_ip', body::json->>'destination_ip' FROM connection_monitors",
    )
    .fetch_all(&mut db)
    .await
    .unwrap()
    .into_iter()
    .map(|r| (r.get(0), (r.get(1), r.get(2))))
    .collect();
    let by_dst: BTreeMap<String, String> = monitors
        .iter()
        .map(|(id, (_, d))| (d.clone(), id.clone()))
        .collect();
    for (id, (s, d)) in &monitors {
        let want = if d.starts_with("198.18.131.") {
            SHARED_SRC.to_string()
        } else {
            let i: usize = d.split('.').nth(2).unwrap().parse::<usize>().unwrap() - 128;
            own_src(i)
        };
        assert_eq!(s, &want, "monitor {id} to {d}");
    }
    assert_eq!(monitors.len(), NODES * PER_NODE + SHARED);

    let mut t = Topology::build(socket_url);
    let run_body = async {
        // 1. Three nodes: each monitor by exactly one node that can send
        // from its source; the shared ones spread over all three.
        for i in 0..NODES {
            t.start(i);
        }
        let took = until_nodes(&mut db, &["node-1", "node-2", "node-3"], 300).await;
        eprintln!("three nodes live, 300 monitors owned, {took:?} after start");
        // New monitors start at their next window boundary.
        tokio::time::sleep(Duration::from_secs(12)).await;
        let expect_all = |d: &str| {
            if d.starts_with("198.18.131.") {
                Expect::OneOf([true; NODES])
            } else {
                Expect::Node(d.split('.').nth(2).unwrap().parse::<usize>().unwrap() - 128)
            }
        };
        let owners = tokio::task::block_in_place(|| steady(&t, "three nodes", expect_all));
        for i in 0..NODES {
            let share = (0..SHARED)
                .filter(|&k| owners.get(&shared_dst(k)) == Some(&i))
                .count();
            assert!(
                share >= 20,
                "node-{} probes {share} of the 120 shared",
                i + 1
            );
        }

        // 2. SIGKILL node-1: its shared monitors move to node-2 or node-3
        // within 15 s; its own ones have no node left (nobody probes them);
        // nothing else moves.
        let before = t.counts();
        let killed_ms = now_ms();
        let killed = Instant::now();
        t.kill(0);
        let gone = until_nodes(&mut db, &["node-2", "node-3"], 240).await;
        eprintln!("node-1 killed: the others own 240 monitors after {gone:?}");
        assert!(gone < Duration::from_secs(15), "{gone:?}");
        tokio::time::sleep(Duration::from_secs(15).saturating_sub(killed.elapsed())).await;
        let at_15 = t.counts();
        let moved: Vec<String> = (0..SHARED)
            .map(shared_dst)
            .filter(|d| owners[d] == 0)
            .collect();
        let late: Vec<&String> = moved
            .iter()
            .filter(|d| (1..NODES).all(|i| at_15[i][*d] == before[i][*d]))
            .collect();
        assert!(
            late.is_empty(),
            "{} of node-1's {} shared monitors not probed by another node within 15 s: {late:?}",
            late.len(),
            moved.len()
        );
        let expect_without_1 = |d: &str| match expect_all(d) {
            Expect::Node(0) => Expect::Nobody,
            Expect::OneOf(_) => Expect::OneOf([false, true, true]),
            e => e,
        };
        let after_kill =
            tokio::task::block_in_place(|| steady(&t, "node-1 killed", expect_without_1));
        for (d, o) in &owners {
            if *o != 0 {
                assert_eq!(
                    after_kill.get(d),
                    Some(o),
                    "{d} moved though its node lived"
                );
            }
        }
        // From the stored windows: at most two missing per moved monitor,
        // none for the others, all on the same wall-clock grid.
        tokio::time::sleep(Duration::from_secs(4)).await; // the 2 s flush
        let (from, to) = (killed_ms - 3 * WINDOW_MS, now_ms() - 2 * WINDOW_MS);
        let stored = windows(&mut db, from, to).await;
        let mut failures = Vec::new();
        let mut missing_of_moved = BTreeMap::new();
        for (d, o) in &owners {
            if expect_all(d) == Expect::Node(0) {
                continue; // nobody can probe these now
            }
            let id = &by_dst[d];
            let w = stored.get(id).cloned().unwrap_or_default();
            if w.is_empty() {
                failures.push(format!("{d}: no window stored in [{from}, {to})"));
                continue;
            }
            if w.iter().any(|s| (s - w[0]) % WINDOW_MS != 0) {
                failures.push(format!("{d}: windows off the grid: {w:?}"));
            }
            let span = ((to - 1 - w[0]) / WINDOW_MS) as usize + 1;
            let lead = ((w[0] - from) / WINDOW_MS) as usize;
            let missing = span + lead - w.len();
            let allowed = if *o == 0 { 2 } else { 0 };
            if *o == 0 {
                *missing_of_moved.entry(missing).or_insert(0usize) += 1;
            }
            if missing > allowed {
                failures.push(format!(
                    "{d} (node-{}): {missing} windows missing in [{from}, {to}), at most {allowed}: {w:?}",
                    o + 1
                ));
            }
        }
        eprintln!("windows missing per moved monitor (missing: monitors): {missing_of_moved:?}");
        assert!(failures.is_empty(), "{}", failures.join("\n"));

        // 3. node-1 comes back: the load spreads again, no double probing.
        // Counts every 500 ms through the hand-over show how long a moving
        // monitor is probed by both its old and its new node.
        let mut snaps = vec![t.counts()];
        t.start(0);
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(14) {
            tokio::time::sleep(Duration::from_millis(500)).await;
            snaps.push(tokio::task::block_in_place(|| t.counts()));
        }
        let back = until_nodes(&mut db, &["node-1", "node-2", "node-3"], 300).await;
        eprintln!("node-1 restarted: 300 monitors owned ({back:?} after 14 s of snapshots)");
        let again = tokio::task::block_in_place(|| steady(&t, "node-1 back", expect_all));
        let share = (0..SHARED)
            .filter(|&k| again.get(&shared_dst(k)) == Some(&0))
            .count();
        assert!(share >= 20, "node-1 probes {share} of the 120 shared again");
        // A monitor that moved back to node-1: requests its old node sent
        // after node-1's first one (snapshot resolution, so one more than
        // the true overlap at most). At most one window's worth (3).
        let mut overlap: BTreeMap<u64, usize> = BTreeMap::new();
        for k in 0..SHARED {
            let d = shared_dst(k);
            let (Some(&old), Some(0)) = (after_kill.get(&d), again.get(&d).copied()) else {
                continue;
            };
            let first_new = snaps
                .iter()
                .position(|c| c[0][&d] > snaps[0][0][&d])
                .expect("node-1 probed it within the snapshots");
            let after = snaps.last().unwrap()[old][&d] - snaps[first_new - 1][old][&d];
            *overlap.entry(after).or_default() += 1;
            assert!(
                after <= 3,
                "{d}: node-{} sent {after} requests after node-1 took it over",
                old + 1
            );
        }
        eprintln!(
            "hand-over to node-1: requests by the old node after the new one's first (requests: monitors): {overlap:?}"
        );

        // 4. node-2's own address moves to node-3 (as with VRRP): its
        // monitors follow.
        let moving = own_src(1);
        run(&[
            "ip",
            "-n",
            &t.node_ns(1),
            "addr",
            "del",
            &format!("{moving}/32"),
            "dev",
            "lo",
        ]);
        run(&[
            "ip",
            "-n",
            &t.node_ns(2),
            "addr",
            "add",
            &format!("{moving}/32"),
            "dev",
            "lo",
        ]);
        tokio::time::sleep(Duration::from_secs(16)).await;
        let expect_moved = |d: &str| match expect_all(d) {
            Expect::Node(1) => Expect::Node(2),
            e => e,
        };
        tokio::task::block_in_place(|| steady(&t, "address moved", expect_moved));
    };
    run_body.await;
    drop(t);
    db.close().await.ok();
}

/// Drops the test database when the test ends, also when it fails (on a
/// thread of its own: a panicking test's runtime cannot run it).
struct DropDb(String, String);

impl Drop for DropDb {
    fn drop(&mut self) {
        let (url, name) = (self.0.clone(), self.1.clone());
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(drop_db(&url, &name))
        })
        .join();
    }
}
