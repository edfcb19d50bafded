//! vpnmon against a lab: the real probe engine sends ICMP echo requests
//! from a gateway EIP to customer gateways inside a network namespace where
//! nftables drops a chosen share of them and a userspace responder delays
//! the replies, and the recorded statistics must match what was injected.
//!
//! Each test builds its own lab (torn down when the test ends or panics)
//! and runs vpnmon inside it on 127.0.0.1, driven over HTTP. Only lab
//! addresses (198.18.0.0/15) and the lab's loopback are ever used. The
//! tests need root to build namespaces; without it each prints why it
//! skips.
//!
//! Cadence: 3 probes per 1 s window, 300 ms timeout.

#[path = "lab/harness.rs"]
mod harness;
#[path = "support/smn.rs"]
mod smn_support;

use harness::{
    COUNT, Checks, FLUSH, INTERVAL, LabApp, SPACING, TIMEOUT, counters, first_gap, group, in_lab,
    lab_or_skip, now_ms, poll, totals, windows_at_least,
};
use lab::LossMode;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use smn_support::{Received, Receiver, enc, verify};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Windows measured per monitor for the statistical checks (60 probes each).
const WINDOWS: usize = 20;

const CLEAN: &str = "198.18.10.0/24";
const EXACT: &str = "198.18.11.0/24";
const RANDOM: &str = "198.18.12.0/24";
const DEAD: &str = "198.18.13.0/24";
const GONE: &str = "198.18.15.0/24";
const SLOW: &str = "198.18.14.0/24";
const FLAP: &str = "198.18.10.0/24";
const OUTSIDE: &str = "198.18.20.0/24";

/// Requests among the first `n` to a group with exact `pct` % loss that the
/// lab drops: the nftables rule drops positions `i` of `numgen inc mod 100`
/// where `(i + 1) * pct / 100 > i * pct / 100`.
fn exact_drops(n: u64, pct: u64) -> u64 {
    (0..n)
        .filter(|i| {
            let p = i % 100;
            (p + 1) * pct / 100 > p * pct / 100
        })
        .count() as u64
}

fn ms_f(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Kernel replies, no delay: clean, 30 % exact, 30 % random and 100 % loss
/// groups measured together by one vpnmon; a monitor becomes ACTIVE within
/// one window; a deleted monitor stops sending.
#[test]
fn loss_is_measured_as_injected_and_deleted_monitors_stop() {
    let Some(mut lab) = lab_or_skip("loss_is_measured_as_injected_and_deleted_monitors_stop")
    else {
        return;
    };
    lab.watch(group(CLEAN)).unwrap();
    lab.set_loss(group(EXACT), 30, LossMode::Exact).unwrap();
    lab.set_loss(group(RANDOM), 30, LossMode::Random).unwrap();
    lab.set_loss(group(DEAD), 100, LossMode::Random).unwrap();
    lab.watch(group(GONE)).unwrap();
    let began = Instant::now();
    let checks = in_lab(&mut lab, |lab, rt| {
        rt.block_on(async {
            let mut c = Checks::new("loss");
            let app = LabApp::start(&["198.18.0.0/15"]).await;
            let (vgw, eip_id, eip) = app.gateway().await;
            c.check(
                "gateway EIP comes from the lab pool",
                eip.starts_with("198.18.0."),
                &eip,
            );

            // 1. ACTIVE within one window of creation.
            let clean_conn = app.connection_to(&vgw, &eip_id, "198.18.10.1").await;
            let created = Instant::now();
            let clean = app.monitor(&clean_conn).await;
            let (_, first) = app.monitor_status(&clean).await;
            c.check(
                "a new monitor is PENDING_CREATE (or already ACTIVE)",
                first == "PENDING_CREATE" || first == "ACTIVE",
                &first,
            );
            let bound = INTERVAL + TIMEOUT + Duration::from_millis(500);
            let active = poll(
                Duration::from_secs(10),
                Duration::from_millis(100),
                async || (app.monitor_status(&clean).await.1 == "ACTIVE").then_some(()),
            )
            .await
            .map(|_| created.elapsed());
            c.check(
                "monitor ACTIVE within one window of creation",
                matches!(active, Ok(t) if t <= bound),
                format!("{active:?} (bound {bound:?})"),
            );

            let (exact_conn, exact) = app.monitored(&vgw, &eip_id, "198.18.11.1").await;
            let mut random = Vec::new();
            for i in 1..=4 {
                random.push(
                    app.monitored(&vgw, &eip_id, &format!("198.18.12.{i}"))
                        .await
                        .1,
                );
            }
            let (dead_conn, dead) = app.monitored(&vgw, &eip_id, "198.18.13.1").await;
            let (_, gone) = app.monitored(&vgw, &eip_id, "198.18.15.1").await;

            // 6. A deleted monitor stops sending.
            let ran = windows_at_least(&app, &[&gone], 2, Duration::from_secs(6)).await;
            c.check("monitor to be deleted measured 2 windows", ran, "");
            let before = counters(lab, GONE).requests;
            c.check(
                "lab saw the monitor's requests before the delete",
                before >= 2 * u64::from(COUNT),
                format!("{before} requests"),
            );
            // Delete just after one of its windows closed (last probe +
            // timeout, about 0.97 s after the window's start), while that
            // window's datapoint may still wait for the next batched write.
            let last_start = app.points(&gone).await.last().map_or(0, |p| p.window_start_ms);
            let step = INTERVAL.as_millis() as i64;
            let mut delete_at = last_start + step + 1010;
            while delete_at < now_ms() + 20 {
                delete_at += step;
            }
            tokio::time::sleep(Duration::from_millis((delete_at - now_ms()).max(0) as u64)).await;
            let deleted_at = now_ms();
            let status = app.delete_monitor(&gone).await;
            c.check(
                "DELETE monitor answers 204",
                status == StatusCode::NO_CONTENT,
                status,
            );
            // A probe already handed to the kernel may still arrive.
            tokio::time::sleep(SPACING).await;
            let baseline = counters(lab, GONE).requests;
            tokio::time::sleep(2 * INTERVAL + Duration::from_millis(200)).await;
            let after = counters(lab, GONE).requests;
            c.check(
                "no echo request after the delete (2 windows later)",
                after == baseline,
                format!(
                    "{before} before the delete, {baseline} one probe spacing after, {after} two windows later"
                ),
            );
            let (st, _) = app.monitor_status(&gone).await;
            c.check(
                "deleted monitor is gone from the API",
                st == StatusCode::NOT_FOUND,
                st,
            );
            let orphans: Vec<i64> = app
                .points(&gone)
                .await
                .iter()
                .map(|p| p.window_start_ms)
                .collect();
            c.check(
                "no datapoints of the deleted monitor remain in the store",
                orphans.is_empty(),
                format!("windows starting at {orphans:?} (deleted at {deleted_at})"),
            );

            // Measure.
            let mut all = vec![clean.as_str(), exact.as_str(), dead.as_str()];
            all.extend(random.iter().map(String::as_str));
            let enough = windows_at_least(
                &app,
                &all,
                WINDOWS,
                INTERVAL * (WINDOWS as u32 + 8),
            )
            .await;
            c.check(
                &format!("every monitor measured {WINDOWS} windows"),
                enough,
                "",
            );

            // Clean: no loss, sub-millisecond RTT.
            let pts = app.points(&clean).await;
            let (n, sent, recv) = totals(&pts);
            c.check(
                "clean: every window sent the configured count",
                pts.iter().all(|p| p.sent == i64::from(COUNT)),
                format!("{n} windows, {sent} sent"),
            );
            c.check(
                "clean: loss exactly 0",
                recv == sent && pts.iter().all(|p| p.loss_pct == 0.0),
                format!("{recv}/{sent} received"),
            );
            let max_rtt = pts
                .iter()
                .filter_map(|p| p.rtt_max_ms)
                .fold(0.0f64, f64::max);
            c.check(
                "clean: RTT max < 1 ms",
                max_rtt < 1.0 && pts.iter().all(|p| p.rtt_max_ms.is_some()),
                format!("max {max_rtt:.3} ms"),
            );
            c.check(
                "clean: windows are contiguous (one per interval)",
                first_gap(&pts).is_none(),
                format!("first gap {:?} ms", first_gap(&pts)),
            );
            let st = app.state(&clean).await;
            c.check(
                "clean: state endpoint shows link up, no not-probed reason",
                st["link"]["up"] == true
                    && st["link"]["changed_at"].is_string()
                    && st["not_probed_reason"].is_null()
                    && st["last_window"]["received"] == i64::from(COUNT),
                &st,
            );

            // Exact 30 %: one monitor, the group's sequence is all ours.
            let pts = app.points(&exact).await;
            let (n, sent, recv) = totals(&pts);
            let lost = (sent - recv) as u64;
            let loss = lost as f64 * 100.0 / sent as f64;
            c.check(
                "exact 30 %: loss within 30 ± 5 points",
                (loss - 30.0).abs() <= 5.0 && n >= WINDOWS,
                format!("{lost}/{sent} lost = {loss:.2} % over {n} windows"),
            );
            let want = exact_drops(sent as u64, 30);
            c.check(
                "exact 30 %: lost probes are exactly the ones the lab dropped",
                lost == want,
                format!("{lost} lost, lab's sequence drops {want} of the first {sent}"),
            );
            let lc = counters(lab, EXACT);
            c.check(
                "exact 30 %: lab counted what vpnmon sent (plus at most the windows in flight)",
                lc.requests >= sent as u64 && lc.requests <= sent as u64 + 3 * u64::from(COUNT),
                format!("lab {} requests / {} dropped, vpnmon {sent} sent", lc.requests, lc.dropped),
            );

            // Random 30 %: four monitors share the group.
            let mut sent_r = 0i64;
            let mut recv_r = 0i64;
            for m in &random {
                let (_, s, r) = totals(&app.points(m).await);
                sent_r += s;
                recv_r += r;
            }
            let lost_r = (sent_r - recv_r) as f64;
            let mean = 0.3 * sent_r as f64;
            let sigma = (sent_r as f64 * 0.3 * 0.7).sqrt();
            c.check(
                "random 30 %: loss within 4 sigma of binomial(n, 0.3)",
                (lost_r - mean).abs() <= 4.0 * sigma && sent_r > 0,
                format!(
                    "{lost_r}/{sent_r} lost = {:.2} % (expected {mean:.1} ± {:.1})",
                    lost_r * 100.0 / sent_r as f64,
                    4.0 * sigma
                ),
            );
            let lc = counters(lab, RANDOM);
            c.check(
                "random 30 %: every probe vpnmon lost is one the lab dropped",
                lost_r as u64 <= lc.dropped
                    && lc.dropped <= lost_r as u64 + 3 * 4 * u64::from(COUNT),
                format!("lab dropped {} of {}, vpnmon lost {lost_r}", lc.dropped, lc.requests),
            );

            // 100 %: every window lost, link down, no RTT.
            let pts = app.points(&dead).await;
            let (n, sent, recv) = totals(&pts);
            c.check(
                "100 %: every window loss 100 with no RTT or jitter",
                n >= WINDOWS
                    && recv == 0
                    && pts.iter().all(|p| {
                        p.loss_pct == 100.0
                            && p.sent == i64::from(COUNT)
                            && p.rtt_min_ms.is_none()
                            && p.rtt_avg_ms.is_none()
                            && p.rtt_max_ms.is_none()
                            && p.jitter_ms.is_none()
                    }),
                format!("{n} windows, {recv}/{sent} received"),
            );
            let st = app.state(&dead).await;
            c.check(
                "100 %: link down",
                st["link"]["up"] == false && st["link"]["changed_at"].is_string(),
                &st["link"],
            );
            let lw = &st["last_window"];
            c.check(
                "100 %: last window has null RTT fields",
                lw["loss_pct"] == 100.0
                    && lw["rtt_min_ms"].is_null()
                    && lw["rtt_avg_ms"].is_null()
                    && lw["rtt_max_ms"].is_null()
                    && lw["jitter_ms"].is_null(),
                lw,
            );
            let (from, to) = (
                pts.first().map_or(0, |p| p.window_start_ms),
                pts.last().map_or(0, |p| p.window_start_ms) + 1,
            );
            let ces_loss = app.ces("link_packet_loss_rate", &dead_conn, from, to).await;
            c.check(
                "100 %: CES link_packet_loss_rate is 100 for every window",
                ces_loss.len() == n && ces_loss.iter().all(|v| *v == 100.0),
                format!("{ces_loss:?}"),
            );
            let ces_lat = app.ces("link_average_latency", &dead_conn, from, to).await;
            c.check(
                "100 %: CES link_average_latency has no datapoints",
                ces_lat.is_empty(),
                format!("{ces_lat:?}"),
            );
            let exact_pts = app.points(&exact).await;
            let ces_exact = app
                .ces(
                    "link_packet_loss_rate",
                    &exact_conn,
                    exact_pts.first().map_or(0, |p| p.window_start_ms),
                    exact_pts.last().map_or(0, |p| p.window_start_ms) + 1,
                )
                .await;
            let want: Vec<f64> = exact_pts
                .iter()
                .map(|p| (p.loss_pct * 1000.0).round() / 1000.0)
                .collect();
            c.check(
                "exact 30 %: CES serves each stored window's loss",
                ces_exact == want,
                format!("CES {ces_exact:?}, store {want:?}"),
            );

            // Still nothing towards the deleted monitor's target.
            let last = counters(lab, GONE).requests;
            c.check(
                "deleted monitor: still no echo request at the end",
                last == baseline,
                format!("{baseline} after the delete, {last} at the end"),
            );
            if let Some(e) = &app.engine {
                eprintln!("[loss] engine counters: {:?}", e.counters());
            }
            app.stop().await;
            c
        })
    });
    eprintln!("[loss] took {:?}", began.elapsed());
    checks.finish();
}

/// The responder delays replies 20 ms ± 5 ms (uniform): every RTT falls in
/// that band and the mean is 20 ms.
#[test]
fn injected_delay_is_measured() {
    let Some(mut lab) = lab_or_skip("injected_delay_is_measured") else {
        return;
    };
    let (delay, jitter) = (Duration::from_millis(20), Duration::from_millis(5));
    lab.set_delay(group(SLOW), delay, jitter).unwrap();
    let began = Instant::now();
    let checks = in_lab(&mut lab, |lab, rt| {
        rt.block_on(async {
            let mut c = Checks::new("delay");
            let app = LabApp::start(&["198.18.0.0/15"]).await;
            let (vgw, eip_id, _) = app.gateway().await;
            let mut monitors = Vec::new();
            for i in 1..=2 {
                monitors.push(
                    app.monitored(&vgw, &eip_id, &format!("198.18.14.{i}"))
                        .await
                        .1,
                );
            }
            let ids: Vec<&str> = monitors.iter().map(String::as_str).collect();
            let enough =
                windows_at_least(&app, &ids, WINDOWS, INTERVAL * (WINDOWS as u32 + 8)).await;
            c.check(
                &format!("every monitor measured {WINDOWS} windows"),
                enough,
                "",
            );
            let mut measured = Vec::new();
            for m in &monitors {
                measured.push((m, app.points(m).await));
            }
            if let Some(e) = &app.engine {
                eprintln!("[delay] engine counters: {:?}", e.counters());
            }
            app.stop().await;
            // The responder's replies can leave late when the host is busy
            // (it reports its worst lateness when it exits): the RTT it
            // produced is then truly longer, so its own lateness widens the
            // upper bound. vpnmon's measurement error is not in that figure.
            let summary = responder_summary(lab);
            eprintln!("[delay] responder: {summary}");
            let late_ms = late_max_ms(&summary);
            c.check(
                "responder reported its lateness",
                late_ms.is_some(),
                &summary,
            );
            let lo = ms_f(delay - jitter) - 0.5;
            let hi = ms_f(delay + jitter) + 1.0 + late_ms.unwrap_or(0.0);
            let mut avgs = Vec::new();
            for (m, pts) in &measured {
                let (n, sent, recv) = totals(pts);
                c.check(
                    &format!("monitor {m}: no loss"),
                    recv == sent && sent > 0,
                    format!("{recv}/{sent} received over {n} windows"),
                );
                let bad: Vec<_> = pts
                    .iter()
                    .filter(|p| {
                        !(p.rtt_min_ms.is_some_and(|v| v >= lo)
                            && p.rtt_max_ms.is_some_and(|v| v <= hi))
                    })
                    .map(|p| (p.window_start_ms, p.rtt_min_ms, p.rtt_max_ms))
                    .collect();
                c.check(
                    &format!("monitor {m}: every window's RTT in [{lo:.1}, {hi:.3}] ms"),
                    bad.is_empty(),
                    format!(
                        "windows outside (start, min, max): {bad:?}; bound includes the \
                         responder's worst lateness {:.3} ms",
                        late_ms.unwrap_or(0.0)
                    ),
                );
                let no_jitter: Vec<_> = pts
                    .iter()
                    .filter(|p| !p.jitter_ms.is_some_and(|j| j > 0.0))
                    .map(|p| (p.window_start_ms, p.jitter_ms))
                    .collect();
                c.check(
                    &format!("monitor {m}: jitter > 0 in every window"),
                    no_jitter.is_empty(),
                    format!("{no_jitter:?}"),
                );
                c.check(
                    &format!("monitor {m}: windows are contiguous"),
                    first_gap(pts).is_none(),
                    format!("first gap {:?} ms", first_gap(pts)),
                );
                avgs.extend(pts.iter().filter_map(|p| p.rtt_avg_ms));
            }
            let mean = avgs.iter().sum::<f64>() / avgs.len().max(1) as f64;
            c.check(
                "mean of the window averages within 20 ± 1.5 ms",
                (mean - 20.0).abs() <= 1.5 && !avgs.is_empty(),
                format!("{mean:.3} ms over {} windows", avgs.len()),
            );
            c
        })
    });
    eprintln!("[delay] took {:?}", began.elapsed());
    checks.finish();
}

/// With the allowlist limited to 198.18.10.0/24: a monitor there goes down
/// when the responder stops and up when it comes back; a monitor towards
/// 198.18.20.0/24 is never probed and says why.
#[test]
fn link_goes_down_and_up_and_the_allowlist_is_enforced() {
    let Some(mut lab) = lab_or_skip("link_goes_down_and_up_and_the_allowlist_is_enforced") else {
        return;
    };
    lab.watch(group(FLAP)).unwrap();
    lab.watch(group(OUTSIDE)).unwrap();
    lab.start_responder().unwrap();
    let began = Instant::now();
    let checks = in_lab(&mut lab, |lab, rt| {
        rt.block_on(async {
            let mut c = Checks::new("link");
            let app = LabApp::start(&[FLAP]).await;
            let (vgw, eip_id, _) = app.gateway().await;
            let (_, outside) = app.monitored(&vgw, &eip_id, "198.18.20.5").await;
            let (_, flap) = app.monitored(&vgw, &eip_id, "198.18.10.7").await;

            let up = poll(INTERVAL * 4, Duration::from_millis(100), async || {
                (app.state(&flap).await["link"]["up"] == true).then_some(())
            })
            .await;
            c.check(
                "link up while the responder answers",
                up.is_ok(),
                format!("{up:?}"),
            );

            // Down within 2 windows of the responder stopping: the window in
            // progress may still have had a reply; the next one has none and
            // is stored when it closes (its last probe + timeout).
            let bound = 2 * INTERVAL + FLUSH;
            let stopped_ms = now_ms();
            lab.stop_responder().unwrap();
            let stopped = Instant::now();
            let down = poll(INTERVAL * 6, Duration::from_millis(100), async || {
                let st = app.state(&flap).await;
                (st["link"]["up"] == false).then_some(st)
            })
            .await;
            let down_changed = match &down {
                Ok((st, t)) => {
                    let changed = changed_ms(st);
                    c.check(
                        "link down within 2 windows of the responder stopping",
                        *t <= bound,
                        format!("after {t:?} (bound {bound:?}); {}", st["link"]),
                    );
                    c.check(
                        "changed_at of the down transition is after the stop",
                        changed.is_some_and(|ms| ms >= stopped_ms && ms <= now_ms()),
                        format!("{changed:?}, stopped at {stopped_ms}"),
                    );
                    changed
                }
                Err(t) => {
                    c.check(
                        "link down after the responder stopped",
                        false,
                        format!("still up after {t:?}"),
                    );
                    None
                }
            };
            let down_for = stopped.elapsed();

            lab.start_responder().unwrap();
            let restarted_ms = now_ms();
            let back = poll(INTERVAL * 6, Duration::from_millis(100), async || {
                let st = app.state(&flap).await;
                (st["link"]["up"] == true).then_some(st)
            })
            .await;
            match &back {
                Ok((st, t)) => {
                    let changed = changed_ms(st);
                    c.check(
                        "link up within 2 windows of the responder restarting",
                        *t <= bound,
                        format!(
                            "after {t:?} (bound {bound:?}; was down for {down_for:?}); {}",
                            st["link"]
                        ),
                    );
                    c.check(
                        "changed_at of the up transition is after the restart and the down one",
                        changed.is_some_and(|ms| {
                            ms >= restarted_ms && down_changed.is_some_and(|d| ms > d)
                        }),
                        format!(
                            "{changed:?}, restarted at {restarted_ms}, down at {down_changed:?}"
                        ),
                    );
                }
                Err(t) => c.check(
                    "link up after the responder restarted",
                    false,
                    format!("still down after {t:?}"),
                ),
            }

            // 7. Outside the allowlist: never probed, and says why.
            let (_, status) = app.monitor_status(&outside).await;
            c.check(
                "monitor outside the allowlist stays PENDING_CREATE",
                status == "PENDING_CREATE",
                &status,
            );
            let st = app.state(&outside).await;
            let reason = st["not_probed_reason"].as_str().unwrap_or_default();
            c.check(
                "state endpoint names the allowlist as the reason",
                reason.contains("allowlist") && reason.contains("198.18.20.5"),
                &st,
            );
            c.check(
                "monitor outside the allowlist has no link state and no window",
                st["link"]["up"].is_null() && st["last_window"].is_null(),
                &st,
            );
            let outside_requests = counters(lab, OUTSIDE).requests;
            c.check(
                "no echo request reached the group outside the allowlist",
                outside_requests == 0,
                format!("{outside_requests} requests"),
            );
            c.check(
                "no datapoints for the monitor outside the allowlist",
                app.points(&outside).await.is_empty(),
                "",
            );
            if let Some(e) = &app.engine {
                eprintln!("[link] engine counters: {:?}", e.counters());
            }
            app.stop().await;
            c
        })
    });
    eprintln!("[link] took {:?}", began.elapsed());
    checks.finish();
}

/// Stops the lab's responder and returns the summary it logs on exit
/// (replies sent, and how late the latest one left).
fn responder_summary(lab: &mut lab::Lab) -> String {
    let log = lab.status().ok().and_then(|s| s.responder).map(|r| r.log);
    if let Err(e) = lab.stop_responder() {
        return format!("cannot stop the responder: {e}");
    }
    match log.map(std::fs::read_to_string) {
        Some(Ok(text)) => text.trim().to_owned(),
        Some(Err(e)) => format!("cannot read the responder log: {e}"),
        None => "no responder".into(),
    }
}

/// `late_max_us=N` of a responder's exit summary, in milliseconds.
fn late_max_ms(summary: &str) -> Option<f64> {
    let v = summary
        .split_whitespace()
        .find_map(|w| w.strip_prefix("late_max_us="))?;
    v.parse::<f64>().ok().map(|us| us / 1000.0)
}

/// `link.changed_at` of a state answer, in Unix milliseconds.
fn changed_ms(state: &serde_json::Value) -> Option<i64> {
    let s = state["link"]["changed_at"].as_str()?;
    let t = chrono::DateTime::parse_from_rfc3339(s).ok()?;
    Some(t.timestamp_millis())
}

/// The alarm rule of a monitor, its state as the API shows it.
async fn alarm_state(app: &LabApp, id: &str) -> String {
    let r = app
        .send(
            Method::GET,
            &format!("/V1.0/{}/alarms/{id}", app.project_id),
            None,
        )
        .await;
    r.body["metric_alarms"][0]["alarm_state"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Waits until rule `id` is in `state`; how long it took, or `None`.
async fn alarm_becomes(app: &LabApp, id: &str, state: &str, limit: Duration) -> Option<Duration> {
    poll(limit, Duration::from_millis(100), async || {
        (alarm_state(app, id).await == state).then_some(())
    })
    .await
    .ok()
    .map(|(_, t)| t)
}

/// The alarm notices the receiver got, as (rule id, new status, the
/// envelope), in arrival order.
fn notices(r: &Received) -> Vec<(String, String, Value)> {
    r.of_type("Notification")
        .into_iter()
        .map(|n| {
            let m: Value =
                serde_json::from_str(n["message"].as_str().unwrap_or_default()).unwrap_or_default();
            (
                m["alarm_id"].as_str().unwrap_or_default().to_string(),
                m["alarm_status"].as_str().unwrap_or_default().to_string(),
                n,
            )
        })
        .collect()
}

/// (rule id, status) of each alarm notice, for the log.
fn notice_log(r: &Received) -> String {
    let n: Vec<_> = notices(r).into_iter().map(|(id, s, _)| (id, s)).collect();
    format!("{n:?}")
}

/// Alarm rules on a real link, and their notices at a real receiver in the
/// lab: a rule `link_packet_loss_rate >= 50 %, period 1, count 2` goes
/// ok -> alarm at the second lost window when the customer gateway stops
/// answering, and back to ok when it answers again; the receiver (on the
/// lab's loopback) gets the subscription confirmation, confirms it, then
/// exactly one signed alarm notice and one ok notice; the link flapping
/// within `suppress_duration` records every transition and notifies nothing
/// more; a notice due while the receiver is down arrives once it is back,
/// across a restart of vpnmon.
#[test]
fn alarm_follows_the_link_and_its_notices_reach_a_receiver_once() {
    let Some(mut lab) = lab_or_skip("alarm_follows_the_link_and_its_notices_reach_a_receiver_once")
    else {
        return;
    };
    lab.watch(group(FLAP)).unwrap();
    lab.start_responder().unwrap();
    let began = Instant::now();
    let checks = in_lab(&mut lab, |lab, rt| {
        rt.block_on(async {
            let mut c = Checks::new("alarm");
            let mut app = LabApp::start_notifying(&[FLAP], &["127.0.0.0/8"]).await;
            let received = Arc::new(Received::default());
            let mut receiver =
                Receiver::start("127.0.0.1:0".parse().unwrap(), received.clone()).await;
            let (vgw, eip_id, _) = app.gateway().await;
            let (conn, mon) = app.monitored(&vgw, &eip_id, "198.18.10.9").await;
            let p = app.project_id.clone();

            // A topic and an HTTP subscription: confirmation, then confirm.
            let r = app
                .send(
                    Method::POST,
                    &format!("/v2/{p}/notifications/topics"),
                    Some(json!({"name": "noc", "display_name": "NOC"})),
                )
                .await;
            let topic = r.body["topic_urn"].as_str().expect("topic_urn").to_string();
            let r = app
                .send(
                    Method::POST,
                    &format!("/v2/{p}/notifications/topics/{}/subscriptions", enc(&topic)),
                    Some(json!({"protocol": "http", "endpoint": receiver.url()})),
                )
                .await;
            c.check(
                "subscription created",
                r.status == StatusCode::CREATED,
                &r.raw,
            );
            let conf = received
                .wait_until(Duration::from_secs(10), |g| !g.is_empty())
                .await;
            let Ok(conf) = conf else {
                c.check("confirmation received", false, "nothing within 10 s");
                app.stop().await;
                return c;
            };
            let conf = conf[0].1.clone();
            c.check(
                "the first message is the SubscriptionConfirmation",
                conf["type"] == "SubscriptionConfirmation",
                &conf,
            );
            verify(&app.base, &conf).await;
            let url = conf["subscribe_url"].as_str().unwrap_or_default();
            let ok = app.client.get(url).send().await.map(|r| r.status());
            c.check(
                "its subscribe_url confirms",
                matches!(ok, Ok(s) if s == StatusCode::OK),
                format!("{ok:?}"),
            );

            let rule = |name: &str, suppress: i64| {
                json!({"alarm_name": name,
                    "metric": {"namespace": "SYS.VPN", "metric_name": "link_packet_loss_rate",
                               "dimensions": [{"name": "evpn_connection_id", "value": conn}]},
                    "condition": {"comparison_operator": ">=", "count": 2, "filter": "average",
                                  "period": 1, "value": 50, "unit": "%",
                                  "suppress_duration": suppress},
                    "alarm_actions": [{"type": "notification", "notificationList": [topic]}],
                    "ok_actions": [{"type": "notification", "notificationList": [topic]}]})
            };
            let create = async |app: &LabApp, body: Value| {
                let r = app
                    .send(Method::POST, &format!("/V1.0/{p}/alarms"), Some(body))
                    .await;
                assert_eq!(r.status, StatusCode::CREATED, "create alarm: {}", r.raw);
                r.body["alarm_id"].as_str().expect("alarm_id").to_string()
            };
            let a = create(&app, rule("vpn-loss", 300)).await;
            let t = alarm_becomes(&app, &a, "ok", INTERVAL * 5).await;
            c.check(
                "the rule is ok while the link answers",
                t.is_some(),
                format!("{t:?}"),
            );

            // 0 % -> 100 % loss: alarm at the second lost window.
            let stopped_ms = now_ms();
            lab.stop_responder().unwrap();
            let t = alarm_becomes(&app, &a, "alarm", INTERVAL * 8).await;
            c.check(
                "alarm after the link stops answering",
                t.is_some(),
                format!("{t:?}"),
            );
            let history = app
                .send(
                    Method::GET,
                    &format!("/V1.0/{p}/alarm-histories?alarm_id={a}&limit=100"),
                    None,
                )
                .await;
            let raised = history.body["alarm_histories"]
                .as_array()
                .and_then(|h| h.iter().find(|x| x["alarm_status"] == "alarm"))
                .and_then(|x| x["trigger_time"].as_i64());
            // The windows since the stop that breach (>= 50 % lost: the
            // window in progress at the stop may have lost 2 of 3), once
            // the one that raised the alarm is stored.
            let breaching = poll(
                Duration::from_secs(5),
                Duration::from_millis(100),
                async || {
                    let pts = app.points(&mon).await;
                    pts.iter()
                        .any(|w| Some(w.window_start_ms) == raised)
                        .then(|| {
                            pts.iter()
                                .filter(|w| {
                                    w.window_start_ms + INTERVAL.as_millis() as i64 > stopped_ms
                                })
                                .map(|w| (w.window_start_ms, w.loss_pct))
                                .collect::<Vec<_>>()
                        })
                },
            )
            .await
            .map(|(v, _)| v)
            .unwrap_or_default();
            let lost: Vec<i64> = breaching
                .iter()
                .filter(|(_, loss)| *loss >= 50.0)
                .map(|(t, _)| *t)
                .collect();
            c.check(
                "the alarm is raised at the second breaching window since the stop (count 2)",
                // The first breach is the window in progress at the stop
                // or the next one; the second is the one after it.
                lost.len() >= 2
                    && raised == Some(lost[1])
                    && lost[1] - lost[0] == INTERVAL.as_millis() as i64
                    && breaching
                        .iter()
                        .position(|w| w.0 == lost[0])
                        .is_some_and(|i| i <= 1),
                format!(
                    "raised at {raised:?}, windows since the stop (start, loss %) {breaching:?}"
                ),
            );
            let got = received
                .wait_until(Duration::from_secs(10), |_| !notices(&received).is_empty())
                .await;
            c.check(
                "an alarm notice arrives",
                got.is_ok(),
                notice_log(&received),
            );

            // 100 % -> 0 %: ok, and one ok notice.
            lab.start_responder().unwrap();
            let t = alarm_becomes(&app, &a, "ok", INTERVAL * 8).await;
            c.check(
                "ok after the link answers again",
                t.is_some(),
                format!("{t:?}"),
            );
            let got = received
                .wait_until(Duration::from_secs(10), |_| notices(&received).len() >= 2)
                .await;
            c.check("an ok notice arrives", got.is_ok(), notice_log(&received));

            // Flapping within suppress_duration (300 s): recorded, silent.
            for _ in 0..2 {
                lab.stop_responder().unwrap();
                let down = alarm_becomes(&app, &a, "alarm", INTERVAL * 8).await;
                lab.start_responder().unwrap();
                let up = alarm_becomes(&app, &a, "ok", INTERVAL * 8).await;
                c.check(
                    "the flapping link moves the rule to alarm and back",
                    down.is_some() && up.is_some(),
                    format!("alarm after {down:?}, ok after {up:?}"),
                );
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
            let n = notices(&received);
            let summary: Vec<(&str, &str)> = n
                .iter()
                .map(|(id, s, _)| (id.as_str(), s.as_str()))
                .collect();
            c.check(
                "exactly one alarm notice and one ok notice, in that order",
                summary == vec![(a.as_str(), "alarm"), (a.as_str(), "ok")],
                format!("{summary:?}"),
            );
            for (_, status, m) in &n {
                verify(&app.base, m).await;
                let msg: Value =
                    serde_json::from_str(m["message"].as_str().unwrap_or_default()).unwrap();
                c.check(
                    &format!("the {status} notice names the monitor and the metric"),
                    msg["monitor_id"] == mon.as_str()
                        && msg["metric_name"] == "link_packet_loss_rate"
                        // The alarm at a fully lost window; the ok at
                        // one under the threshold (the window in progress
                        // at the restart may have lost 1 of 3).
                        && msg["current_value"].as_f64().is_some_and(|v| {
                            if status == "alarm" { v == 100.0 } else { v < 50.0 }
                        }),
                    &msg,
                );
            }
            let history = app
                .send(
                    Method::GET,
                    &format!("/V1.0/{p}/alarm-histories?alarm_id={a}&limit=100"),
                    None,
                )
                .await;
            let states: Vec<&str> = history.body["alarm_histories"]
                .as_array()
                .map(|h| {
                    h.iter()
                        .rev()
                        .filter_map(|x| x["alarm_status"].as_str())
                        .collect()
                })
                .unwrap_or_default();
            c.check(
                "the history lists every transition",
                states == ["ok", "alarm", "ok", "alarm", "ok", "alarm", "ok"],
                format!("{states:?}"),
            );

            // The receiver down: the notice waits in the outbox, across a
            // restart of vpnmon, and arrives once the receiver is back.
            let b = create(&app, rule("vpn-loss-now", 0)).await;
            let t = alarm_becomes(&app, &b, "ok", INTERVAL * 5).await;
            c.check("the second rule is ok", t.is_some(), format!("{t:?}"));
            let addr = receiver.addr;
            receiver.stop().await;
            lab.stop_responder().unwrap();
            let t = alarm_becomes(&app, &b, "alarm", INTERVAL * 8).await;
            c.check(
                "the second rule raises its alarm",
                t.is_some(),
                format!("{t:?}"),
            );
            let deliveries = format!("/vpnmon/{p}/notifications/deliveries?limit=100");
            let tried = poll(
                Duration::from_secs(10),
                Duration::from_millis(200),
                async || {
                    let r = app.send(Method::GET, &deliveries, None).await;
                    r.body["deliveries"]
                        .as_array()?
                        .iter()
                        .find(|d| d["type"] == "Notification" && d["state"] == "pending")
                        .filter(|d| d["attempts"].as_i64().unwrap_or(0) >= 1)
                        .cloned()
                },
            )
            .await;
            c.check(
                "the notice to the dead receiver is pending with a failed attempt",
                tried
                    .as_ref()
                    .is_ok_and(|(d, _)| !d["last_error"].is_null()),
                format!("{tried:?}"),
            );
            app = app.restart().await;
            receiver = Receiver::start(addr, received.clone()).await;
            let got = received
                .wait_until(Duration::from_secs(45), |_| {
                    notices(&received).iter().any(|(id, _, _)| *id == b)
                })
                .await;
            c.check(
                "the alarm notice arrives after the receiver is back, across the restart",
                got.is_ok(),
                notice_log(&received),
            );
            lab.start_responder().unwrap();
            let t = alarm_becomes(&app, &b, "ok", INTERVAL * 8).await;
            c.check("the second rule clears", t.is_some(), format!("{t:?}"));
            let _ = received
                .wait_until(Duration::from_secs(10), |_| notices(&received).len() >= 4)
                .await;
            tokio::time::sleep(Duration::from_secs(2)).await;
            let n = notices(&received);
            let summary: Vec<(&str, &str)> = n
                .iter()
                .map(|(id, s, _)| (id.as_str(), s.as_str()))
                .collect();
            c.check(
                "each rule: one alarm notice and one ok notice (the first rule's new alarm was \
                 within its suppression time)",
                summary
                    == vec![
                        (a.as_str(), "alarm"),
                        (a.as_str(), "ok"),
                        (b.as_str(), "alarm"),
                        (b.as_str(), "ok"),
                    ],
                format!("{summary:?}"),
            );
            for (_, _, m) in &n[2..] {
                verify(&app.base, m).await;
            }
            app.stop().await;
            receiver.stop().await;
            c
        })
    });
    eprintln!("[alarm] took {:?}", began.elapsed());
    checks.finish();
}
