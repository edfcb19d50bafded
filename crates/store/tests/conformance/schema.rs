//! The schema version check, online backup and restore.

use crate::harness::TestDb;
use sqlx::AssertSqlSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use store::SqlStore;
use store::prelude::*;

/// The migrations recorded in the database at `url`, newest first.
async fn recorded_versions(url: &str) -> Vec<i64> {
    sqlx::any::install_default_drivers();
    let c = sqlx::AnyPool::connect(url).await.expect("connect");
    let v: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version DESC")
            .fetch_all(&c)
            .await
            .expect("read the migrations");
    c.close().await;
    v
}

pub(crate) async fn a_database_a_newer_vpnmon_migrated_is_refused_untouched(db: &TestDb) {
    let store = db.open().await;
    let d = store.create_domain("kept").await.unwrap();
    store.close().await;
    drop(store);
    let url = db.url();
    let newer = store::schema_version() + 1;
    assert_eq!(recorded_versions(&url).await[0], store::schema_version());
    // What a newer vpnmon would have left: one migration more.
    let checksum = if db.postgres_url().is_some() {
        "'\\x00'::bytea"
    } else {
        "X'00'"
    };
    let c = sqlx::AnyPool::connect(&url).await.expect("connect");
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES ({newer}, 'from a newer vpnmon', TRUE, {checksum}, 0)"
    )))
    .execute(&c)
    .await
    .expect("record a newer migration");
    c.close().await;

    let err = match SqlStore::open(&url).await {
        Ok(_) => panic!("a database of schema {newer} opened"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains(&format!("schema version {newer}, newer than this vpnmon")),
        "{err}"
    );
    assert!(err.contains("restore a backup"), "says what to do: {err}");
    assert_eq!(
        recorded_versions(&url).await[0],
        newer,
        "the refused database is left as it was"
    );
    // Back to this binary's schema, it opens with its data.
    let c = sqlx::AnyPool::connect(&url).await.expect("connect");
    sqlx::query(AssertSqlSafe(format!(
        "DELETE FROM _sqlx_migrations WHERE version = {newer}"
    )))
    .execute(&c)
    .await
    .unwrap();
    c.close().await;
    let store = db.open().await;
    assert_eq!(store.find_domain("kept").await.unwrap(), Some(d));
    store.close().await;
}

pub(crate) async fn backup_under_write_load_holds_every_acknowledged_write(db: &TestDb) {
    let store = db.open().await;
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("backup.db");
    let Some(live) = db.sqlite_path() else {
        // PostgreSQL: the store says to use pg_dump and writes nothing.
        let err = store.backup_to(&file).await.unwrap_err().to_string();
        assert!(err.contains("pg_dump"), "{err}");
        assert!(!file.exists());
        store.close().await;
        return;
    };
    let d = store.create_domain("load").await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicUsize::new(0));
    let acked = Arc::new(std::sync::Mutex::new(Vec::<usize>::new()));
    let writer = {
        let (store, stop, started, acked, d) = (
            store.clone(),
            stop.clone(),
            started.clone(),
            acked.clone(),
            d.clone(),
        );
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                started.store(n, Ordering::SeqCst);
                store
                    .create_project(&d.id, &format!("p-{n}"))
                    .await
                    .unwrap();
                acked.lock().unwrap().push(n);
            }
        })
    };
    while acked.lock().unwrap().len() < 50 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let before = acked.lock().unwrap().len();
    let report = store.backup_to(&file).await.expect("back up while writing");
    let sent_by_end = started.load(Ordering::SeqCst);
    while acked.lock().unwrap().len() < sent_by_end + 50 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    stop.store(true, Ordering::SeqCst);
    writer.await.unwrap();
    let total = acked.lock().unwrap().len();
    assert_eq!(report.path, file);
    assert_eq!(report.schema_version, store::schema_version());
    let in_backup = report
        .rows
        .iter()
        .find(|(t, _)| t == "projects")
        .map(|(_, n)| *n as usize)
        .expect("the report counts projects");
    assert!(
        before <= in_backup && in_backup <= sent_by_end,
        "{in_backup} projects in the backup: {before} were acknowledged before it began, \
         {sent_by_end} sent by its end"
    );
    assert!(
        store
            .backup_to(&file)
            .await
            .unwrap_err()
            .to_string()
            .contains("exists"),
        "a backup never overwrites"
    );

    // No restore while the store is open.
    let err = store::restore_sqlite(&file, &live)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("stop it first"), "{err}");
    assert_eq!(
        store.list_projects().await.unwrap().len(),
        total,
        "untouched"
    );
    store.close().await;
    drop(store);

    let r = store::restore_sqlite(&file, &live).await.expect("restore");
    let previous = r.previous.expect("the live database moved aside");
    assert!(previous.exists());
    let store = db.open().await;
    let names: std::collections::HashSet<String> = store
        .list_projects()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names.len(), in_backup);
    for n in 1..=before {
        assert!(
            names.contains(&format!("p-{n}")),
            "p-{n} acknowledged before the backup is lost"
        );
    }
    for name in &names {
        let n: usize = name.strip_prefix("p-").unwrap().parse().unwrap();
        assert!(n <= sent_by_end, "{name} was sent after the backup ended");
    }
    store.close().await;
    // The database it replaced still holds everything written.
    let old = SqlStore::open(&format!("sqlite://{}?mode=ro", previous.display()))
        .await
        .expect("open the moved-aside database");
    assert_eq!(old.list_projects().await.unwrap().len(), total);
    old.close().await;
}
