//! SMN delivery: confirmations, the outbox and its attempts.

use super::*;
use domain::smn::{self, Attempt, CreateTopic, OutMessage, Outcome, Topic};

fn new_topic(p: &ProjectId, name: &str) -> Topic {
    smn::create(
        &CreateTopic {
            name: name.into(),
            display_name: name.into(),
            enterprise_project_id: None,
        },
        "local-1",
        p,
        harness::now(),
    )
    .expect("a valid topic")
}

fn sub(p: &ProjectId, t: &Topic, endpoint: &str) -> domain::smn::Subscription {
    smn::new_subscription(
        &smn::AddSubscription {
            protocol: "http".into(),
            endpoint: endpoint.into(),
            remark: None,
        },
        &t.topic_urn,
        p,
    )
}

fn note(t: &Topic, text: &str) -> OutMessage {
    note_at(t, text, now_us())
}

/// A message created (and so due) at `now`: a case that claims at a time it
/// read earlier must not depend on the shared suite clock standing still.
fn note_at(t: &Topic, text: &str, now: i64) -> OutMessage {
    OutMessage {
        kind: smn::NOTIFICATION,
        topic_urn: t.topic_urn.clone(),
        message_id: smn::message_id(),
        subject: Some("s".into()),
        message: text.into(),
        https_message: None,
        created_us: now,
        expires_us: now + 3_600_000_000,
        url_path: None,
    }
}

fn now_us() -> i64 {
    harness::now().timestamp_micros()
}

fn ok_attempt(at: i64) -> Attempt {
    Attempt {
        at_us: at,
        duration_us: 1000,
        http_status: Some(200),
        error: None,
    }
}

fn failed_attempt(at: i64) -> Attempt {
    Attempt {
        at_us: at,
        duration_us: 1000,
        http_status: Some(503),
        error: Some("the endpoint answered 503".into()),
    }
}

pub(crate) async fn outbox_confirms_with_the_token_and_publishes_to_confirmed_only(
    store: &SqlStore,
) {
    let p = ProjectId::generate();
    let t = new_topic(&p, "ops");
    store.create_topic(&p, &t).await.expect("topic");
    let a = sub(&p, &t, "http://127.0.0.1:9/a");
    let b = sub(&p, &t, "http://127.0.0.1:9/b");
    store
        .add_subscription(&p, "ops", &a, "token-a")
        .await
        .expect("add");
    harness::advance_ms(1);
    store
        .add_subscription(&p, "ops", &b, "token-b")
        .await
        .expect("add");
    // Adding one again sends no second confirmation.
    store
        .add_subscription(&p, "ops", &a, "token-x")
        .await
        .expect("add again");
    let now = now_us();
    let rows = store
        .claim_deliveries(now, 60_000_000, 10)
        .await
        .expect("claim");
    assert_eq!(rows.len(), 2, "{rows:?}");
    let ca = rows
        .iter()
        .find(|d| d.subscription_urn == a.subscription_urn)
        .expect("a's confirmation");
    assert_eq!(ca.kind, smn::CONFIRMATION);
    assert_eq!(ca.endpoint, "http://127.0.0.1:9/a");
    assert_eq!(
        ca.url_path,
        smn::subscribe_path(&t.topic_urn, "http://127.0.0.1:9/a", "token-a")
    );
    assert!(ca.message.contains(&t.topic_urn), "{}", ca.message);
    // Leased: not claimed again until the lease runs out.
    assert_eq!(
        store.claim_deliveries(now, 60_000_000, 10).await,
        Ok(vec![])
    );
    assert_eq!(
        store
            .claim_deliveries(now + 60_000_001, 60_000_000, 10)
            .await
            .map(|r| r.len()),
        Ok(2)
    );

    // A wrong token, endpoint or topic confirms nothing.
    for (topic, ep, tok) in [
        (t.topic_urn.as_str(), "http://127.0.0.1:9/a", "token-b"),
        (t.topic_urn.as_str(), "http://127.0.0.1:9/b", "token-a"),
        (t.topic_urn.as_str(), "http://127.0.0.1:9/a", ""),
        ("urn:smn:local-1:x:ops", "http://127.0.0.1:9/a", "token-a"),
    ] {
        assert_eq!(
            store.confirm_subscription(topic, ep, tok).await,
            Err(DomainError::NotFound),
            "{topic} {ep} {tok}"
        );
    }
    // Nothing is confirmed: a publish reaches no one.
    assert_eq!(store.publish(&p, "ops", &note(&t, "m0")).await, Ok(0));
    let confirmed = store
        .confirm_subscription(&t.topic_urn, "http://127.0.0.1:9/a", "token-a")
        .await
        .expect("confirm");
    assert_eq!(confirmed.status, smn::CONFIRMED);
    // Twice is fine.
    assert!(
        store
            .confirm_subscription(&t.topic_urn, "http://127.0.0.1:9/a", "token-a")
            .await
            .is_ok()
    );
    let (listed, _) = store
        .list_subscriptions(&p, Some("ops"), 0, 100)
        .await
        .expect("list");
    let status: Vec<i64> = listed.iter().map(|s| s.status).collect();
    assert_eq!(status, vec![1, 0]);

    let m = note(&t, "m1");
    assert_eq!(store.publish(&p, "ops", &m).await, Ok(1));
    assert_eq!(
        store.publish(&p, "none", &note(&t, "x")).await,
        Err(DomainError::NotFound)
    );
    let views = store
        .list_deliveries(&p, Some(&m.message_id), 10)
        .await
        .expect("list");
    assert_eq!(views.len(), 1);
    assert_eq!(views[0].subscription_urn, a.subscription_urn);
    assert_eq!(views[0].state, "pending");
    // Another project sees none of it.
    let q = ProjectId::generate();
    assert_eq!(store.list_deliveries(&q, None, 10).await, Ok(vec![]));
    assert_eq!(
        store.get_delivery(&q, &views[0].id).await.map(|_| ()),
        Err(DomainError::NotFound)
    );
    let _ = store.release_delivery_leases().await.expect("release");
    assert_eq!(
        store.outbox_counts().await.map(|c| c.pending),
        Ok(3),
        "two confirmations and one notification"
    );
}

pub(crate) async fn outbox_records_each_attempt_and_retries_until_delivered_or_given_up(
    store: &SqlStore,
) {
    let p = ProjectId::generate();
    let t = new_topic(&p, "ops");
    store.create_topic(&p, &t).await.expect("topic");
    let a = sub(&p, &t, "http://127.0.0.1:9/a");
    store
        .add_subscription(&p, "ops", &a, "tok")
        .await
        .expect("add");
    store
        .confirm_subscription(&t.topic_urn, "http://127.0.0.1:9/a", "tok")
        .await
        .expect("confirm");
    // The confirmation is delivered first.
    let now = now_us();
    let rows = store
        .claim_deliveries(now, 60_000_000, 10)
        .await
        .expect("claim");
    assert_eq!(rows.len(), 1);
    store
        .finish_attempt(&rows[0], &ok_attempt(now), Outcome::Delivered)
        .await
        .expect("finish");
    let m = note_at(&t, "hello", now);
    store.publish(&p, "ops", &m).await.expect("publish");
    let rows = store
        .claim_deliveries(now, 60_000_000, 10)
        .await
        .expect("claim");
    assert_eq!(rows.len(), 1);
    let d = rows[0].clone();
    assert_eq!(
        (d.kind.as_str(), d.message.as_str(), d.attempts),
        (smn::NOTIFICATION, "hello", 0)
    );
    assert_eq!(
        d.url_path,
        smn::unsubscribe_path(&a.subscription_urn, "tok")
    );
    // Fails: due again at the retry time, not before.
    store
        .finish_attempt(&d, &failed_attempt(now), Outcome::Retry(now + 2_000_000))
        .await
        .expect("finish");
    assert_eq!(
        store
            .claim_deliveries(now + 1_999_999, 60_000_000, 10)
            .await,
        Ok(vec![])
    );
    let again = store
        .claim_deliveries(now + 2_000_000, 60_000_000, 10)
        .await
        .expect("claim");
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 1);
    // The same attempt recorded twice (e.g. a late duplicate) is refused,
    // not counted twice.
    assert!(
        store
            .finish_attempt(&d, &failed_attempt(now), Outcome::Retry(now + 2_000_000))
            .await
            .is_err()
    );
    store
        .finish_attempt(&again[0], &ok_attempt(now + 2_000_000), Outcome::Delivered)
        .await
        .expect("finish");
    let (view, attempts) = store.get_delivery(&p, &d.id).await.expect("get");
    assert_eq!(view.state, "delivered");
    assert_eq!(view.attempts, 2);
    assert_eq!(view.last_status, Some(200));
    assert_eq!(
        attempts.iter().map(|a| a.http_status).collect::<Vec<_>>(),
        vec![Some(503), Some(200)]
    );
    assert_eq!(
        attempts[0].error.as_deref(),
        Some("the endpoint answered 503")
    );
    assert_eq!(
        store
            .claim_deliveries(now + 100_000_000, 60_000_000, 10)
            .await,
        Ok(vec![])
    );

    // Given up: failed, counted, kept until pruned.
    let m2 = note_at(&t, "bye", now);
    store.publish(&p, "ops", &m2).await.expect("publish");
    let rows = store
        .claim_deliveries(now, 60_000_000, 10)
        .await
        .expect("claim");
    store
        .finish_attempt(&rows[0], &failed_attempt(now), Outcome::Failed)
        .await
        .expect("finish");
    assert_eq!(
        store.outbox_counts().await,
        Ok(store::OutboxCounts {
            pending: 0,
            failed: 1
        })
    );
    // A row handed back without an attempt is due when it says.
    let m3 = note_at(&t, "later", now);
    store.publish(&p, "ops", &m3).await.expect("publish");
    let rows = store
        .claim_deliveries(now, 60_000_000, 10)
        .await
        .expect("claim");
    store
        .defer_delivery(&rows[0].id, now + 5_000_000)
        .await
        .expect("defer");
    assert_eq!(
        store.claim_deliveries(now, 60_000_000, 10).await,
        Ok(vec![])
    );
    let rows = store
        .claim_deliveries(now + 5_000_000, 60_000_000, 10)
        .await
        .expect("claim");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].attempts, 0);
    // Unsubscribing (with the token) cancels what waits.
    assert_eq!(
        store.unsubscribe(&a.subscription_urn, "wrong").await,
        Err(DomainError::NotFound)
    );
    store
        .unsubscribe(&a.subscription_urn, "tok")
        .await
        .expect("unsubscribe");
    let (v, _) = store.get_delivery(&p, &rows[0].id).await.expect("get");
    assert_eq!(v.state, "cancelled");
    assert_eq!(
        store.list_subscriptions(&p, None, 0, 10).await.map(|x| x.1),
        Ok(0)
    );
    // Pruning removes finished rows and their attempts, never pending ones.
    assert_eq!(store.prune_deliveries(now + 10_000_000_000).await, Ok(4));
    assert_eq!(
        store.get_delivery(&p, &d.id).await.map(|_| ()),
        Err(DomainError::NotFound)
    );
}
