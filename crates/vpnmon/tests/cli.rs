//! The CLI client, black box: the built `vpnmon` binary against a real
//! `vpnmon serve` on a loopback port, each test with its own data
//! directory, token cache and config directory.

use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use store::prelude::*;
use tempfile::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_vpnmon");
const ADMIN_PASSWORD: &str = "Admin-pass-123";

/// A `vpnmon serve` process, killed by its PID when dropped.
struct Server {
    child: Child,
    base: String,
    data: TempDir,
}

impl Server {
    fn start() -> Server {
        Self::start_with(&[])
    }

    /// With these `serve` flags besides the defaults.
    fn start_with(extra: &[&str]) -> Server {
        Self::start_in(tempfile::tempdir().unwrap(), extra)
    }

    /// On the data directory `data/db` (kept across restarts).
    fn start_in(data: TempDir, extra: &[&str]) -> Server {
        let log = std::fs::File::create(data.path().join("server.log")).unwrap();
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data.path().join("db"))
            .args(["--eip-pool", "127.0.0.2-127.0.0.9", "--no-probe"])
            .args(["--metrics-listen", "off"])
            .args(extra)
            .env_clear()
            .env("VPNMON_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn vpnmon serve");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut base = None;
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(addr) = line.strip_prefix("listening on ") {
                base = Some(addr.trim().to_string());
                break;
            }
        }
        // Drain the rest so that the server never writes to a closed pipe.
        std::thread::spawn(move || for _ in lines {});
        let mut s = Server {
            child,
            base: String::new(),
            data,
        };
        match base {
            Some(b) => s.base = b,
            None => panic!("the server exited before listening; its log:\n{}", s.log()),
        }
        assert!(s.base.starts_with("http://127.0.0.1:"), "{}", s.base);
        s
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.data.path().join("server.log")).unwrap_or_default()
    }

    fn db_dir(&self) -> PathBuf {
        self.data.path().join("db")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client's environment: its cache and config directories.
struct Client {
    base: String,
    cache: PathBuf,
    config: PathBuf,
    password: Option<String>,
    extra: Vec<(String, String)>,
    _dirs: Option<(TempDir, TempDir)>,
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(self) -> Run {
        assert_eq!(
            self.code,
            Some(0),
            "stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
    fn failed(self) -> Run {
        assert_ne!(self.code, Some(0), "stdout:\n{}", self.stdout);
        assert!(self.code.is_some(), "killed by a signal: {}", self.stderr);
        self
    }
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", self.stdout))
    }
}

impl Client {
    /// A client with its own, empty, cache and config directories.
    fn new(server: &Server) -> Client {
        let (cache, config) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        Client {
            base: server.base.clone(),
            cache: cache.path().to_path_buf(),
            config: config.path().to_path_buf(),
            password: Some(ADMIN_PASSWORD.into()),
            extra: Vec::new(),
            _dirs: Some((cache, config)),
        }
    }

    /// A client with no server (for `admin` commands on a data directory).
    fn offline() -> Client {
        let (cache, config) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        Client {
            base: String::new(),
            cache: cache.path().to_path_buf(),
            config: config.path().to_path_buf(),
            password: None,
            extra: Vec::new(),
            _dirs: Some((cache, config)),
        }
    }

    /// Another client on the same cache, with this password (or none).
    fn sharing(&self, password: Option<&str>) -> Client {
        Client {
            base: self.base.clone(),
            cache: self.cache.clone(),
            config: self.config.clone(),
            password: password.map(str::to_string),
            extra: self.extra.clone(),
            _dirs: None,
        }
    }

    fn run_with(&self, args: &[&str], stdin: Option<&str>) -> Run {
        let mut cmd = Command::new(BIN);
        cmd.args(args).env_clear();
        if !self.base.is_empty() {
            cmd.env("VPNMON_ENDPOINT", &self.base);
        }
        cmd.env("XDG_CACHE_HOME", &self.cache)
            .env("XDG_CONFIG_HOME", &self.config)
            .env("HOME", &self.config)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            });
        if let Some(p) = &self.password {
            cmd.env("VPNMON_PASSWORD", p);
        }
        for (k, v) in &self.extra {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn vpnmon");
        if let Some(input) = stdin {
            let mut w = child.stdin.take().unwrap();
            w.write_all(input.as_bytes()).unwrap();
        }
        let out: Output = child.wait_with_output().unwrap();
        Run {
            code: out.status.code(),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }

    fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, None)
    }

    /// The token cache files.
    fn cache_files(&self) -> Vec<PathBuf> {
        let dir = self.cache.join("vpnmon");
        let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    fn cache_file(&self) -> PathBuf {
        let files = self.cache_files();
        assert_eq!(files.len(), 1, "one cache file: {files:?}");
        files[0].clone()
    }
}

/// The value of `name` in a `FIELD VALUE` table.
fn field(table: &str, name: &str) -> Option<String> {
    table.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == name).then(|| v.trim().to_string())
    })
}

/// The header line and the row that starts with `id` of a list table.
fn list_row<'a>(table: &'a str, id: &str) -> (Vec<&'a str>, Vec<&'a str>) {
    let mut lines = table.lines();
    let header = lines.next().expect("a header line");
    let row = lines
        .find(|l| l.starts_with(id))
        .unwrap_or_else(|| panic!("no row for {id}:\n{table}"));
    (
        header.split_whitespace().collect(),
        row.split_whitespace().collect(),
    )
}

fn is_hex32(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[test]
fn login_caches_a_private_token_that_later_commands_reuse() {
    let server = Server::start();
    let c = Client::new(&server);

    let r = c.run(&["login", "-o", "json"]).ok();
    let j = r.json();
    assert_eq!(j["user"], "admin");
    assert_eq!(j["domain"], "vpnmon");
    assert_eq!(j["project"], "local-1");
    assert_eq!(j["endpoint"], c.base.as_str());
    assert!(is_hex32(j["project_id"].as_str().unwrap()), "{j}");
    let expires = chrono::DateTime::parse_from_rfc3339(j["expires_at"].as_str().unwrap()).unwrap();
    assert!(expires > chrono::Utc::now() + chrono::TimeDelta::hours(23));
    let path = c.cache_file();
    assert_eq!(j["cache_file"], path.display().to_string());
    assert!(
        path.starts_with(c.cache.join("vpnmon")),
        "{}",
        path.display()
    );

    let r = c.run(&["login"]).ok();
    assert_eq!(
        r.stdout.lines().collect::<Vec<_>>()[..2],
        [
            format!("logged in to {} as admin (domain vpnmon)", c.base),
            format!("project local-1 (id {})", j["project_id"].as_str().unwrap()),
        ]
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let cached: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(cached["endpoint"], c.base.as_str());
    assert_eq!(cached["project_id"], j["project_id"]);
    assert!(!cached["token"].as_str().unwrap().is_empty());

    // Later commands use the cache: no new login. With a wrong password in
    // the environment they would fail if they logged in.
    let before = std::fs::read(&path).unwrap();
    let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    let r = c
        .sharing(Some("not-the-password"))
        .run(&["gateway", "list", "-o", "json"])
        .ok();
    assert_eq!(r.json(), serde_json::json!([]));
    c.sharing(None).run(&["customer-gateway", "list"]).ok();
    c.sharing(None).run(&["monitor", "list"]).ok();
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), mtime);

    // No cache and no password: a clear error, no request.
    let mut fresh = Client::new(&server);
    fresh.password = None;
    let r = fresh.run(&["gateway", "list"]).failed();
    assert!(
        r.stderr.contains("not logged in") && r.stderr.contains("vpnmon login"),
        "{}",
        r.stderr
    );
    // A wrong password: the server's error as the server sent it.
    fresh.password = Some("not-the-password".into());
    let r = fresh.run(&["login"]).failed();
    assert!(
        r.stderr
            .contains("401: The username or password is wrong. ("),
        "{}",
        r.stderr
    );
    assert!(fresh.cache_files().is_empty());
    // The password from standard input.
    fresh.password = None;
    fresh
        .run_with(
            &["login", "--password-stdin"],
            Some(&format!("{ADMIN_PASSWORD}\n")),
        )
        .ok();
    assert_eq!(fresh.cache_files().len(), 1);

    // A cached token the server refuses is dropped; without a password the
    // command fails and says what to do, with one it logs in again.
    let mut tampered = cached.clone();
    tampered["token"] = Value::String("MII-not-a-token".into());
    std::fs::write(&path, tampered.to_string()).unwrap();
    let r = c.sharing(None).run(&["gateway", "list"]).failed();
    assert!(
        r.stderr.contains("APIGW.0301: ") && r.stderr.contains("run `vpnmon login`"),
        "{}",
        r.stderr
    );
    assert!(
        !path.exists(),
        "the refused token is removed from the cache"
    );
    std::fs::write(&path, tampered.to_string()).unwrap();
    c.run(&["gateway", "list"]).ok();
    let renewed: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_ne!(renewed["token"], tampered["token"]);

    // Logout revokes the token: a copy of it no longer works.
    let copy = std::fs::read(&path).unwrap();
    let r = c.run(&["logout"]).ok();
    assert!(r.stdout.contains("logged out"), "{}", r.stdout);
    assert!(c.cache_files().is_empty());
    std::fs::write(&path, &copy).unwrap();
    let r = c.sharing(None).run(&["gateway", "list"]).failed();
    assert!(r.stderr.contains("token has been revoked"), "{}", r.stderr);
}

#[test]
fn settings_come_from_the_config_file_when_no_flag_or_env_gives_them() {
    let server = Server::start();
    let mut c = Client::new(&server);
    let dir = c.config.join("vpnmon");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("client.toml"),
        format!(
            "endpoint = \"{}\"\ndomain = \"vpnmon\"\nuser = \"admin\"\nproject = \"local-1\"\n",
            server.base
        ),
    )
    .unwrap();
    c.base = String::new();
    let j = c.run(&["login", "-o", "json"]).ok().json();
    assert_eq!(j["endpoint"], server.base.as_str());
    // A flag wins over the file.
    let r = c
        .run(&["gateway", "list", "--endpoint", "http://127.0.0.1:1"])
        .failed();
    assert!(r.stderr.contains("http://127.0.0.1:1"), "{}", r.stderr);
    // The project flag selects another project (and another cache entry).
    let r = c.run(&["login", "--project", "nope"]).failed();
    assert!(
        r.stderr
            .contains("401: The user has no role in the requested project."),
        "{}",
        r.stderr
    );
    assert_eq!(c.cache_files().len(), 1);
    // An unknown key in the file is an error that names it.
    std::fs::write(dir.join("client.toml"), "passwrd = \"x\"\n").unwrap();
    let r = c.run(&["gateway", "list"]).failed();
    assert!(r.stderr.contains("passwrd"), "{}", r.stderr);
}

#[test]
fn config_show_prints_the_serve_settings_after_flag_env_and_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vpnmon.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:7001\"\nprobe_interval = \"30s\"\nprobe_count = 5\n\
         retention = \"2d\"\neip_pool = [\"127.0.0.2-127.0.0.9\"]\nprobe = false\n",
    )
    .unwrap();
    let c = Client {
        base: String::new(),
        cache: dir.path().join("cache"),
        config: dir.path().join("config"),
        password: None,
        extra: vec![
            ("VPNMON_CONFIG".into(), file.display().to_string()),
            ("VPNMON_LISTEN".into(), "127.0.0.1:7002".into()),
            ("VPNMON_PROBE_INTERVAL".into(), "20s".into()),
            ("VPNMON_METRICS_LISTEN".into(), "off".into()),
            ("VPNMON_ADMIN_PASSWORD".into(), ADMIN_PASSWORD.into()),
        ],
        _dirs: None,
    };
    let flags = ["--listen", "127.0.0.1:7003", "--probe-timeout", "500ms"];
    let r = c
        .run(&[&["config", "show", "-o", "json"], &flags[..]].concat())
        .ok();
    // listen: the flag over env and file; probe_interval: env over file;
    // probe_count, retention, eip_pool, probe: the file; the rest: defaults.
    assert_eq!(
        r.json(),
        serde_json::json!({
            "listen": "127.0.0.1:7003",
            "data_dir": "./vpnmon-data",
            "database_url": null,
            "master_key_file": null,
            "eip_pool": ["127.0.0.2-127.0.0.9"],
            "log_format": "text",
            "probe_allow": [],
            "notify_allow": [],
            "public_url": null,
            "probe_interval": 20,
            "probe_count": 5,
            "probe_timeout": 0.5,
            "probe": false,
            // raw from the file, the other levels Cloud Eye's defaults.
            "retention": {"raw": 172800, "60": 172800, "300": 864000, "1200": 1728000,
                          "3600": 13392000, "14400": 25920000, "86400": 157680000},
            "metrics_listen": "off",
            "node_name": null,
            "metrics_max_monitors": 1000,
            "login_max_failures": 5,
            "login_failure_window": 900,
            "login_lockout": 900,
            "login_max_failures_per_address": 20,
            "http_header_timeout": 60,
            "http_body_timeout": 60,
            "http_max_connections": 10000,
        })
    );
    assert!(!r.stdout.contains(ADMIN_PASSWORD), "{}", r.stdout);

    // The text form says where each value came from.
    let t = c
        .run(&[&["config", "show"], &flags[..]].concat())
        .ok()
        .stdout;
    let from = |key: &str| {
        let v = field(&t, key).unwrap_or_else(|| panic!("no {key}:\n{t}"));
        v.split_whitespace().map(String::from).collect::<Vec<_>>()
    };
    assert_eq!(from("listen"), ["127.0.0.1:7003", "--listen"]);
    assert_eq!(from("probe_interval"), ["20s", "VPNMON_PROBE_INTERVAL"]);
    let in_file = format!("{}", file.display());
    assert_eq!(from("probe_count"), ["5", "file", &in_file]);
    assert_eq!(from("log_format"), ["text", "default"]);
    assert!(!t.contains(ADMIN_PASSWORD), "{t}");

    // A value serve would refuse is the same error here.
    let r = c.run(&["config", "show", "--probe-count", "0"]).failed();
    assert!(
        r.stderr.contains("--probe-count must be between 1 and 100"),
        "{}",
        r.stderr
    );
}

/// Parses `VPN.0381: VPN connection <conn> already has connection monitor (<rid>)`.
fn assert_duplicate_monitor_error(stderr: &str, conn: &str) {
    let want = format!("VPN.0381: VPN connection {conn} already has connection monitor (");
    let at = stderr
        .find(&want)
        .unwrap_or_else(|| panic!("no {want:?} in {stderr:?}"));
    let rest = &stderr[at + want.len()..];
    let (rid, tail) = rest.split_at(32);
    assert!(is_hex32(rid), "request id {rid:?} in {stderr:?}");
    assert!(tail.starts_with(")"), "{stderr:?}");
}

#[tokio::test]
async fn resources_are_created_shown_listed_and_deleted_as_tables_and_json() {
    let server = Server::start();
    let mut c = Client::new(&server);
    let project_id = c.run(&["login", "-o", "json"]).ok().json()["project_id"]
        .as_str()
        .unwrap()
        .to_string();

    // VPN gateway with a new EIP from the pool.
    let (vpc, subnet) = (uuid(), uuid());
    let g = c
        .run(&[
            "gateway",
            "create",
            "--name",
            "gw-cli",
            "--vpc-id",
            &vpc,
            "--subnet-id",
            &subnet,
            "--local-subnet",
            "192.168.0.0/24",
            "--local-subnet",
            "192.168.1.0/24",
            "-o",
            "json",
        ])
        .ok()
        .json();
    let gid = g["id"].as_str().unwrap().to_string();
    assert_eq!(g["name"], "gw-cli");
    assert_eq!(g["vpc_id"], vpc.as_str());
    assert_eq!(g["connect_subnet"], subnet.as_str());
    assert_eq!(
        g["local_subnets"],
        serde_json::json!(["192.168.0.0/24", "192.168.1.0/24"])
    );

    let t = c.run(&["gateway", "show", &gid]).ok().stdout;
    assert!(t.starts_with("FIELD "), "{t}");
    assert_eq!(field(&t, "id").as_deref(), Some(gid.as_str()));
    assert_eq!(field(&t, "name").as_deref(), Some("gw-cli"));
    assert_eq!(field(&t, "eip1.ip_address").as_deref(), Some("127.0.0.2"));
    assert_eq!(field(&t, "eip1.bandwidth_size").as_deref(), Some("10"));
    assert_eq!(
        field(&t, "local_subnets").as_deref(),
        Some("192.168.0.0/24,192.168.1.0/24")
    );
    let shown = c
        .run(&["gateway", "show", "gw-cli", "-o", "json"])
        .ok()
        .json();
    assert_eq!(shown["id"], gid.as_str());
    assert_eq!(shown["eip1"]["ip_address"], "127.0.0.2");
    let eip = shown["eip1"]["id"].as_str().unwrap().to_string();
    assert_eq!(field(&t, "status").as_deref(), shown["status"].as_str());

    let t = c.run(&["gateway", "list"]).ok().stdout;
    let (h, row) = list_row(&t, &gid);
    assert_eq!(
        h,
        [
            "ID",
            "NAME",
            "STATUS",
            "EIP",
            "LOCAL_SUBNETS",
            "CONNECTIONS",
            "CREATED"
        ]
    );
    assert_eq!(
        row[..6],
        [
            gid.as_str(),
            "gw-cli",
            shown["status"].as_str().unwrap(),
            "127.0.0.2",
            "192.168.0.0/24,192.168.1.0/24",
            "0/200"
        ]
    );
    let l = c.run(&["gateway", "list", "-o", "json"]).ok().json();
    assert_eq!(l.as_array().unwrap().len(), 1);
    assert_eq!(l[0], shown);

    // A second gateway binds a named pool EIP.
    let g2 = c
        .run(&[
            "gateway",
            "create",
            "--vpc-id",
            &vpc,
            "--subnet-id",
            &subnet,
            "--local-subnet",
            "172.16.0.0/24",
            "--eip-bandwidth",
            "50",
            "-o",
            "json",
        ])
        .ok()
        .json();
    let g2id = g2["id"].as_str().unwrap().to_string();
    let s2 = c.run(&["gateway", "show", &g2id, "-o", "json"]).ok().json();
    assert_eq!(s2["eip1"]["ip_address"], "127.0.0.3");
    assert_eq!(s2["eip1"]["bandwidth_size"], 50);

    // Customer gateway.
    let t = c
        .run(&[
            "customer-gateway",
            "create",
            "--ip",
            "127.0.0.10",
            "--name",
            "cgw-cli",
            "--bgp-asn",
            "65000",
        ])
        .ok()
        .stdout;
    let cid = field(&t, "id").expect("id row");
    assert_eq!(field(&t, "id_value").as_deref(), Some("127.0.0.10"));
    assert_eq!(field(&t, "bgp_asn").as_deref(), Some("65000"));
    let cj = c
        .run(&["customer-gateway", "show", "cgw-cli", "-o", "json"])
        .ok()
        .json();
    assert_eq!(cj["id"], cid.as_str());
    assert_eq!(cj["id_type"], "ip");
    let t = c.run(&["customer-gateway", "list"]).ok().stdout;
    let (h, row) = list_row(&t, &cid);
    assert_eq!(h, ["ID", "NAME", "IP", "BGP_ASN", "CREATED"]);
    assert_eq!(
        row,
        [
            cid.as_str(),
            "cgw-cli",
            "127.0.0.10",
            "65000",
            cj["created_at"].as_str().unwrap()
        ]
    );
    let l = c
        .run(&["customer-gateway", "list", "-o", "json"])
        .ok()
        .json();
    assert_eq!(l, serde_json::json!([cj]));

    // VPN connection: gateway by name, EIP defaulting to eip1, PSK on stdin.
    let r = c
        .run_with(
            &[
                "connection",
                "create",
                "--gateway",
                "gw-cli",
                "--customer-gateway",
                &cid,
                "--peer-subnet",
                "10.10.0.0/16",
                "--name",
                "conn-cli",
                "-o",
                "json",
                "--psk-stdin",
            ],
            Some("Abcd1234!x\n"),
        )
        .ok();
    let k = r.json();
    let kid = k["id"].as_str().unwrap().to_string();
    assert_eq!(k["vgw_id"], gid.as_str());
    assert_eq!(k["vgw_ip"], eip.as_str());
    assert_eq!(k["cgw_id"], cid.as_str());
    assert_eq!(k["peer_subnets"], serde_json::json!(["10.10.0.0/16"]));
    assert_eq!(k["style"], "STATIC");
    assert!(k.get("psk").is_none_or(|p| p != "Abcd1234!x"), "{k}");
    // The PSK never comes from the command line; a missing variable is named.
    let r = c
        .run(&[
            "connection",
            "create",
            "--gateway",
            &gid,
            "--customer-gateway",
            &cid,
            "--peer-subnet",
            "10.20.0.0/16",
            "--psk-env",
            "NO_SUCH_PSK",
        ])
        .failed();
    assert!(r.stderr.contains("NO_SUCH_PSK is not set"), "{}", r.stderr);
    // A policy connection from the environment, rules from the local subnets.
    c.extra.push(("MY_PSK".into(), "Efgh5678!y".into()));
    let p = c
        .run(&[
            "connection",
            "create",
            "--gateway",
            &g2id,
            "--customer-gateway",
            &cid,
            "--peer-subnet",
            "10.30.0.0/16",
            "--psk-env",
            "MY_PSK",
            "--style",
            "policy",
            "-o",
            "json",
        ])
        .ok()
        .json();
    let pid = p["id"].as_str().unwrap().to_string();
    assert_eq!(p["style"], "POLICY");
    assert_eq!(p["policy_rules"][0]["source"], "172.16.0.0/24");
    assert_eq!(
        p["policy_rules"][0]["destination"],
        serde_json::json!(["10.30.0.0/16"])
    );
    // Server-side validation errors come back verbatim.
    let r = c
        .run(&[
            "connection",
            "create",
            "--gateway",
            &gid,
            "--customer-gateway",
            &cid,
            "--peer-subnet",
            "192.168.0.0/25",
            "--psk-env",
            "MY_PSK",
        ])
        .failed();
    assert!(
        r.stderr
            .contains("VPN.0001: invalid request: vpn_connection.peer_subnets"),
        "{}",
        r.stderr
    );

    let t = c.run(&["connection", "show", "conn-cli"]).ok().stdout;
    assert_eq!(field(&t, "id").as_deref(), Some(kid.as_str()));
    assert_eq!(field(&t, "name").as_deref(), Some("conn-cli"));
    assert_eq!(field(&t, "vgw_ip").as_deref(), Some(eip.as_str()));
    let t = c
        .run(&["connection", "list", "--gateway", &gid])
        .ok()
        .stdout;
    let (h, row) = list_row(&t, &kid);
    assert_eq!(
        h,
        [
            "ID",
            "NAME",
            "STATUS",
            "STYLE",
            "GATEWAY",
            "CUSTOMER_GATEWAY",
            "PEER_SUBNETS",
            "MONITOR"
        ]
    );
    assert_eq!(row[..2], [kid.as_str(), "conn-cli"]);
    assert_eq!(
        row[3..],
        ["STATIC", gid.as_str(), cid.as_str(), "10.10.0.0/16", "-"]
    );
    assert!(!t.contains(&pid), "filtered by gateway: {t}");
    let l = c.run(&["connection", "list", "-o", "json"]).ok().json();
    let ids: Vec<&str> = l
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&kid.as_str()) && ids.contains(&pid.as_str()));

    // Connection monitor, then the duplicate: the server's error, exit 1.
    let m = c
        .run(&[
            "monitor",
            "create",
            "--connection",
            "conn-cli",
            "-o",
            "json",
        ])
        .ok()
        .json();
    let mid = m["id"].as_str().unwrap().to_string();
    assert_eq!(m["vpn_connection_id"], kid.as_str());
    assert_eq!(m["source_ip"], "127.0.0.2");
    assert_eq!(m["destination_ip"], "127.0.0.10");
    let r = c.run(&["monitor", "create", "--connection", &kid]).failed();
    assert_eq!(r.code, Some(1));
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert_duplicate_monitor_error(&r.stderr, &kid);
    let r = c
        .run(&["monitor", "create", "--connection", &kid, "-o", "json"])
        .failed();
    assert_duplicate_monitor_error(&r.stderr, &kid);

    let mj = c.run(&["monitor", "show", &mid, "-o", "json"]).ok().json();
    assert_eq!(mj["id"], mid.as_str());
    let t = c.run(&["monitor", "show", &mid]).ok().stdout;
    assert_eq!(field(&t, "status").as_deref(), mj["status"].as_str());
    assert_eq!(field(&t, "destination_ip").as_deref(), Some("127.0.0.10"));
    let t = c.run(&["monitor", "list"]).ok().stdout;
    let (h, row) = list_row(&t, &mid);
    assert_eq!(
        h,
        [
            "ID",
            "STATUS",
            "CONNECTION",
            "SOURCE",
            "DESTINATION",
            "PROTO"
        ]
    );
    assert_eq!(
        row,
        [
            mid.as_str(),
            mj["status"].as_str().unwrap(),
            kid.as_str(),
            "127.0.0.2",
            "127.0.0.10",
            mj["proto_type"].as_str().unwrap()
        ]
    );
    let l = c
        .run(&["monitor", "list", "--connection", "conn-cli", "-o", "json"])
        .ok()
        .json();
    assert_eq!(l, serde_json::json!([mj]));
    let l = c
        .run(&["monitor", "list", "--connection", &pid, "-o", "json"])
        .ok()
        .json();
    assert_eq!(l, serde_json::json!([]));
    let kj = c
        .run(&["connection", "show", &kid, "-o", "json"])
        .ok()
        .json();
    assert_eq!(kj["connection_monitor_id"], mid.as_str());

    // Statistics and the live view without datapoints (the server does not probe).
    let r = c.run(&["monitor", "stats", &mid, "--since", "1h"]).ok();
    let mut lines = r.stdout.lines();
    assert_eq!(
        lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
        ["TIME", "LATENCY_AVG_MS", "LATENCY_MAX_MS", "LOSS_PCT"]
    );
    let last = lines.next().unwrap();
    assert!(
        last.starts_with(&format!(
            "no datapoints for monitor {mid} (127.0.0.2 -> 127.0.0.10), period 60s, "
        )),
        "{last}"
    );
    let j = c
        .run(&["monitor", "stats", &mid, "--since", "1h", "-o", "json"])
        .ok()
        .json();
    assert_eq!(j["datapoints"], serde_json::json!([]));
    assert_eq!(j["vpn_connection_id"], kid.as_str());
    assert_eq!(j["period"], 60);
    let r = c.run(&["monitor", "watch", &mid, "--count", "1"]).ok();
    assert_eq!(r.stdout, "");
    let r = c.run(&["monitor", "stats", &mid, "--period", "7"]).failed();
    assert!(r.stderr.contains("--period"), "{}", r.stderr);

    // Datapoints written through the store show up in both.
    let store = store::SqlStore::open_data_dir(&server.db_dir())
        .await
        .unwrap();
    let base = (chrono::Utc::now().timestamp_millis() / 1000) * 1000 - 40_000;
    let point = |t: i64, received: i64, avg: Option<f64>, max: Option<f64>| store::WindowPoint {
        monitor_id: domain::MonitorId::parse(&mid).unwrap(),
        project_id: domain::ProjectId::parse(&project_id).unwrap(),
        window_start_ms: t,
        sent: 4,
        received,
        loss_pct: (4 - received) as f64 * 25.0,
        rtt_min_ms: avg,
        rtt_avg_ms: avg,
        rtt_max_ms: max,
        jitter_ms: avg.map(|_| 0.0),
    };
    store
        .insert_points(&[
            point(base, 4, Some(1.5), Some(2.5)),
            point(base + 10_000, 0, None, None),
            point(base + 20_000, 3, Some(2.25), Some(4.0)),
        ])
        .await
        .unwrap();
    store.close().await;
    let r = c
        .run(&["monitor", "stats", &mid, "--since", "5m", "--period", "1"])
        .ok();
    let time = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let rows: Vec<Vec<&str>> = r
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 5, "{}", r.stdout);
    assert_eq!(rows[1], [time(base).as_str(), "1.500", "2.500", "0.0"]);
    assert_eq!(rows[2], [time(base + 10_000).as_str(), "-", "-", "100.0"]);
    assert_eq!(
        rows[3],
        [time(base + 20_000).as_str(), "2.250", "4.000", "25.0"]
    );
    assert!(
        r.stdout
            .lines()
            .last()
            .unwrap()
            .starts_with("3 datapoints for monitor"),
        "{}",
        r.stdout
    );
    let j = c
        .run(&[
            "monitor", "stats", &mid, "--since", "5m", "--period", "1", "-o", "json",
        ])
        .ok()
        .json();
    assert_eq!(j["datapoints"][2]["timestamp"], base + 20_000);
    assert_eq!(j["datapoints"][2]["link_average_latency"], 2.25);
    assert_eq!(j["datapoints"][2]["link_max_latency"], 4.0);
    assert_eq!(j["datapoints"][2]["link_packet_loss_rate"], 25.0);
    assert_eq!(j["datapoints"][1]["link_average_latency"], Value::Null);
    // Not a terminal: one line per datapoint, starting with the newest.
    let r = c.run(&["monitor", "watch", &mid, "--count", "1"]).ok();
    assert_eq!(
        r.stdout,
        format!(
            "{}  latency_avg=2.250ms  latency_max=4.000ms  loss=25.0%\n",
            time(base + 20_000)
        )
    );
    let r = c
        .run(&[
            "monitor",
            "watch",
            &mid,
            "--count",
            "2",
            "--interval",
            "100ms",
            "-o",
            "json",
        ])
        .ok();
    let lines: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "no new datapoint on the second refresh: {}",
        r.stdout
    );
    assert_eq!(lines[0]["timestamp"], base + 20_000);
    assert_eq!(lines[0]["link_packet_loss_rate"], 25.0);

    // Delete in reverse order; then the resources are gone.
    let r = c.run(&["monitor", "delete", &mid]).ok();
    assert_eq!(r.stdout, format!("deleted connection monitor {mid}\n"));
    c.run(&["connection", "delete", "conn-cli"]).ok();
    let r = c.run(&["connection", "delete", &pid, "-o", "json"]).ok();
    assert_eq!(r.stdout, "");
    c.run(&["customer-gateway", "delete", &cid]).ok();
    c.run(&["gateway", "delete", &gid]).ok();
    let r = c.run(&["gateway", "delete", &g2id]).ok();
    assert_eq!(r.stdout, format!("deleted VPN gateway {g2id}\n"));
    for kind in ["gateway", "customer-gateway", "connection", "monitor"] {
        assert_eq!(
            c.run(&[kind, "list", "-o", "json"]).ok().json(),
            serde_json::json!([])
        );
    }
    let r = c.run(&["gateway", "show", &gid]).failed();
    assert!(
        r.stderr.contains("VPN.0004: resource not found ("),
        "{}",
        r.stderr
    );
    let r = c.run(&["gateway", "show", "gw-cli"]).failed();
    assert!(
        r.stderr
            .contains("no VPN gateway with id or name \"gw-cli\""),
        "{}",
        r.stderr
    );
    assert!(!server.log().contains("panicked"), "{}", server.log());
}

#[test]
fn admin_node_list_shows_the_live_node_until_its_lease_runs_out_after_a_kill() {
    let mut server = Server::start();
    let c = Client::new(&server);
    let db = server.db_dir().display().to_string();
    let list = || {
        c.run(&["admin", "node", "list", "-o", "json", "--data-dir", &db])
            .ok()
            .json()
    };
    let nodes = list();
    let nodes = nodes.as_array().expect("a JSON array");
    assert_eq!(nodes.len(), 1, "{nodes:?}");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(
        nodes[0]["name"],
        host.as_str(),
        "the default name is the host name"
    );
    assert_eq!(nodes[0]["monitors"], 0);
    assert_eq!(nodes[0]["addresses"], serde_json::json!([]));
    assert!(nodes[0]["id"].as_str().is_some_and(|s| s.len() == 36));
    let text = c
        .run(&["admin", "node", "list", "--data-dir", &db])
        .ok()
        .stdout;
    assert!(text.starts_with("NAME"), "{text}");
    assert!(text.contains(nodes[0]["id"].as_str().unwrap()), "{text}");

    // SIGKILL: no goodbye; the node is listed until its lease (8 s) runs out.
    let killed = std::time::Instant::now();
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    loop {
        let n = list().as_array().map(Vec::len);
        if n == Some(0) {
            break;
        }
        assert!(
            killed.elapsed() < std::time::Duration::from_secs(10),
            "still listed 10 s after the kill"
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    assert!(
        killed.elapsed() > std::time::Duration::from_secs(4),
        "gone after {:?}: before the last lease could have run out",
        killed.elapsed()
    );
}

#[test]
fn a_node_restarted_after_a_kill_removes_its_dead_predecessors_lease_at_once() {
    let mut server = Server::start();
    let c = Client::new(&server);
    let db = server.db_dir().display().to_string();
    let list = || {
        c.run(&["admin", "node", "list", "-o", "json", "--data-dir", &db])
            .ok()
            .json()
    };
    let before = list()[0]["id"].as_str().unwrap().to_string();
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    assert_eq!(
        list()[0]["id"],
        before.as_str(),
        "listed until its lease runs out"
    );
    let data = std::mem::replace(&mut server.data, tempfile::tempdir().unwrap());
    drop(server);
    let server = Server::start_in(data, &[]);
    let nodes = list();
    let nodes = nodes.as_array().unwrap();
    assert_eq!(
        nodes.len(),
        1,
        "the dead node is gone at the restart: {nodes:?}"
    );
    assert_ne!(nodes[0]["id"], before.as_str());
    assert!(
        server
            .log()
            .contains("removed the lease of a node whose process on this host has ended"),
        "{}",
        server.log()
    );
}

#[test]
fn admin_user_show_reports_a_lock_that_admin_user_unlock_ends() {
    let server = Server::start();
    let mut wrong = Client::new(&server);
    wrong.password = Some("not-the-password".into());
    for _ in 0..5 {
        let r = wrong.run(&["login"]).failed();
        assert!(
            r.stderr.contains("username or password is wrong"),
            "{}",
            r.stderr
        );
    }
    let right = Client::new(&server);
    let r = right.run(&["login"]).failed();
    assert!(
        r.stderr.contains("401: The account is locked."),
        "{}",
        r.stderr
    );

    let db = server.db_dir().display().to_string();
    let admin = Client {
        base: String::new(),
        ..right.sharing(None)
    };
    // The failures reach the store in the background.
    let mut j = Value::Null;
    for _ in 0..50 {
        j = admin
            .run(&[
                "admin",
                "user",
                "show",
                "admin",
                "-o",
                "json",
                "--data-dir",
                &db,
            ])
            .ok()
            .json();
        if j["locked"] == true {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(j["locked"], true, "{j}");
    assert_eq!(j["failed_logins"], 5, "{j}");
    assert_eq!(j["projects"], serde_json::json!(["local-1"]), "{j}");
    let t = admin
        .run(&["admin", "user", "show", "admin", "--data-dir", &db])
        .ok()
        .stdout;
    assert!(t.contains("failed logins: 5 since "), "{t}");
    assert!(t.contains("locked until "), "{t}");

    let r = admin
        .run(&["admin", "user", "unlock", "admin", "--data-dir", &db])
        .ok();
    assert!(
        r.stdout.contains("forgot its 5 failed logins"),
        "{}",
        r.stdout
    );
    // The running server honours the unlock at once.
    right.run(&["login"]).ok();
    let j = admin
        .run(&[
            "admin",
            "user",
            "show",
            "admin",
            "-o",
            "json",
            "--data-dir",
            &db,
        ])
        .ok()
        .json();
    assert_eq!(
        (j["locked"].clone(), j["failed_logins"].clone()),
        (Value::Bool(false), 0.into()),
        "{j}"
    );
    admin
        .run(&["admin", "user", "show", "nobody", "--data-dir", &db])
        .failed();
}

/// `vpnmon topic` and `vpnmon alarm`: a topic and a subscription to a
/// loopback endpoint (inside --notify-allow), a rule on a connection whose
/// notices go to the topic, listed, shown, disabled, enabled and deleted,
/// as tables and JSON; bad input answers the server's error naming the
/// field.
#[test]
fn alarm_and_topic_commands_manage_rules_topics_and_subscriptions() {
    let server = Server::start_with(&["--notify-allow", "127.0.0.0/8"]);
    let c = Client::new(&server);
    c.run(&["login"]).ok();
    let urn = c
        .run(&["topic", "create", "noc"])
        .ok()
        .stdout
        .trim()
        .to_string();
    assert!(
        urn.starts_with("urn:smn:local-1:") && urn.ends_with(":noc"),
        "{urn}"
    );
    // Idempotent by name, as SMN.
    let again = c.run(&["topic", "create", "noc", "-o", "json"]).ok().json();
    assert_eq!(again["topic_urn"], urn.as_str());
    let t = c.run(&["topic", "list"]).ok().stdout;
    let (h, row) = list_row(&t, &urn);
    assert_eq!(h, ["TOPIC_URN", "NAME", "DISPLAY_NAME"]);
    assert_eq!(row, [urn.as_str(), "noc", "noc"]);

    // Nothing listens there: the confirmation is retried, the
    // subscription stays unconfirmed.
    let hook = "http://127.0.0.1:9/hook";
    let sub = c
        .run(&["topic", "subscribe", "noc", hook, "--remark", "pager"])
        .ok()
        .stdout;
    let sub_urn = sub.split_whitespace().next().unwrap().to_string();
    assert!(sub_urn.starts_with(&format!("{urn}:")), "{sub}");
    assert!(sub.contains("unconfirmed"), "{sub}");
    let t = c.run(&["topic", "subscriptions", "noc"]).ok().stdout;
    let (h, row) = list_row(&t, &sub_urn);
    assert_eq!(
        h,
        [
            "SUBSCRIPTION_URN",
            "PROTOCOL",
            "ENDPOINT",
            "STATUS",
            "REMARK"
        ]
    );
    assert_eq!(
        row,
        [sub_urn.as_str(), "http", hook, "unconfirmed", "pager"]
    );
    let all = c.run(&["topic", "subscriptions", "-o", "json"]).ok().json();
    assert_eq!(all.as_array().map(Vec::len), Some(1), "{all}");
    assert_eq!(all[0]["subscription_urn"], sub_urn.as_str());
    let r = c
        .run(&["topic", "subscribe", "noc", "ftp://127.0.0.1/x"])
        .failed();
    assert!(
        r.stderr.contains("not an http:// or https:// URL"),
        "{}",
        r.stderr
    );
    let r = c.run(&["topic", "subscribe", "nosuch", hook]).failed();
    assert!(
        r.stderr.contains("no topic with URN or name \"nosuch\""),
        "{}",
        r.stderr
    );

    // A connection to put a rule on.
    let g = c
        .run(&[
            "gateway",
            "create",
            "--vpc-id",
            &uuid(),
            "--subnet-id",
            &uuid(),
            "--local-subnet",
            "192.168.0.0/24",
            "-o",
            "json",
        ])
        .ok()
        .json();
    let gid = g["id"].as_str().unwrap().to_string();
    let cg = c
        .run(&[
            "customer-gateway",
            "create",
            "--ip",
            "127.0.0.20",
            "-o",
            "json",
        ])
        .ok()
        .json();
    let cid = cg["id"].as_str().unwrap().to_string();
    let k = c
        .run_with(
            &[
                "connection",
                "create",
                "--gateway",
                &gid,
                "--customer-gateway",
                &cid,
                "--peer-subnet",
                "10.10.0.0/16",
                "--name",
                "conn-alarm",
                "-o",
                "json",
                "--psk-stdin",
            ],
            Some("Abcd1234!x\n"),
        )
        .ok()
        .json();
    let kid = k["id"].as_str().unwrap().to_string();

    let a = c
        .run(&[
            "alarm",
            "create",
            "--connection",
            "conn-alarm",
            "--value",
            "50",
            "--count",
            "2",
            "--suppress",
            "300",
            "--topic",
            "noc",
            "--name",
            "vpn-loss",
            "-o",
            "json",
        ])
        .ok()
        .json();
    let aid = a["alarm_id"].as_str().unwrap().to_string();
    assert!(aid.starts_with("al"), "{a}");
    assert_eq!(a["alarm_name"], "vpn-loss");
    assert_eq!(a["alarm_state"], "insufficient_data");
    assert_eq!(a["metric"]["namespace"], "SYS.VPN");
    assert_eq!(a["metric"]["metric_name"], "link_packet_loss_rate");
    assert_eq!(
        a["metric"]["dimensions"],
        serde_json::json!([{"name": "evpn_connection_id", "value": kid}])
    );
    assert_eq!(a["condition"]["comparison_operator"], ">=");
    assert_eq!(a["condition"]["count"], 2);
    assert_eq!(a["condition"]["unit"], "%");
    assert_eq!(a["condition"]["suppress_duration"], 300);
    assert_eq!(a["alarm_action_enabled"], true);
    assert_eq!(
        a["alarm_actions"],
        serde_json::json!([{"type": "notification", "notificationList": [urn]}])
    );
    assert_eq!(a["ok_actions"], a["alarm_actions"]);
    // A latency rule without actions: the unit is the metric's.
    let l = c
        .run(&[
            "alarm",
            "create",
            "--connection",
            &kid,
            "--metric",
            "link_max_latency",
            "--op",
            ">",
            "--value",
            "150",
            "--period",
            "300",
            "--filter",
            "max",
            "-o",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(l["condition"]["unit"], "ms");
    assert_eq!(l["alarm_action_enabled"], false);
    let lid = l["alarm_id"].as_str().unwrap().to_string();

    let t = c.run(&["alarm", "list"]).ok().stdout;
    let (h, row) = list_row(&t, &aid);
    assert_eq!(
        h,
        [
            "ID",
            "NAME",
            "STATE",
            "ENABLED",
            "LEVEL",
            "METRIC",
            "CONDITION",
            "CONNECTION"
        ]
    );
    assert_eq!(
        row,
        [
            aid.as_str(),
            "vpn-loss",
            "insufficient_data",
            "true",
            "2",
            "link_packet_loss_rate",
            "average",
            ">=",
            "50%",
            "x2",
            "per",
            "1s",
            kid.as_str(),
        ]
    );
    let (_, row) = list_row(&t, &lid);
    assert_eq!(row[6..12], ["max", ">", "150ms", "x1", "per", "300s"]);
    let listed = c.run(&["alarm", "list", "-o", "json"]).ok().json();
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");
    let t = c.run(&["alarm", "show", &aid]).ok().stdout;
    assert_eq!(field(&t, "alarm_id").as_deref(), Some(aid.as_str()));
    assert_eq!(field(&t, "condition.value").as_deref(), Some("50.0"));

    let r = c.run(&["alarm", "disable", &aid]).ok().stdout;
    assert!(r.contains("disabled"), "{r}");
    assert_eq!(
        c.run(&["alarm", "show", &aid, "-o", "json"]).ok().json()["alarm_enabled"],
        false
    );
    let r = c.run(&["alarm", "enable", &aid, "-o", "json"]).ok().json();
    assert_eq!(r["alarm_enabled"], true);
    let h = c.run(&["alarm", "history", &aid, "-o", "json"]).ok().json();
    assert_eq!(h, serde_json::json!([]), "no data yet, no state change");

    // The server's errors, naming the field.
    let r = c
        .run(&[
            "alarm",
            "create",
            "--connection",
            &kid,
            "--value",
            "1",
            "--period",
            "60",
        ])
        .failed();
    assert!(
        r.stderr.contains("ces.0014") && r.stderr.contains("condition.period"),
        "{}",
        r.stderr
    );
    let r = c
        .run(&[
            "alarm",
            "create",
            "--connection",
            &kid,
            "--value",
            "1",
            "--metric",
            "cpu",
        ])
        .failed();
    assert!(
        r.stderr.contains("\"cpu\" is not a metric of SYS.VPN"),
        "{}",
        r.stderr
    );
    let r = c
        .run(&["alarm", "show", "alNoSuchRuleAtAllHere00"])
        .failed();
    assert!(
        r.stderr.contains("ces.0016") || r.stderr.contains("ces.0014"),
        "{}",
        r.stderr
    );

    let r = c.run(&["alarm", "delete", &aid]).ok().stdout;
    assert_eq!(r.trim(), format!("deleted alarm rule {aid}"));
    let listed = c.run(&["alarm", "list", "-o", "json"]).ok().json();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
}

/// The names of the customer gateways in the store `server` serves.
fn customer_gateway_names(c: &Client) -> std::collections::BTreeSet<String> {
    let l = c
        .run(&["customer-gateway", "list", "-o", "json"])
        .ok()
        .json();
    l.as_array()
        .expect("a JSON array")
        .iter()
        .map(|g| g["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn admin_backup_under_write_load_restores_every_acknowledged_write() {
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    let mut server = Server::start();
    let c = Client::new(&server);
    c.run(&["login"]).ok();
    let db = server.db_dir().display().to_string();
    let backup_dir = tempfile::tempdir().unwrap();
    let file = backup_dir.path().join("vpnmon-backup.db");
    let file_s = file.display().to_string();

    // A writer creating customer gateways one after another, recording
    // each create it started and each one the server acknowledged.
    let stop = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicUsize::new(0));
    let acked = Arc::new(Mutex::new(Vec::<usize>::new()));
    let writer = {
        let (stop, started, acked) = (stop.clone(), started.clone(), acked.clone());
        let w = c.sharing(Some(ADMIN_PASSWORD));
        std::thread::spawn(move || {
            for n in 1..=250usize {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                started.store(n, Ordering::SeqCst);
                let ip = format!("127.0.1.{n}");
                let name = format!("cg-{n}");
                let r = w.run(&["customer-gateway", "create", "--ip", &ip, "--name", &name]);
                if r.code == Some(0) {
                    acked.lock().unwrap().push(n);
                }
            }
        })
    };
    while acked.lock().unwrap().len() < 15 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let acked_before: Vec<usize> = acked.lock().unwrap().clone();
    let b = c
        .run(&["admin", "backup", &file_s, "-o", "json", "--data-dir", &db])
        .ok()
        .json();
    let started_by_end = started.load(Ordering::SeqCst);
    // Writes go on after the backup; it holds none of them.
    while acked.lock().unwrap().len() < acked_before.len() + 10 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    assert_eq!(b["path"], file_s.as_str());
    assert_eq!(b["schema_version"], store::schema_version());
    assert!(b["bytes"].as_u64().unwrap() > 4096, "{b}");
    assert!(
        b["note"].as_str().unwrap().contains("vpnmon.key"),
        "the note names the key file to keep: {b}"
    );
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600,
        "a backup holds secrets: private"
    );
    let all_before_kill = customer_gateway_names(&c);

    // A second backup to the same name is refused; the first is untouched.
    let again = c
        .run(&["admin", "backup", &file_s, "--data-dir", &db])
        .failed();
    assert!(again.stderr.contains("exists"), "{}", again.stderr);

    // A restore while the server has the store open is refused.
    let busy = c
        .run(&["admin", "restore", &file_s, "--data-dir", &db])
        .failed();
    assert!(busy.stderr.contains("stop it first"), "{}", busy.stderr);
    assert_eq!(
        customer_gateway_names(&c),
        all_before_kill,
        "nothing changed"
    );

    // Stop the server; restore into its own data directory.
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let data = std::mem::replace(&mut server.data, tempfile::tempdir().unwrap());
    drop(server);
    let r = c
        .run(&["admin", "restore", &file_s, "-o", "json", "--data-dir", &db])
        .ok()
        .json();
    let previous = r["previous"]
        .as_str()
        .expect("the old database moved aside");
    assert!(previous.contains("vpnmon.db.before-restore-"), "{r}");
    assert!(std::path::Path::new(previous).exists());
    assert_eq!(
        r["rows"]["customer_gateways"],
        b["rows"]["customer_gateways"]
    );

    let server = Server::start_in(data, &[]);
    let c = Client::new(&server);
    let names = customer_gateway_names(&c);
    for n in &acked_before {
        assert!(
            names.contains(&format!("cg-{n}")),
            "cg-{n} was acknowledged before the backup began and is missing: {names:?}"
        );
    }
    for name in &names {
        let n: usize = name.strip_prefix("cg-").unwrap().parse().unwrap();
        assert!(
            n <= started_by_end,
            "{name} was not even sent when the backup ended"
        );
    }
    assert!(
        names.len() < all_before_kill.len(),
        "the writes after the backup are gone with the restore: {} of {}",
        names.len(),
        all_before_kill.len()
    );
    assert_eq!(
        b["rows"]["customer_gateways"].as_u64().unwrap() as usize,
        names.len()
    );
}

#[test]
fn a_backup_that_is_not_a_vpnmon_database_is_refused_and_the_store_kept() {
    let c = Client::offline();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let data = db.display().to_string();
    // A store with something in it.
    c.run(&["admin", "project", "create", "kept", "--data-dir", &data])
        .ok();
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, b"not a database at all, just text").unwrap();
    let r = c
        .run(&[
            "admin",
            "restore",
            &junk.display().to_string(),
            "--data-dir",
            &data,
        ])
        .failed();
    assert!(r.stderr.contains("not a"), "{}", r.stderr);
    let missing = c
        .run(&[
            "admin",
            "restore",
            "/nonexistent/backup.db",
            "--data-dir",
            &data,
        ])
        .failed();
    assert!(
        missing.stderr.contains("no such backup file"),
        "{}",
        missing.stderr
    );
    let l = c
        .run(&[
            "admin",
            "project",
            "list",
            "-o",
            "json",
            "--data-dir",
            &data,
        ])
        .ok()
        .stdout;
    assert!(l.contains("\"kept\""), "the store is untouched: {l}");
}

/// The fixtures of earlier releases (`tests/fixtures/upgrade/*/`, written
/// by `make.py` there): each opens with this binary, which migrates it,
/// and serves what its manifest lists.
#[test]
fn every_upgrade_fixture_opens_migrates_and_serves_what_it_holds() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/upgrade");
    let mut seen = 0;
    for entry in std::fs::read_dir(&root).unwrap() {
        let dir = entry.unwrap().path();
        let Ok(text) = std::fs::read_to_string(dir.join("manifest.json")) else {
            continue;
        };
        seen += 1;
        let m: Value = serde_json::from_str(&text).unwrap();
        check_upgrade_fixture(&dir, &m);
    }
    assert!(seen >= 1, "no fixture under {}", root.display());
}

fn check_upgrade_fixture(dir: &std::path::Path, m: &Value) {
    use std::os::unix::fs::PermissionsExt;
    let at = dir.display();
    assert_eq!(m["admin_password"], ADMIN_PASSWORD, "{at}");
    let data = tempfile::tempdir().unwrap();
    let db = data.path().join("db");
    std::fs::create_dir(&db).unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o700)).unwrap();
    for f in ["vpnmon.db", "vpnmon.key"] {
        std::fs::copy(dir.join(f), db.join(f)).unwrap();
        std::fs::set_permissions(db.join(f), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    // Its windows are older than the default raw retention by now.
    let server = Server::start_in(
        data,
        &["--retention", "20y", "--notify-allow", "127.0.0.0/8"],
    );
    let c = Client::new(&server);
    c.run(&["login"]).ok();
    let show = |kind: &str, id: &Value| {
        c.run(&[kind, "show", id.as_str().unwrap(), "-o", "json"])
            .ok()
            .json()
    };
    let g = show("gateway", &m["gateway"]["id"]);
    assert_eq!(g["name"], m["gateway"]["name"], "{at}");
    let cg = show("customer-gateway", &m["customer_gateway"]["id"]);
    assert_eq!(cg["name"], m["customer_gateway"]["name"], "{at}");
    assert_eq!(cg["id_value"], m["customer_gateway"]["ip"], "{at}");
    let conn = show("connection", &m["connection"]["id"]);
    assert_eq!(conn["name"], m["connection"]["name"], "{at}");
    assert_eq!(conn["vgw_id"], m["gateway"]["id"], "{at}");
    assert_eq!(conn["cgw_id"], m["customer_gateway"]["id"], "{at}");
    let mon = show("monitor", &m["monitor"]["id"]);
    assert_eq!(mon["vpn_connection_id"], m["connection"]["id"], "{at}");
    let alarm = c
        .run(&[
            "alarm",
            "show",
            m["alarm"]["id"].as_str().unwrap(),
            "-o",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(alarm["alarm_name"], m["alarm"]["name"], "{at}: {alarm}");
    let topics = c.run(&["topic", "list", "-o", "json"]).ok().stdout;
    assert!(
        topics.contains(m["topic"]["urn"].as_str().unwrap()),
        "{at}: {topics}"
    );
    let subs = c
        .run(&["topic", "subscriptions", "fx-topic", "-o", "json"])
        .ok()
        .stdout;
    assert!(
        subs.contains(m["subscription"]["endpoint"].as_str().unwrap()),
        "{at}: {subs}"
    );
    let creds = c
        .run(&[
            "admin",
            "credential",
            "list",
            "-o",
            "json",
            "--data-dir",
            server.db_dir().to_str().unwrap(),
        ])
        .ok()
        .stdout;
    assert!(
        creds.contains(m["credential"]["access"].as_str().unwrap()),
        "{at}: {creds}"
    );
    // The measurements, exactly as they were served when written.
    let want = m["datapoints"].as_array().unwrap();
    assert!(!want.is_empty(), "{at}: the fixture holds measurements");
    let first = want[0]["timestamp"].as_i64().unwrap();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let since = format!("{}s", (now_ms - first) / 1000 + 3600);
    let stats = c
        .run(&[
            "monitor",
            "stats",
            m["monitor"]["id"].as_str().unwrap(),
            "--since",
            &since,
            "--period",
            "1",
            "-o",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(&stats["datapoints"], &m["datapoints"], "{at}");
    // Migrated to this binary's schema: a backup of it says so.
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("after.db");
    let b = c
        .run(&[
            "admin",
            "backup",
            file.to_str().unwrap(),
            "-o",
            "json",
            "--data-dir",
            server.db_dir().to_str().unwrap(),
        ])
        .ok()
        .json();
    assert_eq!(b["schema_version"], store::schema_version(), "{at}");
    for (table, n) in m["rows"].as_object().unwrap() {
        assert_eq!(&b["rows"][table], n, "{at}: rows of {table}");
    }
}

/// `vpnmon doctor -o json` with these flags: its exit status and the
/// problems by check name.
fn doctor(c: &Client, args: &[&str]) -> (Option<i32>, Vec<Value>) {
    let mut all = vec!["doctor"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    let r = c.run(&all);
    let v: Value = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", r.stdout, r.stderr));
    (r.code, v.as_array().unwrap().clone())
}

fn checks(problems: &[Value]) -> Vec<&str> {
    problems
        .iter()
        .map(|p| p["check"].as_str().unwrap())
        .filter(|c| *c != "clock") // the machine's, not staged
        .collect()
}

/// Free bytes of the file system holding `dir` (`df`).
fn free_bytes(dir: &std::path::Path) -> u64 {
    let out = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(dir)
        .output()
        .expect("df");
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines().nth(1).unwrap().trim().parse().unwrap()
}

#[test]
fn doctor_names_each_staged_problem_with_its_remedy_and_exits_1() {
    let c = Client::offline();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db").display().to_string();

    // Healthy: a new data directory, loopback EIPs, a free port.
    let (code, problems) = doctor(
        &c,
        &[
            "--data-dir",
            &data,
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "off",
            "--eip-pool",
            "127.0.0.2-127.0.0.3",
            "--no-probe",
        ],
    );
    assert_eq!(checks(&problems), Vec::<&str>::new(), "{problems:?}");
    assert_eq!(code, Some(if problems.is_empty() { 0 } else { 1 }));
    assert!(
        !std::path::Path::new(&data).exists(),
        "doctor creates nothing"
    );

    // Staged: the data directory under a plain file, the API port taken,
    // an EIP that is not on this host (a lab address; nothing is sent).
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap().to_string();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let under_file = file.join("db").display().to_string();
    let (code, problems) = doctor(
        &c,
        &[
            "--data-dir",
            &under_file,
            "--listen",
            &taken_addr,
            "--metrics-listen",
            "off",
            "--eip-pool",
            "127.0.0.2,198.18.7.7",
        ],
    );
    assert_eq!(code, Some(1), "{problems:?}");
    let names = checks(&problems);
    for want in ["data-dir", "eip-not-local", "port"] {
        assert!(names.contains(&want), "{want} missing: {problems:?}");
    }
    for p in &problems {
        assert!(!p["remedy"].as_str().unwrap().is_empty(), "{p}");
    }
    let text = |check: &str| {
        problems
            .iter()
            .find(|p| p["check"] == check)
            .map(|p| p["problem"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert!(text("eip-not-local").contains("198.18.7.7"), "{problems:?}");
    assert!(!text("eip-not-local").contains("127.0.0.2"), "{problems:?}");
    assert!(text("port").contains(&taken_addr), "{problems:?}");
    drop(taken);

    // The text form: one line per problem, each with its fix.
    let r = c.run(&[
        "doctor",
        "--data-dir",
        &under_file,
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "off",
        "--no-probe",
    ]);
    assert_eq!(r.code, Some(1));
    let line = r
        .stdout
        .lines()
        .find(|l| l.starts_with("data-dir: "))
        .unwrap_or_else(|| panic!("{}", r.stdout));
    assert!(line.contains(" -- fix: "), "{line}");

    // Too little disk for the retention: raw windows kept for longer than
    // ten times the free space lasts one monitor.
    let per_year = 365.0 * 8640.0 * 146.5;
    let years = (free_bytes(dir.path()) as f64 * 10.0 / per_year).ceil() as u64 + 1;
    let keep = format!("{years}y");
    let (code, problems) = doctor(
        &c,
        &[
            "--data-dir",
            &data,
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "off",
            "--no-probe",
            "--retention",
            &keep,
        ],
    );
    assert_eq!(checks(&problems), ["disk-space"], "{problems:?}");
    assert_eq!(code, Some(1));

    // PostgreSQL that does not answer (nothing listens on port 1).
    let (code, problems) = doctor(
        &c,
        &[
            "--database-url",
            "postgres://vpnmon:x@127.0.0.1:1/none",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "off",
            "--no-probe",
        ],
    );
    assert_eq!(checks(&problems), ["postgres"], "{problems:?}");
    assert!(
        problems[0]["problem"]
            .as_str()
            .unwrap()
            .contains("unreachable")
    );
    assert_eq!(code, Some(1));

    // Invalid settings: doctor cannot run at all.
    let r = c.run(&["doctor", "--listen", "not-an-address"]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
}

/// As a user without CAP_NET_RAW whose group may not open ping sockets,
/// doctor names the ICMP socket. Needs root (to become that user) and a
/// `ping_group_range` that leaves out the group `nogroup` (65534).
#[test]
fn doctor_names_a_missing_icmp_permission() {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range").unwrap_or_default();
    let bounds: Vec<u64> = range
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect();
    let allowed = bounds.len() == 2 && bounds[0] <= 65534 && 65534 <= bounds[1];
    let root = unsafe_free_euid() == 0;
    if !root || allowed || Command::new("setpriv").arg("--version").output().is_err() {
        eprintln!(
            "skipping: needs root, setpriv and a ping_group_range ({}) without 65534",
            range.trim()
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(BIN)
        .args([
            "doctor",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "off",
            "-o",
            "json",
        ])
        .arg("--data-dir")
        .arg(dir.path().join("db"))
        .env_clear()
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let problems = v.as_array().unwrap();
    let icmp = problems
        .iter()
        .find(|p| p["check"] == "icmp-socket")
        .unwrap_or_else(|| panic!("{problems:?}"));
    assert!(
        icmp["remedy"].as_str().unwrap().contains("CAP_NET_RAW"),
        "{icmp}"
    );
    assert_eq!(out.status.code(), Some(1));
}

/// The effective user id, from /proc (no unsafe in tests).
fn unsafe_free_euid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(2).unwrap().parse().unwrap()
}
