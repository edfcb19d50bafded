//! `GET /healthz` and `GET /readyz`: no credentials, exact bodies, and
//! `/readyz` turning 503 with a reason when the store or the engine is gone.

use crate::helpers::{TestApp, keys};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn healthz_is_200_without_credentials() {
    let app = TestApp::spawn().await;
    let r = app.send(Method::GET, "/healthz", None, None).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(r.body["status"], "ok");
    assert_eq!(keys(&r.body), ["request_id", "status"]);
    app.stop().await;
}

#[tokio::test]
async fn readyz_is_200_while_the_store_answers() {
    let app = TestApp::spawn().await;
    let r = app.send(Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(r.body["status"], "ok");
    app.stop().await;
}

#[tokio::test]
async fn readyz_is_503_with_a_reason_when_the_store_is_gone() {
    let app = TestApp::spawn().await;
    app.store.close().await;
    let r = app.send(Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status, 503, "{}", r.raw);
    assert_eq!(r.body["status"], "unavailable");
    assert_eq!(r.body["reason"], json!("the store does not answer"));
    let r = app.send(Method::GET, "/healthz", None, None).await;
    assert_eq!(r.status, 200, "the process is still alive: {}", r.raw);
    app.stop().await;
}

#[tokio::test]
async fn readyz_is_503_when_the_probe_engine_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = TestApp::spawn_with(dir, |_| {}, true).await;
    let r = app.send(Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    let engine = app.engine.clone().expect("the engine runs");
    // The engine thread ends (as if it had died): the node is not ready.
    engine.shutdown().await;
    let r = app.send(Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status, 503, "{}", r.raw);
    assert_eq!(r.body["reason"], json!("the probe engine is not running"));
    app.stop().await;
}
