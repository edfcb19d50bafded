//! Spawning the server and talking to it.

use api::{Clock, MonitorWatcher};
use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::{Arc, Mutex};
use store::prelude::*;
use tempfile::TempDir;
use tokio::sync::oneshot;
use vpnmon::app::{Application, Hooks};
use vpnmon::config::Settings;

pub const ADMIN_PASSWORD: &str = "Admin-pass-123";

/// A clock the test moves by hand.
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn advance(&self, d: chrono::Duration) {
        let mut t = self.0.lock().unwrap();
        *t += d;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// Records what the API told the probe engine's seam.
#[derive(Default)]
pub struct RecordingWatcher {
    pub created: Mutex<Vec<store::ProbeMonitor>>,
    pub deleted: Mutex<Vec<String>>,
}

impl MonitorWatcher for RecordingWatcher {
    fn created(&self, m: &store::ProbeMonitor) {
        self.created.lock().unwrap().push(m.clone());
    }
    fn deleted(&self, id: &domain::MonitorId) {
        self.deleted.lock().unwrap().push(id.to_string());
    }
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub store: Arc<store::SqlStore>,
    pub clock: Arc<ManualClock>,
    pub watcher: Arc<RecordingWatcher>,
    pub project_id: String,
    pub token: String,
    pub dir: Option<TempDir>,
    /// The probe engine, when it runs (`real_probe`).
    pub engine: Option<probe::EngineHandle>,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub struct Resp {
    pub status: StatusCode,
    pub request_id: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub raw: String,
}

impl Resp {
    /// Asserts a Huawei error body with this status and code, whose
    /// request_id matches the X-Request-Id header; returns the message.
    pub fn assert_error(&self, status: u16, code: &str) -> String {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.raw);
        assert_eq!(self.body["error_code"], code, "body: {}", self.raw);
        let rid = self.request_id.clone().expect("X-Request-Id header");
        assert_eq!(self.body["request_id"], rid.as_str());
        let keys: Vec<_> = self.body.as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            keys.len(),
            3,
            "error body has exactly three keys: {}",
            self.raw
        );
        self.body["error_msg"].as_str().unwrap().to_string()
    }
}

impl Resp {
    /// Asserts IAM's Keystone error body (`{"error": {"code", "message",
    /// "title"}}`) with this status and an `X-Request-Id`; returns the
    /// message.
    pub fn assert_keystone(&self, status: u16) -> String {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.raw);
        assert!(self.request_id.is_some(), "X-Request-Id header");
        let e = &self.body["error"];
        assert_eq!(e["code"], status, "body: {}", self.raw);
        assert_eq!(
            e["title"],
            self.status.canonical_reason().unwrap(),
            "body: {}",
            self.raw
        );
        assert_eq!(self.body.as_object().unwrap().len(), 1, "{}", self.raw);
        e["message"].as_str().unwrap().to_string()
    }
}

fn settings(dir: &Path) -> Settings {
    Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.to_path_buf(),
        eip_pool: vec!["127.0.0.2-127.0.0.9".into()],
        admin_password: Some(ADMIN_PASSWORD.into()),
        probe: false,
        ..Settings::default()
    }
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        Self::spawn_in(dir).await
    }

    pub async fn spawn_in(dir: TempDir) -> TestApp {
        Self::spawn_with(dir, |_| {}, false).await.0
    }

    /// Spawns with adjusted settings; with `real_probe`, the real probe
    /// engine runs (system clock, no recording watcher). Returns the app and
    /// the metrics address, if metrics are served.
    pub async fn spawn_with(
        dir: TempDir,
        adjust: impl FnOnce(&mut Settings),
        real_probe: bool,
    ) -> (TestApp, Option<std::net::SocketAddr>) {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let clock = Arc::new(ManualClock(Mutex::new(Utc::now())));
        let watcher = Arc::new(RecordingWatcher::default());
        let mut s = settings(dir.path());
        adjust(&mut s);
        let hooks = if real_probe {
            s.probe = true;
            Hooks::default()
        } else {
            Hooks {
                clock: Some(clock.clone()),
                watcher: Some(watcher.clone()),
            }
        };
        let app = Application::build(&s, hooks).await.expect("build app");
        let metrics_addr = app.metrics_addr();
        let base = format!("http://{}", app.addr());
        let store = app.store();
        let engine = app.probe_engine();
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(app.run_until(async {
            let _ = rx.await;
        }));
        let mut t = TestApp {
            base,
            client: reqwest::Client::new(),
            store,
            clock,
            watcher,
            project_id: String::new(),
            token: String::new(),
            dir: Some(dir),
            engine,
            stop: Some(tx),
            handle: Some(handle),
        };
        let (token, project) = t.login("vpnmon", "admin", ADMIN_PASSWORD, "local-1").await;
        t.token = token;
        t.project_id = project;
        (t, metrics_addr)
    }

    /// The SK master key, from the key file beside the database.
    pub async fn master_key(&self) -> [u8; 32] {
        let file = self.dir.as_ref().unwrap().path().join("vpnmon.key");
        vpnmon::secrets::master_key(self.store.as_ref(), &vpnmon::secrets::KeySource::File(file))
            .await
            .unwrap()
    }

    /// Stops the server and hands back its data directory.
    pub async fn stop(mut self) -> TempDir {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.unwrap().unwrap();
        }
        self.dir.take().unwrap()
    }

    pub async fn login(
        &self,
        domain: &str,
        user: &str,
        password: &str,
        project: &str,
    ) -> (String, String) {
        let r = self.login_raw(domain, user, password, project).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        let token = r.headers["x-subject-token"].to_str().unwrap().to_string();
        (
            token,
            r.body["token"]["project"]["id"]
                .as_str()
                .unwrap()
                .to_string(),
        )
    }

    pub async fn login_raw(&self, domain: &str, user: &str, password: &str, project: &str) -> Resp {
        let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "password": password, "domain": {"name": domain}}}},
            "scope": {"project": {"name": project}}}});
        self.send(Method::POST, "/v3/auth/tokens", None, Some(body))
            .await
    }

    /// Creates a second project with its own user; returns (token, project id).
    pub async fn other_tenant(&self, name: &str) -> (String, String) {
        let d = self.store.find_domain("vpnmon").await.unwrap().unwrap();
        let p = self.store.create_project(&d.id, name).await.unwrap();
        let hash = auth::password::hash_password("Other-pass-123").unwrap();
        let u = self
            .store
            .create_user(&d.id, &format!("user-{name}"), &hash)
            .await
            .unwrap();
        self.store.grant(&u.id, &p.id).await.unwrap();
        self.login("vpnmon", &format!("user-{name}"), "Other-pass-123", name)
            .await
    }

    pub fn clock_now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn v5(&self, rest: &str) -> String {
        format!("/v5/{}{}", self.project_id, rest)
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut rb = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            rb = rb.header("X-Auth-Token", t);
        }
        if let Some(b) = body {
            rb = rb
                .header("Content-Type", "application/json")
                .body(b.to_string());
        }
        Self::finish(rb).await
    }

    pub async fn finish(rb: reqwest::RequestBuilder) -> Resp {
        let r = rb.send().await.expect("request");
        let status = r.status();
        let headers = r.headers().clone();
        let request_id = headers
            .get("x-request-id")
            .map(|v| v.to_str().unwrap().to_string());
        let raw = r.text().await.unwrap();
        let body = if raw.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&raw).unwrap_or(Value::Null)
        };
        Resp {
            status,
            request_id,
            headers,
            body,
            raw,
        }
    }

    /// The text a metrics listener serves at `url`.
    pub async fn scrape(&self, url: &str) -> String {
        let r = self.client.get(url).send().await.unwrap();
        r.text().await.unwrap()
    }

    pub async fn get(&self, rest: &str) -> Resp {
        self.send(Method::GET, &self.v5(rest), Some(&self.token), None)
            .await
    }
    pub async fn post(&self, rest: &str, body: Value) -> Resp {
        self.send(Method::POST, &self.v5(rest), Some(&self.token), Some(body))
            .await
    }
    pub async fn put(&self, rest: &str, body: Value) -> Resp {
        self.send(Method::PUT, &self.v5(rest), Some(&self.token), Some(body))
            .await
    }
    pub async fn delete(&self, rest: &str) -> Resp {
        self.send(Method::DELETE, &self.v5(rest), Some(&self.token), None)
            .await
    }

    /// Creates a public gateway with one EIP from the pool; returns (id, eip id, eip address).
    pub async fn gateway(&self) -> (String, String, String) {
        let r = self
            .post(
                "/vpn-gateways",
                json!({"vpn_gateway": {"vpc_id": uuid(), "connect_subnet": uuid(),
                    "local_subnets": ["192.168.0.0/24"], "eip1": {"type": "5_bgp", "bandwidth_size": 10}}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        let id = r.body["vpn_gateway"]["id"].as_str().unwrap().to_string();
        let s = self.get(&format!("/vpn-gateways/{id}")).await;
        let eip = &s.body["vpn_gateway"]["eip1"];
        (
            id,
            eip["id"].as_str().unwrap().into(),
            eip["ip_address"].as_str().unwrap().into(),
        )
    }

    pub async fn cgw(&self, addr: &str) -> String {
        let r = self
            .post(
                "/customer-gateways",
                json!({"customer_gateway": {"id_value": addr}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        r.body["customer_gateway"]["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub async fn connection(&self, vgw: &str, eip: &str, cgw: &str) -> String {
        let r = self
            .post(
                "/vpn-connection",
                json!({"vpn_connection": {"vgw_id": vgw, "vgw_ip": eip, "cgw_id": cgw,
                    "peer_subnets": ["10.10.0.0/16"], "psk": "Abcd1234!x"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        r.body["vpn_connection"]["id"].as_str().unwrap().to_string()
    }

    pub async fn monitor(&self, conn: &str) -> String {
        let r = self
            .post(
                "/connection-monitors",
                json!({"connection_monitor": {"vpn_connection_id": conn}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        r.body["connection_monitor"]["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// gateway + cgw + connection + monitor; returns (vgw, cgw, conn, monitor).
    pub async fn seed(&self) -> (String, String, String, String) {
        let (g, e, _) = self.gateway().await;
        let c = self.cgw("127.0.0.10").await;
        let conn = self.connection(&g, &e, &c).await;
        let m = self.monitor(&conn).await;
        (g, c, conn, m)
    }
}

pub fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
    k.sort();
    k
}
