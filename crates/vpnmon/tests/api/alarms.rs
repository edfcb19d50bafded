//! Cloud Eye alarm rules, API v1 (`/V1.0/{project_id}/alarms...` and
//! `/alarm-histories`), in the shapes `huaweicloudsdkces` v1 sends and reads
//! (research note alarms-dashboard.md §2). Evaluation is driven through the
//! store's write path, as the prober's persist step does.

use crate::helpers::{Resp, TestApp, keys, uuid};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use store::WindowPoint;
use store::prelude::*;

fn urn(app: &TestApp) -> String {
    format!("urn:smn:local-1:{}:ops", app.project_id)
}

fn create_body(app: &TestApp, conn: &str) -> Value {
    json!({"alarm_name": "vpn-loss",
        "metric": {"namespace": "SYS.VPN", "metric_name": "link_packet_loss_rate",
                   "dimensions": [{"name": "evpn_connection_id", "value": conn}]},
        "condition": {"comparison_operator": ">=", "count": 2, "filter": "average", "period": 1,
                      "value": 50, "unit": "%", "suppress_duration": 300},
        "alarm_enabled": true, "alarm_action_enabled": true, "alarm_level": 2,
        "alarm_actions": [{"type": "notification", "notificationList": [urn(app)]}],
        "ok_actions": [{"type": "notification", "notificationList": [urn(app)]}]})
}

async fn ces(app: &TestApp, method: Method, rest: &str, body: Option<Value>) -> Resp {
    let path = format!("/V1.0/{}{rest}", app.project_id);
    app.send(method, &path, Some(&app.token), body).await
}

async fn create(app: &TestApp, body: Value) -> String {
    let r = ces(app, Method::POST, "/alarms", Some(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
    assert_eq!(keys(&r.body), vec!["alarm_id"]);
    r.body["alarm_id"].as_str().expect("alarm_id").to_string()
}

/// A connection with a monitor; returns (connection, monitor).
async fn monitored(app: &TestApp) -> (String, String) {
    let (_, _, conn, m) = app.seed().await;
    (conn, m)
}

fn window(app: &TestApp, monitor: &str, t: i64, received: i64) -> WindowPoint {
    WindowPoint {
        monitor_id: domain::MonitorId::parse(monitor).expect("monitor id"),
        project_id: domain::ProjectId::parse(&app.project_id).expect("project id"),
        window_start_ms: t,
        sent: 10,
        received,
        loss_pct: 100.0 * (10 - received) as f64 / 10.0,
        rtt_min_ms: (received > 0).then_some(1.0),
        rtt_avg_ms: (received > 0).then_some(2.0),
        rtt_max_ms: (received > 0).then_some(3.0),
        jitter_ms: (received > 0).then_some(0.5),
    }
}

#[tokio::test]
async fn alarm_create_show_list_update_action_delete() {
    let app = TestApp::spawn().await;
    let (conn, _) = monitored(&app).await;
    let id = create(&app, create_body(&app, &conn)).await;
    assert_eq!(id.len(), 24, "{id}");
    assert!(id.starts_with("al") && id[2..].bytes().all(|b| b.is_ascii_alphanumeric()));

    let r = ces(&app, Method::GET, &format!("/alarms/{id}"), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert_eq!(keys(&r.body), vec!["metric_alarms"]);
    let a = &r.body["metric_alarms"][0];
    assert_eq!(r.body["metric_alarms"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        keys(a),
        vec![
            "alarm_action_enabled",
            "alarm_actions",
            "alarm_description",
            "alarm_enabled",
            "alarm_id",
            "alarm_level",
            "alarm_name",
            "alarm_state",
            "alarm_type",
            "condition",
            "enterprise_project_id",
            "insufficientdata_actions",
            "metric",
            "ok_actions",
            "update_time",
        ]
    );
    assert_eq!(a["alarm_id"], id.as_str());
    assert_eq!(a["alarm_state"], "insufficient_data");
    assert_eq!(a["update_time"], app.clock_now().timestamp_millis());
    assert_eq!(
        a["metric"],
        json!({"namespace": "SYS.VPN", "metric_name": "link_packet_loss_rate",
               "dimensions": [{"name": "evpn_connection_id", "value": conn}]})
    );
    assert_eq!(
        a["condition"],
        json!({"comparison_operator": ">=", "count": 2, "filter": "average", "period": 1,
               "unit": "%", "value": 50.0, "suppress_duration": 300})
    );
    assert_eq!(
        a["alarm_actions"],
        json!([{"type": "notification", "notificationList": [urn(&app)]}])
    );

    let r = ces(&app, Method::GET, "/alarms", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert_eq!(r.body["metric_alarms"][0]["alarm_id"], id.as_str());
    assert_eq!(
        r.body["meta_data"],
        json!({"count": 1, "marker": id, "total": 1})
    );

    let upd = json!({"alarm_name": "vpn-loss2",
        "condition": {"comparison_operator": ">", "count": 2, "filter": "max", "period": 300,
                      "unit": "%", "value": 10, "suppress_duration": 0},
        "alarm_action_enabled": true, "alarm_level": 1,
        "alarm_actions": [{"type": "notification", "notificationList": [urn(&app)]}],
        "ok_actions": [{"type": "notification", "notificationList": [urn(&app)]}]});
    let r = ces(&app, Method::PUT, &format!("/alarms/{id}"), Some(upd)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
    assert_eq!(r.raw, "");
    let a = ces(&app, Method::GET, &format!("/alarms/{id}"), None)
        .await
        .body["metric_alarms"][0]
        .clone();
    assert_eq!(a["alarm_name"], "vpn-loss2");
    assert_eq!(a["alarm_level"], 1);
    assert_eq!(a["condition"]["period"], 300);
    assert_eq!(a["condition"]["filter"], "max");

    let r = ces(
        &app,
        Method::PUT,
        &format!("/alarms/{id}/action"),
        Some(json!({"alarm_enabled": false})),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
    let a = ces(&app, Method::GET, &format!("/alarms/{id}"), None)
        .await
        .body["metric_alarms"][0]
        .clone();
    assert_eq!(a["alarm_enabled"], false);

    let r = ces(&app, Method::DELETE, &format!("/alarms/{id}"), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
    let r = ces(&app, Method::GET, &format!("/alarms/{id}"), None).await;
    r.assert_error(404, "ces.0016");
    let r = ces(&app, Method::DELETE, &format!("/alarms/{id}"), None).await;
    r.assert_error(404, "ces.0016");
    let r = ces(&app, Method::GET, "/alarms", None).await;
    assert_eq!(
        r.body["meta_data"],
        json!({"count": 0, "marker": "", "total": 0})
    );
}

#[tokio::test]
async fn alarm_list_pages_with_start_limit_and_order() {
    let app = TestApp::spawn().await;
    let (conn, _) = monitored(&app).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(create(&app, create_body(&app, &conn)).await);
        app.clock.advance(chrono::Duration::milliseconds(5));
    }
    let page = |r: &Resp| -> Vec<String> {
        r.body["metric_alarms"]
            .as_array()
            .expect("list")
            .iter()
            .map(|a| a["alarm_id"].as_str().expect("id").to_string())
            .collect()
    };
    let r = ces(&app, Method::GET, "/alarms?limit=2", None).await;
    assert_eq!(page(&r), vec![ids[2].clone(), ids[1].clone()]);
    assert_eq!(
        r.body["meta_data"],
        json!({"count": 2, "marker": ids[1], "total": 3})
    );
    let r = ces(
        &app,
        Method::GET,
        &format!("/alarms?limit=2&order=desc&start={}", ids[1]),
        None,
    )
    .await;
    assert_eq!(page(&r), vec![ids[0].clone()]);
    let r = ces(&app, Method::GET, "/alarms?order=asc", None).await;
    assert_eq!(page(&r), ids);
    for (q, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=x", "limit"),
        ("order=up", "order"),
        ("start=nope", "start"),
    ] {
        let r = ces(&app, Method::GET, &format!("/alarms?{q}"), None).await;
        let m = r.assert_error(400, "ces.0014");
        assert!(
            m.starts_with(&format!(
                "Some content in message body is incorrect, {field}: "
            )),
            "{q}: {m}"
        );
    }
    let missing = "al0000000000000000000000";
    let r = ces(&app, Method::GET, &format!("/alarms?start={missing}"), None).await;
    let m = r.assert_error(400, "ces.0014");
    assert!(
        m.ends_with(&format!("start: alarm {missing} does not exist")),
        "{m}"
    );
}

#[tokio::test]
async fn alarm_create_errors_name_the_field_in_the_ces_body() {
    let app = TestApp::spawn().await;
    let (conn, _) = monitored(&app).await;
    let with = |f: &dyn Fn(&mut Value)| {
        let mut b = create_body(&app, &conn);
        f(&mut b);
        b
    };
    let cases: Vec<(Value, &str)> = vec![
        (
            with(&|b| b["condition"]["period"] = json!(60)),
            "condition.period: 60 is not one of",
        ),
        (
            with(&|b| b["condition"]["filter"] = json!("p50")),
            "condition.filter:",
        ),
        (
            with(&|b| b["condition"]["comparison_operator"] = json!("!=")),
            "condition.comparison_operator:",
        ),
        (
            with(&|b| b["condition"]["count"] = json!(6)),
            "condition.count:",
        ),
        (
            with(&|b| b["condition"]["suppress_duration"] = json!(1)),
            "condition.suppress_duration:",
        ),
        (with(&|b| b["alarm_level"] = json!(5)), "alarm_level:"),
        (
            with(&|b| b["metric"]["namespace"] = json!("SYS.ECS")),
            "metric.namespace:",
        ),
        (
            with(&|b| b["metric"]["metric_name"] = json!("cpu_util")),
            "metric.metric_name:",
        ),
        (
            with(&|b| b["metric"]["dimensions"][0]["name"] = json!("vpn_connection_id")),
            "metric.dimensions[0].name:",
        ),
        (
            with(&|b| b["metric"]["dimensions"][0]["value"] = json!(uuid())),
            "metric.dimensions[0].value: VPN connection ",
        ),
        (
            with(&|b| {
                b["alarm_actions"][0]["notificationList"][0] =
                    json!("urn:smn:r:ffffffffffffffffffffffffffffffff:t")
            }),
            "alarm_actions[0].notificationList[0]:",
        ),
        (
            with(&|b| {
                b.as_object_mut().map(|o| o.remove("alarm_name"));
            }),
            "alarm_name is required",
        ),
        (
            with(&|b| b["condition"]["count"] = json!("2")),
            "condition.count: invalid type",
        ),
    ];
    for (b, want) in cases {
        let r = ces(&app, Method::POST, "/alarms", Some(b)).await;
        let m = r.assert_error(400, "ces.0014");
        assert!(
            m.starts_with(&format!(
                "Some content in message body is incorrect, {want}"
            )),
            "want {want:?}, got {m:?}"
        );
    }
    // An attribute CES does not know.
    let r = ces(
        &app,
        Method::POST,
        "/alarms",
        Some(with(&|b| b["colour"] = json!("red"))),
    )
    .await;
    let m = r.assert_error(400, "VPN.0013");
    assert!(m.contains("colour"), "{m}");
    // A malformed path id names it.
    for (method, rest, body) in [
        (Method::GET, "/alarms/x1", None),
        (Method::DELETE, "/alarms/x1", None),
        (Method::PUT, "/alarms/x1", Some(json!({"alarm_name": "n"}))),
        (
            Method::PUT,
            "/alarms/x1/action",
            Some(json!({"alarm_enabled": true})),
        ),
    ] {
        let r = ces(&app, method, rest, body).await;
        let m = r.assert_error(400, "ces.0014");
        assert!(m.contains("alarm_id: \"x1\" is not an alarm id"), "{m}");
    }
    let id = create(&app, create_body(&app, &conn)).await;
    let r = ces(
        &app,
        Method::PUT,
        &format!("/alarms/{id}/action"),
        Some(json!({})),
    )
    .await;
    let m = r.assert_error(400, "ces.0014");
    assert!(m.ends_with("alarm_enabled is required"), "{m}");
    let r = ces(
        &app,
        Method::PUT,
        &format!("/alarms/{id}"),
        Some(json!({"condition": {"comparison_operator": ">", "count": 1, "filter": "max", "period": 7, "value": 1}})),
    )
    .await;
    let m = r.assert_error(400, "ces.0014");
    assert!(m.contains("condition.period: 7"), "{m}");
    let r = ces(
        &app,
        Method::PUT,
        &format!("/alarms/{id}"),
        Some(json!({"metric": {"namespace": "SYS.VPN"}})),
    )
    .await;
    r.assert_error(400, "VPN.0013");
}

#[tokio::test]
async fn alarms_of_another_project_are_not_found() {
    let app = TestApp::spawn().await;
    let (conn, m) = monitored(&app).await;
    let id = create(&app, create_body(&app, &conn)).await;
    app.store
        .evaluate_windows(&[
            window(&app, &m, 1_700_000_000_000, 0),
            window(&app, &m, 1_700_000_010_000, 0),
        ])
        .await
        .expect("evaluate");
    let (token, other) = app.other_tenant("beta").await;
    let send = |method: Method, rest: String, body: Option<Value>| {
        let app = &app;
        let token = token.clone();
        let path = format!("/V1.0/{other}{rest}");
        async move { app.send(method, &path, Some(&token), body).await }
    };
    for (method, rest, body) in [
        (Method::GET, format!("/alarms/{id}"), None),
        (Method::DELETE, format!("/alarms/{id}"), None),
        (
            Method::PUT,
            format!("/alarms/{id}"),
            Some(json!({"alarm_level": 1})),
        ),
        (
            Method::PUT,
            format!("/alarms/{id}/action"),
            Some(json!({"alarm_enabled": false})),
        ),
    ] {
        send(method, rest, body).await.assert_error(404, "ces.0016");
    }
    let r = send(Method::GET, "/alarms".into(), None).await;
    assert_eq!(r.body["meta_data"]["total"], 0, "{}", r.raw);
    let r = send(Method::GET, "/alarm-histories".into(), None).await;
    assert_eq!(
        r.body,
        json!({"alarm_histories": [], "meta_data": {"total": 0}})
    );
    // A rule on the first project's connection, made by the second: 400.
    let mut b = create_body(&app, &conn);
    let other_urn = format!("urn:smn:local-1:{other}:ops");
    b["alarm_actions"] = json!([{"type": "notification", "notificationList": [other_urn]}]);
    b["ok_actions"] = json!([]);
    let r = send(Method::POST, "/alarms".into(), Some(b)).await;
    let msg = r.assert_error(400, "ces.0014");
    assert!(
        msg.ends_with(&format!("VPN connection {conn} does not exist")),
        "{msg}"
    );
    // The owner's rule is untouched.
    let a = ces(&app, Method::GET, &format!("/alarms/{id}"), None).await;
    assert_eq!(a.body["metric_alarms"][0]["alarm_enabled"], true);
    assert_eq!(a.body["metric_alarms"][0]["alarm_state"], "alarm");
}

#[tokio::test]
async fn alarm_histories_list_state_changes_with_their_value_and_time() {
    let app = TestApp::spawn().await;
    let (conn, m) = monitored(&app).await;
    let id = create(&app, create_body(&app, &conn)).await;
    let t0 = 1_735_686_000_000;
    // ok, lost, lost (alarm), good (ok).
    let pts: Vec<_> = [10, 0, 0, 10]
        .iter()
        .enumerate()
        .map(|(i, r)| window(&app, &m, t0 + 10_000 * i as i64, *r))
        .collect();
    app.store.evaluate_windows(&pts).await.expect("evaluate");
    let r = ces(&app, Method::GET, "/alarm-histories", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert_eq!(keys(&r.body), vec!["alarm_histories", "meta_data"]);
    assert_eq!(r.body["meta_data"], json!({"total": 3}));
    let h = r.body["alarm_histories"].as_array().expect("list");
    let got: Vec<(String, i64, Value)> = h
        .iter()
        .map(|x| {
            (
                x["alarm_status"].as_str().expect("status").to_string(),
                x["trigger_time"].as_i64().expect("time"),
                x["datapoints"].clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "ok".into(),
                t0 + 30_000,
                json!([{"time": t0 + 30_000, "value": 0.0}])
            ),
            (
                "alarm".into(),
                t0 + 20_000,
                json!([{"time": t0 + 20_000, "value": 100.0}])
            ),
            ("ok".into(), t0, json!([{"time": t0, "value": 0.0}])),
        ]
    );
    assert!(h.iter().all(|x| x["alarm_id"] == id.as_str()));
    assert_eq!(h[0]["metric"]["metric_name"], "link_packet_loss_rate");
    assert_eq!(h[0]["alarm_name"], "vpn-loss");

    // The SDK's own query (research note §2.6), sorted keys, strings.
    let q = format!(
        "/alarm-histories?alarm_id={id}&alarm_level=2&alarm_status=alarm&from={}&limit=10&namespace=SYS.VPN&start=0&to={}",
        t0,
        t0 + 3_600_000
    );
    let r = ces(&app, Method::GET, &q, None).await;
    assert_eq!(r.body["meta_data"], json!({"total": 1}), "{}", r.raw);
    assert_eq!(r.body["alarm_histories"][0]["trigger_time"], t0 + 20_000);
    // from/to inclusive, start is an offset.
    let r = ces(
        &app,
        Method::GET,
        &format!("/alarm-histories?from={}&to={}", t0 + 20_000, t0 + 30_000),
        None,
    )
    .await;
    assert_eq!(r.body["meta_data"]["total"], 2);
    let r = ces(&app, Method::GET, "/alarm-histories?start=2&limit=1", None).await;
    assert_eq!(r.body["meta_data"]["total"], 3);
    assert_eq!(r.body["alarm_histories"][0]["trigger_time"], t0);
    for q in [
        "alarm_status=invalid",
        "group_id=rg0000000000000000000000",
        "alarm_name=other",
    ] {
        let r = ces(&app, Method::GET, &format!("/alarm-histories?{q}"), None).await;
        assert_eq!(r.body["meta_data"]["total"], 0, "{q}: {}", r.raw);
    }
    for (q, field) in [
        ("alarm_status=bad", "alarm_status"),
        ("alarm_level=9", "alarm_level"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("start=-1", "start"),
        ("from=x", "from"),
        ("from=10&to=5", "from"),
        ("alarm_id=nope", "alarm_id"),
    ] {
        let r = ces(&app, Method::GET, &format!("/alarm-histories?{q}"), None).await;
        let m = r.assert_error(400, "ces.0014");
        assert!(m.contains(&format!("incorrect, {field}: ")), "{q}: {m}");
    }
}

#[tokio::test]
async fn a_connections_rules_and_the_overviews_alarm_badge() {
    let app = TestApp::spawn().await;
    let (conn, m) = monitored(&app).await;
    let rules_of = |conn: String, token: String, project: String| {
        let app = &app;
        async move {
            app.send(
                Method::GET,
                &format!("/vpnmon/{project}/connections/{conn}/alarms"),
                Some(&token),
                None,
            )
            .await
        }
    };
    let (p, t) = (app.project_id.clone(), app.token.clone());
    let none = rules_of(conn.clone(), t.clone(), p.clone()).await;
    assert_eq!(none.status, StatusCode::OK, "{}", none.raw);
    assert_eq!(
        none.body,
        json!({"metric_alarms": [], "meta_data": {"count": 0, "total": 0}})
    );
    let overview = || async {
        let r = app
            .send(
                Method::GET,
                &format!("/vpnmon/{p}/overview"),
                Some(&t),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        r.body["monitors"][0]["alarm"].clone()
    };
    assert_eq!(overview().await, Value::Null, "no rule, no badge");

    let id = create(&app, create_body(&app, &conn)).await;
    let r = rules_of(conn.clone(), t.clone(), p.clone()).await;
    let shown = ces(&app, Method::GET, &format!("/alarms/{id}"), None).await;
    assert_eq!(
        r.body["metric_alarms"], shown.body["metric_alarms"],
        "the same rule as CES shows it"
    );
    assert_eq!(
        overview().await,
        json!({"state": "insufficient_data", "rules": 1, "enabled": 1, "in_alarm": 0})
    );
    app.store
        .evaluate_windows(&[
            window(&app, &m, 1_700_000_000_000, 0),
            window(&app, &m, 1_700_000_010_000, 0),
        ])
        .await
        .expect("evaluate");
    assert_eq!(
        overview().await,
        json!({"state": "alarm", "rules": 1, "enabled": 1, "in_alarm": 1})
    );
    let sorted = app
        .send(
            Method::GET,
            &format!("/vpnmon/{p}/overview?sort=alarm&order=desc&q=alarm"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(sorted.body["total_count"], 1, "{}", sorted.raw);

    // Not a UUID: 400; another project's connection: 404, as for the connection itself.
    rules_of("nope".into(), t.clone(), p.clone())
        .await
        .assert_error(400, "VPN.0001");
    let (other_token, other) = app.other_tenant("beta").await;
    rules_of(conn.clone(), other_token, other)
        .await
        .assert_error(404, "VPN.0004");
    rules_of(uuid(), t, p).await.assert_error(404, "VPN.0004");
}
