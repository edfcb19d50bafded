//! The seam the probe engine plugs into: it hears about monitors, and the
//! status it writes shows in the API.

use crate::helpers::TestApp;

#[tokio::test]
async fn watcher_hears_creates_and_deletes_and_status_shows() {
    let app = TestApp::spawn().await;
    let (_, _, conn, m) = app.seed().await;
    {
        let created = app.watcher.created.lock().unwrap();
        assert_eq!(created.len(), 1);
        assert_eq!(created[0].id, m);
        assert_eq!(created[0].vpn_connection_id, conn);
        assert_eq!(created[0].source_ip, "127.0.0.2");
        assert_eq!(created[0].destination_ip, "127.0.0.10");
        assert_eq!(created[0].project_id, app.project_id);
    }
    let all = app.store.monitors_for_probing().await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].status, "PENDING_CREATE");
    let mid = domain::MonitorId::parse(&m).unwrap();
    assert!(app.store.set_monitor_status(&mid, "ACTIVE").await.unwrap());
    let r = app.get(&format!("/connection-monitors/{m}")).await;
    assert_eq!(r.body["connection_monitor"]["status"], "ACTIVE");
    assert_eq!(
        app.delete(&format!("/connection-monitors/{m}"))
            .await
            .status
            .as_u16(),
        204
    );
    assert_eq!(*app.watcher.deleted.lock().unwrap(), vec![m]);
    assert!(app.store.monitors_for_probing().await.unwrap().is_empty());
    app.stop().await;
}
