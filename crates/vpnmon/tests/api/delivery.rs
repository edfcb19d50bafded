//! SMN delivery end to end: a real HTTP receiver on loopback gets the
//! confirmation, confirms through its subscribe_url, then gets published
//! messages in SMN's envelope, signed with the key of the certificate that
//! vpnmon serves; a receiver that fails gets the message again later, once.

use crate::helpers::*;
use crate::smn_support::{Received, Receiver, enc, verify};
use axum::http::HeaderMap;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

/// Waits until the receiver has `n` messages.
async fn wait_for(r: &Received, n: usize) -> Vec<(HeaderMap, Value)> {
    r.wait_until(Duration::from_secs(10), |got| got.len() >= n)
        .await
        .unwrap_or_else(|got| panic!("the receiver got {} messages, not {n}", got.len()))
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

#[tokio::test]
async fn confirm_then_deliver_signed_and_retry_a_failing_receiver() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = TestApp::spawn_with(
        dir,
        |s| s.notify_allow = vec!["127.0.0.0/8".parse().unwrap()],
        false,
    )
    .await;
    let receiver = Receiver::start("127.0.0.1:0".parse().unwrap(), Default::default()).await;
    let (rx, url) = (receiver.received.clone(), receiver.url());
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
    verify(&app.base, c).await;
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
    rx.set_status(503);
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
    rx.set_status(200);
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
    verify(&app.base, n).await;
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
