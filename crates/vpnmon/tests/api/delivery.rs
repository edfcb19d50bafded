//! SMN delivery end to end: a real HTTP receiver on loopback gets the
//! confirmation, confirms through its subscribe_url, then gets published
//! messages in SMN's envelope, signed with the key of the certificate that
//! vpnmon serves; a receiver that fails gets the message again later, once.

use crate::helpers::*;
use axum::http::{HeaderMap, StatusCode as AxStatus};
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct Receiver {
    got: Mutex<Vec<(HeaderMap, Value)>>,
    /// The status it answers (200 unless set).
    status: AtomicU16,
}

async fn receiver() -> (Arc<Receiver>, String) {
    let r = Arc::new(Receiver::default());
    r.status.store(200, Ordering::SeqCst);
    let shared = r.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let shared = shared.clone();
            async move {
                let v: Value = serde_json::from_str(&body).expect("a JSON body");
                shared.got.lock().unwrap().push((headers, v));
                AxStatus::from_u16(shared.status.load(Ordering::SeqCst)).unwrap()
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (r, url)
}

/// Waits until the receiver has `n` messages.
async fn wait_for(r: &Receiver, n: usize) -> Vec<(HeaderMap, Value)> {
    for _ in 0..200 {
        {
            let got = r.got.lock().unwrap();
            if got.len() >= n {
                return got.clone();
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the receiver got {} messages, not {n}",
        r.got.lock().unwrap().len()
    );
}

/// The delivery of `message_id` once `done` holds for it (or as it is
/// after 5 s).
async fn poll_delivery(app: &TestApp, message_id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let path = format!(
        "/vpnmon/{}/notifications/deliveries?message_id={message_id}",
        app.project_id
    );
    let mut d = Value::Null;
    for _ in 0..100 {
        d = app
            .send(Method::GET, &path, Some(&app.token), None)
            .await
            .body["deliveries"][0]
            .clone();
        if done(&d) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    d
}

/// Checks `m`'s signature with the certificate at its `signing_cert_url`.
async fn verify(app: &TestApp, m: &Value) {
    let cert_url = m["signing_cert_url"].as_str().expect("signing_cert_url");
    assert!(
        cert_url.starts_with(&format!("{}/smn/SMN_local-1_", app.base)),
        "{cert_url}"
    );
    let pem = reqwest::get(cert_url).await.unwrap();
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

fn enc(urn: &str) -> String {
    urn.replace(':', "%3A")
}

#[tokio::test]
async fn confirm_then_deliver_signed_and_retry_a_failing_receiver() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = TestApp::spawn_with(
        dir,
        |s| s.notify_allow = vec!["127.0.0.0/8".parse().unwrap()],
        false,
    )
    .await;
    let (rx, url) = receiver().await;
    let base = format!("/v2/{}/notifications", app.project_id);
    let r = app
        .send(
            Method::POST,
            &format!("{base}/topics"),
            Some(&app.token),
            Some(json!({"name": "ops", "display_name": "Ops"})),
        )
        .await;
    let topic = r.body["topic_urn"].as_str().unwrap().to_string();
    let r = app
        .send(
            Method::POST,
            &format!("{base}/topics/{}/subscriptions", enc(&topic)),
            Some(&app.token),
            Some(json!({"protocol": "http", "endpoint": url})),
        )
        .await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.raw);
    let sub = r.body["subscription_urn"].as_str().unwrap().to_string();

    // The confirmation.
    let got = wait_for(&rx, 1).await;
    let (h, c) = &got[0];
    assert_eq!(h["x-smn-message-type"], "SubscriptionConfirmation");
    assert_eq!(h["x-smn-topic-urn"], topic.as_str());
    assert_eq!(h["x-smn-message-id"], c["message_id"].as_str().unwrap());
    assert_eq!(c["type"], "SubscriptionConfirmation");
    assert_eq!(c["topic_urn"], topic.as_str());
    assert!(c["timestamp"].as_str().unwrap().ends_with('Z'), "{c}");
    verify(&app, c).await;
    // Nothing is delivered before it is confirmed.
    let r = app
        .send(
            Method::POST,
            &format!("{base}/topics/{}/publish", enc(&topic)),
            Some(&app.token),
            Some(json!({"subject": "early", "message": "not for you"})),
        )
        .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.raw);
    // A tampered token confirms nothing.
    let subscribe_url = c["subscribe_url"].as_str().unwrap().to_string();
    assert!(subscribe_url.starts_with(&app.base), "{subscribe_url}");
    let bad = reqwest::get(format!("{subscribe_url}0")).await.unwrap();
    assert_eq!(bad.status(), 404);
    let ok = reqwest::get(&subscribe_url).await.unwrap();
    assert_eq!(ok.status(), 200);
    let v: Value = ok.json().await.unwrap();
    assert_eq!(v["subscription_urn"], sub.as_str());
    let r = app
        .send(
            Method::GET,
            &format!("{base}/topics/{}/subscriptions", enc(&topic)),
            Some(&app.token),
            None,
        )
        .await;
    assert_eq!(r.body["subscriptions"][0]["status"], 1, "{}", r.raw);

    // The receiver fails: the message comes again after the backoff, and
    // is delivered once.
    rx.status.store(503, Ordering::SeqCst);
    let r = app
        .send(
            Method::POST,
            &format!("{base}/topics/{}/publish", enc(&topic)),
            Some(&app.token),
            Some(json!({"subject": "link down", "message": "{\"loss\": 100}"})),
        )
        .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.raw);
    let message_id = r.body["message_id"].as_str().unwrap().to_string();
    let got = wait_for(&rx, 2).await;
    assert_eq!(got.len(), 2, "the early publish reached no one");
    let first = got[1].1.clone();
    assert_eq!(first["message_id"], message_id.as_str());
    // Recorded after the answer: wait for the attempt to be counted.
    let shown = poll_delivery(&app, &message_id, |d| d["attempts"] == 1).await;
    assert_eq!(shown["state"], "pending", "{shown}");
    assert_eq!(shown["attempts"], 1, "{shown}");
    assert_eq!(shown["last_status"], 503, "{shown}");
    rx.status.store(200, Ordering::SeqCst);
    // The store's clock is the test's: the retry is due 1 s later.
    app.clock.advance(chrono::Duration::seconds(2));
    let got = wait_for(&rx, 3).await;
    let (h, n) = &got[2];
    assert_eq!(h["x-smn-message-type"], "Notification");
    assert_eq!(h["x-smn-subscription-urn"], sub.as_str());
    assert_eq!(n["message_id"], message_id.as_str());
    assert_eq!(n["subject"], "link down");
    assert_eq!(n["message"], "{\"loss\": 100}");
    assert_eq!(n["timestamp"], first["timestamp"], "the first-send time");
    verify(&app, n).await;
    let id = shown["id"].as_str().unwrap();
    poll_delivery(&app, &message_id, |d| d["state"] == "delivered").await;
    let one = app
        .send(
            Method::GET,
            &format!("/vpnmon/{}/notifications/deliveries/{id}", app.project_id),
            Some(&app.token),
            None,
        )
        .await
        .body;
    assert_eq!(one["delivery"]["state"], "delivered", "{one}");
    let statuses: Vec<&Value> = one["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["http_status"])
        .collect();
    assert_eq!(statuses, vec![&json!(503), &json!(200)], "{one}");
    // Nothing more arrives.
    app.clock.advance(chrono::Duration::seconds(60));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(rx.got.lock().unwrap().len(), 3);

    // The unsubscribe_url (with its token) deletes the subscription.
    let unsub = n["unsubscribe_url"].as_str().unwrap();
    let r = reqwest::get(unsub).await.unwrap();
    assert_eq!(r.status(), 200);
    let r = app
        .send(
            Method::GET,
            &format!("{base}/subscriptions"),
            Some(&app.token),
            None,
        )
        .await;
    assert_eq!(r.body["subscription_count"], 0, "{}", r.raw);
    // Another tenant sees none of the deliveries.
    let (other_token, other) = app.other_tenant("other").await;
    let r = app
        .send(
            Method::GET,
            &format!("/vpnmon/{other}/notifications/deliveries/{id}"),
            Some(&other_token),
            None,
        )
        .await;
    assert_eq!(r.status.as_u16(), 404, "{}", r.raw);
    app.stop().await;
}
