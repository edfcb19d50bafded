//! Golden files for the wire format: the request and response bodies of the
//! VPN v5 spec (`tests/golden/`, sources in its README) parsed into the
//! structs the server parses and renders, and serialised back, compared
//! field by field. A field the struct drops, renames or adds fails with
//! its JSON path.

use domain::connection::{CreateConnection, UpdateConnection, VpnConnection};
use domain::customer_gateway::{CreateCgw, CustomerGateway, UpdateCgw};
use domain::gateway::{CreateVgw, UpdateVgw, VpnGateway};
use domain::monitor::{ConnectionMonitor, CreateMonitor};
use domain::views;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::path::Path;

/// The resource object under `key` in a golden file.
fn golden(file: &str, key: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let mut body: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    let inner = body
        .get_mut(key)
        .map(Value::take)
        .unwrap_or_else(|| panic!("{file} has no {key:?}"));
    assert!(inner.is_object(), "{file}: {key} is not an object");
    inner
}

/// Every difference between two JSON values, one line each, with its path.
fn differences(path: &str, want: &Value, got: &Value, out: &mut Vec<String>) {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for (k, wv) in w {
                let p = format!("{path}.{k}");
                match g.get(k) {
                    Some(gv) => differences(&p, wv, gv, out),
                    None => out.push(format!("{p}: missing (want {wv})")),
                }
            }
            for (k, gv) in g {
                if !w.contains_key(k) {
                    out.push(format!("{path}.{k}: not in the spec (got {gv})"));
                }
            }
        }
        (Value::Array(w), Value::Array(g)) if w.len() == g.len() => {
            for (i, (wv, gv)) in w.iter().zip(g).enumerate() {
                differences(&format!("{path}[{i}]"), wv, gv, out);
            }
        }
        _ if want == got => {}
        _ => out.push(format!("{path}: want {want}, got {got}")),
    }
}

#[track_caller]
fn assert_fields(what: &str, want: &Value, got: &Value) {
    let mut diffs = Vec::new();
    differences(what, want, got, &mut diffs);
    assert!(diffs.is_empty(), "{what}:\n{}", diffs.join("\n"));
}

/// Parses the golden object into `T` as the server does, serialises it
/// back and compares; returns the parsed value.
#[track_caller]
fn round_trip<T: DeserializeOwned + Serialize>(file: &str, key: &str) -> T {
    let want = golden(file, key);
    let parsed: T = serde_json::from_value(want.clone())
        .unwrap_or_else(|e| panic!("{file}: the struct refuses the spec's {key}: {e}"));
    let got = serde_json::to_value(&parsed).unwrap_or_else(|e| panic!("{file}: {e}"));
    assert_fields(file, &want, &got);
    parsed
}

#[test]
fn create_requests_serialise_back_to_the_spec_bodies() {
    round_trip::<CreateVgw>("vpn_gateway_create_request.json", "vpn_gateway");
    round_trip::<CreateCgw>("customer_gateway_create_request.json", "customer_gateway");
    round_trip::<CreateConnection>("vpn_connection_create_request.json", "vpn_connection");
    let m = round_trip::<CreateMonitor>(
        "connection_monitor_create_request.json",
        "connection_monitor",
    );
    assert_eq!(
        m.vpn_connection_id.as_deref(),
        Some("cae286f2-0000-4000-8000-e22416ca1220")
    );
}

#[test]
fn update_requests_serialise_back_to_the_spec_bodies() {
    round_trip::<UpdateVgw>("vpn_gateway_update_request.json", "vpn_gateway");
    round_trip::<UpdateCgw>("customer_gateway_update_request.json", "customer_gateway");
    round_trip::<UpdateConnection>("vpn_connection_update_request.json", "vpn_connection");
}

#[test]
fn an_empty_request_serialises_to_an_empty_object() {
    // Absent fields stay absent: the server's defaults apply, not nulls.
    for v in [
        serde_json::to_value(CreateVgw::default()),
        serde_json::to_value(UpdateVgw::default()),
        serde_json::to_value(CreateCgw::default()),
        serde_json::to_value(UpdateCgw::default()),
        serde_json::to_value(CreateConnection::default()),
        serde_json::to_value(UpdateConnection::default()),
        serde_json::to_value(CreateMonitor::default()),
    ] {
        assert_eq!(v.unwrap(), serde_json::json!({}));
    }
}

#[test]
fn a_gateway_shows_as_the_spec_and_its_create_answer_is_the_create_model() {
    let g = round_trip::<VpnGateway>("vpn_gateway_show_response.json", "vpn_gateway");
    assert_fields(
        "vpn_gateway_show_response.json (views::show)",
        &golden("vpn_gateway_show_response.json", "vpn_gateway"),
        &views::show(&g),
    );
    // The 201 answer is the create model, cut from the record (views::VGW_CREATE).
    let mut created = g.clone();
    created.used_connection_number = 0;
    assert_fields(
        "vpn_gateway_create_response.json",
        &golden("vpn_gateway_create_response.json", "vpn_gateway"),
        &views::only(&created, views::VGW_CREATE),
    );
}

#[test]
fn a_customer_gateway_shows_and_is_created_as_the_spec() {
    let c =
        round_trip::<CustomerGateway>("customer_gateway_create_response.json", "customer_gateway");
    assert_eq!(c.probe_address(), Some("198.18.101.20"));
}

#[test]
fn a_connection_shows_as_the_spec_and_its_create_answer_drops_status_and_monitor() {
    let want = golden("vpn_connection_show_response.json", "vpn_connection");
    let c: VpnConnection = serde_json::from_value(want.clone()).unwrap();
    assert!(!c.enable_health_check, "absent from the show shape: false");
    assert_fields(
        "vpn_connection_show_response.json",
        &want,
        &views::without(&c, views::CONN_SHOW_DROP),
    );
    assert_fields(
        "vpn_connection_create_response.json",
        &golden("vpn_connection_create_response.json", "vpn_connection"),
        &views::without(&c, views::CONN_CREATE_DROP),
    );
}

#[test]
fn a_monitor_shows_with_status_and_is_created_without() {
    let m = round_trip::<ConnectionMonitor>(
        "connection_monitor_show_response.json",
        "connection_monitor",
    );
    assert_fields(
        "connection_monitor_create_response.json",
        &golden(
            "connection_monitor_create_response.json",
            "connection_monitor",
        ),
        &views::without(&m, views::MONITOR_CREATE_DROP),
    );
}

#[test]
fn a_field_the_spec_does_not_have_is_refused_by_name() {
    let mut body = golden(
        "connection_monitor_create_request.json",
        "connection_monitor",
    );
    body["vpn_connection_idd"] = "x".into();
    let e = serde_json::from_value::<CreateMonitor>(body).unwrap_err();
    assert!(e.to_string().contains("vpn_connection_idd"), "{e}");
}

#[test]
fn the_comparison_names_each_difference_by_path() {
    let want = serde_json::json!({"a": {"b": [1, 2]}, "c": "x"});
    let got = serde_json::json!({"a": {"b": [1, 3]}, "d": null});
    let mut diffs = Vec::new();
    differences("body", &want, &got, &mut diffs);
    assert_eq!(
        diffs,
        [
            "body.a.b[1]: want 2, got 3",
            "body.c: missing (want \"x\")",
            "body.d: not in the spec (got null)",
        ]
    );
}
