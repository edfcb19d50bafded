//! SMN topics.

use super::*;
use domain::smn::{AddSubscription, CreateTopic, Subscription, Topic};

fn topic(p: &ProjectId, name: &str) -> Topic {
    domain::smn::create(
        &CreateTopic {
            name: name.into(),
            display_name: format!("{name} display"),
            enterprise_project_id: None,
        },
        "local-1",
        p,
        harness::now(),
    )
    .expect("a valid topic")
}

pub(crate) async fn topic_crud_and_create_is_idempotent_by_name(store: &SqlStore) {
    let p = ProjectId::generate();
    let a = topic(&p, "ops");
    assert_eq!(store.create_topic(&p, &a).await, Ok((a.clone(), true)));
    // The same name again: the first topic, not a second one.
    let again = topic(&p, "ops");
    assert_eq!(store.create_topic(&p, &again).await, Ok((a.clone(), false)));
    harness::advance_ms(1000);
    let b = topic(&p, "dev");
    store.create_topic(&p, &b).await.expect("create");
    assert_eq!(store.get_topic(&p, "ops").await, Ok(a.clone()));
    let (all, total) = store.list_topics(&p, None, 0, 100).await.expect("list");
    assert_eq!(
        (ids(&all, |t| &t.name), total),
        (vec!["dev".to_string(), "ops".into()], 2)
    );
    let (page, total) = store.list_topics(&p, None, 1, 1).await.expect("list");
    assert_eq!(
        (ids(&page, |t| &t.name), total),
        (vec!["ops".to_string()], 2)
    );
    let (only, total) = store
        .list_topics(&p, Some("ops"), 0, 100)
        .await
        .expect("list");
    assert_eq!((only, total), (vec![a.clone()], 1));

    harness::advance_ms(1000);
    let u = store
        .update_topic(&p, "ops", "Operations")
        .await
        .expect("update");
    assert_eq!(u.display_name, "Operations");
    assert_ne!(u.update_time, a.update_time);
    assert_eq!(u.create_time, a.create_time);
    assert_eq!(store.get_topic(&p, "ops").await, Ok(u));

    assert_eq!(store.delete_topic(&p, "ops").await, Ok(()));
    assert_eq!(store.get_topic(&p, "ops").await, nf());
    assert_eq!(store.delete_topic(&p, "ops").await, nf());
    assert_eq!(store.update_topic(&p, "ops", "x").await, nf());
}

pub(crate) async fn topic_tenant_isolation(store: &SqlStore) {
    let (a, b) = (ProjectId::generate(), ProjectId::generate());
    let t = topic(&a, "ops");
    store.create_topic(&a, &t).await.expect("create");
    assert_eq!(store.get_topic(&b, "ops").await, nf());
    assert_eq!(store.update_topic(&b, "ops", "x").await, nf());
    assert_eq!(store.delete_topic(&b, "ops").await, nf());
    assert_eq!(store.list_topics(&b, None, 0, 100).await, Ok((vec![], 0)));
    // The same name in another project is another topic.
    let tb = topic(&b, "ops");
    assert_eq!(store.create_topic(&b, &tb).await, Ok((tb.clone(), true)));
    assert_ne!(tb.topic_urn, t.topic_urn);
    assert_eq!(store.get_topic(&a, "ops").await, Ok(t));
}

fn subscription(p: &ProjectId, t: &Topic, endpoint: &str) -> Subscription {
    domain::smn::new_subscription(
        &AddSubscription {
            protocol: "http".into(),
            endpoint: endpoint.into(),
            remark: None,
        },
        &t.topic_urn,
        p,
    )
}

pub(crate) async fn subscriptions_add_list_cancel_and_go_with_their_topic(store: &SqlStore) {
    let p = ProjectId::generate();
    let (ops, dev) = (topic(&p, "ops"), topic(&p, "dev"));
    store.create_topic(&p, &ops).await.expect("create");
    store.create_topic(&p, &dev).await.expect("create");
    let a = subscription(&p, &ops, "http://127.0.0.1:9/a");
    assert_eq!(
        store.add_subscription(&p, "ops", &a, "token").await,
        Ok((a.clone(), true))
    );
    // The same endpoint again: the first subscription.
    let again = subscription(&p, &ops, "http://127.0.0.1:9/a");
    assert_eq!(
        store.add_subscription(&p, "ops", &again, "token").await,
        Ok((a.clone(), false))
    );
    harness::advance_ms(1);
    let b = subscription(&p, &ops, "http://127.0.0.1:9/b");
    store
        .add_subscription(&p, "ops", &b, "token")
        .await
        .expect("add");
    harness::advance_ms(1);
    let c = subscription(&p, &dev, "http://127.0.0.1:9/a");
    store
        .add_subscription(&p, "dev", &c, "token")
        .await
        .expect("add");
    assert_eq!(
        store
            .add_subscription(&p, "none", &subscription(&p, &ops, "http://x/"), "token")
            .await,
        nf()
    );
    assert_eq!(
        store.list_subscriptions(&p, Some("ops"), 0, 100).await,
        Ok((vec![a.clone(), b.clone()], 2))
    );
    assert_eq!(
        store.list_subscriptions(&p, None, 1, 1).await,
        Ok((vec![b.clone()], 3))
    );
    assert_eq!(
        store.cancel_subscription(&p, &b.subscription_urn).await,
        Ok(())
    );
    assert_eq!(
        store.cancel_subscription(&p, &b.subscription_urn).await,
        nf()
    );
    store.delete_topic(&p, "ops").await.expect("delete");
    assert_eq!(
        store.list_subscriptions(&p, None, 0, 100).await,
        Ok((vec![c.clone()], 1))
    );
    // Tenant isolation.
    let q = ProjectId::generate();
    assert_eq!(
        store.list_subscriptions(&q, None, 0, 100).await,
        Ok((vec![], 0))
    );
    assert_eq!(
        store.cancel_subscription(&q, &c.subscription_urn).await,
        nf()
    );
    assert_eq!(store.add_subscription(&q, "dev", &c, "token").await, nf());
    assert_eq!(
        store
            .list_subscriptions(&p, None, 0, 100)
            .await
            .map(|x| x.1),
        Ok(1)
    );
}
