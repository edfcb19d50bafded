//! The lab tests' harness: a lab per test, vpnmon (real probe engine) inside
//! it on a tokio runtime whose threads all live in the lab's network
//! namespace, and an HTTP client that talks to it over the lab's loopback.

use domain::ProjectId;
use lab::{GroupCounters, Lab, LabConfig, LabError, TargetGroup};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::fmt::Display;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use store::prelude::*;
use store::{SqlStore, WindowPoint};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use vpnmon::app::{Application, Hooks};
use vpnmon::config::Settings;

/// Probe window of every lab test.
pub const INTERVAL: Duration = Duration::from_secs(1);
/// Echo requests per window.
pub const COUNT: u32 = 3;
/// Per-probe timeout: `TIMEOUT + tick (5 ms) < INTERVAL / COUNT`.
pub const TIMEOUT: Duration = Duration::from_millis(300);
/// Time between two probes of a monitor.
pub const SPACING: Duration = Duration::from_millis(1000 / COUNT as u64);
/// How often the probe service writes status and link-state changes
/// (prober::FLUSH_EVERY; datapoints go every 2 s, prober::POINTS_EVERY).
pub const FLUSH: Duration = Duration::from_millis(500);
/// The EIP pool of the lab app: gateway addresses inside the lab.
pub const EIP_POOL: &str = "198.18.0.1-198.18.0.8";
const ADMIN_PASSWORD: &str = "Lab-admin-pass-1";

pub fn group(cidr: &str) -> TargetGroup {
    TargetGroup::parse(cidr).expect("target group")
}

/// A new lab with a unique name, or `None` where this process may not build
/// one (not root): then the test `test` (its exact name) has been run again
/// inside a private user, network and mount namespace, where it may, and
/// passed there (a failure there panics here); it is skipped, saying why,
/// only where that is not possible either. The lab's responder (if any)
/// exits by itself after 3 minutes even if this process dies.
pub fn lab_or_skip(test: &str) -> Option<Lab> {
    let name = format!("vt-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let config = LabConfig::new(&name)
        .expect("lab name")
        .responder_command(env!("CARGO_BIN_EXE_vpnmon"), ["lab", "responder"])
        .responder_stop_after(Duration::from_secs(180));
    match config.up() {
        Ok(lab) => Some(lab),
        Err(LabError::NotPermitted(reason)) => {
            lab::userns::rerun_or_skip(test, &reason);
            None
        }
        Err(e) => panic!("{test}: cannot build lab {name}: {e}"),
    }
}

/// Runs `f` on a new thread inside the lab, with a multi-thread tokio
/// runtime built there (its workers start in the lab too). A panic in `f`
/// comes back to the caller, whose `Lab` then tears the lab down.
pub fn in_lab<T: Send>(
    lab: &mut Lab,
    f: impl FnOnce(&mut Lab, &tokio::runtime::Runtime) -> T + Send,
) -> T {
    std::thread::scope(|s| {
        let thread = s.spawn(move || {
            lab.enter_current_thread()
                .expect("enter the lab's network namespace");
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("tokio runtime");
            f(lab, &rt)
        });
        match thread.join() {
            Ok(v) => v,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Echo requests the lab saw for `targets` (a group of the lab).
pub fn counters(lab: &Lab, targets: &str) -> GroupCounters {
    lab.counters(group(targets)).expect("lab counters")
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

/// Polls `f` every `every` until it returns `Some` or `limit` has passed;
/// returns the value and how long it took, or the time waited.
pub async fn poll<T>(
    limit: Duration,
    every: Duration,
    mut f: impl AsyncFnMut() -> Option<T>,
) -> Result<(T, Duration), Duration> {
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return Ok((v, start.elapsed()));
        }
        if start.elapsed() >= limit {
            return Err(start.elapsed());
        }
        tokio::time::sleep(every).await;
    }
}

/// Soft assertions: every check is printed, failures are collected and
/// reported together at the end, so one run shows everything that is wrong.
pub struct Checks {
    test: &'static str,
    failures: Vec<String>,
}

impl Checks {
    pub fn new(test: &'static str) -> Self {
        Checks {
            test,
            failures: Vec::new(),
        }
    }

    pub fn check(&mut self, what: &str, ok: bool, detail: impl Display) {
        if ok {
            eprintln!("[{}] ok   {what}: {detail}", self.test);
        } else {
            eprintln!("[{}] FAIL {what}: {detail}", self.test);
            self.failures.push(format!("{what}: {detail}"));
        }
    }

    /// Panics listing every failed check.
    pub fn finish(self) {
        assert!(
            self.failures.is_empty(),
            "{}: {} check(s) failed:\n  - {}",
            self.test,
            self.failures.len(),
            self.failures.join("\n  - ")
        );
    }
}

/// One HTTP answer.
pub struct Resp {
    pub status: StatusCode,
    pub body: Value,
    pub raw: String,
}

/// vpnmon serving on the lab's 127.0.0.1 with the real probe engine, and a
/// logged-in client.
pub struct LabApp {
    pub base: String,
    pub client: reqwest::Client,
    pub token: String,
    pub project_id: String,
    pub project: ProjectId,
    pub store: Arc<SqlStore>,
    pub engine: Option<probe::EngineHandle>,
    settings: Settings,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
    _dir: Option<TempDir>,
}

impl LabApp {
    /// Builds and serves vpnmon probing every `INTERVAL` with `COUNT`
    /// probes and `TIMEOUT`, only towards `allow`.
    pub async fn start(allow: &[&str]) -> LabApp {
        Self::start_notifying(allow, &[]).await
    }

    /// As [`LabApp::start`], sending notifications only to `notify_allow`
    /// (besides public addresses, which the lab has none of).
    pub async fn start_notifying(allow: &[&str], notify_allow: &[&str]) -> LabApp {
        let dir = tempfile::tempdir().expect("tempdir");
        let settings = Settings {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().to_path_buf(),
            eip_pool: vec![EIP_POOL.into()],
            admin_password: Some(ADMIN_PASSWORD.into()),
            probe: true,
            probe_interval: INTERVAL,
            probe_count: COUNT,
            probe_timeout: TIMEOUT,
            probe_allow: allow
                .iter()
                .map(|a| a.parse().expect("allowlist CIDR"))
                .collect(),
            notify_allow: notify_allow
                .iter()
                .map(|a| a.parse().expect("notify allowlist CIDR"))
                .collect(),
            metrics_listen: None,
            ..Settings::default()
        };
        Self::serve(settings, dir).await
    }

    /// Stops serving and serves again on the same data directory with the
    /// same settings (a restart of the process), logged in again.
    pub async fn restart(mut self) -> LabApp {
        let settings = self.settings.clone();
        let dir = self._dir.take().expect("data directory");
        self.stop().await;
        Self::serve(settings, dir).await
    }

    async fn serve(settings: Settings, dir: TempDir) -> LabApp {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let app = Application::build(&settings, Hooks::default())
            .await
            .expect("build vpnmon with the probe engine");
        let base = format!("http://{}", app.addr());
        let store = app.store();
        let engine = app.probe_engine();
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(app.run_until(async {
            let _ = rx.await;
        }));
        // Never a proxy: every request stays on the lab's loopback.
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("http client");
        let mut app = LabApp {
            base,
            client,
            token: String::new(),
            project_id: String::new(),
            project: ProjectId::generate(),
            store,
            engine,
            settings,
            stop: Some(tx),
            handle: Some(handle),
            _dir: Some(dir),
        };
        app.login().await;
        app
    }

    async fn login(&mut self) {
        let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "password": ADMIN_PASSWORD, "domain": {"name": "vpnmon"}}}},
            "scope": {"project": {"name": "local-1"}}}});
        let r = self
            .client
            .post(format!("{}/v3/auth/tokens", self.base))
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("login request");
        assert_eq!(r.status(), StatusCode::CREATED, "login");
        self.token = r.headers()["x-subject-token"]
            .to_str()
            .expect("token header")
            .to_string();
        let body: Value = r.json().await.expect("login body");
        self.project_id = body["token"]["project"]["id"]
            .as_str()
            .expect("project id")
            .to_string();
        self.project = ProjectId::parse(&self.project_id).expect("project id format");
    }

    /// Stops serving (the probe engine stops and the store is closed).
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.expect("server task").expect("server");
        }
    }

    pub async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        let mut rb = self
            .client
            .request(method, format!("{}{}", self.base, path))
            .header("X-Auth-Token", &self.token);
        if let Some(b) = body {
            rb = rb
                .header("Content-Type", "application/json")
                .body(b.to_string());
        }
        let r = rb.send().await.expect("request");
        let status = r.status();
        let raw = r.text().await.expect("response body");
        let body = serde_json::from_str(&raw).unwrap_or(Value::Null);
        Resp { status, body, raw }
    }

    fn v5(&self, rest: &str) -> String {
        format!("/v5/{}{}", self.project_id, rest)
    }

    async fn create(&self, rest: &str, key: &str, body: Value) -> String {
        let r = self.send(Method::POST, &self.v5(rest), Some(body)).await;
        assert_eq!(r.status, StatusCode::CREATED, "POST {rest}: {}", r.raw);
        r.body[key]["id"].as_str().expect("id").to_string()
    }

    /// A gateway with one EIP from the pool: (gateway id, EIP id, address).
    pub async fn gateway(&self) -> (String, String, String) {
        let id = self
            .create(
                "/vpn-gateways",
                "vpn_gateway",
                json!({"vpn_gateway": {"vpc_id": uuid(), "connect_subnet": uuid(),
                "local_subnets": ["192.168.0.0/24"], "eip1": {"type": "5_bgp", "bandwidth_size": 10}}}),
            )
            .await;
        let r = self
            .send(Method::GET, &self.v5(&format!("/vpn-gateways/{id}")), None)
            .await;
        let eip = &r.body["vpn_gateway"]["eip1"];
        (
            id,
            eip["id"].as_str().expect("eip id").into(),
            eip["ip_address"].as_str().expect("eip address").into(),
        )
    }

    /// Customer gateway at `addr` and a connection to it: the connection id.
    pub async fn connection_to(&self, vgw: &str, eip_id: &str, addr: &str) -> String {
        let cgw = self
            .create(
                "/customer-gateways",
                "customer_gateway",
                json!({"customer_gateway": {"id_value": addr}}),
            )
            .await;
        self.create(
            "/vpn-connection",
            "vpn_connection",
            json!({"vpn_connection": {"vgw_id": vgw, "vgw_ip": eip_id, "cgw_id": cgw,
                "peer_subnets": ["10.10.0.0/16"], "psk": "Abcd1234!x"}}),
        )
        .await
    }

    /// A connection monitor of `conn`: its id.
    pub async fn monitor(&self, conn: &str) -> String {
        self.create(
            "/connection-monitors",
            "connection_monitor",
            json!({"connection_monitor": {"vpn_connection_id": conn}}),
        )
        .await
    }

    /// A monitor towards `addr` from `eip`: (connection id, monitor id).
    pub async fn monitored(&self, vgw: &str, eip_id: &str, addr: &str) -> (String, String) {
        let conn = self.connection_to(vgw, eip_id, addr).await;
        let m = self.monitor(&conn).await;
        (conn, m)
    }

    pub async fn delete_monitor(&self, id: &str) -> StatusCode {
        self.send(
            Method::DELETE,
            &self.v5(&format!("/connection-monitors/{id}")),
            None,
        )
        .await
        .status
    }

    /// GET show of a monitor: (HTTP status, `status` field).
    pub async fn monitor_status(&self, id: &str) -> (StatusCode, String) {
        let r = self
            .send(
                Method::GET,
                &self.v5(&format!("/connection-monitors/{id}")),
                None,
            )
            .await;
        let s = r.body["connection_monitor"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        (r.status, s)
    }

    /// `GET /vpnmon/{project}/monitors/{id}/state` → the `monitor_state` object.
    pub async fn state(&self, id: &str) -> Value {
        let r = self
            .send(
                Method::GET,
                &format!("/vpnmon/{}/monitors/{id}/state", self.project_id),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "state of {id}: {}", r.raw);
        r.body["monitor_state"].clone()
    }

    /// Every stored raw window of a monitor, oldest first.
    pub async fn points(&self, id: &str) -> Vec<WindowPoint> {
        let mut pts = self
            .store
            .list_points(
                &self.project,
                &domain::MonitorId::parse(id).expect("a monitor id"),
                0,
                now_ms() + 60_000,
            )
            .await
            .expect("list points");
        pts.sort_by_key(|p| p.window_start_ms);
        pts
    }

    /// CES `metric-data`, `period=1`, filter `average`, over `[from, to)`:
    /// the values.
    pub async fn ces(&self, metric: &str, conn: &str, from: i64, to: i64) -> Vec<f64> {
        let path = format!(
            "/V1.0/{}/metric-data?namespace=SYS.VPN&metric_name={metric}\
             &dim.0=evpn_connection_id,{conn}&filter=average&period=1&from={from}&to={to}",
            self.project_id
        );
        let r = self.send(Method::GET, &path, None).await;
        assert_eq!(r.status, StatusCode::OK, "CES {metric}: {}", r.raw);
        r.body["datapoints"]
            .as_array()
            .expect("datapoints")
            .iter()
            .map(|p| p["average"].as_f64().expect("average value"))
            .collect()
    }
}

pub fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Waits until every monitor in `ids` has at least `n` stored windows
/// (at most `limit`); returns whether they all did.
pub async fn windows_at_least(app: &LabApp, ids: &[&str], n: usize, limit: Duration) -> bool {
    poll(limit, Duration::from_millis(250), async || {
        for id in ids {
            if app.points(id).await.len() < n {
                return None;
            }
        }
        Some(())
    })
    .await
    .is_ok()
}

/// Sums of a monitor's windows: (windows, sent, received).
pub fn totals(points: &[WindowPoint]) -> (usize, i64, i64) {
    (
        points.len(),
        points.iter().map(|p| p.sent).sum(),
        points.iter().map(|p| p.received).sum(),
    )
}

/// Whether consecutive windows start exactly one interval apart (±1 ms):
/// no window was skipped or doubled. Returns the first gap otherwise.
pub fn first_gap(points: &[WindowPoint]) -> Option<i64> {
    let step = INTERVAL.as_millis() as i64;
    points
        .windows(2)
        .map(|w| w[1].window_start_ms - w[0].window_start_ms)
        .find(|d| (d - step).abs() > 1)
}
