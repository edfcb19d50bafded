use super::*;
use serde_json::{Value, json};

const P: &str = "0123456789abcdef0123456789abcdef";
const CONN: &str = "cae286f2-0000-4000-8000-e22416ca1220";

fn project() -> ProjectId {
    ProjectId::parse(P).expect("a project id")
}

fn urn() -> String {
    format!("urn:smn:local-1:{P}:ops")
}

/// The create body of the research note (§1), as the SDK sends it.
fn body() -> Value {
    json!({"alarm_name": "vpn-loss",
        "metric": {"namespace": "SYS.VPN", "metric_name": "link_packet_loss_rate",
                   "dimensions": [{"name": "evpn_connection_id", "value": CONN}]},
        "condition": {"comparison_operator": ">=", "count": 3, "filter": "average", "period": 1,
                      "value": 5, "unit": "%", "suppress_duration": 300},
        "alarm_enabled": true, "alarm_action_enabled": true, "alarm_level": 2,
        "alarm_actions": [{"type": "notification", "notificationList": [urn()]}],
        "ok_actions": [{"type": "notification", "notificationList": [urn()]}]})
}

fn try_create(b: Value) -> Result<AlarmRule, DomainError> {
    let req: CreateAlarm = serde_json::from_value(b).expect("a create body");
    create(&req, AlarmId::random(), &project(), 1_700_000_000_000)
}

/// The message of the error `b` gives.
fn error(b: Value) -> String {
    match try_create(b) {
        Err(DomainError::Invalid(m)) => m,
        other => panic!("expected an invalid request, got {other:?}"),
    }
}

fn with(path: &[&str], v: Value) -> Value {
    let mut b = body();
    let mut at = &mut b;
    for (i, k) in path.iter().enumerate() {
        if i + 1 == path.len() {
            at[*k] = v.clone();
        } else {
            at = &mut at[*k];
        }
    }
    b
}

#[test]
fn the_sdk_body_makes_a_rule_in_insufficient_data() {
    let r = try_create(body()).expect("a valid rule");
    assert_eq!(r.metric.metric, VpnMetric::LinkPacketLossRate);
    assert_eq!(r.metric.connection, CONN);
    assert_eq!(r.condition.comparison_operator, Comparison::Ge);
    assert_eq!(r.condition.count, 3);
    assert_eq!(r.condition.value, 5.0);
    assert_eq!(r.condition.suppress_duration, 300);
    assert_eq!(r.alarm_state, AlarmState::InsufficientData);
    assert_eq!(r.update_time, 1_700_000_000_000);
    assert_eq!(r.enterprise_project_id, "0");
    assert_eq!(r.alarm_type, "MULTI_INSTANCE");
}

#[test]
fn the_show_shape_is_metric_alarms_resp() {
    let r = try_create(body()).expect("a valid rule");
    let v = serde_json::to_value(&r).expect("json");
    assert_eq!(
        v["metric"],
        json!({"namespace": "SYS.VPN", "metric_name": "link_packet_loss_rate",
               "dimensions": [{"name": "evpn_connection_id", "value": CONN}]})
    );
    assert_eq!(
        v["condition"],
        json!({"comparison_operator": ">=", "count": 3, "filter": "average", "period": 1,
               "unit": "%", "value": 5.0, "suppress_duration": 300})
    );
    assert_eq!(
        v["alarm_actions"],
        json!([{"type": "notification", "notificationList": [urn()]}])
    );
    assert_eq!(v["alarm_state"], "insufficient_data");
    assert_eq!(v["alarm_id"], r.alarm_id.to_string());
    assert!(v.get("alarm_action_begin_time").is_none());
    // And back.
    let back: AlarmRule = serde_json::from_value(v).expect("parses back");
    assert_eq!(back, r);
}

#[test]
fn defaults_when_optional_fields_are_absent() {
    let r = try_create(json!({"alarm_name": "a",
        "metric": {"namespace": "SYS.VPN", "metric_name": "public_max_latency",
                   "dimensions": [{"name": "vpn_connection_id", "value": CONN}]},
        "condition": {"comparison_operator": ">", "count": 1, "filter": "max", "period": 300, "value": 100.5},
        "alarm_action_enabled": false}))
    .expect("valid");
    assert!(r.alarm_enabled);
    assert_eq!(r.alarm_level, 2);
    assert_eq!(r.condition.unit, "");
    assert_eq!(r.condition.suppress_duration, 0);
    assert!(r.alarm_actions.is_empty());
    assert_eq!(r.metric.metric.measure(), Measure::MaxLatency);
}

#[test]
fn every_value_outside_its_set_names_the_field() {
    let cases: Vec<(Value, &str)> = vec![
        (
            with(&["metric", "namespace"], json!("SYS.ECS")),
            "metric.namespace: \"SYS.ECS\" is not supported (only SYS.VPN)",
        ),
        (
            with(&["metric", "metric_name"], json!("cpu_util")),
            "metric.metric_name: unknown metric \"cpu_util\"",
        ),
        (
            with(&["metric", "dimensions"], json!([])),
            "metric.dimensions: must hold exactly one dimension",
        ),
        (
            with(
                &["metric", "dimensions"],
                json!([{"name": "evpn_connection_id", "value": CONN}, {"name": "evpn_connection_id", "value": CONN}]),
            ),
            "metric.dimensions: must hold exactly one dimension",
        ),
        (
            with(
                &["metric", "dimensions"],
                json!([{"name": "vpn_connection_id", "value": CONN}]),
            ),
            "metric.dimensions[0].name: \"vpn_connection_id\" is not a dimension of link_packet_loss_rate (use evpn_connection_id)",
        ),
        (
            with(
                &["metric", "dimensions"],
                json!([{"name": "evpn_connection_id", "value": "nope"}]),
            ),
            "metric.dimensions[0].value: \"nope\" is not a VPN connection id",
        ),
        (
            with(&["metric", "resource_group_id"], json!("rg1")),
            "metric.resource_group_id:",
        ),
        (
            with(&["condition", "period"], json!(60)),
            "condition.period: 60 is not one of 1, 300",
        ),
        (
            with(&["condition", "filter"], json!("median")),
            "condition.filter: \"median\" is not one of",
        ),
        (
            with(&["condition", "comparison_operator"], json!("!=")),
            "condition.comparison_operator: \"!=\" is not one of",
        ),
        (
            with(
                &["condition", "comparison_operator"],
                json!("cycle_increase"),
            ),
            "condition.comparison_operator:",
        ),
        (
            with(&["condition", "count"], json!(0)),
            "condition.count: 0 is not between 1 and 5",
        ),
        (
            with(&["condition", "count"], json!(6)),
            "condition.count: 6 is not between 1 and 5",
        ),
        (
            with(&["condition", "suppress_duration"], json!(120)),
            "condition.suppress_duration: 120 is not one of",
        ),
        (
            with(&["condition", "value"], json!(2e108)),
            "condition.value:",
        ),
        (
            with(&["condition", "unit"], json!("x".repeat(33))),
            "condition.unit:",
        ),
        (
            with(&["alarm_level"], json!(0)),
            "alarm_level: 0 is not one of 1",
        ),
        (
            with(&["alarm_level"], json!(5)),
            "alarm_level: 5 is not one of 1",
        ),
        (
            with(&["alarm_name"], json!("")),
            "alarm_name: \"\" must be 1-128",
        ),
        (
            with(&["alarm_name"], json!("a b")),
            "alarm_name: \"a b\" must be 1-128",
        ),
        (with(&["alarm_name"], json!("a".repeat(129))), "alarm_name:"),
        (
            with(&["alarm_description"], json!("d".repeat(257))),
            "alarm_description:",
        ),
        (
            with(&["alarm_type"], json!("EVENT.SYS")),
            "alarm_type: \"EVENT.SYS\" is not supported",
        ),
        (
            with(
                &["alarm_actions"],
                json!([{"type": "autoscaling", "notificationList": []}]),
            ),
            "alarm_actions[0].type: \"autoscaling\" is not supported",
        ),
        (
            with(
                &["alarm_actions"],
                json!([{"type": "notification", "notificationList": ["topic"]}]),
            ),
            "alarm_actions[0].notificationList[0]: \"topic\" is not an SMN topic URN",
        ),
        (
            with(
                &["ok_actions"],
                json!([{"type": "notification", "notificationList": [format!("urn:smn:r:{}:t", "f".repeat(32))]}]),
            ),
            "ok_actions[0].notificationList[0]: ",
        ),
        (
            with(
                &["ok_actions"],
                json!([{"type": "notification", "notificationList": vec![urn(); 21]}]),
            ),
            "ok_actions[0].notificationList: must hold at most 20",
        ),
        (
            with(&["alarm_action_begin_time"], json!("25:00")),
            "alarm_action_begin_time: \"25:00\" is not a time HH:MM",
        ),
    ];
    for (b, want) in cases {
        let got = error(b);
        assert!(got.starts_with(want), "want {want:?}..., got {got:?}");
    }
}

#[test]
fn a_topic_of_another_project_is_refused() {
    let other = format!("urn:smn:local-1:{}:ops", "f".repeat(32));
    let got = error(with(
        &["alarm_actions"],
        json!([{"type": "notification", "notificationList": [other]}]),
    ));
    assert!(got.ends_with("is not a topic of this project"), "{got}");
}

#[test]
fn actions_enabled_needs_a_topic() {
    let mut b = body();
    b["alarm_actions"] = json!([]);
    b["ok_actions"] = json!([{"type": "notification", "notificationList": []}]);
    assert!(error(b.clone()).starts_with("alarm_actions: alarm_action_enabled is true"));
    b["alarm_action_enabled"] = json!(false);
    assert!(try_create(b).is_ok());
}

#[test]
fn cjk_names_are_allowed() {
    assert!(try_create(with(&["alarm_name"], json!("链路-丢包_1"))).is_ok());
}

#[test]
fn every_metric_takes_its_own_dimension() {
    for m in VpnMetric::ALL {
        let mut b = body();
        b["metric"]["metric_name"] = json!(m.name());
        b["metric"]["dimensions"] = json!([{"name": m.dimension(), "value": CONN}]);
        let r = try_create(b).expect("valid");
        assert_eq!(r.metric.metric, m);
        assert_eq!(VpnMetric::parse(m.name()), Some(m));
    }
    assert_eq!(
        VpnMetric::LinkAverageLatency.dimension(),
        "evpn_connection_id"
    );
    assert_eq!(
        VpnMetric::PublicPacketLossRate.dimension(),
        "vpn_connection_id"
    );
}

#[test]
fn update_changes_what_it_names_and_resets_on_a_new_condition() {
    let r = try_create(body()).expect("valid");
    let req: UpdateAlarm = serde_json::from_value(json!({"alarm_name": "vpn-loss2",
        "condition": {"comparison_operator": ">", "count": 2, "filter": "max", "period": 300,
                      "unit": "%", "value": 10, "suppress_duration": 0},
        "alarm_action_enabled": true, "alarm_level": 1}))
    .expect("an update body");
    let (u, reset) = update(&r, &req, &project()).expect("valid update");
    assert!(reset);
    assert_eq!(u.alarm_name, "vpn-loss2");
    assert_eq!(u.alarm_level, 1);
    assert_eq!(u.condition.period, 300);
    assert_eq!(u.metric, r.metric);
    assert_eq!(u.alarm_actions, r.alarm_actions);
    assert_eq!(u.alarm_id, r.alarm_id);

    let (same, reset) = update(&r, &UpdateAlarm::default(), &project()).expect("empty update");
    assert!(!reset);
    assert_eq!(same, r);

    let bad: UpdateAlarm = serde_json::from_value(json!({"alarm_level": 9})).expect("body");
    assert!(
        matches!(update(&r, &bad, &project()), Err(DomainError::Invalid(m)) if m.starts_with("alarm_level:"))
    );
    let none: UpdateAlarm =
        serde_json::from_value(json!({"alarm_actions": [], "ok_actions": []})).expect("body");
    assert!(
        matches!(update(&r, &none, &project()), Err(DomainError::Invalid(m)) if m.starts_with("alarm_actions:"))
    );
}

#[test]
fn unknown_fields_and_missing_fields_fail_to_parse() {
    let mut b = body();
    b["metric"]["unit"] = json!("%");
    assert!(serde_json::from_value::<CreateAlarm>(b).is_err());
    let mut b = body();
    b["condition"].as_object_mut().map(|o| o.remove("period"));
    assert!(serde_json::from_value::<CreateAlarm>(b).is_err());
}

#[test]
fn a_history_record_carries_the_rule_the_status_and_the_datapoint() {
    let r = try_create(body()).expect("valid");
    let h = history(&r, AlarmState::Alarm, 1_700_000_010_000, Some(100.0));
    let v = serde_json::to_value(&h).expect("json");
    assert_eq!(v["alarm_status"], "alarm");
    assert_eq!(v["trigger_time"], 1_700_000_010_000_i64);
    assert_eq!(v["update_time"], 1_700_000_010_000_i64);
    assert_eq!(
        v["datapoints"],
        json!([{"time": 1_700_000_010_000_i64, "value": 100.0}])
    );
    assert_eq!(v["metric"]["metric_name"], "link_packet_loss_rate");
    let none = history(&r, AlarmState::InsufficientData, 5, None);
    assert!(none.datapoints.is_empty());
    assert_eq!(
        AlarmState::parse("insufficient_data"),
        Some(AlarmState::InsufficientData)
    );
    assert_eq!(AlarmState::parse("invalid"), None);
}
