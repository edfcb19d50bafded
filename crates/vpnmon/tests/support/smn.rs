//! A real HTTP(S) notification receiver for the delivery tests, and the
//! check of an SMN message's signature against the certificate vpnmon
//! serves. Shared by the API tests (`tests/api`) and the lab tests.

#![allow(dead_code)]

use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// What a receiver got, and the status it answers.
#[derive(Default)]
pub struct Received {
    pub got: Mutex<Vec<(HeaderMap, Value)>>,
    /// The status it answers (200 unless set).
    pub status: AtomicU16,
}

impl Received {
    /// Every message so far.
    pub fn all(&self) -> Vec<(HeaderMap, Value)> {
        self.got.lock().unwrap().clone()
    }

    /// The messages of SMN type `kind` (`Notification`, ...).
    pub fn of_type(&self, kind: &str) -> Vec<Value> {
        self.all()
            .into_iter()
            .filter(|(_, v)| v["type"] == kind)
            .map(|(_, v)| v)
            .collect()
    }

    pub fn set_status(&self, s: u16) {
        self.status.store(s, Ordering::SeqCst);
    }

    /// Waits until `f` holds for the messages so far, at most `limit`.
    pub async fn wait_until(
        &self,
        limit: Duration,
        f: impl Fn(&[(HeaderMap, Value)]) -> bool,
    ) -> Result<Vec<(HeaderMap, Value)>, Vec<(HeaderMap, Value)>> {
        let start = Instant::now();
        loop {
            let got = self.all();
            if f(&got) {
                return Ok(got);
            }
            if start.elapsed() >= limit {
                return Err(got);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A receiver serving `POST /hook` on a loopback address until stopped;
/// stopping closes its listener and its connections (a dead endpoint).
pub struct Receiver {
    pub received: Arc<Received>,
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Receiver {
    /// Listens on `addr` (`127.0.0.1:0` for any port), answering with
    /// `received`'s status and recording into it.
    pub async fn start(addr: SocketAddr, received: Arc<Received>) -> Receiver {
        if received.status.load(Ordering::SeqCst) == 0 {
            received.set_status(200);
        }
        let shared = received.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let shared = shared.clone();
                async move {
                    let v: Value = serde_json::from_str(&body).expect("a JSON body");
                    shared.got.lock().unwrap().push((headers, v));
                    StatusCode::from_u16(shared.status.load(Ordering::SeqCst)).unwrap()
                }
            }),
        );
        let l = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = l.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(l, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
                .unwrap()
        });
        Receiver {
            received,
            addr,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// The endpoint URL to subscribe.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Stops listening and closes its connections.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

/// Checks `m`'s signature with the certificate at its `signing_cert_url`,
/// which must be served by the vpnmon at `base`.
pub async fn verify(base: &str, m: &Value) {
    let cert_url = m["signing_cert_url"].as_str().expect("signing_cert_url");
    assert!(
        cert_url.starts_with(&format!("{base}/smn/SMN_local-1_")),
        "{cert_url}"
    );
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let pem = client.get(cert_url).send().await.unwrap();
    assert_eq!(pem.status(), 200);
    let pem = pem.text().await.unwrap();
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).expect("a PEM");
    let cert = pem.parse_x509().expect("a certificate");
    let spki = cert.public_key();
    let public = ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        spki.subject_public_key.data.to_vec(),
    );
    // SMN's string to sign, built here from the documented rule.
    let kind = m["type"].as_str().unwrap();
    let keys: &[&str] = if kind == "Notification" {
        if m.get("subject").is_some() {
            &[
                "message",
                "message_id",
                "subject",
                "timestamp",
                "topic_urn",
                "type",
            ]
        } else {
            &["message", "message_id", "timestamp", "topic_urn", "type"]
        }
    } else {
        &[
            "message",
            "message_id",
            "subscribe_url",
            "timestamp",
            "topic_urn",
            "type",
        ]
    };
    let mut text = String::new();
    for k in keys {
        text.push_str(k);
        text.push('\n');
        text.push_str(m[*k].as_str().unwrap_or_else(|| panic!("{k} in {m}")));
        text.push('\n');
    }
    use base64::Engine;
    let sig = base64::engine::general_purpose::STANDARD
        .decode(m["signature"].as_str().unwrap())
        .expect("Base64");
    public
        .verify(text.as_bytes(), &sig)
        .unwrap_or_else(|_| panic!("the signature of {m} does not verify"));
    assert_eq!(m["signature_version"], "v1");
}

/// A URN as the SDKs put it in a path.
pub fn enc(urn: &str) -> String {
    urn.replace(':', "%3A")
}
