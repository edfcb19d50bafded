//! Read-only looks at a store for `vpnmon doctor`: what it holds that the
//! checks need, without migrating, locking or writing anything.

use domain::DomainError;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

/// What a store holds that the doctor's checks need.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StoreFacts {
    /// Connection monitors (0 in a store never migrated).
    pub monitors: u64,
    /// The EIP pool's addresses.
    pub pool: Vec<IpAddr>,
    /// Bytes of the SQLite file and its WAL (0 on PostgreSQL).
    pub bytes: u64,
    /// PostgreSQL's `server_version_num` (`None` on SQLite).
    pub server_version: Option<i64>,
}

async fn read_facts(pool: &sqlx::AnyPool) -> StoreFacts {
    // A store that was never migrated has no tables yet: nothing in it.
    let monitors: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM connection_monitors")
        .fetch_one(pool)
        .await
        .unwrap_or(0);
    let addresses: Vec<String> = sqlx::query_scalar("SELECT address FROM eips")
        .fetch_all(pool)
        .await
        .unwrap_or_default();
    StoreFacts {
        monitors: monitors.max(0) as u64,
        pool: addresses.iter().filter_map(|a| a.parse().ok()).collect(),
        bytes: 0,
        server_version: None,
    }
}

/// The SQLite database `db`, opened read-only.
pub async fn inspect_sqlite(db: &Path) -> Result<StoreFacts, DomainError> {
    sqlx::any::install_default_drivers();
    let url = format!("sqlite://{}?mode=ro", db.display());
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&url)
        .await
        .map_err(super::internal)?;
    let ok: Result<String, _> = sqlx::query_scalar("PRAGMA quick_check")
        .fetch_one(&pool)
        .await;
    let mut facts = read_facts(&pool).await;
    pool.close().await;
    match ok {
        Ok(s) if s == "ok" => {}
        Ok(s) => {
            return Err(DomainError::Internal(format!(
                "damaged (SQLite's check: {s})"
            )));
        }
        Err(e) => return Err(super::internal(e)),
    }
    for suffix in ["", "-wal"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        facts.bytes += std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
    }
    Ok(facts)
}

/// Why a PostgreSQL server could not be inspected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostgresTrouble {
    /// Refused, authentication failed, no such database, ...
    Unreachable(String),
    /// No answer within the time given.
    NoAnswer(Duration),
}

/// The PostgreSQL server at `url`: its version and what the store holds.
pub async fn inspect_postgres(url: &str, wait: Duration) -> Result<StoreFacts, PostgresTrouble> {
    sqlx::any::install_default_drivers();
    let url = super::with_socket_host(url);
    // One attempt (a pool would retry a refused connection until its
    // timeout, hiding the reason).
    let connect = <sqlx::AnyConnection as sqlx::Connection>::connect(&url);
    let mut conn = match tokio::time::timeout(wait, connect).await {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => return Err(PostgresTrouble::Unreachable(e.to_string())),
        Err(_) => return Err(PostgresTrouble::NoAnswer(wait)),
    };
    let version: Option<String> = sqlx::query_scalar("SHOW server_version_num")
        .fetch_one(&mut conn)
        .await
        .ok();
    let monitors: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM connection_monitors")
        .fetch_one(&mut conn)
        .await
        .unwrap_or(0);
    let addresses: Vec<String> = sqlx::query_scalar("SELECT address FROM eips")
        .fetch_all(&mut conn)
        .await
        .unwrap_or_default();
    let _ = sqlx::Connection::close(conn).await;
    let mut facts = StoreFacts {
        monitors: monitors.max(0) as u64,
        pool: addresses.iter().filter_map(|a| a.parse().ok()).collect(),
        ..StoreFacts::default()
    };
    facts.server_version = version.and_then(|v| v.trim().parse().ok());
    Ok(facts)
}
