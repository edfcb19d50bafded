//! Every route rejects bad credentials with the exact status and code, and
//! accepts good AK/SK signatures. The route list comes from the router
//! itself, so a new route is swept automatically; `route_list_is_complete`
//! fails if the router serves a path/method the list does not name.

use crate::helpers::{TestApp, uuid};
use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use store::prelude::*;

pub struct Cred {
    pub ak: String,
    pub sk: String,
}

/// Creates an AK/SK for the admin user, sealed like `vpnmon admin credential create`.
pub async fn admin_credential(app: &TestApp) -> Cred {
    let key = app.master_key().await;
    let user = app
        .store
        .find_user_any_domain("admin")
        .await
        .unwrap()
        .unwrap();
    let ak = auth::credential::generate_access_key();
    let sk = auth::credential::generate_secret_key();
    app.store
        .insert_credential(&store::CredentialRecord {
            access: ak.clone(),
            user_id: user.id,
            sealed_secret: auth::credential::seal_secret(&key, &ak, &sk),
            enabled: true,
            description: String::new(),
            created_us: 0,
        })
        .await
        .unwrap();
    Cred { ak, sk }
}

/// Sends a request signed as the Python SDK signs it.
pub async fn signed(
    app: &TestApp,
    method: Method,
    path_and_query: &str,
    body: &[u8],
    (ak, sk): (&str, &str),
    at: DateTime<Utc>,
    project_header: Option<&str>,
) -> crate::helpers::Resp {
    let host = app.base.trim_start_matches("http://").to_string();
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let date = auth::signature::format_sdk_date(at);
    let mut req = auth::SignedRequest::new(method.as_str(), path, query, body)
        .with_header("content-type", "application/json")
        .with_header("host", &host)
        .with_header("user-agent", "vpnmon-tests")
        .with_header("x-sdk-date", &date);
    if let Some(p) = project_header {
        req = req.with_header("x-project-id", p);
    }
    let authz = auth::sign_request(ak, sk.as_bytes(), &req).unwrap();
    let mut rb = app
        .client
        .request(method, format!("{}{}", app.base, path_and_query))
        .header("Content-Type", "application/json")
        .header("User-Agent", "vpnmon-tests")
        .header("X-Sdk-Date", date)
        .header("Authorization", authz)
        .body(body.to_vec());
    if let Some(p) = project_header {
        rb = rb.header("X-Project-Id", p);
    }
    TestApp::finish(rb).await
}

fn concrete(path: &str, project: &str) -> String {
    path.split('/')
        .map(|seg| {
            if seg == "{project_id}" {
                project.to_string()
            } else if seg.starts_with('{') {
                uuid()
            } else {
                seg.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn every_route_rejects_bad_credentials() {
    // Each route gets bad signatures of one access key: more than the
    // default limit of failures per key (tested on its own below).
    let dir = tempfile::tempdir().unwrap();
    let (app, _) =
        TestApp::spawn_with(dir, |s| s.login_max_failures_per_address = 100_000, false).await;
    let (routes, now) = {
        let (_, infos) = api::router(api::AppState::new(app.store.clone(), [0; 32]));
        (infos, app.clock_now())
    };
    let good = admin_credential(&app).await;
    let (other_token, _) = app.other_tenant("tenant-b").await;
    let swept: Vec<_> = routes.iter().filter(|r| r.authenticated).collect();
    assert!(swept.len() >= 20, "sweep covers {} routes", swept.len());
    for r in &swept {
        let path = concrete(r.path, &app.project_id);
        let method = Method::from_bytes(r.method.as_bytes()).unwrap();
        let body = b"{}".to_vec();
        let what = format!("{} {}", r.method, r.path);

        // No credentials.
        let rb = app
            .client
            .request(method.clone(), format!("{}{path}", app.base))
            .header("Content-Type", "application/json")
            .body(body.clone());
        let m = TestApp::finish(rb).await.assert_error(401, "APIGW.0301");
        assert!(m.contains("x-auth-token not found"), "{what}: {m}");
        // Malformed Authorization.
        let rb = app
            .client
            .request(method.clone(), format!("{}{path}", app.base))
            .header("Authorization", "SDK-HMAC-SHA256 garbage")
            .header("Content-Type", "application/json")
            .body(body.clone());
        TestApp::finish(rb).await.assert_error(401, "APIGW.0301");
        // Unknown AK.
        let m = signed(
            &app,
            method.clone(),
            &path,
            &body,
            ("UNKNOWNAK00000000000", &good.sk),
            now,
            None,
        )
        .await
        .assert_error(401, "APIGW.0301");
        assert!(m.contains("unknown access key"), "{what}: {m}");
        // Wrong signature (wrong SK).
        let m = signed(
            &app,
            method.clone(),
            &path,
            &body,
            (&good.ak, "WRONGSECRET"),
            now,
            None,
        )
        .await
        .assert_error(401, "APIGW.0301");
        assert!(!m.contains(&good.sk), "never leak secrets");
        // Stale X-Sdk-Date.
        signed(
            &app,
            method.clone(),
            &path,
            &body,
            (&good.ak, &good.sk),
            now - chrono::Duration::minutes(20),
            None,
        )
        .await
        .assert_error(401, "APIGW.0301");
        // X-Project-Id of another project.
        signed(
            &app,
            method.clone(),
            &path,
            &body,
            (&good.ak, &good.sk),
            now,
            Some("0123456789abcdef0123456789abcdef"),
        )
        .await
        .assert_error(403, "VPN.0003");
        // Token of another project.
        app.send(
            method.clone(),
            &path,
            Some(&other_token),
            Some(serde_json::json!({})),
        )
        .await
        .assert_error(403, "VPN.0003");
        // A good signature gets through authentication.
        let ok = signed(
            &app,
            method.clone(),
            &path,
            &body,
            (&good.ak, &good.sk),
            now,
            Some(&app.project_id),
        )
        .await;
        assert!(
            ok.status != StatusCode::UNAUTHORIZED && ok.status != StatusCode::FORBIDDEN,
            "{what}: a valid signature was refused: {}",
            ok.raw
        );
    }
    // Expired token.
    app.clock.advance(chrono::Duration::hours(25));
    for r in &swept {
        let path = concrete(r.path, &app.project_id);
        let method = Method::from_bytes(r.method.as_bytes()).unwrap();
        let m = app
            .send(method, &path, Some(&app.token), Some(serde_json::json!({})))
            .await
            .assert_error(401, "APIGW.0301");
        assert!(m.contains("token expires"), "{m}");
    }
    app.stop().await;
}

#[tokio::test]
async fn route_list_is_complete() {
    // Every path template the router serves answers only the listed methods:
    // an unlisted method is 405, a listed one is never 404/405.
    let app = TestApp::spawn().await;
    let (_, infos) = api::router(api::AppState::new(app.store.clone(), [0; 32]));
    let mut paths: Vec<&str> = infos.iter().map(|r| r.path).collect();
    paths.sort();
    paths.dedup();
    for p in paths {
        let listed: Vec<&str> = infos
            .iter()
            .filter(|r| r.path == p)
            .map(|r| r.method)
            .collect();
        let path = concrete(p, &app.project_id);
        for m in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
            let r = app
                .send(
                    Method::from_bytes(m.as_bytes()).unwrap(),
                    &path,
                    Some(&app.token),
                    Some(serde_json::json!({})),
                )
                .await;
            if listed.contains(&m) {
                assert!(
                    r.status != StatusCode::METHOD_NOT_ALLOWED
                        && r.body["error_code"] != "APIGW.0101",
                    "{m} {p}: {}",
                    r.raw
                );
            } else {
                assert_eq!(
                    r.status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{m} {p} is served but not in the route list: {}",
                    r.raw
                );
            }
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn aksk_works_end_to_end_and_can_be_disabled() {
    let app = TestApp::spawn().await;
    let c = admin_credential(&app).await;
    let now = app.clock_now();
    let path = app.v5("/customer-gateways");
    let body = br#"{"customer_gateway": {"id_value": "127.0.0.10"}}"#;
    let r = signed(
        &app,
        Method::POST,
        &path,
        body,
        (&c.ak, &c.sk),
        now,
        Some(&app.project_id),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
    let q = format!(
        "{path}?limit=1&cgw_id={}",
        r.body["customer_gateway"]["id"].as_str().unwrap()
    );
    let r = signed(
        &app,
        Method::GET,
        &q,
        b"",
        (&c.ak, &c.sk),
        now,
        Some(&app.project_id),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert_eq!(r.body["total_count"], 1);
    // A tampered body fails.
    let host = app.base.trim_start_matches("http://").to_string();
    let date = auth::signature::format_sdk_date(now);
    let req = auth::SignedRequest::new("POST", &path, "", body)
        .with_header("content-type", "application/json")
        .with_header("host", &host)
        .with_header("x-sdk-date", &date);
    let authz = auth::sign_request(&c.ak, c.sk.as_bytes(), &req).unwrap();
    let rb = app
        .client
        .post(format!("{}{path}", app.base))
        .header("Content-Type", "application/json")
        .header("X-Sdk-Date", date)
        .header("Authorization", authz)
        .body(br#"{"customer_gateway": {"id_value": "127.0.0.11"}}"#.to_vec());
    let m = TestApp::finish(rb).await.assert_error(401, "APIGW.0301");
    assert!(m.contains("signature"), "{m}");
    // Disabled credential.
    app.store
        .set_credential_enabled(&c.ak, false)
        .await
        .unwrap();
    let m = signed(&app, Method::GET, &path, b"", (&c.ak, &c.sk), now, None)
        .await
        .assert_error(401, "APIGW.0301");
    assert!(m.contains("disabled"), "{m}");
    // A user without a role in the project: 403.
    let d = app.store.find_domain("vpnmon").await.unwrap().unwrap();
    let hash = auth::password::hash_password("Lonely-pass-1").unwrap();
    let u = app.store.create_user(&d.id, "lonely", &hash).await.unwrap();
    let key = app.master_key().await;
    let (ak, sk) = (
        auth::credential::generate_access_key(),
        auth::credential::generate_secret_key(),
    );
    app.store
        .insert_credential(&store::CredentialRecord {
            access: ak.clone(),
            user_id: u.id,
            sealed_secret: auth::credential::seal_secret(&key, &ak, &sk),
            enabled: true,
            description: String::new(),
            created_us: 0,
        })
        .await
        .unwrap();
    signed(&app, Method::GET, &path, b"", (&ak, &sk), now, None)
        .await
        .assert_error(403, "VPN.0003");
    app.stop().await;
}

#[tokio::test]
async fn aksk_signature_failures_are_rate_limited_per_access_key() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) =
        crate::helpers::TestApp::spawn_with(dir, |s| s.login_max_failures_per_address = 4, false)
            .await;
    let c = admin_credential(&app).await;
    let other = admin_credential(&app).await;
    let now = app.clock_now();
    let path = app.v5("/vpn-gateways");
    let wrong_sk = format!("{}x", c.sk);
    for _ in 0..4 {
        signed(&app, Method::GET, &path, b"", (&c.ak, &wrong_sk), now, None)
            .await
            .assert_error(401, "APIGW.0301");
    }
    // Blocked now, even with the right secret.
    let m = signed(&app, Method::GET, &path, b"", (&c.ak, &c.sk), now, None)
        .await
        .assert_error(429, "APIGW.0308");
    assert!(m.contains("access key"), "{m}");
    assert!(!m.contains(&c.ak), "the key is not echoed: {m}");
    // Another key of the same user is not.
    let r = signed(
        &app,
        Method::GET,
        &path,
        b"",
        (&other.ak, &other.sk),
        now,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    // After the lockout, the key works again.
    app.clock.advance(chrono::Duration::minutes(15));
    let later = app.clock_now();
    let r = signed(&app, Method::GET, &path, b"", (&c.ak, &c.sk), later, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    app.stop().await;
}
