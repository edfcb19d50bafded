//! Runs one conformance case against one engine, on a store of its own:
//! SQLite in a fresh temporary directory, PostgreSQL in a fresh database
//! (created on the server named by `VPNMON_TEST_DATABASE_URL`, dropped after
//! the case, also when the case panics).

use chrono::{DateTime, Utc};
use domain::time::Clock;
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use store::SqlStore;
use tokio::sync::{Semaphore, SemaphorePermit};

/// The suite's clock: the store's `created_at` and `updated_at` come from
/// it, and the cases read the same time through [`now`]. It stands still
/// (at the first reading, to the millisecond) unless a case moves it on
/// with [`advance_ms`], so a case knows every timestamp the store writes.
pub struct SuiteClock;

static START_MS: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
static OFFSET_MS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// The suite clock's time.
pub fn now() -> DateTime<Utc> {
    let start = *START_MS.get_or_init(|| Utc::now().timestamp_millis());
    let ms = start + OFFSET_MS.load(std::sync::atomic::Ordering::SeqCst);
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// Moves the suite clock on (for every case: cases only ever need time to
/// pass, never to stand at a particular instant).
#[allow(
    dead_code,
    reason = "every suite that includes the harness has the clock; not every one moves it"
)]
pub fn advance_ms(ms: i64) {
    OFFSET_MS.fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
}

impl Clock for SuiteClock {
    fn now(&self) -> DateTime<Utc> {
        now()
    }
}

/// The environment variable naming the PostgreSQL server to test against.
pub const PG_ENV: &str = "VPNMON_TEST_DATABASE_URL";

/// How many PostgreSQL cases run at once: each store's pool may open 16
/// connections, and a server allows 100 by default, however many cores
/// the test runner has.
static PG_SLOTS: Semaphore = Semaphore::const_new(4);

/// The future a case returns.
pub type CaseFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// The engines every case runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// A database of one test: where it lives and how to open it again.
pub struct TestDb {
    place: Place,
    _slot: Option<SemaphorePermit<'static>>,
}

enum Place {
    Sqlite(tempfile::TempDir),
    Postgres {
        /// The URL from the environment, to create and drop databases through.
        admin_url: String,
        /// This test's database.
        name: String,
        url: String,
    },
}

impl TestDb {
    /// A fresh database on `engine`, or `None` (having said why) when the
    /// engine is not available.
    async fn create(engine: Engine) -> Option<TestDb> {
        match engine {
            Engine::Sqlite => {
                let dir = tempfile::tempdir().expect("create a temporary directory");
                Some(TestDb {
                    place: Place::Sqlite(dir),
                    _slot: None,
                })
            }
            Engine::Postgres => {
                let Ok(admin_url) = std::env::var(PG_ENV) else {
                    eprintln!("skipping PostgreSQL: {PG_ENV} not set (see .ci/pg-setup.sh)");
                    return None;
                };
                let slot = PG_SLOTS
                    .acquire()
                    .await
                    .expect("the semaphore is never closed");
                let name = format!("vpnmon_t_{}", uuid::Uuid::new_v4().simple());
                let mut admin = PgConnection::connect(&admin_url)
                    .await
                    .unwrap_or_else(|e| panic!("connect to {PG_ENV}: {e}"));
                sqlx::query(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                    .execute(&mut admin)
                    .await
                    .unwrap_or_else(|e| panic!("create database {name}: {e}"));
                admin.close().await.ok();
                let url = with_database(&admin_url, &name);
                Some(TestDb {
                    place: Place::Postgres {
                        admin_url,
                        name,
                        url,
                    },
                    _slot: Some(slot),
                })
            }
        }
    }

    /// The PostgreSQL URL of this database (`None` on SQLite), for cases
    /// that look at the server's catalog.
    #[allow(
        dead_code,
        reason = "not every suite that includes the harness reads the catalog"
    )]
    pub fn postgres_url(&self) -> Option<&str> {
        match &self.place {
            Place::Sqlite(_) => None,
            Place::Postgres { url, .. } => Some(url),
        }
    }

    /// The URL of this database (SQLite: its file in the data directory).
    #[allow(
        dead_code,
        reason = "not every suite that includes the harness opens it raw"
    )]
    pub fn url(&self) -> String {
        match &self.place {
            Place::Sqlite(dir) => format!("sqlite://{}?mode=rwc", self.sqlite_file(dir).display()),
            Place::Postgres { url, .. } => url.clone(),
        }
    }

    /// The SQLite database file (`None` on PostgreSQL).
    #[allow(
        dead_code,
        reason = "not every suite that includes the harness opens it raw"
    )]
    pub fn sqlite_path(&self) -> Option<std::path::PathBuf> {
        match &self.place {
            Place::Sqlite(dir) => Some(self.sqlite_file(dir)),
            Place::Postgres { .. } => None,
        }
    }

    #[allow(
        dead_code,
        reason = "not every suite that includes the harness opens it raw"
    )]
    fn sqlite_file(&self, dir: &tempfile::TempDir) -> std::path::PathBuf {
        dir.path().join("vpnmon.db")
    }

    /// Opens (and migrates) a store on this database; can be called again
    /// after closing the previous store.
    pub async fn open(&self) -> SqlStore {
        match &self.place {
            Place::Sqlite(dir) => SqlStore::open_data_dir(dir.path()).await,
            Place::Postgres { url, .. } => SqlStore::open(url).await,
        }
        .map(|s| s.with_clock(Arc::new(SuiteClock)))
        .expect("open the store")
    }

    async fn destroy(self) {
        if let Place::Postgres {
            admin_url, name, ..
        } = self.place
        {
            let mut admin = PgConnection::connect(&admin_url)
                .await
                .unwrap_or_else(|e| panic!("connect to {PG_ENV}: {e}"));
            // FORCE ends the case's own connections; an autovacuum worker on
            // the fresh database belongs to the superuser and cannot be ended
            // by this role ("must be a member of the role whose process is
            // being terminated"), so wait for it and try again.
            let mut tries = 0;
            loop {
                let r = sqlx::query(AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                )))
                .execute(&mut admin)
                .await;
                match r {
                    Ok(_) => break,
                    Err(e) if tries < 20 => {
                        tries += 1;
                        eprintln!("drop database {name}: {e}; retrying");
                        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                    }
                    Err(e) => panic!("drop database {name}: {e}"),
                }
            }
            admin.close().await.ok();
        }
    }
}

/// `url` with its database (path) replaced by `db`, keeping any query.
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{db}", &base[..path_start]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// Runs `case` on its own store and engine; the database is removed after
/// the case even when it (or opening the store) panics, and the panic is
/// passed on.
pub async fn run_store<F>(engine: Engine, case: F)
where
    F: for<'a> FnOnce(&'a SqlStore) -> CaseFuture<'a> + Send + 'static,
{
    run_db(engine, move |db| {
        Box::pin(async move {
            let store = db.open().await;
            case(&store).await;
            store.close().await;
        })
    })
    .await;
}

/// Runs `case`, which opens and closes stores itself, on its own database.
pub async fn run_db<F>(engine: Engine, case: F)
where
    F: for<'a> FnOnce(&'a TestDb) -> CaseFuture<'a> + Send + 'static,
{
    let Some(db) = TestDb::create(engine).await else {
        return;
    };
    let db = Arc::new(db);
    let for_case = Arc::clone(&db);
    let outcome = tokio::spawn(async move { case(&for_case).await }).await;
    match Arc::try_unwrap(db) {
        Ok(db) => db.destroy().await,
        Err(_) => eprintln!("leaving the test database behind: the case still holds it"),
    }
    finish(outcome);
}

fn finish(outcome: Result<(), tokio::task::JoinError>) {
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("case task failed: {e}"),
        }
    }
}

/// Generates one `#[tokio::test]` per case and engine: `sqlite::<case>` and
/// `postgres::<case>`. `store` cases take a `&SqlStore`; `db` cases take a
/// `&TestDb` and open stores themselves.
macro_rules! on_every_engine {
    (store: [$($case:ident),* $(,)?], db: [$($db_case:ident),* $(,)?] $(,)?) => {
        on_every_engine!(@engine sqlite, Sqlite, [$($case),*], [$($db_case),*]);
        on_every_engine!(@engine postgres, Postgres, [$($case),*], [$($db_case),*]);
    };
    (@engine $module:ident, $engine:ident, [$($case:ident),*], [$($db_case:ident),*]) => {
        mod $module {
            use crate::harness::{run_db, run_store, Engine};
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    run_store(Engine::$engine, |s| Box::pin(crate::$case(s))).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $db_case() {
                    run_db(Engine::$engine, |db| Box::pin(crate::$db_case(db))).await;
                }
            )*
        }
    };
}
pub(crate) use on_every_engine;
