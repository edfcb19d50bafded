//! Secrets at rest: a private data directory and database, and the SK
//! master key in a key file outside the database, moved there from stores
//! that still hold it.

use crate::helpers::TestApp;
use reqwest::{Method, StatusCode};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use store::IdentityStore;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn a_new_data_directory_is_private_and_the_key_is_outside_the_database() {
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("data");
    let dir = tempfile::TempDir::new_in(parent.path()).unwrap();
    let (app, _) = TestApp::spawn_with(dir, |s| s.data_dir = data.clone(), false).await;
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("vpnmon.db")), 0o600);
    // A write makes the WAL exist.
    app.cgw("127.0.0.40").await;
    assert_eq!(mode(&data.join("vpnmon.db-wal")), 0o600);
    let key = data.join("vpnmon.key");
    assert_eq!(mode(&key), 0o600);
    let text = std::fs::read_to_string(&key).unwrap();
    assert_eq!(text.trim().len(), 64, "{text}");
    assert_eq!(app.store.meta_get("sk_master_key").await, Ok(None));
    assert!(
        app.store
            .meta_get("sk_master_key_check")
            .await
            .unwrap()
            .is_some()
    );
    app.stop().await;
}

#[tokio::test]
async fn a_store_holding_its_key_has_it_moved_to_a_key_file_and_is_made_private() {
    let dir = tempfile::tempdir().unwrap();
    // The store as vpnmon kept it before: the key in `meta`, a sealed AK/SK
    // credential, files readable by all.
    let old_key = auth::credential::new_master_key();
    let (ak, sk) = (
        auth::credential::generate_access_key(),
        auth::credential::generate_secret_key(),
    );
    {
        let store = store::SqlStore::open_data_dir(dir.path()).await.unwrap();
        store
            .meta_get_or_init("sk_master_key", &hex::encode(old_key))
            .await
            .unwrap();
        let d = store.create_domain("vpnmon").await.unwrap();
        let p = store.create_project(&d.id, "local-1").await.unwrap();
        let hash = auth::password::hash_password(crate::helpers::ADMIN_PASSWORD).unwrap();
        let u = store.create_user(&d.id, "admin", &hash).await.unwrap();
        store.grant(&u.id, &p.id).await.unwrap();
        store
            .insert_credential(&store::CredentialRecord {
                access: ak.clone(),
                user_id: u.id,
                sealed_secret: auth::credential::seal_secret(&old_key, &ak, &sk),
                enabled: true,
                description: String::new(),
                created_us: 0,
            })
            .await
            .unwrap();
        store.close().await;
    }
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        dir.path().join("vpnmon.db"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let path = dir.path().to_path_buf();
    let app = TestApp::spawn_in(dir).await;
    assert_eq!(mode(&path), 0o700);
    assert_eq!(mode(&path.join("vpnmon.db")), 0o600);
    let file = std::fs::read_to_string(path.join("vpnmon.key")).unwrap();
    assert_eq!(file.trim(), hex::encode(old_key));
    assert_eq!(app.store.meta_get("sk_master_key").await, Ok(None));
    // The credential sealed with the old key still signs.
    let r = crate::sweep::signed(
        &app,
        Method::GET,
        &app.v5("/vpn-gateways"),
        b"",
        (&ak, &sk),
        app.clock_now(),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    let dir = app.stop().await;

    // Without the key file the store refuses to start, and says why.
    let key = dir.path().join("vpnmon.key");
    let saved = std::fs::read(&key).unwrap();
    std::fs::remove_file(&key).unwrap();
    let s = vpnmon::config::Settings {
        data_dir: dir.path().to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        probe: false,
        ..vpnmon::config::Settings::default()
    };
    let err = vpnmon::app::Application::build(&s, Default::default())
        .await
        .err()
        .expect("refused without the key file")
        .to_string();
    assert!(err.contains("vpnmon.key is missing"), "{err}");
    // With another key it refuses too.
    std::fs::write(&key, hex::encode(auth::credential::new_master_key())).unwrap();
    let err = vpnmon::app::Application::build(&s, Default::default())
        .await
        .err()
        .expect("refused with a wrong key")
        .to_string();
    assert!(err.contains("not the one that sealed"), "{err}");
    // The right key again: it starts.
    std::fs::write(&key, &saved).unwrap();
    let app = TestApp::spawn_in(dir).await;
    let dir = app.stop().await;
    // The key lost for good: once the credentials are deleted, a new key
    // is taken.
    std::fs::remove_file(&key).unwrap();
    {
        let store = store::SqlStore::open_data_dir(dir.path()).await.unwrap();
        assert_eq!(store.delete_credential(&ak).await, Ok(true));
        store.close().await;
    }
    let app = TestApp::spawn_in(dir).await;
    let fresh = std::fs::read(&key).unwrap();
    assert_ne!(fresh, saved);
    app.stop().await;
}
