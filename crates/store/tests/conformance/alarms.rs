//! Alarm rules, their history and their evaluation.

use super::*;
use domain::AlarmId;
use domain::alarm::eval::Notice;
use domain::alarm::{AlarmRule, AlarmState, CreateAlarm, UpdateAlarm};
use store::{AlarmEvent, HistoryQuery};

fn rule_body(p: &ProjectId, conn: &(dyn Display + Sync), count: i64) -> Value {
    let urn = format!("urn:smn:local-1:{p}:ops");
    json!({"alarm_name": "vpn-loss",
        "metric": {"namespace": "SYS.VPN", "metric_name": "link_packet_loss_rate",
                   "dimensions": [{"name": "evpn_connection_id", "value": conn.to_string()}]},
        "condition": {"comparison_operator": ">=", "count": count, "filter": "average", "period": 1,
                      "value": 50, "unit": "%"},
        "alarm_actions": [{"type": "notification", "notificationList": [urn.clone()]}],
        "ok_actions": [{"type": "notification", "notificationList": [urn]}]})
}

fn rule(p: &ProjectId, body: Value) -> AlarmRule {
    let req: CreateAlarm = serde_json::from_value(body).expect("a create body");
    domain::alarm::create(
        &req,
        AlarmId::random(),
        p,
        harness::now().timestamp_millis(),
    )
    .expect("a valid rule")
}

async fn new_rule(
    store: &SqlStore,
    p: &ProjectId,
    conn: &(dyn Display + Sync),
    count: i64,
) -> AlarmRule {
    let r = rule(p, rule_body(p, conn, count));
    store.create_alarm(p, &r).await.expect("create alarm");
    harness::advance_ms(1);
    r
}

fn all_history() -> HistoryQuery {
    HistoryQuery {
        limit: 100,
        ..HistoryQuery::default()
    }
}

pub(crate) async fn alarm_crud(store: &SqlStore) {
    let s = setup(store).await;
    let r = new_rule(store, &s.p, &s.conn.id, 2).await;
    assert_eq!(store.get_alarm(&s.p, &r.alarm_id).await, Ok(r.clone()));
    let page = store
        .list_alarms(&s.p, None, 100, true)
        .await
        .expect("list");
    assert_eq!(page.items, vec![r.clone()]);
    assert_eq!(page.total, 1);

    let req: UpdateAlarm =
        serde_json::from_value(json!({"alarm_name": "renamed", "alarm_level": 1})).expect("body");
    let u = store
        .update_alarm(&s.p, &r.alarm_id, &req)
        .await
        .expect("update");
    assert_eq!(u.alarm_name, "renamed");
    assert_eq!(u.alarm_level, 1);
    assert_eq!(store.get_alarm(&s.p, &r.alarm_id).await, Ok(u.clone()));
    // An update the domain refuses changes nothing.
    let bad: UpdateAlarm = serde_json::from_value(json!({"alarm_level": 7})).expect("body");
    assert!(matches!(
        store.update_alarm(&s.p, &r.alarm_id, &bad).await,
        Err(DomainError::Invalid(m)) if m.starts_with("alarm_level:")
    ));
    assert_eq!(store.get_alarm(&s.p, &r.alarm_id).await, Ok(u.clone()));

    store
        .set_alarm_enabled(&s.p, &r.alarm_id, false)
        .await
        .expect("disable");
    assert!(
        !store
            .get_alarm(&s.p, &r.alarm_id)
            .await
            .expect("get")
            .alarm_enabled
    );
    store
        .set_alarm_enabled(&s.p, &r.alarm_id, true)
        .await
        .expect("enable");
    assert!(
        store
            .get_alarm(&s.p, &r.alarm_id)
            .await
            .expect("get")
            .alarm_enabled
    );

    assert_eq!(store.delete_alarm(&s.p, &r.alarm_id).await, Ok(()));
    assert_eq!(store.get_alarm(&s.p, &r.alarm_id).await, nf());
    assert_eq!(store.delete_alarm(&s.p, &r.alarm_id).await, nf());
    assert_eq!(store.update_alarm(&s.p, &r.alarm_id, &req).await, nf());
    assert_eq!(store.set_alarm_enabled(&s.p, &r.alarm_id, true).await, nf());
    assert_eq!(
        store
            .list_alarms(&s.p, None, 100, true)
            .await
            .map(|p| p.total),
        Ok(0)
    );
}

pub(crate) async fn alarm_needs_a_connection_of_its_project(store: &SqlStore) {
    let s = setup(store).await;
    let other = ProjectId::generate();
    let unknown = ConnectionId::random();
    let r = rule(&s.p, rule_body(&s.p, &unknown, 1));
    assert_eq!(
        store.create_alarm(&s.p, &r).await,
        Err(invalid(format!(
            "metric.dimensions[0].value: VPN connection {unknown} does not exist"
        )))
    );
    // The connection of another project is as unknown.
    let r = rule(&other, rule_body(&other, &s.conn.id, 1));
    assert_eq!(
        store.create_alarm(&other, &r).await,
        Err(invalid(format!(
            "metric.dimensions[0].value: VPN connection {} does not exist",
            s.conn.id
        )))
    );
    assert_eq!(
        store
            .list_alarms(&other, None, 100, true)
            .await
            .map(|p| p.total),
        Ok(0)
    );
}

pub(crate) async fn alarm_list_pages_from_start_in_both_orders(store: &SqlStore) {
    let s = setup(store).await;
    let mut made = Vec::new();
    for _ in 0..5 {
        made.push(new_rule(store, &s.p, &s.conn.id, 1).await.alarm_id);
    }
    let ids = |v: &[AlarmRule]| v.iter().map(|r| r.alarm_id).collect::<Vec<_>>();
    let asc = store.list_alarms(&s.p, None, 2, false).await.expect("list");
    assert_eq!(ids(&asc.items), made[..2].to_vec());
    assert_eq!(asc.total, 5);
    let next = store
        .list_alarms(&s.p, Some(&made[1]), 2, false)
        .await
        .expect("list");
    assert_eq!(ids(&next.items), made[2..4].to_vec());
    let mut rev = made.clone();
    rev.reverse();
    let desc = store
        .list_alarms(&s.p, None, 100, true)
        .await
        .expect("list");
    assert_eq!(ids(&desc.items), rev);
    let after = store
        .list_alarms(&s.p, Some(&made[2]), 100, true)
        .await
        .expect("list");
    assert_eq!(
        ids(&after.items),
        made[..2].iter().rev().copied().collect::<Vec<_>>()
    );
    let missing = AlarmId::random();
    assert_eq!(
        store.list_alarms(&s.p, Some(&missing), 10, true).await,
        Err(invalid(format!("start: alarm {missing} does not exist")))
    );
}

pub(crate) async fn alarm_tenant_isolation(store: &SqlStore) {
    let s = setup(store).await;
    let m = monitor(store, &s.p, &s.conn).await;
    let r = new_rule(store, &s.p, &s.conn.id, 1).await;
    store
        .evaluate_windows(&[point(&m, &s.p, 10_000, 0)])
        .await
        .expect("evaluate");
    let b = ProjectId::generate();
    assert_eq!(store.get_alarm(&b, &r.alarm_id).await, nf());
    assert_eq!(
        store
            .update_alarm(&b, &r.alarm_id, &UpdateAlarm::default())
            .await,
        nf()
    );
    assert_eq!(store.set_alarm_enabled(&b, &r.alarm_id, false).await, nf());
    assert_eq!(store.delete_alarm(&b, &r.alarm_id).await, nf());
    assert_eq!(
        store
            .list_alarms(&b, None, 100, true)
            .await
            .map(|p| p.total),
        Ok(0)
    );
    assert_eq!(
        store.list_alarms(&b, Some(&r.alarm_id), 100, true).await,
        Err(invalid(format!(
            "start: alarm {} does not exist",
            r.alarm_id
        )))
    );
    assert_eq!(
        store.list_alarm_history(&b, &all_history()).await,
        Ok((vec![], 0))
    );
    // The owner still sees all of it.
    assert!(
        store
            .get_alarm(&s.p, &r.alarm_id)
            .await
            .expect("get")
            .alarm_enabled
    );
    assert_eq!(
        store
            .list_alarm_history(&s.p, &all_history())
            .await
            .map(|h| h.1),
        Ok(1)
    );
}

/// (status, trigger time, values) of each history record.
fn transitions(h: &[domain::alarm::AlarmHistory]) -> Vec<(AlarmState, i64, Vec<f64>)> {
    h.iter()
        .map(|x| {
            (
                x.alarm_status,
                x.trigger_time,
                x.datapoints.iter().map(|d| d.value).collect(),
            )
        })
        .collect()
}

fn states(events: &[AlarmEvent]) -> Vec<(AlarmState, Option<Notice>)> {
    events
        .iter()
        .filter_map(|e| e.transition.map(|t| (t.to, e.notice)))
        .collect()
}

pub(crate) async fn alarm_evaluation_records_each_transition_once(store: &SqlStore) {
    let s = setup(store).await;
    let m = monitor(store, &s.p, &s.conn).await;
    let r = new_rule(store, &s.p, &s.conn.id, 2).await;
    // A disabled rule and a rule of a longer period see nothing.
    let other = rule(&s.p, {
        let mut b = rule_body(&s.p, &s.conn.id, 1);
        b["condition"]["period"] = json!(300);
        b
    });
    store.create_alarm(&s.p, &other).await.expect("create");
    let off = new_rule(store, &s.p, &s.conn.id, 1).await;
    store
        .set_alarm_enabled(&s.p, &off.alarm_id, false)
        .await
        .expect("disable");

    let t0 = 1_700_000_000_000;
    // Good, lost, lost (alarm at the second lost window), lost, good: in
    // one batch, out of order.
    let batch = [
        point(&m, &s.p, t0 + 20_000, 0),
        point(&m, &s.p, t0, 10),
        point(&m, &s.p, t0 + 10_000, 0),
    ];
    let ev = store.evaluate_windows(&batch).await.expect("evaluate");
    assert_eq!(
        states(&ev),
        vec![
            (AlarmState::Ok, None),
            (AlarmState::Alarm, Some(Notice::Alarm))
        ]
    );
    assert!(
        ev.iter()
            .all(|e| e.rule.alarm_id == r.alarm_id && e.monitor_id == Some(m.id))
    );
    let shown = store.get_alarm(&s.p, &r.alarm_id).await.expect("get");
    assert_eq!(shown.alarm_state, AlarmState::Alarm);
    assert_eq!(shown.update_time, t0 + 20_000);
    // The same windows again change nothing.
    assert_eq!(store.evaluate_windows(&batch).await, Ok(vec![]));
    let ev = store
        .evaluate_windows(&[
            point(&m, &s.p, t0 + 30_000, 0),
            point(&m, &s.p, t0 + 40_000, 10),
        ])
        .await
        .expect("evaluate");
    assert_eq!(states(&ev), vec![(AlarmState::Ok, Some(Notice::Ok))]);

    let (h, total) = store
        .list_alarm_history(&s.p, &all_history())
        .await
        .expect("history");
    assert_eq!(total, 3);
    let got = transitions(&h);
    assert_eq!(
        got,
        vec![
            (AlarmState::Ok, t0 + 40_000, vec![0.0]),
            (AlarmState::Alarm, t0 + 20_000, vec![100.0]),
            (AlarmState::Ok, t0, vec![0.0]),
        ]
    );
    for id in [other.alarm_id, off.alarm_id] {
        assert_eq!(
            store.get_alarm(&s.p, &id).await.expect("get").alarm_state,
            AlarmState::InsufficientData
        );
    }
    // Windows of a monitor without rules cost nothing and say nothing.
    let g2 = gateway(store, &s.p, gateway_body()).await;
    let c2 = connection(store, &s.p, &g2, &s.cgw).await;
    let m2 = monitor(store, &s.p, &c2).await;
    assert_eq!(
        store.evaluate_windows(&[point(&m2, &s.p, t0, 0)]).await,
        Ok(vec![])
    );
    assert_eq!(store.evaluate_windows(&[]).await, Ok(vec![]));
}

pub(crate) async fn alarm_of_a_longer_period_sees_each_completed_bucket_once(store: &SqlStore) {
    let s = setup(store).await;
    let m = monitor(store, &s.p, &s.conn).await;
    let long = rule(&s.p, {
        let mut b = rule_body(&s.p, &s.conn.id, 1);
        b["condition"]["period"] = json!(300);
        b
    });
    store.create_alarm(&s.p, &long).await.expect("create");
    let raw = new_rule(store, &s.p, &s.conn.id, 1).await;

    let b = 1_699_999_800_000; // a multiple of 300 s
    // Bucket b: half the windows lost (average 50 %: breaches >= 50);
    // bucket b + 300 s: none lost; bucket b + 600 s: all lost, not complete.
    let mut pts = Vec::new();
    for k in 0..30 {
        pts.push(point(&m, &s.p, b + k * 10_000, if k < 15 { 0 } else { 10 }));
        pts.push(point(&m, &s.p, b + 300_000 + k * 10_000, 10));
    }
    pts.push(point(&m, &s.p, b + 600_000, 0));
    store.insert_points(&pts).await.expect("insert");

    assert!(store.roll_up(300, b + 300_000).await.expect("roll up") > 0);
    let shown = store.get_alarm(&s.p, &long.alarm_id).await.expect("get");
    assert_eq!(shown.alarm_state, AlarmState::Alarm);
    assert_eq!(shown.update_time, b);
    // The same bucket is not evaluated twice; the next completed one clears.
    assert_eq!(store.roll_up(300, b + 300_000).await, Ok(0));
    assert!(store.roll_up(300, b + 600_000).await.expect("roll up") > 0);
    assert_eq!(store.roll_up(300, b + 600_000).await, Ok(0));

    let (h, total) = store
        .list_alarm_history(&s.p, &all_history())
        .await
        .expect("history");
    assert_eq!(total, 2, "{h:?}");
    let got = transitions(&h);
    assert_eq!(
        got,
        vec![
            (AlarmState::Ok, b + 300_000, vec![0.0]),
            (AlarmState::Alarm, b, vec![50.0]),
        ]
    );
    assert!(h.iter().all(|x| x.alarm_id == long.alarm_id));
    // The raw-window rule is fed by the windows' writer, not the roll-up.
    assert_eq!(
        store
            .get_alarm(&s.p, &raw.alarm_id)
            .await
            .expect("get")
            .alarm_state,
        AlarmState::InsufficientData
    );
}

pub(crate) async fn alarm_of_a_longer_period_waits_two_periods_more_for_data(store: &SqlStore) {
    use domain::alarm::eval::{DATA_TIME_SAVED_EVERY_MS as SLACK, NO_DATA_MS, no_data_ms};
    let s = setup(store).await;
    let m = monitor(store, &s.p, &s.conn).await;
    let long = rule(&s.p, {
        let mut b = rule_body(&s.p, &s.conn.id, 1);
        b["condition"]["period"] = json!(3600);
        b
    });
    store.create_alarm(&s.p, &long).await.expect("create");
    // The next full hour, after the rule started watching.
    let b = (harness::now().timestamp_millis() / 3_600_000 + 1) * 3_600_000;
    let pts: Vec<_> = (0..360)
        .map(|k| point(&m, &s.p, b + k * 10_000, 10))
        .collect();
    store.insert_points(&pts).await.expect("insert");
    store.roll_up(3600, b + 3_600_000).await.expect("roll up");
    assert_eq!(
        store
            .get_alarm(&s.p, &long.alarm_id)
            .await
            .expect("get")
            .alarm_state,
        AlarmState::Ok
    );
    assert_eq!(no_data_ms(3600), NO_DATA_MS + 7_200_000);
    // Three hours after the bucket's start is not enough for an hourly rule.
    assert_eq!(store.expire_alarms(b + NO_DATA_MS).await, Ok(vec![]));
    assert_eq!(
        store.expire_alarms(b + no_data_ms(3600) + SLACK - 1).await,
        Ok(vec![])
    );
    let ev = store
        .expire_alarms(b + no_data_ms(3600) + SLACK)
        .await
        .expect("expire");
    assert_eq!(
        ev.iter()
            .map(|e| (e.rule.alarm_id, e.transition.map(|t| t.to)))
            .collect::<Vec<_>>(),
        vec![(long.alarm_id, Some(AlarmState::InsufficientData))]
    );
}

pub(crate) async fn alarm_history_filters_and_pages(store: &SqlStore) {
    let s = setup(store).await;
    let m = monitor(store, &s.p, &s.conn).await;
    let a = new_rule(store, &s.p, &s.conn.id, 1).await;
    let t0 = 1_700_000_000_000;
    // ok, alarm, ok, alarm: four records.
    let pts: Vec<_> = [10, 0, 10, 0]
        .iter()
        .enumerate()
        .map(|(i, rcv)| point(&m, &s.p, t0 + 10_000 * i as i64, *rcv))
        .collect();
    store.evaluate_windows(&pts).await.expect("evaluate");
    fn q(f: impl Fn(&mut HistoryQuery)) -> HistoryQuery {
        let mut h = all_history();
        f(&mut h);
        h
    }
    let count = |h: HistoryQuery| {
        let store = store.clone();
        let p = s.p.clone();
        async move { store.list_alarm_history(&p, &h).await.expect("history") }
    };
    assert_eq!(count(all_history()).await.1, 4);
    let alarms = count(q(|h| h.alarm_status = Some(AlarmState::Alarm))).await;
    assert_eq!(alarms.1, 2);
    assert!(alarms.0.iter().all(|x| x.alarm_status == AlarmState::Alarm));
    assert_eq!(count(q(|h| h.alarm_id = Some(a.alarm_id))).await.1, 4);
    assert_eq!(
        count(q(|h| h.alarm_id = Some(AlarmId::random()))).await.1,
        0
    );
    assert_eq!(
        count(q(|h| h.alarm_name = Some("vpn-loss".into()))).await.1,
        4
    );
    assert_eq!(count(q(|h| h.alarm_name = Some("x".into()))).await.1, 0);
    assert_eq!(count(q(|h| h.alarm_level = Some(2))).await.1, 4);
    assert_eq!(count(q(|h| h.alarm_level = Some(1))).await.1, 0);
    assert_eq!(
        count(q(|h| h.namespace = Some("SYS.VPN".into()))).await.1,
        4
    );
    assert_eq!(
        count(q(|h| h.namespace = Some("SYS.ECS".into()))).await.1,
        0
    );
    // from and to are inclusive.
    let range = count(q(|h| {
        h.from_ms = Some(t0 + 10_000);
        h.to_ms = Some(t0 + 20_000);
    }))
    .await;
    assert_eq!(
        range.0.iter().map(|x| x.trigger_time).collect::<Vec<_>>(),
        vec![t0 + 20_000, t0 + 10_000]
    );
    // Paging: offset and limit; the total ignores them.
    let page = count(q(|h| {
        h.offset = 1;
        h.limit = 2;
    }))
    .await;
    assert_eq!(page.1, 4);
    assert_eq!(
        page.0.iter().map(|x| x.trigger_time).collect::<Vec<_>>(),
        vec![t0 + 20_000, t0 + 10_000]
    );
    // History outlives its rule.
    store.delete_alarm(&s.p, &a.alarm_id).await.expect("delete");
    assert_eq!(count(all_history()).await.1, 4);
}

pub(crate) async fn alarm_without_data_for_three_hours_is_insufficient_data(store: &SqlStore) {
    use domain::alarm::eval::{DATA_TIME_SAVED_EVERY_MS, NO_DATA_MS};
    // Three hours, and at most the time the store may wait before writing
    // the time of the newest data.
    let due = NO_DATA_MS + DATA_TIME_SAVED_EVERY_MS;
    let s = setup(store).await;
    let m = monitor(store, &s.p, &s.conn).await;
    let r = new_rule(store, &s.p, &s.conn.id, 1).await;
    let off = new_rule(store, &s.p, &s.conn.id, 1).await;
    let t0 = harness::now().timestamp_millis() + 1000;
    store
        .evaluate_windows(&[point(&m, &s.p, t0, 0)])
        .await
        .expect("evaluate");
    store
        .set_alarm_enabled(&s.p, &off.alarm_id, false)
        .await
        .expect("disable");
    // A fresh rule is insufficient_data already: nothing to do for it.
    assert_eq!(store.expire_alarms(t0 + due - 1).await, Ok(vec![]));
    let ev = store.expire_alarms(t0 + due).await.expect("expire");
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0].rule.alarm_id, r.alarm_id);
    assert_eq!(ev[0].monitor_id, None);
    assert_eq!(
        ev[0].transition.map(|t| (t.from, t.to)),
        Some((AlarmState::Alarm, AlarmState::InsufficientData))
    );
    assert_eq!(ev[0].notice, None);
    let shown = store.get_alarm(&s.p, &r.alarm_id).await.expect("get");
    assert_eq!(shown.alarm_state, AlarmState::InsufficientData);
    assert_eq!(shown.update_time, t0 + due);
    // Once.
    assert_eq!(store.expire_alarms(t0 + 2 * due).await, Ok(vec![]));
    let (h, total) = store
        .list_alarm_history(&s.p, &all_history())
        .await
        .expect("history");
    assert_eq!(total, 3, "{h:?}");
    assert_eq!(h[0].alarm_status, AlarmState::InsufficientData);
    assert!(h[0].datapoints.is_empty());
    // The disabled rule was not touched.
    assert_eq!(
        store
            .get_alarm(&s.p, &off.alarm_id)
            .await
            .expect("get")
            .alarm_state,
        AlarmState::Alarm
    );
    // Data again: the rule leaves insufficient_data.
    let ev = store
        .evaluate_windows(&[point(&m, &s.p, t0 + due + 10_000, 10)])
        .await
        .expect("evaluate");
    assert_eq!(states(&ev), vec![(AlarmState::Ok, None)]);
}

pub(crate) async fn alarm_no_data_is_never_early_and_at_most_the_save_interval_late(
    store: &SqlStore,
) {
    use domain::alarm::eval::{DATA_TIME_SAVED_EVERY_MS as SLACK, NO_DATA_MS};
    let s = setup(store).await;
    let m = monitor(store, &s.p, &s.conn).await;
    let r = new_rule(store, &s.p, &s.conn.id, 2).await;
    let t0 = harness::now().timestamp_millis() + 1000;
    // ok at t0: written with the change (the memory after the batch, at
    // t0 + 10 s).
    let ev = store
        .evaluate_windows(&[point(&m, &s.p, t0, 10), point(&m, &s.p, t0 + 10_000, 10)])
        .await
        .expect("evaluate");
    assert_eq!(states(&ev), vec![(AlarmState::Ok, None)]);
    // Healthy windows for 12 minutes more, a batch each: nothing changes
    // but the time, which is written by the sweeps (every 4 minutes of
    // window time), not with each window. Without them the stored time
    // would be t0 + 10 s and the rule would expire 11 minutes early below.
    for k in 2..=72 {
        assert_eq!(
            store
                .evaluate_windows(&[point(&m, &s.p, t0 + k * 10_000, 10)])
                .await,
            Ok(vec![])
        );
    }
    let last = t0 + 720_000;
    // Never before 3 hours after the newest data.
    assert_eq!(store.expire_alarms(last + NO_DATA_MS - 1).await, Ok(vec![]));
    // At most the save interval after.
    let ev = store
        .expire_alarms(last + NO_DATA_MS + SLACK)
        .await
        .expect("expire");
    assert_eq!(
        ev.iter()
            .map(|e| (e.rule.alarm_id, e.transition.map(|t| t.to)))
            .collect::<Vec<_>>(),
        vec![(r.alarm_id, Some(AlarmState::InsufficientData))]
    );
    // Recorded once: the next check finds nothing to do.
    assert_eq!(
        store
            .expire_alarms(last + NO_DATA_MS + SLACK + 60_000)
            .await,
        Ok(vec![])
    );
}

pub(crate) async fn alarm_notices_go_into_the_outbox_with_the_state_change(store: &SqlStore) {
    let s = setup(store).await;
    let m = monitor(store, &s.p, &s.conn).await;
    let topic = domain::smn::create(
        &domain::smn::CreateTopic {
            name: "ops".into(),
            display_name: "ops".into(),
            enterprise_project_id: None,
        },
        "local-1",
        &s.p,
        harness::now(),
    )
    .expect("topic");
    store.create_topic(&s.p, &topic).await.expect("topic");
    let sub = domain::smn::new_subscription(
        &domain::smn::AddSubscription {
            protocol: "http".into(),
            endpoint: "http://127.0.0.1:9/hook".into(),
            remark: None,
        },
        &topic.topic_urn,
        &s.p,
    );
    store
        .add_subscription(&s.p, "ops", &sub, "tok")
        .await
        .expect("subscribe");
    store
        .confirm_subscription(&topic.topic_urn, "http://127.0.0.1:9/hook", "tok")
        .await
        .expect("confirm");
    let r = new_rule(store, &s.p, &s.conn.id, 2).await;
    let t0 = 1_700_000_000_000;
    // ok (no notice: insufficient_data -> ok), one lost window (no alarm yet).
    store
        .evaluate_windows(&[point(&m, &s.p, t0, 10), point(&m, &s.p, t0 + 10_000, 0)])
        .await
        .expect("evaluate");
    assert_eq!(notices(store, &s.p).await, vec![]);
    // The second lost window: alarm, one notice per confirmed subscription.
    store
        .evaluate_windows(&[point(&m, &s.p, t0 + 20_000, 0)])
        .await
        .expect("evaluate");
    let d = notices(store, &s.p).await;
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].subscription_urn, sub.subscription_urn);
    assert_eq!(d[0].topic_urn, topic.topic_urn);
    let subject = d[0].subject.clone().expect("subject");
    assert!(
        subject.starts_with("[Major] vpn-loss alarm: link_packet_loss_rate >= 50%"),
        "{subject}"
    );
    let rows = store
        .claim_deliveries(harness::now().timestamp_micros(), 60_000_000, 10)
        .await
        .expect("claim");
    let n = rows
        .iter()
        .find(|x| x.kind == domain::smn::NOTIFICATION)
        .expect("the notice");
    let msg: Value = serde_json::from_str(&n.message).expect("a JSON message");
    assert_eq!(msg["alarm_id"], r.alarm_id.to_string());
    assert_eq!(msg["alarm_status"], "alarm");
    assert_eq!(msg["previous_status"], "ok");
    assert_eq!(msg["current_value"], 100.0);
    assert_eq!(msg["time"], t0 + 20_000);
    assert_eq!(msg["monitor_id"], m.id.to_string());
    assert_eq!(msg["metric_name"], "link_packet_loss_rate");
    assert_eq!(msg["dimensions"][0]["value"], s.conn.id.to_string());
    assert_eq!(msg["condition"]["count"], 2);
    // Still lost: no repeat (suppress_duration 0). Back: one ok notice.
    store
        .evaluate_windows(&[
            point(&m, &s.p, t0 + 30_000, 0),
            point(&m, &s.p, t0 + 40_000, 10),
        ])
        .await
        .expect("evaluate");
    let d = notices(store, &s.p).await;
    assert_eq!(d.len(), 2, "{d:?}");
    assert!(
        d.iter()
            .any(|x| x.subject.as_deref().unwrap_or("").contains("vpn-loss ok: ")),
        "{d:?}"
    );
}

async fn notices(store: &SqlStore, p: &ProjectId) -> Vec<store::DeliveryView> {
    let mut v = store.list_deliveries(p, None, 100).await.expect("list");
    v.retain(|d| d.kind == domain::smn::NOTIFICATION);
    v
}

pub(crate) async fn rule_changes_on_another_node_reach_the_evaluating_one(db: &TestDb) {
    let (a, b) = two_nodes(db).await;
    let s = setup(&a).await;
    // A rule on a connection that has no monitor yet.
    let r = new_rule(&a, &s.p, &s.conn.id, 1).await;
    let g2 = gateway(&a, &s.p, gateway_body()).await;
    let c2 = connection(&a, &s.p, &g2, &s.cgw).await;
    let other = monitor(&a, &s.p, &c2).await;
    let t0 = 1_700_000_000_000;
    // Node a evaluates (and keeps the rules in memory) ...
    assert_eq!(
        a.evaluate_windows(&[point(&other, &s.p, t0, 10)]).await,
        Ok(vec![])
    );
    // ... node b creates the monitor of the rule's connection: a sees it.
    let m = monitor(&b, &s.p, &s.conn).await;
    let ev = a
        .evaluate_windows(&[point(&m, &s.p, t0 + 10_000, 0)])
        .await
        .expect("evaluate");
    assert_eq!(states(&ev), vec![(AlarmState::Alarm, Some(Notice::Alarm))]);
    // Node b disables the rule: a stops evaluating it.
    b.set_alarm_enabled(&s.p, &r.alarm_id, false)
        .await
        .expect("disable");
    assert_eq!(
        a.evaluate_windows(&[point(&m, &s.p, t0 + 20_000, 10)])
            .await,
        Ok(vec![])
    );
    // Enabled again with a new threshold: a evaluates the new condition.
    b.set_alarm_enabled(&s.p, &r.alarm_id, true)
        .await
        .expect("enable");
    let req: UpdateAlarm = serde_json::from_value(json!({"condition": {
        "comparison_operator": ">=", "count": 1, "filter": "average", "period": 1,
        "value": 100, "unit": "%"}}))
    .expect("body");
    b.update_alarm(&s.p, &r.alarm_id, &req)
        .await
        .expect("update");
    let ev = a
        .evaluate_windows(&[
            point(&m, &s.p, t0 + 30_000, 5),
            point(&m, &s.p, t0 + 40_000, 0),
        ])
        .await
        .expect("evaluate");
    // The update restarted the count, not what was notified: the alarm in
    // progress (notified) ends at 50 % with an ok notice; 100 % is a new
    // alarm, notified (suppress_duration 0).
    assert_eq!(
        states(&ev),
        vec![
            (AlarmState::Ok, Some(Notice::Ok)),
            (AlarmState::Alarm, Some(Notice::Alarm))
        ]
    );
    assert_eq!(
        b.get_alarm(&s.p, &r.alarm_id)
            .await
            .expect("get")
            .alarm_state,
        AlarmState::Alarm
    );
    // Node b deletes it: a says nothing more.
    b.delete_alarm(&s.p, &r.alarm_id).await.expect("delete");
    assert_eq!(
        a.evaluate_windows(&[point(&m, &s.p, t0 + 50_000, 10)])
            .await,
        Ok(vec![])
    );
}

pub(crate) async fn an_evaluation_from_a_stale_cache_writes_nothing_over_newer_memory(db: &TestDb) {
    let (a, b) = two_nodes(db).await;
    let s = setup(&a).await;
    let m = monitor(&a, &s.p, &s.conn).await;
    let r = new_rule(&a, &s.p, &s.conn.id, 3).await;
    let t0 = 1_700_000_000_000;
    // Both nodes know the rule, ok.
    let ev = a
        .evaluate_windows(&[point(&m, &s.p, t0, 10)])
        .await
        .expect("evaluate");
    assert_eq!(states(&ev), vec![(AlarmState::Ok, None)]);
    assert_eq!(
        b.evaluate_windows(&[point(&m, &s.p, t0 + 1_000, 10)]).await,
        Ok(vec![])
    );
    // The monitor moves to b: two breaches there (written: the count changed).
    assert_eq!(
        b.evaluate_windows(&[
            point(&m, &s.p, t0 + 10_000, 0),
            point(&m, &s.p, t0 + 20_000, 0)
        ])
        .await,
        Ok(vec![])
    );
    // Back on a. On PostgreSQL a's memory says no breach: its write of one
    // breach does not replace b's two, it reloads, and the next breach is
    // the third (one window later than a single node). On SQLite the two
    // "nodes" share one store and its memory: the third breach is this one.
    let mut ev = a
        .evaluate_windows(&[point(&m, &s.p, t0 + 30_000, 0)])
        .await
        .expect("evaluate");
    ev.extend(
        a.evaluate_windows(&[point(&m, &s.p, t0 + 40_000, 0)])
            .await
            .expect("evaluate"),
    );
    assert_eq!(states(&ev), vec![(AlarmState::Alarm, Some(Notice::Alarm))]);
    let raised = match a.backend() {
        store::Backend::Postgres => t0 + 40_000,
        store::Backend::Sqlite => t0 + 30_000,
    };
    let (h, _) = a
        .list_alarm_history(&s.p, &all_history())
        .await
        .expect("history");
    let got: Vec<(AlarmState, i64)> = h.iter().map(|x| (x.alarm_status, x.trigger_time)).collect();
    // Never a count restarted from a stale zero (that would be t0 + 50 s or
    // later), never two alarms.
    assert_eq!(got, vec![(AlarmState::Alarm, raised), (AlarmState::Ok, t0)]);
    assert_eq!(r.alarm_id, h[0].alarm_id);
}

pub(crate) async fn alarms_of_a_connection_and_their_summary_in_the_overview(store: &SqlStore) {
    let s = setup(store).await;
    let m = monitor(store, &s.p, &s.conn).await;
    let other = connection(store, &s.p, &s.gw, &s.cgw).await;
    let om = monitor(store, &s.p, &other).await;
    let (a, b) = (
        new_rule(store, &s.p, &s.conn.id, 1).await,
        new_rule(store, &s.p, &s.conn.id, 1).await,
    );
    let c = new_rule(store, &s.p, &other.id, 1).await;
    let watched = |rules: &[AlarmRule]| rules.iter().map(|r| r.alarm_id).collect::<Vec<_>>();
    let mine = store
        .connection_alarms(&s.p, &s.conn.id)
        .await
        .expect("list");
    assert_eq!(
        watched(&mine),
        vec![a.alarm_id, b.alarm_id],
        "in creation order"
    );
    assert_eq!(
        watched(&store.connection_alarms(&s.p, &other.id).await.unwrap()),
        vec![c.alarm_id]
    );
    assert_eq!(
        store
            .connection_alarms(&ProjectId::generate(), &s.conn.id)
            .await,
        Ok(vec![]),
        "another project's connection has none of ours"
    );

    let summary = |rows: &[store::OverviewRow], id: &MonitorId| {
        rows.iter()
            .find(|r| r.monitor_id == *id)
            .map(|r| (r.alarms, r.alarms.state()))
            .expect("a row")
    };
    let fresh = store.overview(&s.p, 0).await.unwrap();
    let none = store::AlarmSummary {
        rules: 2,
        enabled: 2,
        alarm: 0,
        insufficient_data: 2,
    };
    assert_eq!(summary(&fresh, &m.id), (none, Some("insufficient_data")));

    // A lost window raises both rules of the first connection, a clean one
    // clears the second's.
    store
        .evaluate_windows(&[point(&m, &s.p, 10_000, 0), point(&om, &s.p, 10_000, 10)])
        .await
        .expect("evaluate");
    store
        .set_alarm_enabled(&s.p, &b.alarm_id, false)
        .await
        .unwrap();
    let rows = store.overview(&s.p, 0).await.unwrap();
    assert_eq!(
        summary(&rows, &m.id),
        (
            store::AlarmSummary {
                rules: 2,
                enabled: 1,
                alarm: 1,
                insufficient_data: 0
            },
            Some("alarm")
        )
    );
    assert_eq!(summary(&rows, &om.id).1, Some("ok"));
    let states = store.connection_alarms(&s.p, &s.conn.id).await.unwrap();
    assert_eq!(
        states
            .iter()
            .map(|r| (r.alarm_state, r.alarm_enabled))
            .collect::<Vec<_>>(),
        vec![(AlarmState::Alarm, true), (AlarmState::Alarm, false)]
    );
    store
        .set_alarm_enabled(&s.p, &a.alarm_id, false)
        .await
        .unwrap();
    let rows = store.overview(&s.p, 0).await.unwrap();
    assert_eq!(summary(&rows, &m.id).1, Some("disabled"));
    store.delete_alarm(&s.p, &c.alarm_id).await.unwrap();
    let rows = store.overview(&s.p, 0).await.unwrap();
    assert_eq!(
        summary(&rows, &om.id),
        (store::AlarmSummary::default(), None)
    );
}

pub(crate) async fn swept_data_times_survive_a_restart_and_are_not_evaluated_twice(db: &TestDb) {
    use domain::alarm::eval::NO_DATA_MS;
    let store = db.open().await;
    let s = setup(&store).await;
    let m = monitor(&store, &s.p, &s.conn).await;
    let r = new_rule(&store, &s.p, &s.conn.id, 1).await;
    let t0 = 1_700_000_000_000;
    // ok with the first window, then 10 minutes of healthy windows: only
    // the time moves, and the sweeps write it.
    let ev = store
        .evaluate_windows(&[point(&m, &s.p, t0, 10)])
        .await
        .expect("evaluate");
    assert_eq!(states(&ev), vec![(AlarmState::Ok, None)]);
    for k in 1..=60 {
        assert_eq!(
            store
                .evaluate_windows(&[point(&m, &s.p, t0 + k * 10_000, 10)])
                .await,
            Ok(vec![])
        );
    }
    let last = t0 + 600_000;
    store.close().await;

    let store = db.open().await;
    // The check after the restart counts from the swept time, not from the
    // first window (which it would have passed 10 minutes ago).
    assert_eq!(
        store.expire_alarms(t0 + NO_DATA_MS + 360_000).await,
        Ok(vec![])
    );
    // A window that the sweep covered is not evaluated again: a lost one
    // there would be an alarm (count 1) ...
    let swept = (last / 240_000) * 240_000;
    assert_eq!(
        store
            .evaluate_windows(&[point(&m, &s.p, swept - 10_000, 0)])
            .await,
        Ok(vec![])
    );
    // ... and one after the newest is.
    let ev = store
        .evaluate_windows(&[point(&m, &s.p, last + 10_000, 0)])
        .await
        .expect("evaluate");
    assert_eq!(states(&ev), vec![(AlarmState::Alarm, Some(Notice::Alarm))]);
    assert_eq!(
        store
            .get_alarm(&s.p, &r.alarm_id)
            .await
            .map(|a| a.alarm_state),
        Ok(AlarmState::Alarm)
    );
    store.close().await;
}
