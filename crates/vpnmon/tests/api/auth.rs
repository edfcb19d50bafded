//! Tokens and tenant isolation.

use crate::helpers::{ADMIN_PASSWORD, TestApp, uuid};
use reqwest::{Method, StatusCode};
use serde_json::json;
use store::IdentityStore;

#[tokio::test]
async fn token_body_and_headers_follow_the_spec() {
    let app = TestApp::spawn().await;
    let r = app
        .login_raw("vpnmon", "admin", ADMIN_PASSWORD, "local-1")
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert!(r.headers.get("x-subject-token").is_some());
    let t = &r.body["token"];
    assert_eq!(t["methods"], json!(["password"]));
    assert_eq!(t["project"]["name"], "local-1");
    assert_eq!(t["project"]["domain"]["name"], "vpnmon");
    assert_eq!(t["user"]["name"], "admin");
    let issued = chrono::DateTime::parse_from_rfc3339(t["issued_at"].as_str().unwrap()).unwrap();
    let expires = chrono::DateTime::parse_from_rfc3339(t["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!(expires - issued, chrono::Duration::hours(24));
    assert!(!t["catalog"].as_array().unwrap().is_empty());
    let r = app
        .send(
            Method::POST,
            "/v3/auth/tokens?nocatalog=true",
            None,
            Some(
                json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
                "name": "admin", "password": ADMIN_PASSWORD, "domain": {"name": "vpnmon"}}}},
                "scope": {"project": {"id": app.project_id}}}}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
    assert_eq!(r.body["token"]["catalog"], json!([]));
    assert_eq!(r.body["token"]["project"]["id"], app.project_id.as_str());
    app.stop().await;
}

#[tokio::test]
async fn bad_logins_are_rejected() {
    let app = TestApp::spawn().await;
    let wrong = app
        .login_raw("vpnmon", "admin", "wrong-password", "local-1")
        .await
        .assert_keystone(401);
    assert_eq!(wrong, "The username or password is wrong.");
    app.login_raw("vpnmon", "nobody", ADMIN_PASSWORD, "local-1")
        .await
        .assert_keystone(401);
    app.login_raw("other", "admin", ADMIN_PASSWORD, "local-1")
        .await
        .assert_keystone(401);
    let none = app
        .login_raw("vpnmon", "admin", ADMIN_PASSWORD, "no-project")
        .await
        .assert_keystone(401);
    let (_, other) = app.other_tenant("tenant-b").await;
    let _ = other;
    // admin has no role in tenant-b
    let no_role = app
        .login_raw("vpnmon", "admin", ADMIN_PASSWORD, "tenant-b")
        .await
        .assert_keystone(401);
    assert_eq!(no_role, none, "no project and no role are answered alike");
    assert!(!no_role.contains("tenant-b"), "{no_role}");
    let r = app
        .send(
            Method::POST,
            "/v3/auth/tokens",
            None,
            Some(json!({"auth": {}})),
        )
        .await;
    let msg = r.assert_error(400, "VPN.0001");
    assert!(msg.contains("auth.identity"), "{msg}");
    app.stop().await;
}

#[tokio::test]
async fn missing_malformed_expired_and_revoked_tokens_are_401() {
    let app = TestApp::spawn().await;
    let path = app.v5("/connection-monitors");
    let m = app
        .send(Method::GET, &path, None, None)
        .await
        .assert_error(401, "APIGW.0301");
    assert!(m.contains("x-auth-token not found"), "{m}");
    let m = app
        .send(Method::GET, &path, Some("garbage"), None)
        .await
        .assert_error(401, "APIGW.0301");
    assert!(m.contains("malformed"), "{m}");
    let forged = format!("vpnmon_{}", "A".repeat(43));
    let m = app
        .send(Method::GET, &path, Some(&forged), None)
        .await
        .assert_error(401, "APIGW.0301");
    assert!(m.contains("unknown"), "{m}");

    // Revoked.
    let (t2, _) = app
        .login("vpnmon", "admin", ADMIN_PASSWORD, "local-1")
        .await;
    assert_eq!(
        app.send(Method::GET, &path, Some(&t2), None).await.status,
        StatusCode::OK
    );
    let r = app
        .client
        .delete(format!("{}/v3/auth/tokens", app.base))
        .header("X-Auth-Token", &app.token)
        .header("X-Subject-Token", &t2);
    assert_eq!(TestApp::finish(r).await.status, StatusCode::NO_CONTENT);
    let m = app
        .send(Method::GET, &path, Some(&t2), None)
        .await
        .assert_error(401, "APIGW.0301");
    assert!(m.contains("revoked"), "{m}");

    // Expiry, with the injected clock.
    app.clock
        .advance(chrono::Duration::hours(23) + chrono::Duration::minutes(59));
    assert_eq!(
        app.send(Method::GET, &path, Some(&app.token), None)
            .await
            .status,
        StatusCode::OK
    );
    app.clock.advance(chrono::Duration::minutes(2));
    let m = app
        .send(Method::GET, &path, Some(&app.token), None)
        .await
        .assert_error(401, "APIGW.0301");
    assert!(m.contains("token expires"), "{m}");
    app.stop().await;
}

#[tokio::test]
async fn tenants_are_isolated_on_every_endpoint() {
    let app = TestApp::spawn().await;
    let (g, c, conn, m) = app.seed().await;
    let (tb, pb) = app.other_tenant("tenant-b").await;

    // B's token on A's project path: 403.
    for (method, rest) in [
        (Method::GET, "/vpn-gateways".to_string()),
        (Method::GET, format!("/vpn-gateways/{g}")),
        (Method::GET, "/customer-gateways".to_string()),
        (Method::GET, format!("/vpn-connection/{conn}")),
        (Method::GET, "/connection-monitors".to_string()),
        (Method::DELETE, format!("/connection-monitors/{m}")),
        (Method::GET, "/vpn/quotas".to_string()),
    ] {
        app.send(method, &app.v5(&rest), Some(&tb), None)
            .await
            .assert_error(403, "VPN.0003");
    }
    // A's ids under B's own path: 404, never a hint that they exist.
    let b = |rest: &str| format!("/v5/{pb}{rest}");
    for rest in [
        format!("/vpn-gateways/{g}"),
        format!("/customer-gateways/{c}"),
        format!("/vpn-connection/{conn}"),
        format!("/connection-monitors/{m}"),
    ] {
        app.send(Method::GET, &b(&rest), Some(&tb), None)
            .await
            .assert_error(404, "VPN.0004");
        app.send(Method::DELETE, &b(&rest), Some(&tb), None)
            .await
            .assert_error(404, "VPN.0004");
    }
    app.send(
        Method::PUT,
        &b(&format!("/vpn-gateways/{g}")),
        Some(&tb),
        Some(json!({"vpn_gateway": {"name": "x"}})),
    )
    .await
    .assert_error(404, "VPN.0004");
    app.send(
        Method::PUT,
        &b(&format!("/customer-gateways/{c}")),
        Some(&tb),
        Some(json!({"customer_gateway": {"name": "x"}})),
    )
    .await
    .assert_error(404, "VPN.0004");
    app.send(
        Method::PUT,
        &b(&format!("/vpn-connection/{conn}")),
        Some(&tb),
        Some(json!({"vpn_connection": {"name": "x"}})),
    )
    .await
    .assert_error(404, "VPN.0004");
    app.send(
        Method::POST,
        &b("/connection-monitors"),
        Some(&tb),
        Some(json!({"connection_monitor": {"vpn_connection_id": conn}})),
    )
    .await
    .assert_error(404, "VPN.0004");
    // B's lists are empty.
    for (rest, key) in [
        ("/vpn-gateways", "vpn_gateways"),
        ("/customer-gateways", "customer_gateways"),
        ("/vpn-connection", "vpn_connections"),
        ("/connection-monitors", "connection_monitors"),
    ] {
        let r = app.send(Method::GET, &b(rest), Some(&tb), None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body[key], json!([]), "{rest}");
    }
    // B cannot build a connection from A's gateway.
    let cb = {
        let r = app
            .send(
                Method::POST,
                &b("/customer-gateways"),
                Some(&tb),
                Some(json!({"customer_gateway": {"id_value": "127.0.0.11"}})),
            )
            .await;
        r.body["customer_gateway"]["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    app.send(
        Method::POST,
        &b("/vpn-connection"),
        Some(&tb),
        Some(json!({"vpn_connection": {"vgw_id": g, "vgw_ip": uuid(), "cgw_id": cb, "peer_subnets": ["10.1.0.0/16"], "psk": "Abcd1234!x"}})),
    )
    .await
    .assert_error(404, "VPN.0004");
    // A's resources are untouched.
    assert_eq!(
        app.get(&format!("/connection-monitors/{m}")).await.status,
        StatusCode::OK
    );
    // A malformed project id in the path is not the token's project.
    app.send(
        Method::GET,
        "/v5/%7Bproject_id%7D/connection-monitors",
        Some(&app.token),
        None,
    )
    .await
    .assert_error(403, "VPN.0003");
    app.stop().await;
}

#[tokio::test]
async fn x_project_id_of_another_project_is_refused_with_a_token_too() {
    let app = TestApp::spawn().await;
    let (_, other_project) = app.other_tenant("xproj").await;
    let path = format!("{}{}", app.base, app.v5("/customer-gateways"));
    let with_header = |p: &str| {
        app.client
            .get(&path)
            .header("X-Auth-Token", &app.token)
            .header("X-Project-Id", p.to_string())
    };
    let r = TestApp::finish(with_header(&other_project)).await;
    let msg = r.assert_error(403, "VPN.0003");
    assert!(
        !msg.contains(&other_project),
        "no echo of the header: {msg}"
    );
    // The path's own project in the header is fine.
    let r = TestApp::finish(with_header(&app.project_id)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    app.stop().await;
}

#[tokio::test]
async fn unknown_user_and_wrong_password_are_answered_alike() {
    let app = TestApp::spawn().await;
    let wrong = app
        .login_raw("vpnmon", "admin", "Not-the-password-1", "local-1")
        .await;
    let unknown = app
        .login_raw("vpnmon", "nobody-here", "Not-the-password-1", "local-1")
        .await;
    let unknown_domain = app
        .login_raw("no-such-domain", "admin", "Not-the-password-1", "local-1")
        .await;
    let a = wrong.assert_keystone(401);
    assert_eq!(unknown.assert_keystone(401), a);
    assert_eq!(unknown_domain.assert_keystone(401), a);
    assert!(!a.contains("nobody") && !a.contains("admin"), "{a}");
    app.stop().await;
}

// ---------- login protection ----------

async fn wrong_logins(app: &TestApp, user: &str, n: usize) {
    for _ in 0..n {
        app.login_raw("vpnmon", user, "Not-the-password-1", "local-1")
            .await
            .assert_keystone(401);
    }
}

/// The user's stored login state once it satisfies `done` (the server
/// writes it in the background), or the last one read after a second.
async fn stored_lock(
    app: &TestApp,
    user: &domain::UserId,
    done: impl Fn(&store::LoginLock) -> bool,
) -> Option<store::LoginLock> {
    let mut lock = None;
    for _ in 0..50 {
        lock = app.store.get_login_lock(user).await.unwrap();
        if lock.as_ref().is_some_and(&done) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    lock
}

#[tokio::test]
async fn a_user_is_locked_after_five_failed_logins_even_with_the_right_password() {
    let app = TestApp::spawn().await;
    wrong_logins(&app, "admin", 5).await;
    let r = app
        .login_raw("vpnmon", "admin", ADMIN_PASSWORD, "local-1")
        .await;
    assert_eq!(r.assert_keystone(401), "The account is locked.");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((890..=900).contains(&retry), "{retry}");
    // Recorded in the store, where other nodes and `admin user show` see it.
    let admin = app
        .store
        .find_user_any_domain("admin")
        .await
        .unwrap()
        .unwrap();
    let lock = stored_lock(&app, &admin.id, |l| l.locked_until_us > 0)
        .await
        .expect("the lock is stored");
    assert_eq!(lock.failures, 5);
    assert!(lock.locked_until_us > app.clock_now().timestamp_micros());
    // Another user is not affected.
    app.other_tenant("tenant-b").await;
    // After the lockout (15 minutes), the right password works again and
    // the failures are forgotten.
    app.clock.advance(chrono::Duration::minutes(15));
    app.login("vpnmon", "admin", ADMIN_PASSWORD, "local-1")
        .await;
    assert_eq!(app.store.get_login_lock(&admin.id).await.unwrap(), None);
    app.stop().await;
}

#[tokio::test]
async fn failures_outside_the_window_do_not_lock() {
    let app = TestApp::spawn().await;
    wrong_logins(&app, "admin", 4).await;
    app.clock.advance(chrono::Duration::minutes(16));
    wrong_logins(&app, "admin", 4).await;
    app.login("vpnmon", "admin", ADMIN_PASSWORD, "local-1")
        .await;
    app.stop().await;
}

#[tokio::test]
async fn an_unknown_user_is_locked_like_a_known_one() {
    let app = TestApp::spawn().await;
    wrong_logins(&app, "admin", 5).await;
    wrong_logins(&app, "nobody-here", 5).await;
    let known = app
        .login_raw("vpnmon", "admin", "Not-the-password-1", "local-1")
        .await;
    let unknown = app
        .login_raw("vpnmon", "nobody-here", "Not-the-password-1", "local-1")
        .await;
    assert_eq!(known.assert_keystone(401), unknown.assert_keystone(401));
    assert_eq!(
        known.headers["retry-after"], unknown.headers["retry-after"],
        "the same Retry-After"
    );
    app.stop().await;
}

#[tokio::test]
async fn parallel_wrong_passwords_lock_the_user_after_about_the_limit() {
    let app = TestApp::spawn().await;
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let (base, client) = (app.base.clone(), app.client.clone());
        tasks.push(tokio::spawn(async move {
            let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
                "name": "admin", "password": "Not-the-password-1", "domain": {"name": "vpnmon"}}}},
                "scope": {"project": {"name": "local-1"}}}});
            let r = client
                .post(format!("{base}/v3/auth/tokens"))
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status();
            let text = r.text().await.unwrap();
            assert_eq!(status, 401, "{text}");
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            v["error"]["message"].as_str().unwrap().to_string()
        }));
    }
    let mut wrong = 0;
    let mut locked = 0;
    for t in tasks {
        match t.await.unwrap().as_str() {
            "The username or password is wrong." => wrong += 1,
            "The account is locked." => locked += 1,
            m => panic!("{m}"),
        }
    }
    // Two hash checks run at once: at most one more per slot slips through.
    assert!((5..=7).contains(&wrong), "{wrong} wrong, {locked} locked");
    assert_eq!(wrong + locked, 40);
    app.stop().await;
}

#[tokio::test]
async fn an_address_with_too_many_failed_logins_is_blocked_with_429() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = TestApp::spawn_with(dir, |s| s.login_max_failures_per_address = 6, false).await;
    // Three names, two failures each: no name is locked, the address is.
    for u in ["a1", "a2", "a3"] {
        wrong_logins(&app, u, 2).await;
    }
    let r = app
        .login_raw("vpnmon", "admin", ADMIN_PASSWORD, "local-1")
        .await;
    let msg = r.assert_error(429, "APIGW.0308");
    assert!(msg.contains("failed logins from this address"), "{msg}");
    assert!(r.headers.contains_key("retry-after"));
    // Tokens already issued keep working.
    assert_eq!(app.get("/vpn-gateways").await.status, StatusCode::OK);
    app.clock.advance(chrono::Duration::minutes(15));
    app.login("vpnmon", "admin", ADMIN_PASSWORD, "local-1")
        .await;
    app.stop().await;
}

#[tokio::test]
async fn an_unlock_in_the_store_ends_a_lock_at_once_as_admin_user_unlock_does() {
    let app = TestApp::spawn().await;
    wrong_logins(&app, "admin", 5).await;
    let admin = app
        .store
        .find_user_any_domain("admin")
        .await
        .unwrap()
        .unwrap();
    // Wait for the background write, then unlock as `admin user unlock` does.
    stored_lock(&app, &admin.id, |l| l.failures == 5).await;
    let unlocked = store::LoginLock {
        failures: 0,
        since_us: app.clock_now().timestamp_micros() + 1,
        locked_until_us: 0,
    };
    app.store
        .put_login_lock(&admin.id, &unlocked)
        .await
        .unwrap();
    app.login("vpnmon", "admin", ADMIN_PASSWORD, "local-1")
        .await;
    app.stop().await;
}
