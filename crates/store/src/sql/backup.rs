//! Online backup, restore into a stopped data directory, and the schema
//! version check that keeps a binary off a database a newer one wrote.
//!
//! A backup of the SQLite store is `VACUUM INTO` a new file: one read
//! transaction, so it is a consistent snapshot taken while the server
//! writes (WAL readers do not block the writer, nor it them), compact, and
//! a plain database that SQLite opens as it is. It is written beside the
//! target and renamed into place once synced, so a backup that fails
//! half-way leaves no file that looks whole. PostgreSQL has its own tools
//! for this (`pg_dump`), which [`BACKUP_POSTGRES`] names.
//!
//! Every process that opens a SQLite store holds a shared lock on
//! `<database>.lock`; a restore takes it exclusively, so it refuses while a
//! server (or an admin command) has the store open, and a server does not
//! start while a restore is replacing the file.

use super::{Backend, SqlStore};
use crate::Result;
use domain::DomainError;
use sqlx::Row;
use sqlx::migrate::Migrator;
use std::fs::File;
use std::path::{Path, PathBuf};

/// What the operator runs instead when the store is PostgreSQL.
pub const BACKUP_POSTGRES: &str = "a PostgreSQL store is backed up with PostgreSQL's own tools, consistent while vpnmon serves: \
     pg_dump --format=custom --file=vpnmon.dump 'postgres://USER@HOST/DB'; restore into an empty \
     database with pg_restore --dbname='postgres://USER@HOST/DB' vpnmon.dump, then start vpnmon on it";

fn io(what: &str, path: &Path, e: std::io::Error) -> DomainError {
    DomainError::Internal(format!("{what} {}: {e}", path.display()))
}

/// The migrations this binary carries, by engine.
pub(crate) fn migrator(backend: Backend) -> Migrator {
    match backend {
        Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
        Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
    }
}

/// The newest schema version this binary knows (the same number on both
/// engines: their migrations are numbered alike).
pub fn schema_version() -> i64 {
    migrator(Backend::Sqlite)
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap_or(0)
}

/// The message for a database whose schema is `found`, newer than this
/// binary's.
fn newer_schema(found: i64) -> DomainError {
    DomainError::Internal(format!(
        "the database has schema version {found}, newer than this vpnmon {} knows (version {}): \
         it was written by a newer vpnmon. Run that version (or newer) on it, or restore a backup \
         taken before the upgrade; this binary does not touch it",
        env!("CARGO_PKG_VERSION"),
        schema_version()
    ))
}

/// The newest migration applied to the database on `c`, `None` for a
/// database that vpnmon never migrated (an empty one).
async fn applied_version(c: &sqlx::AnyPool, backend: Backend) -> Result<Option<i64>> {
    let exists = match backend {
        Backend::Sqlite => {
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'"
        }
        Backend::Postgres => {
            "SELECT COUNT(*) FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations'"
        }
    };
    let n: i64 = sqlx::query_scalar(exists)
        .fetch_one(c)
        .await
        .map_err(super::internal)?;
    if n == 0 {
        return Ok(None);
    }
    let v: Option<i64> =
        sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(c)
            .await
            .map_err(super::internal)?;
    Ok(v)
}

/// Refuses a database that a newer vpnmon migrated, before any migration
/// of this binary runs on it.
pub(crate) async fn refuse_newer(c: &sqlx::AnyPool, backend: Backend) -> Result<()> {
    match applied_version(c, backend).await? {
        Some(v) if v > schema_version() => Err(newer_schema(v)),
        _ => Ok(()),
    }
}

/// The SQLite file a `sqlite:` URL names (`None`: in memory).
pub(crate) fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or("");
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

/// The lock file of database `db`.
fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

fn open_lock(db: &Path) -> Result<File> {
    let path = lock_path(db);
    let mut o = std::fs::OpenOptions::new();
    o.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(&path)
        .map_err(|e| io("open the lock file", &path, e))
}

/// The shared lock that an open SQLite store holds for its lifetime.
pub(crate) fn lock_shared(db: &Path) -> Result<File> {
    if let Some(parent) = db.parent().filter(|p| !p.as_os_str().is_empty())
        && !parent.exists()
    {
        // SQLite reports the missing directory itself, in its own words.
        return Err(DomainError::Internal(format!(
            "the database's directory {} does not exist",
            parent.display()
        )));
    }
    let f = open_lock(db)?;
    match f.try_lock_shared() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(DomainError::Internal(format!(
            "{} is being restored (vpnmon admin restore holds {}): start vpnmon when it is done",
            db.display(),
            lock_path(db).display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(io("lock", &lock_path(db), e)),
    }
}

/// What a backup or restore wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupReport {
    /// The file written.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// The schema version it holds.
    pub schema_version: i64,
    /// Rows in its main tables, by table (for the operator's eye).
    pub rows: Vec<(String, i64)>,
    /// The database that a restore moved aside.
    pub previous: Option<PathBuf>,
}

/// The tables whose row counts a report shows.
const COUNTED: &[&str] = &[
    "projects",
    "vpn_gateways",
    "customer_gateways",
    "vpn_connections",
    "connection_monitors",
    "alarms",
    "smn_topics",
    "smn_subscriptions",
];

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("sync", dir, e))
}

fn parent_of(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Opens `file` read-only and checks that it is a whole vpnmon database
/// this binary can open: SQLite's integrity check passes, it was migrated
/// by vpnmon, and not by a newer one. Returns its version and row counts.
async fn check_backup(file: &Path) -> Result<(i64, Vec<(String, i64)>)> {
    sqlx::any::install_default_drivers();
    let url = format!("sqlite://{}?mode=ro", file.display());
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .map_err(|e| DomainError::Internal(format!("{} is not a database: {e}", file.display())))?;
    let result = async {
        let not_db = |e: sqlx::Error| {
            DomainError::Internal(format!("{} is not a vpnmon database: {e}", file.display()))
        };
        let ok: String = sqlx::query_scalar("PRAGMA quick_check")
            .fetch_one(&pool)
            .await
            .map_err(not_db)?;
        if ok != "ok" {
            return Err(DomainError::Internal(format!(
                "{} is damaged (SQLite's check: {ok})",
                file.display()
            )));
        }
        let Some(version) = applied_version(&pool, Backend::Sqlite).await? else {
            return Err(DomainError::Internal(format!(
                "{} is not a vpnmon database (it has no vpnmon schema)",
                file.display()
            )));
        };
        if version > schema_version() {
            return Err(newer_schema(version));
        }
        let mut rows = Vec::new();
        for t in COUNTED {
            let q = format!("SELECT COUNT(*) FROM {t}");
            if let Ok(r) = sqlx::query(sqlx::AssertSqlSafe(q)).fetch_one(&pool).await {
                rows.push((t.to_string(), r.try_get::<i64, _>(0).unwrap_or(0)));
            }
        }
        Ok((version, rows))
    }
    .await;
    pool.close().await;
    result
}

impl SqlStore {
    /// Writes a consistent copy of the SQLite store to `dest`, while it
    /// serves. `dest` must not exist. A PostgreSQL store is refused with
    /// [`BACKUP_POSTGRES`].
    pub async fn backup_to(&self, dest: &Path) -> Result<BackupReport> {
        if self.backend == Backend::Postgres {
            return Err(DomainError::Invalid(BACKUP_POSTGRES.to_string()));
        }
        if dest.exists() {
            return Err(DomainError::Invalid(format!(
                "{} exists: give a new file name (a backup never overwrites)",
                dest.display()
            )));
        }
        let dir = parent_of(dest);
        let mut partial = dest.as_os_str().to_owned();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        match std::fs::remove_file(&partial) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("remove the stale", &partial, e)),
        }
        let path = partial
            .to_str()
            .ok_or_else(|| DomainError::Invalid("the backup path is not UTF-8".into()))?;
        let done = sqlx::query("VACUUM INTO $1")
            .bind(path.to_string())
            .execute(&self.read)
            .await;
        if let Err(e) = done {
            let _ = std::fs::remove_file(&partial);
            return Err(DomainError::Internal(format!(
                "backup into {}: {e}",
                dest.display()
            )));
        }
        let finish = || -> Result<()> {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o600))
                    .map_err(|e| io("make private", &partial, e))?;
            }
            File::open(&partial)
                .and_then(|f| f.sync_all())
                .map_err(|e| io("sync", &partial, e))?;
            Ok(())
        };
        if let Err(e) = finish() {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
        let (schema_version, rows) = match check_backup(&partial).await {
            Ok(v) => v,
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                return Err(e);
            }
        };
        std::fs::rename(&partial, dest).map_err(|e| io("rename into", dest, e))?;
        sync_dir(&dir)?;
        let bytes = std::fs::metadata(dest)
            .map_err(|e| io("stat", dest, e))?
            .len();
        Ok(BackupReport {
            path: dest.to_path_buf(),
            bytes,
            schema_version,
            rows,
            previous: None,
        })
    }
}

/// Replaces the SQLite database `db` with the backup `src`, which must be
/// whole and no newer than this binary. Refuses while any process has
/// `db` open (the server's lock). The database it replaces, with its WAL,
/// is moved aside to `<db>.before-restore-<UTC time>`, never deleted. The
/// next start migrates the restored file as it would any older database.
pub async fn restore_sqlite(src: &Path, db: &Path) -> Result<BackupReport> {
    let (schema_version, rows) = check_backup(src).await?;
    let dir = parent_of(db);
    if !dir.is_dir() {
        return Err(DomainError::Invalid(format!(
            "the data directory {} does not exist",
            dir.display()
        )));
    }
    let lock = open_lock(db)?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(DomainError::Invalid(format!(
                "{} is open in a running vpnmon (serve or an admin command): stop it first \
                 (systemctl stop vpnmon), then restore",
                db.display()
            )));
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io("lock", &lock_path(db), e)),
    }
    let mut incoming = db.as_os_str().to_owned();
    incoming.push(".restoring");
    let incoming = PathBuf::from(incoming);
    let copy = || -> Result<()> {
        let mut from = File::open(src).map_err(|e| io("open", src, e))?;
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        let mut to = o.open(&incoming).map_err(|e| io("create", &incoming, e))?;
        std::io::copy(&mut from, &mut to).map_err(|e| io("copy into", &incoming, e))?;
        to.sync_all().map_err(|e| io("sync", &incoming, e))
    };
    if let Err(e) = copy() {
        let _ = std::fs::remove_file(&incoming);
        return Err(e);
    }
    let mut previous = None;
    if db.exists() {
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
        let mut aside = db.as_os_str().to_owned();
        aside.push(format!(".before-restore-{stamp}"));
        let aside = PathBuf::from(aside);
        for suffix in ["-wal", "-shm"] {
            let mut from = db.as_os_str().to_owned();
            from.push(suffix);
            let from = PathBuf::from(from);
            if from.exists() {
                let mut to = aside.as_os_str().to_owned();
                to.push(suffix);
                std::fs::rename(&from, PathBuf::from(to))
                    .map_err(|e| io("move aside", &from, e))?;
            }
        }
        std::fs::rename(db, &aside).map_err(|e| io("move aside", db, e))?;
        previous = Some(aside);
    }
    std::fs::rename(&incoming, db).map_err(|e| io("rename into", db, e))?;
    sync_dir(&dir)?;
    drop(lock);
    let bytes = std::fs::metadata(db).map_err(|e| io("stat", db, e))?.len();
    Ok(BackupReport {
        path: db.to_path_buf(),
        bytes,
        schema_version,
        rows,
        previous,
    })
}
