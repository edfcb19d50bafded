//! The SQL implementation of [`Store`] over sqlx's `Any` driver.

use crate::buckets;
use crate::iam::{CredentialRecord, Domain, Project, TokenRecord, User};
use crate::probe::{LinkState, MonitorUpdate, ProbeMonitor, WindowPoint};
use crate::resources::{ConnectionFilter, Listed, Page};
use crate::{Result, Store};
use async_trait::async_trait;
use domain::connection::{self, CreateConnection, UpdateConnection, VpnConnection};
use domain::customer_gateway::{CustomerGateway, UpdateCgw};
use domain::eip::{Eip, EipRequest};
use domain::gateway::{GatewayPlan, UpdateVgw, VpnGateway};
use domain::monitor::{self, ConnectionMonitor};
use domain::{DomainError, ProjectId};
use serde::de::DeserializeOwned;
use sqlx::AnyConnection;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, AssertSqlSafe, Row};
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Which engine a [`SqlStore`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// [`Store`] on SQLite or PostgreSQL.
#[derive(Clone)]
pub struct SqlStore {
    pub(crate) write: AnyPool,
    pub(crate) read: AnyPool,
    backend: Backend,
    /// Bumped by every monitor deletion; `insert_points` drops points of
    /// deleted monitors only when it moved, instead of checking every batch.
    deletions: Arc<AtomicU64>,
    guarded: Arc<AtomicU64>,
}

pub(crate) fn internal(e: sqlx::Error) -> DomainError {
    DomainError::Internal(format!("database: {e}"))
}

fn parse<T: DeserializeOwned>(body: &str) -> Result<T> {
    serde_json::from_str(body).map_err(|e| DomainError::Internal(format!("stored record: {e}")))
}

pub(crate) fn json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| DomainError::Internal(format!("encode record: {e}")))
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

pub(crate) fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// A query whose SQL is assembled at run time, with numbered arguments.
#[derive(Default)]
struct Q {
    sql: String,
    args: Vec<Arg>,
}

enum Arg {
    S(String),
    I(i64),
}

impl Q {
    fn new(sql: &str) -> Self {
        Q {
            sql: sql.to_string(),
            args: Vec::new(),
        }
    }
    fn arg(&mut self, a: Arg) -> String {
        self.args.push(a);
        format!("${}", self.args.len())
    }
    fn push(&mut self, s: &str) -> &mut Self {
        self.sql.push_str(s);
        self
    }
    fn s(&mut self, v: &str) -> String {
        self.arg(Arg::S(v.to_string()))
    }
    fn i(&mut self, v: i64) -> String {
        self.arg(Arg::I(v))
    }
    fn build(&self) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments> {
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

impl SqlStore {
    /// Opens (creating if needed) the SQLite store `vpnmon.db` under `dir`.
    pub async fn open_data_dir(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| {
            DomainError::Internal(format!("create data dir {}: {e}", dir.display()))
        })?;
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
                    deletions: Arc::default(),
                    guarded: Arc::default(),
                }
            }
            Backend::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect(url)
                    .await
                    .map_err(internal)?;
                SqlStore {
                    write: pool.clone(),
                    read: pool,
                    backend,
                    deletions: Arc::default(),
                    guarded: Arc::default(),
                }
            }
        };
        let migrator = match backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
        };
        migrator
            .run(&store.write)
            .await
            .map_err(|e| DomainError::Internal(format!("migrations: {e}")))?;
        Ok(store)
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

// ---------- row helpers ----------

pub(crate) fn get<T>(row: &AnyRow, col: &str) -> Result<T>
where
    T: for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get::<T, _>(col).map_err(internal)
}

pub(crate) async fn next_created_us(
    c: &mut AnyConnection,
    table: &str,
    p: &ProjectId,
) -> Result<i64> {
    let mut q = Q::new(&format!(
        "SELECT COALESCE(MAX(created_us), 0) AS m FROM {table} WHERE project_id = "
    ));
    let a = q.s(p.as_str());
    q.push(&a);
    let row = q.build().fetch_one(&mut *c).await.map_err(internal)?;
    let max: i64 = get(&row, "m")?;
    // Millisecond steps, unique per project and table, so that `created_at`
    // (shown with milliseconds) is itself an exact pagination marker.
    let now_ms_as_us = now_us() / 1000 * 1000;
    Ok(now_ms_as_us.max(max + 1000))
}

/// Inserts a customer gateway's row (the API and the bulk path share it).
pub(crate) async fn insert_cgw_row(
    c: &mut AnyConnection,
    p: &ProjectId,
    created_us: i64,
    cgw: &CustomerGateway,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO customer_gateways (id, project_id, created_us, body) VALUES ($1, $2, $3, $4)",
    )
    .bind(cgw.id.clone())
    .bind(p.as_str().to_string())
    .bind(created_us)
    .bind(json(cgw)?)
    .execute(&mut *c)
    .await
    .map_err(internal)?;
    Ok(())
}

/// Inserts a connection's row with its filter and tunnel columns.
pub(crate) async fn insert_connection_row(
    c: &mut AnyConnection,
    p: &ProjectId,
    created_us: i64,
    conn: &VpnConnection,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO vpn_connections (id, project_id, created_us, vgw_id, cgw_id, vgw_ip, eps, tunnel_net, body) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(conn.id.clone())
    .bind(p.as_str().to_string())
    .bind(created_us)
    .bind(conn.vgw_id.clone())
    .bind(conn.cgw_id.clone())
    .bind(conn.vgw_ip.clone())
    .bind(conn.enterprise_project_id.clone())
    .bind(connection::tunnel_network(conn).map(i64::from))
    .bind(json(conn)?)
    .execute(&mut *c)
    .await
    .map_err(internal)?;
    Ok(())
}

/// Inserts a monitor's row; a second monitor for the connection is
/// [`DomainError::MonitorExists`] (the unique index decides under concurrency).
pub(crate) async fn insert_monitor_row(
    c: &mut AnyConnection,
    p: &ProjectId,
    created_us: i64,
    m: &ConnectionMonitor,
) -> Result<()> {
    let r = sqlx::query(
        "INSERT INTO connection_monitors (id, project_id, created_us, vpn_connection_id, status, body) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(m.id.clone())
    .bind(p.as_str().to_string())
    .bind(created_us)
    .bind(m.vpn_connection_id.clone())
    .bind(m.status.clone())
    .bind(json(m)?)
    .execute(&mut *c)
    .await;
    match r {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => {
            Err(DomainError::MonitorExists(m.vpn_connection_id.clone()))
        }
        Err(e) => Err(internal(e)),
    }
}

pub(crate) fn render_created(us: i64) -> String {
    domain::time::wire_ms(domain::time::from_micros(us))
}

pub(crate) async fn load_gateway(
    c: &mut AnyConnection,
    p: &ProjectId,
    id: &str,
) -> Result<VpnGateway> {
    let row = sqlx::query(
        "SELECT g.body, (SELECT COUNT(*) FROM vpn_connections c WHERE c.vgw_id = g.id) AS used \
         FROM vpn_gateways g WHERE g.project_id = $1 AND g.id = $2",
    )
    .bind(p.as_str().to_string())
    .bind(id.to_string())
    .fetch_optional(&mut *c)
    .await
    .map_err(internal)?
    .ok_or(DomainError::NotFound)?;
    gateway_from_row(&row)
}

fn gateway_from_row(row: &AnyRow) -> Result<VpnGateway> {
    let mut g: VpnGateway = parse(&get::<String>(row, "body")?)?;
    g.used_connection_number = get::<i64>(row, "used")?;
    g.used_connection_group = g.used_connection_number.min(1);
    Ok(g)
}

async fn load_cgw(c: &mut AnyConnection, p: &ProjectId, id: &str) -> Result<CustomerGateway> {
    let row = sqlx::query("SELECT body FROM customer_gateways WHERE project_id = $1 AND id = $2")
        .bind(p.as_str().to_string())
        .bind(id.to_string())
        .fetch_optional(&mut *c)
        .await
        .map_err(internal)?
        .ok_or(DomainError::NotFound)?;
    parse(&get::<String>(&row, "body")?)
}

const CONN_SELECT: &str = "SELECT c.body, c.created_us, m.id AS monitor_id FROM vpn_connections c \
     LEFT JOIN connection_monitors m ON m.vpn_connection_id = c.id ";

fn connection_from_row(row: &AnyRow) -> Result<VpnConnection> {
    let mut conn: VpnConnection = parse(&get::<String>(row, "body")?)?;
    conn.connection_monitor_id = get::<Option<String>>(row, "monitor_id")?;
    Ok(conn)
}

async fn load_connection(c: &mut AnyConnection, p: &ProjectId, id: &str) -> Result<VpnConnection> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "{CONN_SELECT} WHERE c.project_id = $1 AND c.id = $2"
    )))
    .bind(p.as_str().to_string())
    .bind(id.to_string())
    .fetch_optional(&mut *c)
    .await
    .map_err(internal)?
    .ok_or(DomainError::NotFound)?;
    connection_from_row(&row)
}

pub(crate) async fn used_tunnels(c: &mut AnyConnection, vgw_id: &str) -> Result<HashSet<u32>> {
    let rows = sqlx::query(
        "SELECT tunnel_net FROM vpn_connections WHERE vgw_id = $1 AND tunnel_net IS NOT NULL",
    )
    .bind(vgw_id.to_string())
    .fetch_all(&mut *c)
    .await
    .map_err(internal)?;
    rows.iter()
        .map(|r| get::<i64>(r, "tunnel_net").map(|v| v as u32))
        .collect()
}

fn monitor_from_row(row: &AnyRow) -> Result<ConnectionMonitor> {
    let mut m: ConnectionMonitor = parse(&get::<String>(row, "body")?)?;
    m.status = get::<String>(row, "status")?;
    Ok(m)
}

/// Binds an EIP of the pool to gateway `vgw_id` of project `p`.
async fn bind_eip(
    c: &mut AnyConnection,
    backend: Backend,
    p: &ProjectId,
    vgw_id: &str,
    field: &str,
    req: &EipRequest,
) -> Result<Eip> {
    let now = now_us();
    if let Some(id) = &req.id {
        let row = sqlx::query(
            "UPDATE eips SET project_id = $1, vgw_id = $2, bound_us = $3 \
             WHERE id = $4 AND vgw_id IS NULL AND (project_id IS NULL OR project_id = $1) RETURNING address",
        )
        .bind(p.as_str().to_string())
        .bind(vgw_id.to_string())
        .bind(now)
        .bind(id.clone())
        .fetch_optional(&mut *c)
        .await
        .map_err(internal)?;
        return match row {
            Some(r) => Ok(Eip::bound(id, &get::<String>(&r, "address")?, req)),
            None => {
                let exists = sqlx::query("SELECT vgw_id, project_id FROM eips WHERE id = $1")
                    .bind(id.clone())
                    .fetch_optional(&mut *c)
                    .await
                    .map_err(internal)?;
                match exists {
                    Some(r)
                        if get::<Option<String>>(&r, "project_id")?.as_deref()
                            == Some(p.as_str()) =>
                    {
                        Err(DomainError::invalid(format!(
                            "{field}.id {id} is already bound to a VPN gateway"
                        )))
                    }
                    _ => Err(DomainError::invalid(format!(
                        "{field}.id {id} is not an EIP of this project's pool"
                    ))),
                }
            }
        };
    }
    // Allocate the first free entry. PostgreSQL runs creates in parallel:
    // without SKIP LOCKED every concurrent create would pick the same entry,
    // wait for the transaction binding it and then find it taken, and after
    // a few rounds of that report a pool with free entries as exhausted.
    // Skipping entries another transaction is binding never waits. SQLite
    // has one writer (and no such clause). The guarded UPDATE still loses if
    // an entry was bound after the statement's snapshot, so retry a little.
    let skip_locked = match backend {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let allocate = format!(
        "UPDATE eips SET project_id = $1, vgw_id = $2, bound_us = $3 \
         WHERE id = (SELECT id FROM eips WHERE vgw_id IS NULL AND (project_id IS NULL OR project_id = $1) \
                     ORDER BY seq LIMIT 1{skip_locked}) AND vgw_id IS NULL RETURNING id, address"
    );
    for _ in 0..5 {
        let row = sqlx::query(AssertSqlSafe(allocate.clone()))
            .bind(p.as_str().to_string())
            .bind(vgw_id.to_string())
            .bind(now)
            .fetch_optional(&mut *c)
            .await
            .map_err(internal)?;
        if let Some(r) = row {
            return Ok(Eip::bound(
                &get::<String>(&r, "id")?,
                &get::<String>(&r, "address")?,
                req,
            ));
        }
        let free = sqlx::query("SELECT COUNT(*) AS n FROM eips WHERE vgw_id IS NULL AND (project_id IS NULL OR project_id = $1)")
            .bind(p.as_str().to_string())
            .fetch_one(&mut *c)
            .await
            .map_err(internal)?;
        if get::<i64>(&free, "n")? == 0 {
            break;
        }
    }
    Err(DomainError::invalid(format!(
        "{field}: the EIP pool is exhausted (the operator sets it with --eip-pool)"
    )))
}

async fn release_eip(c: &mut AnyConnection, id: &str) -> Result<()> {
    sqlx::query("UPDATE eips SET vgw_id = NULL, project_id = NULL, bound_us = NULL WHERE id = $1")
        .bind(id.to_string())
        .execute(&mut *c)
        .await
        .map_err(internal)?;
    Ok(())
}

fn page_limit(page: &Page, max: i64) -> i64 {
    match page.limit {
        Some(l) if l > 0 => l.min(max),
        _ => max,
    }
}

#[async_trait]
impl Store for SqlStore {
    async fn has_users(&self) -> Result<bool> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM users")
            .fetch_one(&self.read)
            .await
            .map_err(internal)?;
        Ok(get::<i64>(&row, "n")? > 0)
    }

    async fn create_domain(&self, name: &str) -> Result<Domain> {
        let d = Domain {
            id: domain::ids::new_iam_id(),
            name: name.to_string(),
        };
        sqlx::query("INSERT INTO domains (id, name, created_us) VALUES ($1, $2, $3)")
            .bind(d.id.clone())
            .bind(d.name.clone())
            .bind(now_us())
            .execute(&self.write)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    DomainError::invalid(format!("domain {name:?} already exists"))
                } else {
                    internal(e)
                }
            })?;
        Ok(d)
    }

    async fn find_domain(&self, name: &str) -> Result<Option<Domain>> {
        let row = sqlx::query("SELECT id, name FROM domains WHERE name = $1")
            .bind(name.to_string())
            .fetch_optional(&self.read)
            .await
            .map_err(internal)?;
        row.map(|r| {
            Ok(Domain {
                id: get(&r, "id")?,
                name: get(&r, "name")?,
            })
        })
        .transpose()
    }

    async fn get_domain(&self, id: &str) -> Result<Option<Domain>> {
        let row = sqlx::query("SELECT id, name FROM domains WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.read)
            .await
            .map_err(internal)?;
        row.map(|r| {
            Ok(Domain {
                id: get(&r, "id")?,
                name: get(&r, "name")?,
            })
        })
        .transpose()
    }

    async fn create_project(&self, domain_id: &str, name: &str) -> Result<Project> {
        let p = Project {
            id: ProjectId::generate().to_string(),
            domain_id: domain_id.to_string(),
            name: name.to_string(),
        };
        sqlx::query(
            "INSERT INTO projects (id, domain_id, name, created_us) VALUES ($1, $2, $3, $4)",
        )
        .bind(p.id.clone())
        .bind(p.domain_id.clone())
        .bind(p.name.clone())
        .bind(now_us())
        .execute(&self.write)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                DomainError::invalid(format!("project {name:?} already exists"))
            } else {
                internal(e)
            }
        })?;
        Ok(p)
    }

    async fn find_project(&self, name: &str) -> Result<Option<Project>> {
        let row = sqlx::query("SELECT id, domain_id, name FROM projects WHERE name = $1")
            .bind(name.to_string())
            .fetch_optional(&self.read)
            .await
            .map_err(internal)?;
        row.map(|r| project_from_row(&r)).transpose()
    }

    async fn get_project(&self, id: &str) -> Result<Option<Project>> {
        let row = sqlx::query("SELECT id, domain_id, name FROM projects WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.read)
            .await
            .map_err(internal)?;
        row.map(|r| project_from_row(&r)).transpose()
    }

    async fn list_projects(&self) -> Result<Vec<Project>> {
        let rows = sqlx::query("SELECT id, domain_id, name FROM projects ORDER BY created_us")
            .fetch_all(&self.read)
            .await
            .map_err(internal)?;
        rows.iter().map(project_from_row).collect()
    }

    async fn create_user(&self, domain_id: &str, name: &str, password_hash: &str) -> Result<User> {
        let u = User {
            id: domain::ids::new_iam_id(),
            domain_id: domain_id.to_string(),
            name: name.to_string(),
            password_hash: password_hash.to_string(),
        };
        sqlx::query("INSERT INTO users (id, domain_id, name, password_hash, created_us) VALUES ($1, $2, $3, $4, $5)")
            .bind(u.id.clone())
            .bind(u.domain_id.clone())
            .bind(u.name.clone())
            .bind(u.password_hash.clone())
            .bind(now_us())
            .execute(&self.write)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    DomainError::invalid(format!("user {name:?} already exists"))
                } else {
                    internal(e)
                }
            })?;
        Ok(u)
    }

    async fn find_user(&self, domain_id: &str, name: &str) -> Result<Option<User>> {
        let row = sqlx::query("SELECT id, domain_id, name, password_hash FROM users WHERE domain_id = $1 AND name = $2")
            .bind(domain_id.to_string())
            .bind(name.to_string())
            .fetch_optional(&self.read)
            .await
            .map_err(internal)?;
        row.map(|r| user_from_row(&r)).transpose()
    }

    async fn find_user_any_domain(&self, name: &str) -> Result<Option<User>> {
        let rows =
            sqlx::query("SELECT id, domain_id, name, password_hash FROM users WHERE name = $1")
                .bind(name.to_string())
                .fetch_all(&self.read)
                .await
                .map_err(internal)?;
        if rows.len() > 1 {
            return Err(DomainError::invalid(format!(
                "user name {name:?} exists in several domains"
            )));
        }
        rows.first().map(user_from_row).transpose()
    }

    async fn get_user(&self, id: &str) -> Result<Option<User>> {
        let row = sqlx::query("SELECT id, domain_id, name, password_hash FROM users WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.read)
            .await
            .map_err(internal)?;
        row.map(|r| user_from_row(&r)).transpose()
    }

    async fn grant(&self, user_id: &str, project_id: &str) -> Result<()> {
        let r = sqlx::query("INSERT INTO role_assignments (user_id, project_id) VALUES ($1, $2)")
            .bind(user_id.to_string())
            .bind(project_id.to_string())
            .execute(&self.write)
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Ok(()),
            Err(e) => Err(internal(e)),
        }
    }

    async fn user_projects(&self, user_id: &str) -> Result<Vec<Project>> {
        let rows = sqlx::query(
            "SELECT p.id, p.domain_id, p.name FROM projects p JOIN role_assignments r ON r.project_id = p.id \
             WHERE r.user_id = $1 ORDER BY p.created_us",
        )
        .bind(user_id.to_string())
        .fetch_all(&self.read)
        .await
        .map_err(internal)?;
        rows.iter().map(project_from_row).collect()
    }

    async fn insert_token(&self, t: &TokenRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO tokens (digest, user_id, project_id, issued_us, expires_us, revoked) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(t.digest.clone())
        .bind(t.user_id.clone())
        .bind(t.project_id.clone())
        .bind(t.issued_us)
        .bind(t.expires_us)
        .bind(i64::from(t.revoked))
        .execute(&self.write)
        .await
        .map_err(internal)?;
        Ok(())
    }

    async fn get_token(&self, digest: &str) -> Result<Option<TokenRecord>> {
        let row = sqlx::query(
            "SELECT digest, user_id, project_id, issued_us, expires_us, revoked FROM tokens WHERE digest = $1",
        )
        .bind(digest.to_string())
        .fetch_optional(&self.read)
        .await
        .map_err(internal)?;
        row.map(|r| {
            Ok(TokenRecord {
                digest: get(&r, "digest")?,
                user_id: get(&r, "user_id")?,
                project_id: get(&r, "project_id")?,
                issued_us: get(&r, "issued_us")?,
                expires_us: get(&r, "expires_us")?,
                revoked: get::<i64>(&r, "revoked")? != 0,
            })
        })
        .transpose()
    }

    async fn revoke_token(&self, digest: &str) -> Result<bool> {
        let r = sqlx::query("UPDATE tokens SET revoked = 1 WHERE digest = $1")
            .bind(digest.to_string())
            .execute(&self.write)
            .await
            .map_err(internal)?;
        Ok(r.rows_affected() > 0)
    }

    async fn insert_credential(&self, c: &CredentialRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO credentials (access, user_id, sealed_secret, enabled, description, created_us) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(c.access.clone())
        .bind(c.user_id.clone())
        .bind(c.sealed_secret.clone())
        .bind(i64::from(c.enabled))
        .bind(c.description.clone())
        .bind(c.created_us)
        .execute(&self.write)
        .await
        .map_err(internal)?;
        Ok(())
    }

    async fn get_credential(&self, access: &str) -> Result<Option<CredentialRecord>> {
        let row = sqlx::query(
            "SELECT access, user_id, sealed_secret, enabled, description, created_us FROM credentials WHERE access = $1",
        )
        .bind(access.to_string())
        .fetch_optional(&self.read)
        .await
        .map_err(internal)?;
        row.map(|r| credential_from_row(&r)).transpose()
    }

    async fn list_credentials(&self, user_id: Option<&str>) -> Result<Vec<CredentialRecord>> {
        let mut q = Q::new(
            "SELECT access, user_id, sealed_secret, enabled, description, created_us FROM credentials",
        );
        if let Some(u) = user_id {
            let a = q.s(u);
            q.push(" WHERE user_id = ").push(&a);
        }
        q.push(" ORDER BY created_us");
        let rows = q.build().fetch_all(&self.read).await.map_err(internal)?;
        rows.iter().map(credential_from_row).collect()
    }

    async fn set_credential_enabled(&self, access: &str, enabled: bool) -> Result<bool> {
        let r = sqlx::query("UPDATE credentials SET enabled = $1 WHERE access = $2")
            .bind(i64::from(enabled))
            .bind(access.to_string())
            .execute(&self.write)
            .await
            .map_err(internal)?;
        Ok(r.rows_affected() > 0)
    }

    async fn delete_credential(&self, access: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM credentials WHERE access = $1")
            .bind(access.to_string())
            .execute(&self.write)
            .await
            .map_err(internal)?;
        Ok(r.rows_affected() > 0)
    }

    async fn meta_get_or_init(&self, key: &str, value: &str) -> Result<String> {
        // Insert-if-absent, then read: two processes starting at once on one
        // PostgreSQL both find the key missing, and a plain INSERT would fail
        // the second. `ON CONFLICT DO NOTHING` waits for the first to commit
        // and leaves its value, which the SELECT (a new snapshot) then reads.
        sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
            .bind(key.to_string())
            .bind(value.to_string())
            .execute(&self.write)
            .await
            .map_err(internal)?;
        let row = sqlx::query("SELECT value FROM meta WHERE key = $1")
            .bind(key.to_string())
            .fetch_one(&self.write)
            .await
            .map_err(internal)?;
        get::<String>(&row, "value")
    }

    async fn add_pool(&self, entries: &[(String, String)]) -> Result<usize> {
        let mut tx = self.write.begin().await.map_err(internal)?;
        let row = sqlx::query("SELECT COALESCE(MAX(seq), 0) AS m FROM eips")
            .fetch_one(&mut *tx)
            .await
            .map_err(internal)?;
        let mut seq: i64 = get(&row, "m")?;
        let mut added = 0;
        for (id, addr) in entries {
            seq += 1;
            let r = sqlx::query(
                "INSERT INTO eips (id, address, seq) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            )
            .bind(id.clone())
            .bind(addr.clone())
            .bind(seq)
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
            added += r.rows_affected() as usize;
        }
        tx.commit().await.map_err(internal)?;
        Ok(added)
    }

    async fn list_pool(&self) -> Result<Vec<(String, String, Option<String>, Option<String>)>> {
        let rows = sqlx::query("SELECT id, address, project_id, vgw_id FROM eips ORDER BY seq")
            .fetch_all(&self.read)
            .await
            .map_err(internal)?;
        rows.iter()
            .map(|r| {
                Ok((
                    get(r, "id")?,
                    get(r, "address")?,
                    get(r, "project_id")?,
                    get(r, "vgw_id")?,
                ))
            })
            .collect()
    }

    async fn create_gateway(&self, p: &ProjectId, plan: GatewayPlan) -> Result<VpnGateway> {
        let mut tx = self.write.begin().await.map_err(internal)?;
        let mut g = plan.gateway;
        let created = next_created_us(&mut tx, "vpn_gateways", p).await?;
        let ms = render_created(created);
        g.created_at.clone_from(&ms);
        g.updated_at = ms;
        for (i, req) in plan.eips.iter().enumerate() {
            let field = if i == 0 {
                "vpn_gateway.eip1"
            } else {
                "vpn_gateway.eip2"
            };
            let eip = bind_eip(&mut tx, self.backend, p, &g.id, field, req).await?;
            if i == 0 {
                g.eip1 = Some(eip);
            } else {
                g.eip2 = Some(eip);
            }
        }
        sqlx::query("INSERT INTO vpn_gateways (id, project_id, created_us, eps, body) VALUES ($1, $2, $3, $4, $5)")
            .bind(g.id.clone())
            .bind(p.as_str().to_string())
            .bind(created)
            .bind(g.enterprise_project_id.clone())
            .bind(json(&g)?)
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        Ok(g)
    }

    async fn get_gateway(&self, p: &ProjectId, id: &str) -> Result<VpnGateway> {
        let mut c = self.read.acquire().await.map_err(internal)?;
        load_gateway(&mut c, p, id).await
    }

    async fn list_gateways(
        &self,
        p: &ProjectId,
        id: Option<&str>,
        eps: &[String],
    ) -> Result<Vec<VpnGateway>> {
        let mut q = Q::new(
            "SELECT g.body, (SELECT COUNT(*) FROM vpn_connections c WHERE c.vgw_id = g.id) AS used \
             FROM vpn_gateways g WHERE g.project_id = ",
        );
        let a = q.s(p.as_str());
        q.push(&a);
        if let Some(id) = id {
            let a = q.s(id);
            q.push(" AND g.id = ").push(&a);
        }
        push_in(&mut q, "g.eps", eps);
        q.push(" ORDER BY g.created_us, g.id");
        let rows = q.build().fetch_all(&self.read).await.map_err(internal)?;
        rows.iter().map(gateway_from_row).collect()
    }

    async fn update_gateway(
        &self,
        p: &ProjectId,
        id: &str,
        req: &UpdateVgw,
        now: &str,
    ) -> Result<VpnGateway> {
        let mut tx = self.write.begin().await.map_err(internal)?;
        let mut g = load_gateway(&mut tx, p, id).await?;
        g.apply_update(req, now)?;
        for (slot, want) in [(1, &req.eip_id_1), (2, &req.eip_id_2)] {
            let Some(want) = want else { continue };
            let current = if slot == 1 { &g.eip1 } else { &g.eip2 };
            if current.as_ref().map(|e| &e.id) == Some(want) {
                continue;
            }
            if g.network_type != "public" {
                return Err(DomainError::invalid(format!(
                    "vpn_gateway.eip_id_{slot}: a private gateway has no EIPs"
                )));
            }
            if let Some(old) = current.clone() {
                let used = sqlx::query(
                    "SELECT id FROM vpn_connections WHERE vgw_id = $1 AND vgw_ip = $2 LIMIT 1",
                )
                .bind(g.id.clone())
                .bind(old.id.clone())
                .fetch_optional(&mut *tx)
                .await
                .map_err(internal)?;
                if let Some(r) = used {
                    return Err(DomainError::invalid(format!(
                        "vpn_gateway.eip_id_{slot}: EIP {} is used by vpn connection {}",
                        old.id,
                        get::<String>(&r, "id")?
                    )));
                }
                release_eip(&mut tx, &old.id).await?;
            }
            let req = EipRequest {
                id: Some(want.clone()),
                ..Default::default()
            };
            let eip = bind_eip(
                &mut tx,
                self.backend,
                p,
                &g.id,
                &format!("vpn_gateway.eip_id_{slot}"),
                &req,
            )
            .await?;
            if slot == 1 {
                g.eip1 = Some(eip);
            } else {
                g.eip2 = Some(eip);
            }
        }
        sqlx::query("UPDATE vpn_gateways SET body = $1 WHERE project_id = $2 AND id = $3")
            .bind(json(&g)?)
            .bind(p.as_str().to_string())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        Ok(g)
    }

    async fn delete_gateway(&self, p: &ProjectId, id: &str) -> Result<()> {
        let mut tx = self.write.begin().await.map_err(internal)?;
        load_gateway(&mut tx, p, id).await?;
        let used = sqlx::query(
            "SELECT id FROM vpn_connections WHERE vgw_id = $1 ORDER BY created_us LIMIT 1",
        )
        .bind(id.to_string())
        .fetch_optional(&mut *tx)
        .await
        .map_err(internal)?;
        if let Some(r) = used {
            return Err(DomainError::invalid(format!(
                "vpn gateway {id} is used by vpn connection {}",
                get::<String>(&r, "id")?
            )));
        }
        sqlx::query("DELETE FROM vpn_gateways WHERE project_id = $1 AND id = $2")
            .bind(p.as_str().to_string())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
        sqlx::query(
            "UPDATE eips SET vgw_id = NULL, project_id = NULL, bound_us = NULL WHERE vgw_id = $1",
        )
        .bind(id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        Ok(())
    }

    async fn create_cgw(&self, p: &ProjectId, cgw: &CustomerGateway) -> Result<CustomerGateway> {
        let mut tx = self.write.begin().await.map_err(internal)?;
        let mut cgw = cgw.clone();
        let created = next_created_us(&mut tx, "customer_gateways", p).await?;
        let ms = render_created(created);
        cgw.created_at.clone_from(&ms);
        cgw.updated_at = ms;
        insert_cgw_row(&mut tx, p, created, &cgw).await?;
        tx.commit().await.map_err(internal)?;
        Ok(cgw)
    }

    async fn get_cgw(&self, p: &ProjectId, id: &str) -> Result<CustomerGateway> {
        let mut c = self.read.acquire().await.map_err(internal)?;
        load_cgw(&mut c, p, id).await
    }

    async fn list_cgws(
        &self,
        p: &ProjectId,
        id: Option<&str>,
        page: Page,
    ) -> Result<Listed<CustomerGateway>> {
        let mut where_ = Q::new(" WHERE project_id = ");
        let a = where_.s(p.as_str());
        where_.push(&a);
        if let Some(id) = id {
            let a = where_.s(id);
            where_.push(" AND id = ").push(&a);
        }
        let mut count = Q {
            sql: format!("SELECT COUNT(*) AS n FROM customer_gateways{}", where_.sql),
            args: vec![],
        };
        count.args = clone_args(&where_.args);
        let total: i64 = get(
            &count
                .build()
                .fetch_one(&self.read)
                .await
                .map_err(internal)?,
            "n",
        )?;
        let mut q = Q {
            sql: format!(
                "SELECT body, created_us FROM customer_gateways{}",
                where_.sql
            ),
            args: where_.args,
        };
        if let Some(m) = page.marker_us {
            let a = q.i(m);
            q.push(" AND created_us > ").push(&a);
        }
        let lim = q.i(page_limit(&page, 200));
        q.push(" ORDER BY created_us, id LIMIT ").push(&lim);
        let rows = q.build().fetch_all(&self.read).await.map_err(internal)?;
        let mut items = Vec::with_capacity(rows.len());
        let mut last = None;
        for r in &rows {
            items.push(parse::<CustomerGateway>(&get::<String>(r, "body")?)?);
            last = Some(get::<i64>(r, "created_us")?);
        }
        Ok(Listed {
            items,
            total,
            next_marker: last.map(render_created),
        })
    }

    async fn update_cgw(
        &self,
        p: &ProjectId,
        id: &str,
        req: &UpdateCgw,
        now: &str,
    ) -> Result<CustomerGateway> {
        let mut tx = self.write.begin().await.map_err(internal)?;
        let mut cgw = load_cgw(&mut tx, p, id).await?;
        cgw.apply_update(req, now)?;
        sqlx::query("UPDATE customer_gateways SET body = $1 WHERE project_id = $2 AND id = $3")
            .bind(json(&cgw)?)
            .bind(p.as_str().to_string())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        Ok(cgw)
    }

    async fn delete_cgw(&self, p: &ProjectId, id: &str) -> Result<()> {
        let mut tx = self.write.begin().await.map_err(internal)?;
        load_cgw(&mut tx, p, id).await?;
        let used = sqlx::query(
            "SELECT id FROM vpn_connections WHERE cgw_id = $1 ORDER BY created_us LIMIT 1",
        )
        .bind(id.to_string())
        .fetch_optional(&mut *tx)
        .await
        .map_err(internal)?;
        if let Some(r) = used {
            return Err(DomainError::invalid(format!(
                "customer gateway {id} is used by vpn connection {}",
                get::<String>(&r, "id")?
            )));
        }
        sqlx::query("DELETE FROM customer_gateways WHERE project_id = $1 AND id = $2")
            .bind(p.as_str().to_string())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        Ok(())
    }

    async fn create_connection(
        &self,
        p: &ProjectId,
        req: CreateConnection,
        id: String,
        _now: &str,
    ) -> Result<VpnConnection> {
        let vgw_id = domain::validate::uuid_ref(
            "vpn_connection.vgw_id",
            req.vgw_id
                .as_deref()
                .ok_or_else(|| DomainError::invalid("vpn_connection.vgw_id is required"))?,
        )?;
        let cgw_id = domain::validate::uuid_ref(
            "vpn_connection.cgw_id",
            req.cgw_id
                .as_deref()
                .ok_or_else(|| DomainError::invalid("vpn_connection.cgw_id is required"))?,
        )?;
        let mut tx = self.write.begin().await.map_err(internal)?;
        let gw = load_gateway(&mut tx, p, &vgw_id).await?;
        let cgw = load_cgw(&mut tx, p, &cgw_id).await?;
        let used = used_tunnels(&mut tx, &vgw_id).await?;
        let created = next_created_us(&mut tx, "vpn_connections", p).await?;
        let ms = render_created(created);
        let conn = connection::create(req, id, &ms, &gw, &cgw, &used)?;
        insert_connection_row(&mut tx, p, created, &conn).await?;
        tx.commit().await.map_err(internal)?;
        Ok(conn)
    }

    async fn get_connection(&self, p: &ProjectId, id: &str) -> Result<VpnConnection> {
        let mut c = self.read.acquire().await.map_err(internal)?;
        load_connection(&mut c, p, id).await
    }

    async fn list_connections(
        &self,
        p: &ProjectId,
        f: &ConnectionFilter,
        page: Page,
    ) -> Result<Listed<VpnConnection>> {
        let mut where_ = Q::new(" WHERE c.project_id = ");
        let a = where_.s(p.as_str());
        where_.push(&a);
        for (col, v) in [
            ("c.id", &f.vpn_id),
            ("c.vgw_id", &f.vgw_id),
            ("c.vgw_ip", &f.vgw_ip),
            ("c.vgw_ip", &f.eip_id),
        ] {
            if let Some(v) = v {
                let a = where_.s(v);
                where_.push(&format!(" AND {col} = {a}"));
            }
        }
        push_in(&mut where_, "c.eps", &f.eps);
        let count = Q {
            sql: format!("SELECT COUNT(*) AS n FROM vpn_connections c{}", where_.sql),
            args: clone_args(&where_.args),
        };
        let total: i64 = get(
            &count
                .build()
                .fetch_one(&self.read)
                .await
                .map_err(internal)?,
            "n",
        )?;
        let mut q = Q {
            sql: format!("{CONN_SELECT}{}", where_.sql),
            args: where_.args,
        };
        if let Some(m) = page.marker_us {
            let a = q.i(m);
            q.push(" AND c.created_us > ").push(&a);
        }
        let lim = q.i(page_limit(&page, 2000));
        q.push(" ORDER BY c.created_us, c.id LIMIT ").push(&lim);
        let rows = q.build().fetch_all(&self.read).await.map_err(internal)?;
        let mut items = Vec::with_capacity(rows.len());
        let mut last = None;
        for r in &rows {
            items.push(connection_from_row(r)?);
            last = Some(get::<i64>(r, "created_us")?);
        }
        Ok(Listed {
            items,
            total,
            next_marker: last.map(render_created),
        })
    }

    async fn update_connection(
        &self,
        p: &ProjectId,
        id: &str,
        req: &UpdateConnection,
        now: &str,
    ) -> Result<VpnConnection> {
        let mut tx = self.write.begin().await.map_err(internal)?;
        let mut conn = load_connection(&mut tx, p, id).await?;
        if let Some(cgw_id) = &req.cgw_id {
            let cgw_id = domain::validate::uuid_ref("vpn_connection.cgw_id", cgw_id)?;
            load_cgw(&mut tx, p, &cgw_id).await?;
            if conn.connection_monitor_id.is_some() && cgw_id != conn.cgw_id {
                return Err(DomainError::invalid(format!(
                    "vpn_connection.cgw_id cannot change while connection monitor {} exists; delete it first",
                    conn.connection_monitor_id.clone().unwrap_or_default()
                )));
            }
        }
        let used = used_tunnels(&mut tx, &conn.vgw_id).await?;
        conn.apply_update(req, now, &used)?;
        let mut stored = conn.clone();
        stored.connection_monitor_id = None;
        sqlx::query(
            "UPDATE vpn_connections SET body = $1, cgw_id = $2, tunnel_net = $3 WHERE project_id = $4 AND id = $5",
        )
        .bind(json(&stored)?)
        .bind(conn.cgw_id.clone())
        .bind(connection::tunnel_network(&conn).map(i64::from))
        .bind(p.as_str().to_string())
        .bind(id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        Ok(conn)
    }

    async fn delete_connection(&self, p: &ProjectId, id: &str) -> Result<()> {
        let mut tx = self.write.begin().await.map_err(internal)?;
        load_connection(&mut tx, p, id).await?;
        buckets::delete_monitor_rows(
            &mut tx,
            "SELECT id FROM connection_monitors WHERE project_id = $3 AND vpn_connection_id = $4",
            &[p.as_str().to_string(), id.to_string()],
        )
        .await?;
        sqlx::query(
            "DELETE FROM connection_monitors WHERE project_id = $1 AND vpn_connection_id = $2",
        )
        .bind(p.as_str().to_string())
        .bind(id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(internal)?;
        sqlx::query("DELETE FROM vpn_connections WHERE project_id = $1 AND id = $2")
            .bind(p.as_str().to_string())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        self.deletions.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    async fn create_monitor(
        &self,
        p: &ProjectId,
        vpn_connection_id: &str,
        id: String,
        now_us: i64,
    ) -> Result<ConnectionMonitor> {
        let mut tx = self.write.begin().await.map_err(internal)?;
        let conn = load_connection(&mut tx, p, vpn_connection_id).await?;
        if conn.connection_monitor_id.is_some() {
            return Err(DomainError::MonitorExists(conn.id));
        }
        let gw = load_gateway(&mut tx, p, &conn.vgw_id).await?;
        let cgw = load_cgw(&mut tx, p, &conn.cgw_id).await?;
        let m = monitor::derive(id, &conn, &gw, &cgw)?;
        let created = next_created_us(&mut tx, "connection_monitors", p)
            .await?
            .max(now_us);
        insert_monitor_row(&mut tx, p, created, &m).await?;
        tx.commit().await.map_err(internal)?;
        Ok(m)
    }

    async fn get_monitor(&self, p: &ProjectId, id: &str) -> Result<ConnectionMonitor> {
        let row = sqlx::query(
            "SELECT body, status FROM connection_monitors WHERE project_id = $1 AND id = $2",
        )
        .bind(p.as_str().to_string())
        .bind(id.to_string())
        .fetch_optional(&self.read)
        .await
        .map_err(internal)?
        .ok_or(DomainError::NotFound)?;
        monitor_from_row(&row)
    }

    async fn list_monitors(
        &self,
        p: &ProjectId,
        vpn_connection_id: Option<&str>,
    ) -> Result<Vec<ConnectionMonitor>> {
        let mut q = Q::new("SELECT body, status FROM connection_monitors WHERE project_id = ");
        let a = q.s(p.as_str());
        q.push(&a);
        if let Some(c) = vpn_connection_id {
            let a = q.s(c);
            q.push(" AND vpn_connection_id = ").push(&a);
        }
        q.push(" ORDER BY created_us, id");
        let rows = q.build().fetch_all(&self.read).await.map_err(internal)?;
        rows.iter().map(monitor_from_row).collect()
    }

    async fn delete_monitor(&self, p: &ProjectId, id: &str) -> Result<()> {
        let mut tx = self.write.begin().await.map_err(internal)?;
        let r = sqlx::query("DELETE FROM connection_monitors WHERE project_id = $1 AND id = $2")
            .bind(p.as_str().to_string())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
        if r.rows_affected() == 0 {
            return Err(DomainError::NotFound);
        }
        buckets::delete_monitor_rows(&mut tx, "$3", &[id.to_string()]).await?;
        tx.commit().await.map_err(internal)?;
        self.deletions.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    async fn monitors_for_probing(&self) -> Result<Vec<ProbeMonitor>> {
        let rows = sqlx::query("SELECT id, project_id, vpn_connection_id, status, body FROM connection_monitors ORDER BY created_us")
            .fetch_all(&self.read)
            .await
            .map_err(internal)?;
        rows.iter().map(probe_monitor_from_row).collect()
    }

    async fn monitors_for_probing_page(
        &self,
        after_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ProbeMonitor>> {
        let rows = sqlx::query(
            "SELECT id, project_id, vpn_connection_id, status, body FROM connection_monitors \
             WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after_id.unwrap_or("").to_string())
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.read)
        .await
        .map_err(internal)?;
        rows.iter().map(probe_monitor_from_row).collect()
    }

    async fn set_monitor_status(&self, id: &str, status: &str) -> Result<bool> {
        let r = sqlx::query(SET_STATUS)
            .bind(status.to_string())
            .bind(id.to_string())
            .execute(&self.write)
            .await
            .map_err(internal)?;
        Ok(r.rows_affected() > 0)
    }

    async fn set_link_state(&self, id: &str, s: &LinkState) -> Result<bool> {
        let r = set_link_state_query(id, s)
            .execute(&self.write)
            .await
            .map_err(internal)?;
        Ok(r.rows_affected() > 0)
    }

    async fn update_monitors(&self, updates: &[MonitorUpdate]) -> Result<()> {
        if updates.is_empty() {
            return Ok(());
        }
        let mut tx = self.write.begin().await.map_err(internal)?;
        for u in updates {
            match u {
                MonitorUpdate::Status { id, status } => {
                    sqlx::query(SET_STATUS_IF_CHANGED)
                        .bind(status.clone())
                        .bind(id.clone())
                        .execute(&mut *tx)
                        .await
                        .map_err(internal)?;
                }
                MonitorUpdate::Link { id, state } => {
                    set_link_state_query(id, state)
                        .execute(&mut *tx)
                        .await
                        .map_err(internal)?;
                }
            }
        }
        tx.commit().await.map_err(internal)
    }

    async fn get_link_state(&self, p: &ProjectId, id: &str) -> Result<LinkState> {
        let r = sqlx::query("SELECT link_up, link_changed_us, probe_note FROM connection_monitors WHERE project_id = $1 AND id = $2")
            .bind(p.as_str().to_string())
            .bind(id.to_string())
            .fetch_optional(&self.read)
            .await
            .map_err(internal)?
            .ok_or(DomainError::NotFound)?;
        Ok(LinkState {
            up: get::<Option<i64>>(&r, "link_up")?.map(|v| v != 0),
            changed_us: get(&r, "link_changed_us")?,
            note: get(&r, "probe_note")?,
        })
    }

    async fn insert_points(&self, points: &[WindowPoint]) -> Result<()> {
        if points.is_empty() {
            return Ok(());
        }
        // In key order: the B-tree is then walked once, page after page,
        // instead of one descent (and, past the page cache, one read) per
        // point.
        let mut sorted: Vec<&WindowPoint> = points.iter().collect();
        sorted.sort_unstable_by(|a, b| {
            (
                buckets::point_bucket(a.window_start_ms),
                &a.monitor_id,
                a.window_start_ms,
            )
                .cmp(&(
                    buckets::point_bucket(b.window_start_ms),
                    &b.monitor_id,
                    b.window_start_ms,
                ))
        });
        let mut tx = self.write.begin().await.map_err(internal)?;
        let sqlite = self.backend == Backend::Sqlite;
        let mut rest = &sorted[..];
        while !rest.is_empty() {
            let (chunk, tail) = rest.split_at(point_chunk_len(self.backend, rest.len()));
            rest = tail;
            let sql = insert_points_sql(self.backend, chunk.len());
            // Not a cached prepared statement on PostgreSQL: sqlx 0.9's `Any`
            // driver sends a NULL `f64` as a float4 parameter
            // (`AnyArguments::convert_into` swaps the Real and Double null
            // mappings), and PostgreSQL keeps the types of the first
            // execution, so a later batch of the same size with an RTT where
            // the first had none fails with "incorrect binary data format".
            // Re-preparing each batch is cheap (one per probe window) and
            // gives every execution its own types.
            // SQLite has no such problem, and a cached statement saves
            // re-parsing a large INSERT on every batch; chunk sizes are
            // powers of two there, so only a handful of statements is cached.
            let mut q = sqlx::query(AssertSqlSafe(sql)).persistent(sqlite);
            for pt in chunk {
                q = q
                    .bind(buckets::point_bucket(pt.window_start_ms))
                    .bind(pt.monitor_id.as_str())
                    .bind(pt.project_id.as_str())
                    .bind(pt.window_start_ms)
                    .bind(pt.sent)
                    .bind(pt.received)
                    .bind(pt.loss_pct)
                    .bind(pt.rtt_min_ms)
                    .bind(pt.rtt_avg_ms)
                    .bind(pt.rtt_max_ms)
                    .bind(pt.jitter_ms);
            }
            q.execute(&mut *tx).await.map_err(internal)?;
        }
        // A monitor deleted while its last window waited in the writer's
        // queue must not leave that point behind: after any deletion, drop,
        // in the same transaction, recent points whose monitor is gone (a
        // minute of margin covers a batch written just before the delete).
        let generation = self.deletions.load(Ordering::Acquire);
        if generation != self.guarded.load(Ordering::Acquire) {
            let oldest = points.iter().map(|p| p.window_start_ms).min().unwrap_or(0) - 60_000;
            sqlx::query(
                "DELETE FROM monitor_points WHERE bucket_ms >= $1 AND window_start_ms >= $2 AND NOT EXISTS \
                 (SELECT 1 FROM connection_monitors m WHERE m.id = monitor_points.monitor_id)",
            )
            .bind(buckets::point_bucket(oldest))
            .bind(oldest)
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
        }
        tx.commit().await.map_err(internal)?;
        self.guarded.store(generation, Ordering::Release);
        Ok(())
    }

    async fn list_points(
        &self,
        p: &ProjectId,
        monitor_id: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<WindowPoint>> {
        let rows = buckets::series(
            &self.read,
            buckets::Table::Points,
            &[
                "monitor_id",
                "project_id",
                "window_start_ms",
                "sent",
                "received",
                "loss_pct",
                "rtt_min_ms",
                "rtt_avg_ms",
                "rtt_max_ms",
                "jitter_ms",
            ],
            p.as_str(),
            monitor_id,
            from_ms,
            to_ms,
        )
        .await?;
        rows.iter()
            .map(|r| {
                Ok(WindowPoint {
                    monitor_id: get(r, "monitor_id")?,
                    project_id: get(r, "project_id")?,
                    window_start_ms: get(r, "window_start_ms")?,
                    sent: get(r, "sent")?,
                    received: get(r, "received")?,
                    loss_pct: get(r, "loss_pct")?,
                    rtt_min_ms: get(r, "rtt_min_ms")?,
                    rtt_avg_ms: get(r, "rtt_avg_ms")?,
                    rtt_max_ms: get(r, "rtt_max_ms")?,
                    jitter_ms: get(r, "jitter_ms")?,
                })
            })
            .collect()
    }

    async fn prune_points(&self, before_ms: i64) -> Result<u64> {
        let r = sqlx::query(
            "DELETE FROM monitor_points WHERE bucket_ms <= $1 AND window_start_ms < $2",
        )
        .bind(buckets::point_bucket(before_ms))
        .bind(before_ms)
        .execute(&self.write)
        .await
        .map_err(internal)?;
        Ok(r.rows_affected())
    }
}

/// Columns of a datapoint row.
const POINT_COLUMNS: usize = 11;
/// Rows per multi-row datapoint INSERT on SQLite (at most; 11 parameters
/// each, well under SQLite's 32 766 parameter limit).
const SQLITE_POINT_CHUNK: usize = 256;

/// Rows per multi-row datapoint INSERT on PostgreSQL.
const POSTGRES_POINT_CHUNK: usize = 64;

/// How many of `remaining` points the next INSERT takes. On SQLite the
/// statements are cached, so the sizes are powers of two (a full chunk, then
/// the binary decomposition of the rest): at most nine statement shapes.
fn point_chunk_len(backend: Backend, remaining: usize) -> usize {
    match backend {
        Backend::Sqlite if remaining >= SQLITE_POINT_CHUNK => SQLITE_POINT_CHUNK,
        Backend::Sqlite => 1 << remaining.ilog2(),
        Backend::Postgres => remaining.min(POSTGRES_POINT_CHUNK),
    }
}

/// The multi-row INSERT of `rows` datapoints. SQLite gets anonymous `?`
/// parameters: with numbered ones, binding costs quadratic time (sqlx looks
/// every parameter's name up, and SQLite finds a name by scanning a list of
/// all of them), which dominated the writer's CPU at 640 parameters.
fn insert_points_sql(backend: Backend, rows: usize) -> String {
    use std::fmt::Write as _;
    let mut sql = String::with_capacity(200 + rows * 60);
    // On SQLite `OR IGNORE` rather than `ON CONFLICT DO NOTHING`: the same
    // for the primary key (the only conflict a point can have; no column it
    // fills NOT NULL is ever NULL), but a multi-row INSERT that may abort
    // on a NOT NULL violation needs a statement journal, which copied every
    // page the INSERT touched.
    sql.push_str(match backend {
        Backend::Sqlite => "INSERT OR IGNORE",
        Backend::Postgres => "INSERT",
    });
    sql.push_str(
        " INTO monitor_points (bucket_ms, monitor_id, project_id, window_start_ms, sent, received, loss_pct, \
         rtt_min_ms, rtt_avg_ms, rtt_max_ms, jitter_ms) VALUES ",
    );
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        match backend {
            Backend::Sqlite => sql.push_str("(?,?,?,?,?,?,?,?,?,?,?)"),
            Backend::Postgres => {
                sql.push('(');
                for c in 1..=POINT_COLUMNS {
                    if c > 1 {
                        sql.push(',');
                    }
                    let _ = write!(sql, "${}", i * POINT_COLUMNS + c);
                }
                sql.push(')');
            }
        }
    }
    if backend == Backend::Postgres {
        sql.push_str(" ON CONFLICT DO NOTHING");
    }
    sql
}

fn clone_args(args: &[Arg]) -> Vec<Arg> {
    args.iter()
        .map(|a| match a {
            Arg::S(s) => Arg::S(s.clone()),
            Arg::I(i) => Arg::I(*i),
        })
        .collect()
}

fn push_in(q: &mut Q, col: &str, values: &[String]) {
    if values.is_empty() {
        return;
    }
    let params: Vec<String> = values.iter().map(|v| q.s(v)).collect();
    q.push(&format!(" AND {col} IN ({})", params.join(", ")));
}

/// The probe engine's writes to a monitor, shared by the single and the
/// batched forms.
const SET_STATUS: &str = "UPDATE connection_monitors SET status = $1 WHERE id = $2";
const SET_STATUS_IF_CHANGED: &str =
    "UPDATE connection_monitors SET status = $1 WHERE id = $2 AND status <> $1";

/// Record a monitor's link state (and why it is not probed).
fn set_link_state_query(
    id: &str,
    s: &LinkState,
) -> sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments> {
    sqlx::query("UPDATE connection_monitors SET link_up = $1, link_changed_us = $2, probe_note = $3 WHERE id = $4")
        .bind(s.up.map(i64::from))
        .bind(s.changed_us)
        .bind(s.note.clone())
        .bind(id.to_string())
}

fn probe_monitor_from_row(r: &AnyRow) -> Result<ProbeMonitor> {
    let m = monitor_from_row(r)?;
    Ok(ProbeMonitor {
        id: m.id,
        project_id: get(r, "project_id")?,
        vpn_connection_id: m.vpn_connection_id,
        source_ip: m.source_ip,
        destination_ip: m.destination_ip,
        status: m.status,
    })
}

fn project_from_row(r: &AnyRow) -> Result<Project> {
    Ok(Project {
        id: get(r, "id")?,
        domain_id: get(r, "domain_id")?,
        name: get(r, "name")?,
    })
}

fn user_from_row(r: &AnyRow) -> Result<User> {
    Ok(User {
        id: get(r, "id")?,
        domain_id: get(r, "domain_id")?,
        name: get(r, "name")?,
        password_hash: get(r, "password_hash")?,
    })
}

fn credential_from_row(r: &AnyRow) -> Result<CredentialRecord> {
    Ok(CredentialRecord {
        access: get(r, "access")?,
        user_id: get(r, "user_id")?,
        sealed_secret: get(r, "sealed_secret")?,
        enabled: get::<i64>(r, "enabled")? != 0,
        description: get(r, "description")?,
        created_us: get(r, "created_us")?,
    })
}
