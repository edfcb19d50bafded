//! Prometheus exposition with the real probe engine on loopback: the output
//! parses with a real exposition-format parser and carries the values the
//! engine measured (and the API request counts).

use crate::helpers::TestApp;
use std::time::Duration;

#[tokio::test]
async fn metrics_parse_and_carry_probe_results() {
    let dir = tempfile::tempdir().unwrap();
    let started = TestApp::spawn_with(
        dir,
        |s| {
            s.probe_interval = Duration::from_millis(900);
            s.probe_timeout = Duration::from_millis(200);
            s.probe_allow = vec!["127.0.0.0/8".parse().unwrap()];
            s.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
        },
        true,
    );
    let (app, metrics) = match tokio::time::timeout(Duration::from_secs(30), started).await {
        Ok(x) => x,
        Err(_) => panic!("app did not start"),
    };
    let metrics = metrics.expect("metrics served");
    let (_, _, conn, mon) = app.seed().await;
    // Wait (bounded) for two windows of results.
    let url = format!("http://{metrics}/metrics");
    let mut text = String::new();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        text = app
            .client
            .get(&url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if text.contains("vpnmon_monitor_probes_received_total{")
            && text.contains("vpnmon_monitor_link_up{")
        {
            break;
        }
    }
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("exposition parses");
    let find = |name: &str| {
        scrape
            .samples
            .iter()
            .filter(|s| s.metric == name && s.labels.get("monitor") == Some(mon.as_str()))
            .collect::<Vec<_>>()
    };
    let value = |s: &prometheus_parse::Sample| match s.value {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => v,
        _ => f64::NAN,
    };
    let sent = find("vpnmon_monitor_probes_sent_total");
    assert_eq!(sent.len(), 1, "{text}");
    assert_eq!(sent[0].labels.get("vpn_connection"), Some(conn.as_str()));
    assert_eq!(sent[0].labels.get("project"), Some(app.project_id.as_str()));
    let n = value(sent[0]);
    assert!(n >= 3.0 && n % 3.0 == 0.0, "whole windows of 3 probes: {n}");
    assert_eq!(
        value(find("vpnmon_monitor_probes_received_total")[0]),
        n,
        "loopback loses nothing"
    );
    assert_eq!(value(find("vpnmon_monitor_loss_ratio")[0]), 0.0);
    assert_eq!(value(find("vpnmon_monitor_link_up")[0]), 1.0);
    let rtt = find("vpnmon_monitor_rtt_seconds");
    assert_eq!(rtt.len(), 4, "min, avg, max, jitter");
    for s in rtt {
        let v = value(s);
        assert!(
            (0.0..0.005).contains(&v),
            "{:?} = {v}",
            s.labels.get("stat")
        );
    }
    let engine_sent = scrape
        .samples
        .iter()
        .find(|s| s.metric == "vpnmon_probe_sent_total")
        .map(value)
        .unwrap();
    assert!(engine_sent >= n);
    let created = scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == "vpnmon_api_requests_total"
                && s.labels.get("route") == Some("/v5/:project_id/connection-monitors")
                && s.labels.get("method") == Some("POST")
                && s.labels.get("status") == Some("201")
        })
        .map(value);
    let api_samples: Vec<_> = scrape
        .samples
        .iter()
        .filter(|s| s.metric.starts_with("vpnmon_api_requests"))
        .map(|s| format!("{:?}", s.labels))
        .collect();
    assert_eq!(created, Some(1.0), "{api_samples:?}");
    // Deleting the monitor drops its series.
    app.delete(&format!("/connection-monitors/{mon}")).await;
    let text = app
        .client
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!text.contains(&mon), "deleted monitor's series are gone");
    app.stop().await;
}
