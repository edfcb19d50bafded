//! The SQL implementation of the store's traits over sqlx's `Any` driver:
//! the connection pools and the helpers every capability shares here, the
//! SQL of each capability in a module of its own.

mod alarms;
mod backup;
mod inspect;
pub use backup::{BACKUP_POSTGRES, BackupReport, restore_sqlite, schema_version};
pub use inspect::{PostgresTrouble, StoreFacts, inspect_postgres, inspect_sqlite};
pub(crate) mod buckets;
mod bulk;
mod identity;
mod measurements;
pub(crate) use measurements::window_point_from_row;
mod nodes;
mod outbox;
mod partitions;
mod probing;
mod resources;
mod topics;

use crate::Result;
use crate::resources::Page;
use domain::time::{Clock, SystemClock};
use domain::{DomainError, ProjectId, ResourceId};
use serde::de::DeserializeOwned;
use sqlx::AnyConnection;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, AssertSqlSafe, Row};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// Which engine a [`SqlStore`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// The store on SQLite or PostgreSQL.
#[derive(Clone)]
pub struct SqlStore {
    pub(crate) write: AnyPool,
    pub(crate) read: AnyPool,
    backend: Backend,
    clock: Arc<dyn Clock>,
    /// Bumped by every monitor deletion; `insert_points` drops points of
    /// deleted monitors only when it moved, instead of checking every batch.
    pub(crate) deletions: Arc<AtomicU64>,
    pub(crate) guarded: Arc<AtomicU64>,
    /// The rules that raw windows are evaluated against (`alarms.rs`).
    pub(crate) alarm_cache: Arc<tokio::sync::Mutex<alarms::RuleCache>>,
    /// A PostgreSQL store's URL (the monitor feed's own connection).
    pub(crate) url: Option<Arc<str>>,
    /// A SQLite store's shared lock on `<database>.lock`, held while any
    /// clone is alive (`backup.rs`: a restore waits for it).
    _lock: Option<Arc<std::fs::File>>,
}

pub(crate) fn internal(e: sqlx::Error) -> DomainError {
    DomainError::Internal(format!("database: {e}"))
}

pub(crate) fn parse<T: DeserializeOwned>(body: &str) -> Result<T> {
    serde_json::from_str(body).map_err(|e| DomainError::Internal(format!("stored record: {e}")))
}

pub(crate) fn json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| DomainError::Internal(format!("encode record: {e}")))
}

pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

/// A query whose SQL is assembled at run time, with numbered arguments.
#[derive(Default)]
pub(crate) struct Q {
    pub(crate) sql: String,
    pub(crate) args: Vec<Arg>,
}

pub(crate) enum Arg {
    S(String),
    I(i64),
}

impl Q {
    pub(crate) fn new(sql: &str) -> Self {
        Q {
            sql: sql.to_string(),
            args: Vec::new(),
        }
    }
    pub(crate) fn arg(&mut self, a: Arg) -> String {
        self.args.push(a);
        format!("${}", self.args.len())
    }
    pub(crate) fn push(&mut self, s: &str) -> &mut Self {
        self.sql.push_str(s);
        self
    }
    pub(crate) fn s(&mut self, v: &str) -> String {
        self.arg(Arg::S(v.to_string()))
    }
    pub(crate) fn i(&mut self, v: i64) -> String {
        self.arg(Arg::I(v))
    }
    pub(crate) fn build(&self) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments> {
        let mut q = sqlx::query(AssertSqlSafe(self.sql.clone()));
        for a in &self.args {
            q = match a {
                Arg::S(s) => q.bind(s.clone()),
                Arg::I(i) => q.bind(*i),
            };
        }
        q
    }
}

const SQLITE_PRAGMAS: &[&str] = &[
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = FULL",
    "PRAGMA foreign_keys = ON",
    "PRAGMA busy_timeout = 10000",
];

/// Creates the data directory readable by its owner only (0700) and the
/// database file 0600 before SQLite opens it (its `-wal` and `-shm` files
/// take the database's mode); an existing directory or database that
/// others can read is made private, with a warning.
pub fn private_data_dir(dir: &Path) -> Result<()> {
    let err = |what: &str, e: std::io::Error| {
        DomainError::Internal(format!("{what} {}: {e}", dir.display()))
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| err("create data dir", e))?;
        let tighten = |path: &Path, mode: u32| -> std::io::Result<()> {
            let meta = std::fs::metadata(path)?;
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(path = %path.display(), "others could read it: making it private (mode {mode:o})");
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
            }
            Ok(())
        };
        tighten(dir, 0o700).map_err(|e| err("make private", e))?;
        let db = dir.join("vpnmon.db");
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&db)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                for suffix in ["", "-wal", "-shm"] {
                    let f = dir.join(format!("vpnmon.db{suffix}"));
                    if f.exists() {
                        tighten(&f, 0o600).map_err(|e| err("make private", e))?;
                    }
                }
            }
            Err(e) => return Err(err("create the database in", e)),
        }
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir).map_err(|e| err("create data dir", e))?;
    Ok(())
}

impl SqlStore {
    /// Opens (creating if needed) the SQLite store `vpnmon.db` under `dir`.
    pub async fn open_data_dir(dir: &Path) -> Result<Self> {
        private_data_dir(dir)?;
        let file = dir.join("vpnmon.db");
        Self::open(&format!("sqlite://{}?mode=rwc", file.display())).await
    }

    /// Opens a store by URL (`sqlite://...` or `postgres://...`) and runs
    /// the migrations.
    pub async fn open(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(DomainError::Internal(format!(
                "unsupported database URL scheme (want sqlite:// or postgres://): {}",
                url.split(':').next().unwrap_or("")
            )));
        };
        let store = match backend {
            Backend::Sqlite => {
                let lock = match backup::sqlite_file(url) {
                    Some(f) => Some(Arc::new(backup::lock_shared(&f)?)),
                    None => None,
                };
                let opts = || {
                    AnyPoolOptions::new()
                        .acquire_timeout(Duration::from_secs(30))
                        .after_connect(|conn, _meta| {
                            Box::pin(async move {
                                for p in SQLITE_PRAGMAS {
                                    sqlx::query(*p).execute(&mut *conn).await?;
                                }
                                Ok(())
                            })
                        })
                };
                let write = opts()
                    .max_connections(1)
                    .connect(url)
                    .await
                    .map_err(internal)?;
                let read = opts()
                    .max_connections(4)
                    .connect(url)
                    .await
                    .map_err(internal)?;
                SqlStore {
                    write,
                    read,
                    backend,
                    clock: Arc::new(SystemClock),
                    deletions: Arc::default(),
                    guarded: Arc::default(),
                    alarm_cache: Arc::default(),
                    url: None,
                    _lock: lock,
                }
            }
            Backend::Postgres => {
                let url = with_socket_host(url);
                let pool = AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect(&url)
                    .await
                    .map_err(internal)?;
                SqlStore {
                    write: pool.clone(),
                    read: pool,
                    backend,
                    clock: Arc::new(SystemClock),
                    deletions: Arc::default(),
                    guarded: Arc::default(),
                    alarm_cache: Arc::default(),
                    url: Some(url.as_str().into()),
                    _lock: None,
                }
            }
        };
        backup::refuse_newer(&store.write, backend).await?;
        backup::migrator(backend)
            .run(&store.write)
            .await
            .map_err(|e| DomainError::Internal(format!("migrations: {e}")))?;
        Ok(store)
    }

    /// The same store on another clock (the API's, so that tests control
    /// all time: `created_at`, EIP binding, `updated_at`).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Now, in microseconds since the epoch, by the store's clock.
    pub(crate) fn now_us(&self) -> i64 {
        self.clock.now().timestamp_micros()
    }

    /// Now, as the wire shows it (`updated_at`).
    pub(crate) fn now_wire(&self) -> String {
        domain::time::wire_ms(self.clock.now())
    }

    /// The engine behind this store.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes the pools, flushing SQLite's WAL.
    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }
}

/// libpq's Unix-socket form `postgres://USER@/DB?host=/run/postgresql` has
/// an empty host, which URL parsers refuse ("empty host"); the `host`
/// query parameter names the socket directory and overrides the URL's
/// host, so a placeholder host is put in. Other URLs are kept as they are.
pub fn with_socket_host(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let has_socket = rest
        .split_once('?')
        .is_some_and(|(_, q)| q.split('&').any(|kv| kv.starts_with("host=/")));
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if !has_socket || !host.is_empty() {
        return url.to_string();
    }
    format!("{scheme}://{authority}localhost{}", &rest[end..])
}

// ---------- row helpers ----------

pub(crate) fn get<T>(row: &AnyRow, col: &str) -> Result<T>
where
    T: for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get::<T, _>(col).map_err(internal)
}

/// A typed id from a column (a stored id that does not parse is a damaged
/// store, reported as internal).
pub(crate) fn get_id<T: ResourceId>(row: &AnyRow, col: &str) -> Result<T> {
    let s: String = get(row, col)?;
    T::parse(&s).ok_or_else(|| DomainError::Internal(format!("stored {col} is not a UUID: {s:?}")))
}

/// An id from a column, parsed by `parse` (an id that does not parse is a
/// damaged store, reported as internal).
pub(crate) fn get_with<T>(row: &AnyRow, col: &str, parse: impl Fn(&str) -> Option<T>) -> Result<T> {
    let s: String = get(row, col)?;
    parse(&s).ok_or_else(|| DomainError::Internal(format!("stored {col} is not an id: {s:?}")))
}

/// A project id from a column.
pub(crate) fn get_project_id(row: &AnyRow, col: &str) -> Result<ProjectId> {
    let s: String = get(row, col)?;
    ProjectId::parse(&s)
        .ok_or_else(|| DomainError::Internal(format!("stored {col} is not a project id: {s:?}")))
}

impl SqlStore {
    /// One page of stored records: `from_where` is `" FROM table WHERE ..."`
    /// with its arguments; answers the records of `order` from `offset` on
    /// (at most `limit`) and how many there are in all, from one snapshot
    /// of one connection.
    pub(crate) async fn body_page<T: DeserializeOwned>(
        &self,
        mut from_where: Q,
        order: &str,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<T>, i64)> {
        let count = Q {
            sql: format!("SELECT COUNT(*) AS n{}", from_where.sql),
            args: clone_args(&from_where.args),
        };
        let mut c = self.read.acquire().await.map_err(internal)?;
        let total: i64 = get(
            &count.build().fetch_one(&mut *c).await.map_err(internal)?,
            "n",
        )?;
        from_where.sql = format!("SELECT body{}", from_where.sql);
        let l = from_where.i(limit.max(0));
        let o = from_where.i(offset.max(0));
        from_where.push(&format!(" ORDER BY {order} LIMIT {l} OFFSET {o}"));
        let rows = from_where
            .build()
            .fetch_all(&mut *c)
            .await
            .map_err(internal)?;
        let items = rows
            .iter()
            .map(|r| parse(&get::<String>(r, "body")?))
            .collect::<Result<Vec<T>>>()?;
        Ok((items, total))
    }
}

/// `created_at` as the wire shows it.
pub(crate) fn render_created(us: i64) -> String {
    domain::time::wire_ms(domain::time::from_micros(us))
}

/// The next `created_us` of a resource of project `p` in `table`: now (to
/// the millisecond) or one millisecond after the last one handed out,
/// whichever is later.
pub(crate) async fn next_created_us(
    c: &mut AnyConnection,
    table: &str,
    p: &ProjectId,
    now_us: i64,
) -> Result<i64> {
    reserve_created(c, &[table], p, now_us, 1).await
}

/// Reserves `n` consecutive markers (one millisecond apart) shared by every
/// table of `tables` for project `p`, and returns the first.
///
/// Millisecond steps, unique per project and table, so that `created_at`
/// (shown with milliseconds) is itself an exact pagination marker. The
/// uniqueness is the database's doing, not a read-then-write: each table's
/// counter row in `created_markers` is advanced by an atomic upsert, which
/// holds the row's lock until the transaction ends, so a concurrent create
/// on another node waits and then continues from the advanced value. Tables
/// are locked in name order, so two reservations never deadlock.
pub(crate) async fn reserve_created(
    c: &mut AnyConnection,
    tables: &[&str],
    p: &ProjectId,
    now_us: i64,
    n: i64,
) -> Result<i64> {
    let n = n.max(1);
    let span = (n - 1) * 1000;
    let now_ms_as_us = now_us / 1000 * 1000;
    let mut sorted = tables.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut first = now_ms_as_us;
    for table in &sorted {
        let row = sqlx::query(
            "INSERT INTO created_markers (project_id, tbl, last_us) VALUES ($1, $2, $3) \
             ON CONFLICT (project_id, tbl) DO UPDATE SET last_us = \
             CASE WHEN created_markers.last_us + $4 > excluded.last_us \
                  THEN created_markers.last_us + $4 ELSE excluded.last_us END \
             RETURNING last_us",
        )
        .bind(p.as_str().to_string())
        .bind((*table).to_string())
        .bind(now_ms_as_us + span)
        .bind(n * 1000)
        .fetch_one(&mut *c)
        .await
        .map_err(internal)?;
        let last: i64 = get(&row, "last_us")?;
        first = first.max(last - span);
    }
    if sorted.len() > 1 {
        // Every table's counter moves to the end of the shared range.
        for table in &sorted {
            sqlx::query(
                "UPDATE created_markers SET last_us = $1 \
                 WHERE project_id = $2 AND tbl = $3 AND last_us < $1",
            )
            .bind(first + span)
            .bind(p.as_str().to_string())
            .bind((*table).to_string())
            .execute(&mut *c)
            .await
            .map_err(internal)?;
        }
    }
    Ok(first)
}

pub(crate) fn clone_args(args: &[Arg]) -> Vec<Arg> {
    args.iter()
        .map(|a| match a {
            Arg::S(s) => Arg::S(s.clone()),
            Arg::I(i) => Arg::I(*i),
        })
        .collect()
}

pub(crate) fn push_in(q: &mut Q, col: &str, values: &[String]) {
    if values.is_empty() {
        return;
    }
    let params: Vec<String> = values.iter().map(|v| q.s(v)).collect();
    q.push(&format!(" AND {col} IN ({})", params.join(", ")));
}

pub(crate) fn page_limit(page: &Page, max: i64) -> i64 {
    match page.limit {
        Some(l) if l > 0 => l.min(max),
        _ => max,
    }
}

#[cfg(test)]
mod tests {
    use super::with_socket_host;

    #[test]
    fn a_unix_socket_url_gets_a_placeholder_host() {
        assert_eq!(
            with_socket_host("postgres://vpnmon@/vpnmon?host=/run/postgresql"),
            "postgres://vpnmon@localhost/vpnmon?host=/run/postgresql"
        );
        assert_eq!(
            with_socket_host("postgresql:///db?sslmode=disable&host=/tmp"),
            "postgresql://localhost/db?sslmode=disable&host=/tmp"
        );
        for kept in [
            "postgres://u:p@127.0.0.1:5432/db",
            "postgres://u@db.example/db?host=/run/postgresql",
            "postgres://u@/db",
        ] {
            assert_eq!(with_socket_host(kept), kept);
        }
    }
}
