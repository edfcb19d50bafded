//! Everything acknowledged survives a restart on the same data directory.

use crate::helpers::{ADMIN_PASSWORD, TestApp};
use reqwest::StatusCode;

#[tokio::test]
async fn restart_keeps_everything() {
    let app = TestApp::spawn().await;
    let (g, c, conn, m) = app.seed().await;
    let before: Vec<_> = [
        format!("/vpn-gateways/{g}"),
        format!("/customer-gateways/{c}"),
        format!("/vpn-connection/{conn}"),
        format!("/connection-monitors/{m}"),
    ]
    .into_iter()
    .collect();
    let mut bodies = Vec::new();
    for p in &before {
        let r = app.get(p).await;
        bodies.push(
            r.body
                .as_object()
                .unwrap()
                .iter()
                .filter(|(k, _)| *k != "request_id")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<Vec<_>>(),
        );
    }
    let project = app.project_id.clone();
    let dir = app.stop().await;

    let app = TestApp::spawn_in(dir).await;
    assert_eq!(app.project_id, project, "same project after restart");
    for (p, want) in before.iter().zip(bodies) {
        let r = app.get(p).await;
        assert_eq!(r.status, StatusCode::OK, "{p}");
        let got: Vec<_> = r
            .body
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| *k != "request_id")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(got, want, "{p}");
    }
    // The bootstrap admin was not created twice, and the old password still works.
    let (_, p) = app
        .login("vpnmon", "admin", ADMIN_PASSWORD, "local-1")
        .await;
    assert_eq!(p, project);
    app.stop().await;
}
