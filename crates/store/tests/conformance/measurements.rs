//! Measurements: raw window datapoints, rollups and retention.

use super::*;

pub(crate) async fn points_insert_list_prune(store: &SqlStore) {
    let s = setup(store).await;
    let p = &s.p;
    let m = monitor(store, p, &s.conn).await;
    let other_conn = connection(store, p, &s.gw, &s.cgw).await;
    let other = monitor(store, p, &other_conn).await;
    let t0 = 1_700_000_000_000;
    let pts = vec![
        point(&m, p, t0, 10),
        point(&m, p, t0 + 60_000, 7),
        point(&m, p, t0 + 120_000, 0),
    ];
    assert_eq!(store.insert_points(&[]).await, Ok(()));
    // Out of order, mixed with another monitor's points.
    store
        .insert_points(&[
            pts[2].clone(),
            point(&other, p, t0, 10),
            pts[0].clone(),
            pts[1].clone(),
        ])
        .await
        .unwrap();
    assert_eq!(
        store.list_points(p, &m.id, t0, t0 + 180_000).await,
        Ok(pts.clone())
    );
    assert_eq!(
        store.list_points(p, &m.id, t0 + 60_000, t0 + 120_000).await,
        Ok(vec![pts[1].clone()]),
        "from is inclusive, to exclusive"
    );
    assert_eq!(
        store
            .list_points(p, &m.id, t0 + 180_000, t0 + 240_000)
            .await,
        Ok(vec![])
    );

    // A point for a window already stored is ignored, the rest of the batch kept.
    let late = point(&m, p, t0 + 180_000, 10);
    store
        .insert_points(&[point(&m, p, t0, 3), late.clone()])
        .await
        .unwrap();
    let mut expected = pts.clone();
    expected.push(late.clone());
    assert_eq!(
        store.list_points(p, &m.id, t0, t0 + 240_000).await,
        Ok(expected)
    );

    assert_eq!(
        store.prune_points(t0 + 60_000).await,
        Ok(2),
        "one per monitor"
    );
    assert_eq!(store.prune_points(t0 + 60_000).await, Ok(0));
    assert_eq!(
        store.list_points(p, &m.id, 0, i64::MAX).await,
        Ok(vec![pts[1].clone(), pts[2].clone(), late])
    );
    assert_eq!(
        store.list_points(p, &other.id, 0, i64::MAX).await,
        Ok(vec![])
    );
}

/// Batches larger than one multi-row INSERT are split and all stored.
pub(crate) async fn points_insert_in_chunks(store: &SqlStore) {
    let s = setup(store).await;
    let p = &s.p;
    let m = monitor(store, p, &s.conn).await;
    let pts: Vec<_> = (0..150).map(|i| point(&m, p, i * 60_000, i % 11)).collect();
    store.insert_points(&pts).await.unwrap();
    assert_eq!(store.list_points(p, &m.id, 0, i64::MAX).await, Ok(pts));
    assert_eq!(store.prune_points(i64::MAX).await, Ok(150));
}

/// Raw points are keyed by 10 s time buckets: windows on and next to bucket
/// edges, ranges that start and end inside buckets, ranges wider than
/// anything stored, and deleting one monitor among others across many
/// buckets all answer exactly what a filter over the inserted points does.
pub(crate) async fn points_ranges_across_time_buckets(store: &SqlStore) {
    let s = setup(store).await;
    let p = &s.p;
    let m = monitor(store, p, &s.conn).await;
    let other_conn = connection(store, p, &s.gw, &s.cgw).await;
    let other = monitor(store, p, &other_conn).await;
    let t0: i64 = 1_700_000_000_000; // a multiple of 10 s
    let offsets: [i64; 10] = [
        0, 1, 9_999, 10_000, 10_001, 19_999, 25_000, 60_000, 3_600_000, 3_609_999,
    ];
    let mine: Vec<_> = offsets
        .iter()
        .map(|o| point(&m, p, t0 + o, (o % 7) + 1))
        .collect();
    let theirs: Vec<_> = offsets
        .iter()
        .map(|o| point(&other, p, t0 + o, 5))
        .collect();
    let mut all = mine.clone();
    all.extend(theirs.iter().cloned());
    store.insert_points(&all).await.unwrap();
    let ranges = [
        (0, i64::MAX),
        (i64::MIN, i64::MAX),
        (t0, t0 + 1),
        (t0 + 1, t0 + 10_000),
        (t0 + 9_999, t0 + 10_001),
        (t0 + 10_000, t0 + 10_000),
        (t0 + 5_000, t0 + 3_609_999),
        (t0 + 26_000, t0 + 59_999),
        (t0 + 3_609_999, i64::MAX),
        (t0 + 3_610_000, i64::MAX),
        (0, t0),
    ];
    for (from, to) in ranges {
        let expected: Vec<_> = mine
            .iter()
            .filter(|w| (from..to).contains(&w.window_start_ms))
            .cloned()
            .collect();
        assert_eq!(
            store.list_points(p, &m.id, from, to).await,
            Ok(expected),
            "range {from}..{to}"
        );
    }
    // Rollups are keyed by time the same way: each bucket of `mine` once,
    // whatever range around it is asked for.
    assert!(store.roll_up(300, t0 + 4_000_000).await.unwrap() > 0);
    for (period, from, to) in [
        (60, i64::MIN, i64::MAX),
        (60, t0 + 1, t0 + 60_001),
        (60, t0 + 60_000, t0 + 3_600_000),
        (300, 0, i64::MAX),
        (300, t0 + 299_999, t0 + 3_600_001),
    ] {
        let p_ms = period * 1000;
        let mut expected: Vec<(i64, i64)> = Vec::new();
        for w in &mine {
            let b = w.window_start_ms.div_euclid(p_ms) * p_ms;
            if !(from..to).contains(&b) {
                continue;
            }
            match expected.last_mut() {
                Some((last, n)) if *last == b => *n += 1,
                _ => expected.push((b, 1)),
            }
        }
        let got: Vec<(i64, i64)> = store
            .list_rollups(p, &m.id, period, from, to)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.bucket_ms, r.windows))
            .collect();
        assert_eq!(got, expected, "period {period}, range {from}..{to}");
    }
    for period in [0, -60, i64::MAX] {
        assert_eq!(
            store.list_rollups(p, &m.id, period, 0, i64::MAX).await,
            Ok(vec![]),
            "no bucket has period {period}"
        );
    }
    let their_rollups = store
        .list_rollups(p, &other.id, 60, 0, i64::MAX)
        .await
        .unwrap();
    assert_eq!(their_rollups.len(), 3, "minutes 0, 1 and 60");

    store.delete_monitor(p, &m.id).await.unwrap();
    assert_eq!(store.list_points(p, &m.id, 0, i64::MAX).await, Ok(vec![]));
    for period in [60, 300] {
        assert_eq!(
            store.list_rollups(p, &m.id, period, 0, i64::MAX).await,
            Ok(vec![])
        );
    }
    assert_eq!(
        store.list_points(p, &other.id, 0, i64::MAX).await,
        Ok(theirs.clone()),
        "another monitor's points in the same buckets stay"
    );
    assert_eq!(
        store.list_rollups(p, &other.id, 60, 0, i64::MAX).await,
        Ok(their_rollups)
    );
    // Retention cuts inside a bucket: the windows before the cut go.
    assert_eq!(store.prune_points(t0 + 10_001).await, Ok(4));
    assert_eq!(
        store.list_points(p, &other.id, 0, i64::MAX).await,
        Ok(theirs[4..].to_vec())
    );
}

/// Rollups: exact count/sum/sum-of-squares/min/max per bucket, each
/// complete bucket rolled up once, scoped by project, pruned by age and
/// deleted with their monitor.
pub(crate) async fn rollups_aggregate_each_window_once(store: &SqlStore) {
    let s = setup(store).await;
    let p = &s.p;
    let m = monitor(store, p, &s.conn).await;
    let q = &ProjectId::generate();
    let gq = gateway(store, q, gateway_body()).await;
    let cq = cgw(store, q).await;
    let connq = connection(store, q, &gq, &cq).await;
    let mq = monitor(store, q, &connq).await;

    // Nothing to roll up yet.
    assert_eq!(store.roll_up(60, 1_700_000_000_000).await, Ok(0));

    let b = 1_699_999_980_000; // a multiple of 60 s
    store
        .insert_points(&[
            point(&m, p, b, 10),
            point(&m, p, b + 20_000, 5),
            point(&m, p, b + 40_000, 0),
            point(&m, p, b + 60_000, 0),
            point(&m, p, b + 130_000, 10),
            point(&mq, q, b + 10_000, 10),
        ])
        .await
        .unwrap();

    // Buckets b and b+60 s are complete at b+150 s; b+120 s is not.
    assert_eq!(store.roll_up(60, b + 150_000).await, Ok(3));
    assert_eq!(store.roll_up(60, b + 150_000).await, Ok(0), "once only");
    let agg = |n, sum, sumsq, min: Option<f64>, max: Option<f64>| Agg {
        n,
        sum,
        sumsq,
        min,
        max,
    };
    let first = Rollup {
        monitor_id: m.id,
        period: 60,
        bucket_ms: b,
        windows: 3,
        sent: 30,
        received: 15,
        // rtt_avg 1.5 and rtt_max 3.75 in the two windows with replies.
        latency: agg(2, 3.0, 4.5, Some(1.5), Some(1.5)),
        max_latency: agg(2, 7.5, 28.125, Some(3.75), Some(3.75)),
        // loss 0, 50 and 100 %.
        loss: agg(3, 150.0, 12_500.0, Some(0.0), Some(100.0)),
    };
    let second = Rollup {
        bucket_ms: b + 60_000,
        windows: 1,
        sent: 10,
        received: 0,
        latency: Agg::default(),
        max_latency: Agg::default(),
        loss: agg(1, 100.0, 10_000.0, Some(100.0), Some(100.0)),
        ..first.clone()
    };
    assert_eq!(
        store.list_rollups(p, &m.id, 60, b, b + 600_000).await,
        Ok(vec![first.clone(), second.clone()])
    );
    assert_eq!(first.latency.average(), Some(1.5));
    assert_eq!(first.loss.average(), Some(50.0));
    assert_eq!(second.latency.average(), None);

    assert_eq!(store.roll_up(60, b + 180_000).await, Ok(1));
    let third = Rollup {
        bucket_ms: b + 120_000,
        windows: 1,
        sent: 10,
        received: 10,
        latency: agg(1, 1.5, 2.25, Some(1.5), Some(1.5)),
        max_latency: agg(1, 3.75, 14.0625, Some(3.75), Some(3.75)),
        loss: agg(1, 0.0, 0.0, Some(0.0), Some(0.0)),
        ..first.clone()
    };
    assert_eq!(
        store
            .list_rollups(p, &m.id, 60, b + 60_000, b + 180_000)
            .await,
        Ok(vec![second.clone(), third.clone()]),
        "from is inclusive, to exclusive"
    );
    assert_eq!(
        store.list_rollups(p, &m.id, 300, 0, i64::MAX).await,
        Ok(vec![])
    );
    assert_eq!(
        store.list_rollups(q, &m.id, 60, 0, i64::MAX).await,
        Ok(vec![]),
        "another project's monitor"
    );
    let theirs = store
        .list_rollups(q, &mq.id, 60, 0, i64::MAX)
        .await
        .unwrap();
    assert_eq!(ids(&theirs, |r| &r.monitor_id), vec![mq.id]);

    assert_eq!(store.prune_rollups(60, b + 60_000).await, Ok(2));
    assert_eq!(
        store.list_rollups(p, &m.id, 60, 0, i64::MAX).await,
        Ok(vec![second, third])
    );
    store.delete_monitor(p, &m.id).await.unwrap();
    assert_eq!(
        store.list_rollups(p, &m.id, 60, 0, i64::MAX).await,
        Ok(vec![])
    );
    assert_eq!(store.prune_rollups(60, i64::MAX).await, Ok(0));
}

/// Periods above 60 s are rolled from the period below; what they hold must
/// equal the aggregate of the raw windows. Values are multiples of 1/8, so
/// every sum is exact in any order.
pub(crate) async fn longer_periods_roll_up_from_shorter_ones_exactly(store: &SqlStore) {
    let s = setup(store).await;
    let p = &s.p;
    let m = monitor(store, p, &s.conn).await;
    let t0: i64 = 1_416_667 * 1_200_000;
    let pts: Vec<WindowPoint> = (0..240i64)
        .map(|i| {
            let received = (i * 7) % 11;
            let up = received > 0;
            let avg = 1.0 + (i % 7) as f64 * 0.125;
            WindowPoint {
                monitor_id: m.id,
                project_id: p.clone(),
                window_start_ms: t0 + i * 10_000,
                sent: 10,
                received: received.min(10),
                loss_pct: 100.0 - 10.0 * received.min(10) as f64,
                rtt_min_ms: up.then_some(avg - 0.5),
                rtt_avg_ms: up.then_some(avg),
                rtt_max_ms: up.then_some(avg + 0.5 * (i % 3) as f64),
                jitter_ms: up.then_some(0.25),
            }
        })
        .collect();
    store.insert_points(&pts).await.unwrap();
    // Asking for the 1200 s level rolls the levels below it first.
    assert_eq!(store.roll_up(1200, t0 + 2_400_000).await, Ok(2));
    assert_eq!(
        store.roll_up(300, t0 + 2_400_000).await,
        Ok(0),
        "already rolled"
    );
    let agg_of = |vals: Vec<f64>| Agg {
        n: vals.len() as i64,
        sum: vals.iter().sum(),
        sumsq: vals.iter().map(|v| v * v).sum(),
        min: vals.iter().copied().reduce(f64::min),
        max: vals.iter().copied().reduce(f64::max),
    };
    for period in [60i64, 300, 1200] {
        let p_ms = period * 1000;
        let expected: Vec<Rollup> = (0..2_400_000 / p_ms)
            .map(|k| {
                let bucket_ms = t0 + k * p_ms;
                let inside: Vec<&WindowPoint> = pts
                    .iter()
                    .filter(|w| (bucket_ms..bucket_ms + p_ms).contains(&w.window_start_ms))
                    .collect();
                Rollup {
                    monitor_id: m.id,
                    period,
                    bucket_ms,
                    windows: inside.len() as i64,
                    sent: inside.iter().map(|w| w.sent).sum(),
                    received: inside.iter().map(|w| w.received).sum(),
                    latency: agg_of(inside.iter().filter_map(|w| w.rtt_avg_ms).collect()),
                    max_latency: agg_of(inside.iter().filter_map(|w| w.rtt_max_ms).collect()),
                    loss: agg_of(inside.iter().map(|w| w.loss_pct).collect()),
                }
            })
            .collect();
        assert_eq!(
            store.list_rollups(p, &m.id, period, 0, i64::MAX).await,
            Ok(expected),
            "period {period}"
        );
    }
}

// ---------- persistence ----------

pub(crate) async fn data_survives_reopen(db: &TestDb) {
    let store = db.open().await;
    let d = store.create_domain("acme").await.unwrap();
    let u = store.create_user(&d.id, "alice", "h").await.unwrap();
    assert_eq!(
        store.meta_get_or_init("master_key", "first").await,
        Ok("first".into())
    );
    let s = setup(&store).await;
    let m = monitor(&store, &s.p, &s.conn).await;
    store
        .set_monitor_status(&m.id, status::ACTIVE)
        .await
        .unwrap();
    let link = LinkState {
        up: Some(true),
        changed_us: Some(42),
        note: None,
    };
    store.set_link_state(&m.id, &link).await.unwrap();
    let pt = point(&m, &s.p, 60_000, 8);
    store
        .insert_points(std::slice::from_ref(&pt))
        .await
        .unwrap();
    let pool = pool_rows(&store).await.unwrap();
    store.close().await;

    let store = db.open().await;
    assert_eq!(store.find_domain("acme").await, Ok(Some(d.clone())));
    assert_eq!(store.find_user(&d.id, "alice").await, Ok(Some(u)));
    assert_eq!(
        store.meta_get_or_init("master_key", "second").await,
        Ok("first".into())
    );
    assert_eq!(store.add_pool(&pool_entries()).await, Ok(0));
    assert_eq!(pool_rows(&store).await, Ok(pool));
    let mut gw = s.gw.clone();
    gw.used_connection_number = 1;
    gw.used_connection_group = 1;
    assert_eq!(store.get_gateway(&s.p, &s.gw.id).await, Ok(gw));
    assert_eq!(store.get_cgw(&s.p, &s.cgw.id).await, Ok(s.cgw.clone()));
    assert_eq!(
        store.get_connection(&s.p, &s.conn.id).await,
        Ok(VpnConnection {
            connection_monitor_id: Some(m.id),
            ..s.conn.clone()
        })
    );
    assert_eq!(
        store.get_monitor(&s.p, &m.id).await,
        Ok(ConnectionMonitor {
            status: status::ACTIVE.into(),
            ..m.clone()
        })
    );
    assert_eq!(store.get_link_state(&s.p, &m.id).await, Ok(link));
    assert_eq!(
        store.list_points(&s.p, &m.id, 0, i64::MAX).await,
        Ok(vec![pt])
    );
    // New resources sort after the old ones.
    let later = cgw(&store, &s.p).await;
    let l = store.list_cgws(&s.p, None, Page::default()).await.unwrap();
    assert_eq!(l.items, vec![s.cgw, later]);
    store.close().await;
}

/// Retention by level with Cloud Eye's schedule, at an explicit time: for
/// every level, data older than the level's age is gone and younger data
/// stays (both sides present for every level, so the case proves both).
pub(crate) async fn retention_prunes_each_level_at_its_own_age(store: &SqlStore) {
    const H: i64 = 3_600_000;
    let s = setup(store).await;
    let p = &s.p;
    let m = monitor(store, p, &s.conn).await;
    let retention = Retention::cloud_eye();
    let now: i64 = 1_800_000_123_456;
    // Around each level's age, 36 h either side (more than a 1-day bucket),
    // and some recent windows.
    let mut times: Vec<i64> = vec![now - H, now - 30_000];
    for (_, keep) in retention.levels() {
        let keep = keep.as_millis() as i64;
        times.extend([now - keep - 36 * H, now - keep + 36 * H]);
    }
    times.sort_unstable();
    times.dedup();
    let points: Vec<_> = times.iter().map(|&t| point(&m, p, t, 10)).collect();
    store.insert_points(&points).await.unwrap();
    assert!(store.roll_up(86_400, now).await.unwrap() > 0);

    let outcome = store.apply_retention(&retention, now).await;
    assert_eq!(outcome.len(), Level::ALL.len());
    for (level, deleted) in &outcome {
        assert!(
            matches!(deleted, Ok(Pruned { rows, partitions: 0 }) if *rows > 0),
            "{level}: {deleted:?}, want some rows deleted"
        );
    }

    let cut = |level| now - retention.keep(level).expect("a level").as_millis() as i64;
    let kept_points: Vec<_> = points
        .iter()
        .filter(|pt| pt.window_start_ms >= cut(Level::Raw))
        .cloned()
        .collect();
    assert_eq!(kept_points.len(), 3, "two recent, one inside 2 days");
    assert_eq!(
        store.list_points(p, &m.id, 0, i64::MAX).await,
        Ok(kept_points)
    );
    for period in store::ROLLUP_PERIODS {
        let p_ms = period * 1000;
        // The buckets rolled up (complete by `now`) and young enough.
        let mut want: Vec<i64> = times
            .iter()
            .map(|t| t.div_euclid(p_ms) * p_ms)
            .filter(|&b| b + p_ms <= now && b >= cut(Level::Rollup(period)))
            .collect();
        want.dedup();
        let old = times
            .iter()
            .map(|t| t.div_euclid(p_ms) * p_ms)
            .filter(|&b| b < cut(Level::Rollup(period)))
            .count();
        assert!(
            !want.is_empty() && old > 0,
            "{period}: both sides of the age"
        );
        let got = store
            .list_rollups(p, &m.id, period, 0, i64::MAX)
            .await
            .unwrap();
        assert_eq!(
            got.iter().map(|r| r.bucket_ms).collect::<Vec<_>>(),
            want,
            "period {period}"
        );
    }
    // Applying it again finds nothing more to delete.
    for (level, deleted) in store.apply_retention(&retention, now).await {
        assert_eq!(deleted, Ok(Pruned::default()), "{level}");
    }
}

/// Retention never deletes what the next level has not been rolled up from:
/// before any roll-up, old raw windows stay; once rolled up, they go.
pub(crate) async fn retention_keeps_what_is_not_rolled_up_yet(store: &SqlStore) {
    let s = setup(store).await;
    let p = &s.p;
    let m = monitor(store, p, &s.conn).await;
    let now: i64 = 1_800_000_000_000;
    let old = point(&m, p, now - 3 * 86_400_000, 10);
    store
        .insert_points(std::slice::from_ref(&old))
        .await
        .unwrap();
    let retention = Retention::cloud_eye();
    let outcome = store.apply_retention(&retention, now).await;
    assert!(
        outcome.iter().all(|(_, n)| *n == Ok(Pruned::default())),
        "{outcome:?}"
    );
    assert_eq!(
        store.list_points(p, &m.id, 0, i64::MAX).await,
        Ok(vec![old.clone()])
    );
    // Rolled up to 60 s only: the raw window goes, its 60 s rollup stays
    // (3 days is past the 60 s level's 2 days, but 300 s is not rolled yet).
    store.roll_up(60, now).await.unwrap();
    let outcome = store.apply_retention(&retention, now).await;
    let rows = |rows| {
        Ok(Pruned {
            rows,
            partitions: 0,
        })
    };
    assert_eq!(outcome[0], (Level::Raw, rows(1)));
    assert_eq!(outcome[1], (Level::Rollup(60), rows(0)));
    assert_eq!(store.list_points(p, &m.id, 0, i64::MAX).await, Ok(vec![]));
    assert_eq!(
        store
            .list_rollups(p, &m.id, 60, 0, i64::MAX)
            .await
            .map(|r| r.len()),
        Ok(1)
    );
}

/// Pruning deletes in bounded steps: more rows than one step, of several
/// monitors, cut inside a 10 s bucket, all counted and exactly the old ones.
pub(crate) async fn prune_in_bounded_steps_deletes_exactly_the_old_rows(store: &SqlStore) {
    let s = setup(store).await;
    let p = &s.p;
    let a = monitor(store, p, &s.conn).await;
    let other_conn = connection(store, p, &s.gw, &s.cgw).await;
    let b = monitor(store, p, &other_conn).await;
    let t0: i64 = 1_700_000_000_000;
    // 1 s windows: ten per monitor in each 10 s bucket.
    let mut points = Vec::new();
    for i in 0..5_000 {
        points.push(point(&a, p, t0 + i * 1000, 10));
        points.push(point(&b, p, t0 + i * 1000, 5));
    }
    store.insert_points(&points).await.unwrap();
    let before = t0 + 3_333_500; // inside a bucket: windows 0..=3333 go
    assert_eq!(store.prune_points(before).await, Ok(2 * 3_334));
    for m in [&a, &b] {
        let left = store.list_points(p, &m.id, 0, i64::MAX).await.unwrap();
        assert_eq!(left.len(), 5_000 - 3_334);
        assert_eq!(left[0].window_start_ms, t0 + 3_334_000);
    }
    assert_eq!(store.prune_points(before).await, Ok(0));
    assert_eq!(store.prune_points(i64::MAX).await, Ok(2 * 1_666));
}

/// The time partitions of one parent table on PostgreSQL (first ms of
/// each, in order), read from the catalog.
async fn pg_partitions(url: &str, parent: &str) -> Vec<i64> {
    use sqlx::{Connection, Row};
    let mut c = sqlx::PgConnection::connect(url).await.expect("connect");
    let rows = sqlx::query(
        "SELECT c.relname::text AS name FROM pg_inherits i \
         JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent \
         WHERE p.relname = $1",
    )
    .bind(parent)
    .fetch_all(&mut c)
    .await
    .expect("list partitions");
    c.close().await.ok();
    let mut los: Vec<i64> = rows
        .iter()
        .filter_map(|r| {
            let name: String = r.get("name");
            name.strip_prefix(&format!("{parent}_"))?.parse().ok()
        })
        .collect();
    los.sort_unstable();
    los
}

/// Rows of the default partition of `parent` on PostgreSQL.
async fn pg_default_rows(url: &str, parent: &str) -> i64 {
    use sqlx::{AssertSqlSafe, Connection, Row};
    let mut c = sqlx::PgConnection::connect(url).await.expect("connect");
    let n: i64 = sqlx::query(AssertSqlSafe(format!(
        "SELECT COUNT(*) AS n FROM {parent}_default"
    )))
    .fetch_one(&mut c)
    .await
    .expect("count")
    .get("n");
    c.close().await.ok();
    n
}

/// On PostgreSQL the retention job creates each level's time partitions
/// ahead of time (the current one, the one before and the next), moving
/// rows the default partition holds for their range into them, and
/// retention drops them whole once they are older than the level's age.
/// On SQLite there is nothing to create and retention deletes rows.
pub(crate) async fn partitions_are_created_ahead_and_dropped_whole(db: &TestDb) {
    const H: i64 = 3_600_000;
    let store = db.open().await;
    let s = setup(&store).await;
    let p = &s.p;
    let m = monitor(&store, p, &s.conn).await;
    let retention = Retention::cloud_eye();
    let now: i64 = 1_800_000_000_000 + 5 * H + 123; // not on a partition edge
    // Written before any partition exists: the default partition takes it.
    let early = point(&m, p, now - 60_000, 10);
    store
        .insert_points(std::slice::from_ref(&early))
        .await
        .unwrap();
    let created = store.prepare_partitions(&retention, now).await.unwrap();
    let Some(url) = db.postgres_url() else {
        assert_eq!(created, 0, "SQLite has no partitions");
        store.roll_up(86_400, now + 3 * 24 * H).await.unwrap();
        let outcome = store.apply_retention(&retention, now + 3 * 24 * H).await;
        assert_eq!(
            outcome[0],
            (
                Level::Raw,
                Ok(Pruned {
                    rows: 1,
                    partitions: 0
                })
            )
        );
        store.close().await;
        return;
    };
    // Raw windows: 6 h partitions from the one an hour ago to the next one.
    let six = 6 * H;
    let floor = |t: i64, w: i64| t.div_euclid(w) * w;
    let raw: Vec<i64> = (floor(now - H, six)..=floor(now, six) + six)
        .step_by(six as usize)
        .collect();
    assert_eq!(pg_partitions(url, "monitor_points").await, raw);
    assert!(raw[raw.len() - 1] > now, "the next partition exists ahead");
    // Daily rollups: 30-day partitions, from the one holding yesterday's bucket.
    let month = 30 * 24 * H;
    let daily: Vec<i64> = (floor(now - 24 * H - H, month)..=floor(now, month) + month)
        .step_by(month as usize)
        .collect();
    assert_eq!(pg_partitions(url, "monitor_rollups_p86400").await, daily);
    let all_levels: usize = Level::ALL.len();
    assert!(created as usize >= 2 * all_levels, "{created}");
    // The early window moved out of the default partition, and reads see it.
    assert_eq!(pg_default_rows(url, "monitor_points").await, 0);
    assert_eq!(
        store.list_points(p, &m.id, 0, i64::MAX).await,
        Ok(vec![early.clone()])
    );
    assert_eq!(store.prepare_partitions(&retention, now).await, Ok(0));

    // Three days on (and rolled up): the raw and 60 s partitions are all
    // older than 2 days and go whole; the 300 s ones (10 days) stay.
    let later = now + 3 * 24 * H;
    store.roll_up(86_400, later).await.unwrap();
    let outcome = store.apply_retention(&retention, later).await;
    assert_eq!(
        outcome[0],
        (
            Level::Raw,
            Ok(Pruned {
                rows: 0,
                partitions: raw.len() as u64
            })
        )
    );
    assert!(
        matches!(outcome[1], (Level::Rollup(60), Ok(Pruned { partitions, .. })) if partitions > 0)
    );
    assert_eq!(
        pg_partitions(url, "monitor_points").await,
        Vec::<i64>::new()
    );
    assert_eq!(
        pg_partitions(url, "monitor_rollups_p60").await,
        Vec::<i64>::new()
    );
    assert!(!pg_partitions(url, "monitor_rollups_p300").await.is_empty());
    assert_eq!(store.list_points(p, &m.id, 0, i64::MAX).await, Ok(vec![]));
    assert_eq!(
        store
            .list_rollups(p, &m.id, 300, 0, i64::MAX)
            .await
            .map(|r| r.len()),
        Ok(1),
        "the 300 s rollup of the window is kept"
    );
    store.close().await;
}

/// PostgreSQL's migration to partitioned tables keeps the measurements
/// stored before it (they land in the default partitions), and creating the
/// time partitions later moves them out of the default. SQLite has no such
/// migration (nothing to check there).
pub(crate) async fn partitioning_migration_keeps_existing_measurements(db: &TestDb) {
    use sqlx::AssertSqlSafe;
    let Some(url) = db.postgres_url() else {
        return;
    };
    // The schema as it was before partitioning (migrations up to 0004).
    let c = sqlx::PgPool::connect(url).await.expect("connect");
    sqlx::migrate!("./migrations/postgres")
        .run_to(4, &c)
        .await
        .expect("migrate to 0004");
    let (m, p): (MonitorId, ProjectId) = (id(), ProjectId::generate());
    let t: i64 = 1_800_000_000_000;
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO monitor_points (bucket_ms, monitor_id, project_id, window_start_ms, sent, received, \
         loss_pct, rtt_min_ms, rtt_avg_ms, rtt_max_ms, jitter_ms) \
         VALUES ({t}, '{m}', '{p}', {t}, 10, 10, 0, 0.125, 1.5, 3.75, 0.625)",
        p = p.as_str()
    )))
    .execute(&c)
    .await
    .expect("insert a point");
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO monitor_rollups (period, bucket_ms, monitor_id, project_id, windows, sent, received, \
         lat_n, lat_sum, lat_sumsq, lat_min, lat_max, max_sum, max_sumsq, max_min, max_max, \
         loss_sum, loss_sumsq, loss_min, loss_max) \
         VALUES (300, {t}, '{m}', '{p}', 1, 10, 10, 1, 1.5, 2.25, 1.5, 1.5, 3.75, 14.0625, 3.75, 3.75, 0, 0, 0, 0)",
        p = p.as_str()
    )))
    .execute(&c)
    .await
    .expect("insert a rollup");
    c.close().await;

    let store = db.open().await;
    let want_point = WindowPoint {
        monitor_id: m,
        project_id: p.clone(),
        window_start_ms: t,
        sent: 10,
        received: 10,
        loss_pct: 0.0,
        rtt_min_ms: Some(0.125),
        rtt_avg_ms: Some(1.5),
        rtt_max_ms: Some(3.75),
        jitter_ms: Some(0.625),
    };
    assert_eq!(
        store.list_points(&p, &m, 0, i64::MAX).await,
        Ok(vec![want_point.clone()])
    );
    let rollups = |s: &SqlStore| {
        let (s, p) = (s.clone(), p.clone());
        async move {
            s.list_rollups(&p, &m, 300, 0, i64::MAX).await.map(|r| {
                r.iter()
                    .map(|r| (r.bucket_ms, r.windows))
                    .collect::<Vec<_>>()
            })
        }
    };
    assert_eq!(rollups(&store).await, Ok(vec![(t, 1)]));
    assert_eq!(pg_default_rows(url, "monitor_points").await, 1);
    assert_eq!(pg_default_rows(url, "monitor_rollups_p300").await, 1);
    // The partitions for that time take the rows over.
    let created = store
        .prepare_partitions(&Retention::cloud_eye(), t + 60_000)
        .await
        .unwrap();
    assert!(created > 0);
    assert_eq!(pg_default_rows(url, "monitor_points").await, 0);
    assert_eq!(pg_default_rows(url, "monitor_rollups_p300").await, 0);
    assert_eq!(
        store.list_points(&p, &m, 0, i64::MAX).await,
        Ok(vec![want_point])
    );
    assert_eq!(rollups(&store).await, Ok(vec![(t, 1)]));
    store.close().await;
}
