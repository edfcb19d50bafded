//! Identity: domains, projects, users, tokens, credentials, `meta`.

use super::*;
use domain::{DomainId, UserId};

// ---------- IAM ----------

pub(crate) async fn iam_domains_projects_and_users(store: &SqlStore) {
    assert_eq!(store.has_users().await, Ok(false));

    let d = store.create_domain("acme").await.unwrap();
    assert_eq!(d.name, "acme");
    assert_eq!(d.id.as_str().len(), 32);
    assert_eq!(
        store.create_domain("acme").await,
        Err(invalid(r#"domain "acme" already exists"#))
    );
    assert_eq!(store.find_domain("acme").await, Ok(Some(d.clone())));
    assert_eq!(store.get_domain(&d.id).await, Ok(Some(d.clone())));
    assert_eq!(store.find_domain("nobody").await, Ok(None));
    assert_eq!(
        store
            .get_domain(&DomainId::parse(&"0".repeat(32)).unwrap())
            .await,
        Ok(None)
    );
    let other = store.create_domain("globex").await.unwrap();

    let p1 = store.create_project(&d.id, "region-1").await.unwrap();
    assert_eq!(
        (p1.domain_id.as_str(), p1.name.as_str()),
        (d.id.as_str(), "region-1")
    );
    assert!(
        ProjectId::parse(p1.id.as_str()).is_some(),
        "project id {}",
        p1.id
    );
    assert_eq!(
        store.create_project(&other.id, "region-1").await,
        Err(invalid(r#"project "region-1" already exists"#))
    );
    let p2 = store.create_project(&d.id, "region-2").await.unwrap();
    assert_eq!(store.find_project("region-1").await, Ok(Some(p1.clone())));
    assert_eq!(store.get_project(&p2.id).await, Ok(Some(p2.clone())));
    assert_eq!(store.find_project("region-3").await, Ok(None));
    assert_eq!(
        store
            .get_project(&ProjectId::parse(&"f".repeat(32)).unwrap())
            .await,
        Ok(None)
    );
    assert_eq!(store.list_projects().await, Ok(vec![p1, p2]));

    let u = store
        .create_user(&d.id, "alice", "$argon2id$a")
        .await
        .unwrap();
    assert_eq!(
        (
            u.domain_id.as_str(),
            u.name.as_str(),
            u.password_hash.as_str()
        ),
        (d.id.as_str(), "alice", "$argon2id$a")
    );
    assert_eq!(store.has_users().await, Ok(true));
    assert_eq!(
        store.create_user(&d.id, "alice", "$argon2id$b").await,
        Err(invalid(r#"user "alice" already exists"#))
    );
    assert_eq!(store.find_user(&d.id, "alice").await, Ok(Some(u.clone())));
    assert_eq!(store.find_user(&other.id, "alice").await, Ok(None));
    assert_eq!(store.get_user(&u.id).await, Ok(Some(u.clone())));
    assert_eq!(
        store
            .get_user(&UserId::parse(&"0".repeat(32)).unwrap())
            .await,
        Ok(None)
    );
    assert_eq!(store.find_user_any_domain("alice").await, Ok(Some(u)));
    assert_eq!(store.find_user_any_domain("bob").await, Ok(None));

    // The same name in another domain is another user, which makes the
    // name ambiguous across domains.
    let u2 = store
        .create_user(&other.id, "alice", "$argon2id$c")
        .await
        .unwrap();
    assert_eq!(store.find_user(&other.id, "alice").await, Ok(Some(u2)));
    assert_eq!(
        store.find_user_any_domain("alice").await,
        Err(invalid(r#"user name "alice" exists in several domains"#))
    );
}

pub(crate) async fn iam_grants_list_a_users_projects(store: &SqlStore) {
    let d = store.create_domain("acme").await.unwrap();
    let p1 = store.create_project(&d.id, "one").await.unwrap();
    let p2 = store.create_project(&d.id, "two").await.unwrap();
    let _p3 = store.create_project(&d.id, "three").await.unwrap();
    let alice = store.create_user(&d.id, "alice", "h").await.unwrap();
    let bob = store.create_user(&d.id, "bob", "h").await.unwrap();

    assert_eq!(store.user_projects(&alice.id).await, Ok(vec![]));
    store.grant(&alice.id, &p2.id).await.unwrap();
    store.grant(&alice.id, &p1.id).await.unwrap();
    assert_eq!(
        store.grant(&alice.id, &p1.id).await,
        Ok(()),
        "granting twice is harmless"
    );
    store.grant(&bob.id, &p2.id).await.unwrap();
    assert_eq!(
        store.user_projects(&alice.id).await,
        Ok(vec![p1, p2.clone()]),
        "in project creation order"
    );
    assert_eq!(store.user_projects(&bob.id).await, Ok(vec![p2]));
}

pub(crate) async fn iam_login_locks_round_trip_and_clear(store: &SqlStore) {
    let d = store.create_domain("acme").await.unwrap();
    let u = store.create_user(&d.id, "alice", "h").await.unwrap();
    let v = store.create_user(&d.id, "bob", "h").await.unwrap();
    assert_eq!(store.get_login_lock(&u.id).await, Ok(None));
    let l = store::LoginLock {
        failures: 3,
        since_us: 1_700_000_000_000_000,
        locked_until_us: 0,
    };
    store.put_login_lock(&u.id, &l).await.unwrap();
    assert_eq!(store.get_login_lock(&u.id).await, Ok(Some(l)));
    let locked = store::LoginLock {
        failures: 5,
        locked_until_us: 1_700_000_900_000_000,
        ..l
    };
    store.put_login_lock(&u.id, &locked).await.unwrap();
    assert_eq!(
        store.get_login_lock(&u.id).await,
        Ok(Some(locked)),
        "replaced"
    );
    assert_eq!(store.get_login_lock(&v.id).await, Ok(None), "per user");
    assert_eq!(store.clear_login_lock(&u.id).await, Ok(true));
    assert_eq!(store.clear_login_lock(&u.id).await, Ok(false));
    assert_eq!(store.get_login_lock(&u.id).await, Ok(None));
}

pub(crate) async fn iam_tokens_round_trip_and_revoke(store: &SqlStore) {
    let d = store.create_domain("acme").await.unwrap();
    let p = store.create_project(&d.id, "one").await.unwrap();
    let u = store.create_user(&d.id, "alice", "h").await.unwrap();
    let t = TokenRecord {
        digest: "digest-1".into(),
        user_id: u.id.clone(),
        project_id: p.id.clone(),
        issued_us: 1_700_000_000_000_000,
        expires_us: 1_700_086_400_000_000,
        revoked: false,
    };
    store.insert_token(&t).await.unwrap();
    assert_eq!(store.get_token("digest-1").await, Ok(Some(t.clone())));
    assert_eq!(store.get_token("digest-2").await, Ok(None));

    assert_eq!(store.revoke_token("digest-1").await, Ok(true));
    assert_eq!(
        store.get_token("digest-1").await,
        Ok(Some(TokenRecord { revoked: true, ..t }))
    );
    assert_eq!(store.revoke_token("digest-2").await, Ok(false));
}

pub(crate) async fn iam_credentials_crud(store: &SqlStore) {
    let d = store.create_domain("acme").await.unwrap();
    let alice = store.create_user(&d.id, "alice", "h").await.unwrap();
    let bob = store.create_user(&d.id, "bob", "h").await.unwrap();
    let cred = |access: &str, user: &UserId, created_us: i64| CredentialRecord {
        access: access.into(),
        user_id: user.clone(),
        sealed_secret: format!("sealed-{access}"),
        enabled: true,
        description: format!("key {access}"),
        created_us,
    };
    let a1 = cred("AKALICE1", &alice.id, 100);
    let a2 = CredentialRecord {
        description: String::new(),
        ..cred("AKALICE2", &alice.id, 300)
    };
    let b1 = cred("AKBOB1", &bob.id, 200);
    for c in [&a1, &a2, &b1] {
        store.insert_credential(c).await.unwrap();
    }

    assert_eq!(store.get_credential("AKALICE2").await, Ok(Some(a2.clone())));
    assert_eq!(store.get_credential("AKNOBODY").await, Ok(None));
    assert_eq!(
        store.list_credentials(None).await,
        Ok(vec![a1.clone(), b1.clone(), a2.clone()]),
        "ordered by creation time"
    );
    assert_eq!(
        store.list_credentials(Some(&alice.id)).await,
        Ok(vec![a1.clone(), a2.clone()])
    );

    assert_eq!(
        store.set_credential_enabled("AKALICE1", false).await,
        Ok(true)
    );
    let disabled = CredentialRecord {
        enabled: false,
        ..a1.clone()
    };
    assert_eq!(
        store.get_credential("AKALICE1").await,
        Ok(Some(disabled.clone()))
    );
    assert_eq!(
        store.set_credential_enabled("AKALICE1", true).await,
        Ok(true)
    );
    assert_eq!(store.get_credential("AKALICE1").await, Ok(Some(a1.clone())));
    assert_eq!(
        store.set_credential_enabled("AKNOBODY", true).await,
        Ok(false)
    );

    assert_eq!(store.delete_credential("AKALICE1").await, Ok(true));
    assert_eq!(store.delete_credential("AKALICE1").await, Ok(false));
    assert_eq!(store.get_credential("AKALICE1").await, Ok(None));
    assert_eq!(store.list_credentials(Some(&alice.id)).await, Ok(vec![a2]));
    assert_eq!(store.list_credentials(Some(&bob.id)).await, Ok(vec![b1]));
}

pub(crate) async fn meta_get_and_delete(store: &SqlStore) {
    assert_eq!(store.meta_get("k").await, Ok(None));
    store.meta_get_or_init("k", "v").await.unwrap();
    assert_eq!(store.meta_get("k").await, Ok(Some("v".to_string())));
    assert_eq!(store.meta_delete("k").await, Ok(true));
    assert_eq!(store.meta_delete("k").await, Ok(false));
    assert_eq!(store.meta_get("k").await, Ok(None));
    assert_eq!(
        store.meta_get_or_init("k", "w").await,
        Ok("w".to_string()),
        "a deleted key can be set anew"
    );
}

pub(crate) async fn meta_keeps_the_first_value(store: &SqlStore) {
    assert_eq!(
        store.meta_get_or_init("master_key", "first").await,
        Ok("first".to_string())
    );
    assert_eq!(
        store.meta_get_or_init("master_key", "second").await,
        Ok("first".to_string())
    );
    assert_eq!(
        store.meta_get_or_init("other", "x").await,
        Ok("x".to_string())
    );
    assert_eq!(
        store.meta_get_or_init("master_key", "third").await,
        Ok("first".to_string())
    );
}

/// Two processes starting on one database at once must agree on one value
/// (e.g. the key that seals credentials).
pub(crate) async fn meta_first_value_wins_under_concurrency(store: &SqlStore) {
    warm_up(store).await;
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .meta_get_or_init("master_key", &format!("value-{i}"))
                    .await
            })
        })
        .collect();
    let mut seen = HashSet::new();
    for t in tasks {
        seen.insert(t.await.expect("task").expect("meta_get_or_init"));
    }
    assert_eq!(seen.len(), 1, "every caller sees the same value: {seen:?}");
    let winner = seen.into_iter().next().unwrap_or_default();
    assert_eq!(
        store.meta_get_or_init("master_key", "late").await,
        Ok(winner)
    );
}
