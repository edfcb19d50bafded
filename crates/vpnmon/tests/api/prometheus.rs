//! Prometheus exposition with the real probe engine on loopback: the output
//! parses with a real exposition-format parser and carries the values the
//! engine measured (and the API request counts); the format follows the
//! scraper's `Accept`; and, where Debian's `prometheus` package is installed,
//! `promtool` finds no problem in either format nor in the example scrape
//! config and rules under `docs/prometheus/`.

use crate::helpers::TestApp;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// What Prometheus 2.42 sends when it scrapes.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// An app probing one monitor on loopback, its metrics URL, and the
/// connection and monitor ids; returns once the metrics carry a closed
/// window and the link state.
async fn probing_app() -> (TestApp, String, String, String) {
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
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let text = scrape(&app, &url, None).await.1;
        if text.contains("vpnmon_monitor_probes_received_total{")
            && text.contains("vpnmon_monitor_link_up{")
        {
            break;
        }
    }
    (app, url, conn, mon)
}

/// `GET url` with `accept`: the Content-Type, the body, and `Vary`.
async fn scrape(app: &TestApp, url: &str, accept: Option<&str>) -> (String, String, String) {
    let mut req = app.client.get(url);
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    let (ct, vary) = (header("content-type"), header("vary"));
    (ct, resp.text().await.unwrap(), vary)
}

#[tokio::test]
async fn metrics_parse_and_carry_probe_results() {
    let (app, url, conn, mon) = probing_app().await;
    let (content_type, text, _) = scrape(&app, &url, None).await;
    assert_eq!(content_type, TEXT, "no Accept gets the text format");
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
    assert!(
        matches!(sent[0].value, prometheus_parse::Value::Counter(_)),
        "a counter in the text format: {:?}",
        sent[0].value
    );
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

#[tokio::test]
async fn metrics_answer_in_the_format_the_scraper_accepts() {
    let (app, url, _, _) = probing_app().await;
    for (accept, want) in [
        (None, TEXT),
        (Some("text/plain"), TEXT),
        (Some("text/plain; version=0.0.4"), TEXT),
        (Some("*/*"), TEXT),
        (Some("application/openmetrics-text"), OPENMETRICS),
        (
            Some("application/openmetrics-text; version=1.0.0"),
            OPENMETRICS,
        ),
        (Some(PROMETHEUS_ACCEPT), OPENMETRICS),
    ] {
        let (content_type, body, vary) = scrape(&app, &url, accept).await;
        assert_eq!(content_type, want, "Accept: {accept:?}");
        assert_eq!(vary, "Accept");
        if want == TEXT {
            assert!(!body.contains("# EOF"), "{accept:?}");
            assert!(body.contains("# TYPE vpnmon_probe_sent_total counter\n"));
            assert!(body.contains("# HELP vpnmon_probe_sent_total "));
        } else {
            assert!(body.ends_with("# EOF\n"), "{accept:?}");
            assert!(body.contains("# TYPE vpnmon_probe_sent counter\n"));
        }
        assert!(body.contains("\nvpnmon_probe_sent_total "));
        assert!(body.contains("\nvpnmon_probe_engine_running 1\n"));
        assert!(body.contains("\nvpnmon_probe_send_lateness_seconds_total "));
        assert!(!body.contains("_us_total"), "{body}");
    }
    app.stop().await;
}

/// `promtool` on PATH (Debian's `prometheus` package), or why not.
fn promtool() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join("promtool"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        eprintln!("skipped: promtool is not on PATH (apt-get install prometheus; .ci/run does)");
    }
    found
}

/// Runs `promtool args` with `stdin`: whether it succeeded, and what it
/// printed (stdout then stderr).
fn run_promtool(promtool: &Path, args: &[&str], stdin: &str) -> (bool, String) {
    let mut child = Command::new(promtool)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let printed =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), printed)
}

#[tokio::test]
async fn promtool_finds_no_problem_in_either_format_of_a_live_server() {
    let Some(promtool) = promtool() else {
        return;
    };
    let (app, url, conn, mon) = probing_app().await;
    // With an alarm rule, so that its state series are checked too.
    let alarm = alarm_rule(&app, &conn).await;
    wait_for_alarm_state(&app, &url, &alarm, "ok").await;
    let (_, text, _) = scrape(&app, &url, Some("text/plain")).await;
    let (_, om, _) = scrape(&app, &url, Some(PROMETHEUS_ACCEPT)).await;
    app.stop().await;
    assert!(
        text.contains(&mon) && om.contains(&mon),
        "probe data in both"
    );
    // The text format: no problem at all.
    let (ok, printed) = run_promtool(&promtool, &["check", "metrics"], &text);
    eprintln!("promtool check metrics < text format 0.0.4: ok={ok} {printed:?}");
    assert!(ok && printed.is_empty(), "{printed}");

    // `check metrics` reads only the text format 0.0.4: in OpenMetrics it
    // files each counter's `_total` samples under a family of their own name,
    // which has no HELP. That, once per counter family, is all it may say.
    let (ok, printed) = run_promtool(&promtool, &["check", "metrics"], &om);
    eprintln!("promtool check metrics < OpenMetrics: ok={ok}\n{printed}");
    let mut said: Vec<&str> = printed.lines().collect();
    said.sort_unstable();
    let mut counters: Vec<String> = om
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .inspect(|f| assert!(om.contains(&format!("# HELP {f} ")), "{f}: no HELP"))
        .map(|f| format!("{f}_total no help text"))
        .collect();
    counters.sort_unstable();
    assert!(!counters.is_empty());
    assert_eq!(said, counters);

    // Prometheus's own OpenMetrics parser (strict about `# EOF` and the
    // grammar) is reached through the backfill command, which also
    // wants a timestamp on every sample: append one, change nothing else.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("scrape.om");
    let stamped: String = om
        .lines()
        .map(|l| {
            if l.starts_with('#') {
                format!("{l}\n")
            } else {
                format!("{l} 1700000000\n")
            }
        })
        .collect();
    std::fs::write(&input, stamped).unwrap();
    let out = dir.path().join("blocks");
    let (ok, printed) = run_promtool(
        &promtool,
        &[
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            input.to_str().unwrap(),
            out.to_str().unwrap(),
        ],
        "",
    );
    eprintln!("promtool tsdb create-blocks-from openmetrics: ok={ok}\n{printed}");
    assert!(ok, "{printed}");
    // Every sample read: the block's sample count (5th column) is the
    // number of sample lines.
    let lines = om.lines().filter(|l| !l.starts_with('#')).count();
    let samples = printed
        .lines()
        .nth(1)
        .and_then(|row| row.split_whitespace().nth(4))
        .and_then(|n| n.parse::<usize>().ok());
    assert_eq!(samples, Some(lines), "{printed}");
}

/// A loss rule (no actions) on connection `conn`: its id.
async fn alarm_rule(app: &TestApp, conn: &str) -> String {
    let body = serde_json::json!({"alarm_name": "vpn-loss",
        "metric": {"namespace": "SYS.VPN", "metric_name": "link_packet_loss_rate",
                   "dimensions": [{"name": "evpn_connection_id", "value": conn}]},
        "condition": {"comparison_operator": ">=", "count": 1, "filter": "average",
                      "period": 1, "value": 50, "unit": "%"},
        "alarm_action_enabled": false});
    let r = app
        .send(
            reqwest::Method::POST,
            &format!("/V1.0/{}/alarms", app.project_id),
            Some(&app.token),
            Some(body),
        )
        .await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.raw);
    r.body["alarm_id"].as_str().unwrap().to_string()
}

/// The `vpnmon_alarm_state` samples of rule `alarm` once its `state`
/// series is 1 (the snapshot is refreshed every 5 s), as (state, value).
async fn wait_for_alarm_state(
    app: &TestApp,
    url: &str,
    alarm: &str,
    state: &str,
) -> Vec<(String, String)> {
    let mut last = Vec::new();
    for _ in 0..60 {
        let (_, text, _) = scrape(app, url, Some("text/plain")).await;
        last = text
            .lines()
            .filter(|l| l.starts_with("vpnmon_alarm_state{") && l.contains(alarm))
            .filter_map(|l| {
                let st = l.split("state=\"").nth(1)?.split('"').next()?;
                Some((st.to_string(), l.rsplit(' ').next()?.to_string()))
            })
            .collect();
        if last.iter().any(|(s, v)| s == state && v == "1") {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("no vpnmon_alarm_state{{alarm={alarm},state={state}}} 1: {last:?}");
}

#[tokio::test]
async fn each_alarm_rule_has_a_state_series_per_state() {
    let (app, url, conn, _) = probing_app().await;
    let alarm = alarm_rule(&app, &conn).await;
    // Answered probes: the rule goes ok, and the series say so.
    let got = wait_for_alarm_state(&app, &url, &alarm, "ok").await;
    let mut got = got;
    got.sort();
    assert_eq!(
        got,
        [("alarm", "0"), ("insufficient_data", "0"), ("ok", "1")]
            .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    let (_, text, _) = scrape(&app, &url, Some("text/plain")).await;
    let line = text
        .lines()
        .find(|l| l.starts_with("vpnmon_alarm_state{") && l.contains(&alarm))
        .unwrap();
    for label in [
        format!("project=\"{}\"", app.project_id),
        format!("vpn_connection=\"{conn}\""),
        "alarm_name=\"vpn-loss\"".to_string(),
        "metric=\"link_packet_loss_rate\"".to_string(),
    ] {
        assert!(line.contains(&label), "{label} in {line}");
    }
    assert!(text.contains("\nvpnmon_alarms_unexported 0\n"), "{text}");
    // A deleted rule loses its series.
    let r = app
        .send(
            reqwest::Method::DELETE,
            &format!("/V1.0/{}/alarms/{alarm}", app.project_id),
            Some(&app.token),
            None,
        )
        .await;
    assert_eq!(r.status.as_u16(), 204);
    let mut gone = false;
    for _ in 0..60 {
        let (_, text, _) = scrape(&app, &url, Some("text/plain")).await;
        if !text.contains(&alarm) {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(gone, "the deleted rule's series are gone");
    app.stop().await;
}

/// `docs/prometheus/` in the repository.
fn docs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/prometheus")
}

#[tokio::test]
async fn example_rules_use_only_metrics_vpnmon_exports() {
    let rules = std::fs::read_to_string(docs_dir().join("vpnmon.rules.yml")).unwrap();
    let (app, url, _, _) = probing_app().await;
    let (_, text, _) = scrape(&app, &url, None).await;
    app.stop().await;
    // Sample names, and the families declared (a labelled family has no
    // sample until something is counted: no rule, no delivery yet).
    let mut exported: std::collections::HashSet<String> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect();
    for l in text.lines() {
        if let Some(t) = l.strip_prefix("# TYPE ") {
            let mut it = t.split(' ');
            let (Some(name), Some(kind)) = (it.next(), it.next()) else {
                continue;
            };
            exported.insert(name.to_string());
            if kind == "counter" && !name.ends_with("_total") {
                exported.insert(format!("{name}_total"));
            }
        }
    }
    // Metric names in expressions; recording rules' names have colons.
    let mut used: Vec<&str> = rules
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|t| t.starts_with("vpnmon_") && !t.contains(':'))
        .collect();
    used.sort_unstable();
    used.dedup();
    assert!(used.len() >= 10, "{used:?}");
    let missing: Vec<_> = used.iter().filter(|n| !exported.contains(**n)).collect();
    assert!(exported.contains("vpnmon_monitor_link_up"), "{text}");
    assert!(
        missing.is_empty(),
        "rules name metrics vpnmon does not export: {missing:?}"
    );
}

#[test]
fn example_scrape_config_and_rules_pass_promtool() {
    let Some(promtool) = promtool() else {
        return;
    };
    let docs = docs_dir();
    let config = docs.join("prometheus.yml");
    let rules = docs.join("vpnmon.rules.yml");
    let tests = docs.join("vpnmon.rules.test.yml");
    for args in [
        ["check", "config", config.to_str().unwrap()],
        ["check", "rules", rules.to_str().unwrap()],
        ["test", "rules", tests.to_str().unwrap()],
    ] {
        let (ok, printed) = run_promtool(&promtool, &args, "");
        eprintln!("promtool {}:\n{printed}", args.join(" "));
        assert!(ok, "promtool {args:?}: {printed}");
        assert!(printed.contains("SUCCESS"), "{printed}");
    }
}
