//! SMN topics (`/v2/{project_id}/notifications/topics...`), as
//! `huaweicloudsdksmn` sends them: URNs percent-encoded in paths, SMN's
//! error body `{"request_id", "code", "message"}`.

use crate::helpers::{Resp, TestApp, keys};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn smn(app: &TestApp, method: Method, rest: &str, body: Option<Value>) -> Resp {
    let path = format!("/v2/{}/notifications{rest}", app.project_id);
    app.send(method, &path, Some(&app.token), body).await
}

/// The whole URN percent-encoded, as the SDK puts it in a path.
fn enc(urn: &str) -> String {
    urn.replace(':', "%3A")
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
