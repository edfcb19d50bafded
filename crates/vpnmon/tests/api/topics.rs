//! SMN topics (`/v2/{project_id}/notifications/topics...`), as
//! `huaweicloudsdksmn` sends them: URNs percent-encoded in paths, SMN's
//! error body `{"request_id", "code", "message"}`.

use crate::helpers::{Resp, TestApp, keys};
use crate::smn_support::enc;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn smn(app: &TestApp, method: Method, rest: &str, body: Option<Value>) -> Resp {
    let path = format!("/v2/{}/notifications{rest}", app.project_id);
    app.send(method, &path, Some(&app.token), body).await
}

/// Asserts SMN's error body; returns the message.
fn smn_error(r: &Resp, status: u16, code: &str) -> String {
    assert_eq!(r.status.as_u16(), status, "{}", r.raw);
    assert_eq!(
        keys(&r.body),
        vec!["code", "message", "request_id"],
        "{}",
        r.raw
    );
    assert_eq!(r.body["code"], code, "{}", r.raw);
    assert_eq!(
        r.body["request_id"].as_str(),
        r.request_id.as_deref(),
        "request_id is the X-Request-Id"
    );
    r.body["message"].as_str().expect("message").to_string()
}

#[tokio::test]
async fn topic_create_is_idempotent_and_show_list_update_delete_work() {
    let app = TestApp::spawn().await;
    let r = smn(
        &app,
        Method::POST,
        "/topics",
        Some(json!({"name": "ops", "display_name": "Ops"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
    assert_eq!(keys(&r.body), vec!["request_id", "topic_urn"]);
    let urn = r.body["topic_urn"].as_str().expect("urn").to_string();
    assert_eq!(urn, format!("urn:smn:local-1:{}:ops", app.project_id));
    let again = smn(
        &app,
        Method::POST,
        "/topics",
        Some(json!({"name": "ops", "display_name": "Other"})),
    )
    .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.raw);
    assert_eq!(again.body["topic_urn"], urn.as_str());

    let r = smn(&app, Method::GET, &format!("/topics/{}", enc(&urn)), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert_eq!(
        keys(&r.body),
        vec![
            "create_time",
            "display_name",
            "enterprise_project_id",
            "name",
            "push_policy",
            "request_id",
            "topic_id",
            "topic_urn",
            "update_time"
        ]
    );
    assert_eq!(r.body["display_name"], "Ops");
    assert_eq!(r.body["push_policy"], 0);
    let t = r.body["create_time"].as_str().expect("time");
    assert_eq!(t.len(), 20, "{t}");
    assert!(t.ends_with('Z') && !t.contains('.'), "{t}");

    let r = smn(
        &app,
        Method::PUT,
        &format!("/topics/{}", enc(&urn)),
        Some(json!({"display_name": "Operations"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert_eq!(keys(&r.body), vec!["request_id"]);
    smn(
        &app,
        Method::POST,
        "/topics",
        Some(json!({"name": "dev", "display_name": ""})),
    )
    .await;
    let r = smn(&app, Method::GET, "/topics?offset=0&limit=10", None).await;
    assert_eq!(r.body["topic_count"], 2, "{}", r.raw);
    let names: Vec<&str> = r.body["topics"]
        .as_array()
        .expect("list")
        .iter()
        .map(|t| t["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"ops") && names.contains(&"dev"));
    let r = smn(&app, Method::GET, "/topics?name=ops", None).await;
    assert_eq!(r.body["topic_count"], 1);
    assert_eq!(r.body["topics"][0]["display_name"], "Operations");

    let r = smn(
        &app,
        Method::DELETE,
        &format!("/topics/{}", enc(&urn)),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    let r = smn(&app, Method::GET, &format!("/topics/{}", enc(&urn)), None).await;
    assert_eq!(smn_error(&r, 404, "SMN.0006"), "Topic not found.");
    let r = smn(
        &app,
        Method::DELETE,
        &format!("/topics/{}", enc(&urn)),
        None,
    )
    .await;
    smn_error(&r, 404, "SMN.0006");
}

#[tokio::test]
async fn topic_errors_answer_in_the_smn_body_with_the_fields_code() {
    let app = TestApp::spawn().await;
    let cases: Vec<(Value, u16, &str, &str)> = vec![
        (
            json!({"name": "a b", "display_name": "x"}),
            400,
            "SMN.0002",
            "Parameter name: ",
        ),
        (
            json!({"name": "-a", "display_name": "x"}),
            400,
            "SMN.0002",
            "Parameter name: ",
        ),
        (
            json!({"name": "a", "display_name": "x".repeat(193)}),
            400,
            "SMN.0003",
            "Parameter display_name: ",
        ),
        (
            json!({"display_name": "x"}),
            400,
            "SMN.0001",
            "Parameter name is required",
        ),
        (
            json!({"name": "a", "display_name": "x", "colour": 1}),
            400,
            "SMN.0001",
            "Unsupported attribute: colour",
        ),
    ];
    for (b, status, code, msg) in cases {
        let r = smn(&app, Method::POST, "/topics", Some(b.clone())).await;
        let m = smn_error(&r, status, code);
        assert!(m.starts_with(msg), "{b}: {m}");
    }
    for q in ["limit=0", "limit=101", "offset=-1"] {
        let r = smn(&app, Method::GET, &format!("/topics?{q}"), None).await;
        smn_error(&r, 400, "SMN.0015");
    }
    let r = smn(&app, Method::GET, "/topics/not-a-urn", None).await;
    smn_error(&r, 400, "SMN.0005");
    let r = smn(&app, Method::GET, "/topics?fuzzy_name=o", None).await;
    smn_error(&r, 400, "SMN.0001");
}

#[tokio::test]
async fn topics_of_another_project_are_not_found() {
    let app = TestApp::spawn().await;
    let r = smn(
        &app,
        Method::POST,
        "/topics",
        Some(json!({"name": "ops", "display_name": "Ops"})),
    )
    .await;
    let urn = r.body["topic_urn"].as_str().expect("urn").to_string();
    let (token, other) = app.other_tenant("beta").await;
    for (method, body) in [
        (Method::GET, None),
        (Method::PUT, Some(json!({"display_name": "x"}))),
        (Method::DELETE, None),
    ] {
        let path = format!("/v2/{other}/notifications/topics/{}", enc(&urn));
        let r = app.send(method, &path, Some(&token), body).await;
        smn_error(&r, 404, "SMN.0006");
    }
    let r = app
        .send(
            Method::GET,
            &format!("/v2/{other}/notifications/topics"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(r.body["topic_count"], 0, "{}", r.raw);
    // Its own topic of the same name is another topic.
    let r = app
        .send(
            Method::POST,
            &format!("/v2/{other}/notifications/topics"),
            Some(&token),
            Some(json!({"name": "ops", "display_name": "B"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
    assert_ne!(r.body["topic_urn"], urn.as_str());
    let r = smn(&app, Method::GET, &format!("/topics/{}", enc(&urn)), None).await;
    assert_eq!(r.body["display_name"], "Ops");
}

async fn spawn_allowing_loopback() -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    TestApp::spawn_with(
        dir,
        |s| s.notify_allow = vec!["127.0.0.0/8".parse().expect("cidr")],
        false,
    )
    .await
    .0
}

async fn topic(app: &TestApp, name: &str) -> String {
    let r = smn(
        app,
        Method::POST,
        "/topics",
        Some(json!({"name": name, "display_name": name})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
    r.body["topic_urn"].as_str().expect("urn").to_string()
}

#[tokio::test]
async fn subscriptions_add_list_and_cancel() {
    let app = spawn_allowing_loopback().await;
    let urn = topic(&app, "ops").await;
    let path = format!("/topics/{}/subscriptions", enc(&urn));
    let b = json!({"protocol": "http", "endpoint": "http://127.0.0.1:9/hook", "remark": "r"});
    let r = smn(&app, Method::POST, &path, Some(b.clone())).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
    assert_eq!(keys(&r.body), vec!["request_id", "subscription_urn"]);
    let sub = r.body["subscription_urn"]
        .as_str()
        .expect("urn")
        .to_string();
    assert!(
        sub.starts_with(&format!("{urn}:")) && sub.len() == urn.len() + 33,
        "{sub}"
    );
    let again = smn(&app, Method::POST, &path, Some(b)).await;
    assert_eq!(
        (again.status, again.body["subscription_urn"].clone()),
        (StatusCode::OK, json!(sub))
    );

    let r = smn(&app, Method::GET, &path, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert_eq!(r.body["subscription_count"], 1);
    assert_eq!(
        r.body["subscriptions"][0],
        json!({"topic_urn": urn, "protocol": "http", "subscription_urn": sub,
               "owner": app.project_id, "endpoint": "http://127.0.0.1:9/hook", "remark": "r",
               "status": 0})
    );
    let r = smn(&app, Method::GET, "/subscriptions?limit=10", None).await;
    assert_eq!(r.body["subscription_count"], 1, "{}", r.raw);

    let r = smn(
        &app,
        Method::DELETE,
        &format!("/subscriptions/{}", enc(&sub)),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    let r = smn(
        &app,
        Method::DELETE,
        &format!("/subscriptions/{}", enc(&sub)),
        None,
    )
    .await;
    assert_eq!(smn_error(&r, 404, "SMN.0013"), "Subscription not found.");
    let r = smn(&app, Method::DELETE, "/subscriptions/nope", None).await;
    smn_error(&r, 400, "SMN.0014");
    let r = smn(&app, Method::GET, "/subscriptions", None).await;
    assert_eq!(r.body["subscription_count"], 0);
}

#[tokio::test]
async fn subscription_errors_name_the_field() {
    let app = TestApp::spawn().await;
    let urn = topic(&app, "ops").await;
    let path = format!("/topics/{}/subscriptions", enc(&urn));
    for (b, code, msg) in [
        (
            json!({"protocol": "email", "endpoint": "a@b.c"}),
            "SMN.0011",
            "Parameter protocol: ",
        ),
        (
            json!({"protocol": "http", "endpoint": "https://203.0.113.7/"}),
            "SMN.0012",
            "Parameter endpoint: ",
        ),
        // Loopback is refused unless the operator allows it.
        (
            json!({"protocol": "http", "endpoint": "http://127.0.0.1:9/"}),
            "SMN.0012",
            "Parameter endpoint: 127.0.0.1 is a private or loopback address",
        ),
        (
            json!({"protocol": "https", "endpoint": "https://203.0.113.7/", "remark": "x".repeat(129)}),
            "SMN.0017",
            "Parameter remark: ",
        ),
        (
            json!({"protocol": "http"}),
            "SMN.0001",
            "Parameter endpoint is required",
        ),
    ] {
        let r = smn(&app, Method::POST, &path, Some(b.clone())).await;
        let m = smn_error(&r, 400, code);
        assert!(m.starts_with(msg), "{b}: {m}");
    }
    // A public endpoint needs no allowance; a topic that does not exist is 404.
    let r = smn(
        &app,
        Method::POST,
        &path,
        Some(json!({"protocol": "https", "endpoint": "https://203.0.113.7/hook"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
    let gone = format!(
        "/topics/{}/subscriptions",
        enc(&urn.replace(":ops", ":gone"))
    );
    let r = smn(
        &app,
        Method::POST,
        &gone,
        Some(json!({"protocol": "https", "endpoint": "https://203.0.113.7/"})),
    )
    .await;
    smn_error(&r, 404, "SMN.0006");
    let r = smn(&app, Method::GET, &gone, None).await;
    smn_error(&r, 404, "SMN.0006");
}

#[tokio::test]
async fn subscriptions_of_another_project_are_not_found() {
    let app = spawn_allowing_loopback().await;
    let urn = topic(&app, "ops").await;
    let r = smn(
        &app,
        Method::POST,
        &format!("/topics/{}/subscriptions", enc(&urn)),
        Some(json!({"protocol": "http", "endpoint": "http://127.0.0.1:9/"})),
    )
    .await;
    let sub = r.body["subscription_urn"]
        .as_str()
        .expect("urn")
        .to_string();
    let (token, other) = app.other_tenant("beta").await;
    let base = format!("/v2/{other}/notifications");
    let r = app
        .send(
            Method::DELETE,
            &format!("{base}/subscriptions/{}", enc(&sub)),
            Some(&token),
            None,
        )
        .await;
    smn_error(&r, 404, "SMN.0013");
    let r = app
        .send(
            Method::GET,
            &format!("{base}/topics/{}/subscriptions", enc(&urn)),
            Some(&token),
            None,
        )
        .await;
    smn_error(&r, 404, "SMN.0006");
    let r = app
        .send(
            Method::POST,
            &format!("{base}/topics/{}/subscriptions", enc(&urn)),
            Some(&token),
            Some(json!({"protocol": "http", "endpoint": "http://203.0.113.7/"})),
        )
        .await;
    smn_error(&r, 404, "SMN.0006");
    let r = app
        .send(
            Method::GET,
            &format!("{base}/subscriptions"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(r.body["subscription_count"], 0, "{}", r.raw);
    let r = smn(&app, Method::GET, "/subscriptions", None).await;
    assert_eq!(r.body["subscription_count"], 1);
}
