//! vpnmon's storage: one small trait per capability, with SQLite (the
//! embedded default) and PostgreSQL behind each.
//!
//! The capabilities:
//! - [`IdentityStore`]: domains, projects, users, tokens, AK/SK credentials
//!   and the store's own settings (`meta`);
//! - [`ResourceStore`]: the EIP pool and the VPN v5 resources (gateways,
//!   customer gateways, connections, connection monitors);
//! - [`ProbeStore`]: what the probe engine reads (the monitor feed) and
//!   writes back (status, link state), and node membership (leases on the
//!   database's clock); monitor ownership belongs here too;
//! - [`MeasurementStore`]: raw window datapoints, rollups and retention;
//! - [`OverviewStore`]: the dashboard's overview (every monitor with its
//!   newest window, sorted and paged by the store);
//! - [`AlarmStore`]: Cloud Eye alarm rules, their history, and their
//!   evaluation as raw windows are stored;
//! - [`TopicStore`]: SMN topics, the targets of alarm actions;
//! - [`OutboxStore`]: SMN delivery (confirmations, the outbox of messages,
//!   each attempt).
//!
//! [`Store`] is all of them, for the wiring that needs everything; a part that
//! needs one capability takes that trait (the prober glue takes
//! `ProbeStore + MeasurementStore`).
//!
//! Design choices:
//! - One generic SQL path serves both engines through sqlx's `Any` driver:
//!   queries use `$N` placeholders, which both engines accept, and only
//!   portable types (TEXT, BIGINT). Each engine has its own migrations folder
//!   because DDL is where they differ. The SQL of each capability is in its
//!   own module under `sql/`.
//! - Resources are stored as their wire record (JSON in `body`) plus the
//!   columns queries filter, join and sort on. Derived fields
//!   (`connection_monitor_id`, `used_connection_number`) are computed when
//!   read, so they can never go stale.
//! - Every resource query takes a [`ProjectId`] and filters on it: tenant
//!   isolation is enforced here, not only in handlers.
//! - SQLite runs in WAL mode with `synchronous=FULL` (an acknowledged write
//!   survives power loss) and one writer connection (so read-then-write
//!   transactions never deadlock), beside a pool of readers.
//! - Multi-step writes run in one transaction; the domain rules run inside it
//!   as plain functions from the `domain` crate. The store writes no
//!   client-facing text of its own: every error it returns is built by a
//!   `domain` function ([`DomainError::already_exists`], `eip::bind_error`,
//!   ...) or is `Internal`, whose text is for the log only.
//! - Several nodes may write to one PostgreSQL: what must be unique is
//!   decided by the database. One monitor per connection is a unique index;
//!   `created_at` markers come from a per-project counter row
//!   (`created_markers`) advanced by an atomic upsert in the creating
//!   transaction, never from a read of `MAX(created_us)`.
//! - Time comes from one injectable [`domain::time::Clock`], shared with the
//!   API ([`SqlStore::with_clock`]).
//! - The key order of the measurement tables is the store's business: a
//!   batch is sorted into key order here, whatever order the caller used.
//! - Retention is by level ([`domain::retention`]): SQLite deletes old rows
//!   in bounded steps over the time-major key; PostgreSQL's measurement
//!   tables are partitioned by time and old partitions are dropped whole
//!   (`sql/partitions.rs`).

#![forbid(unsafe_code)]

mod alarms;
mod identity;
mod measurements;
mod nodes;
mod overview;
mod probing;
mod resources;
mod sql;
mod topics;

pub use alarms::{AlarmEvent, AlarmPage, AlarmStore, HistoryQuery};
pub use identity::{CredentialRecord, Domain, LoginLock, Project, TokenRecord, User};
pub use measurements::{Agg, Pruned, ROLLUP_PERIODS, Rollup, WindowPoint};
pub use nodes::{NodeLease, NodeRecord, NodeRegistration, NodeReport, job_leader};
pub use overview::{AlarmSummary, OverviewRow, OverviewStore, Worst};
pub use probing::{LinkState, MonitorChange, MonitorFeed, MonitorUpdate, ProbeMonitor};
pub use resources::{ConnectionFilter, Listed, Page, PoolEntry};
pub use sql::{
    BACKUP_POSTGRES, Backend, BackupReport, PostgresTrouble, SqlStore, StoreFacts,
    inspect_postgres, inspect_sqlite, restore_sqlite, schema_version, with_socket_host,
};
pub use topics::{DeliveryView, OutboxCounts, OutboxStore, TopicStore};

/// Every capability trait, for code that calls store methods on a concrete
/// store: `use store::prelude::*;`.
pub mod prelude {
    pub use crate::{
        AlarmStore, IdentityStore, MeasurementStore, OutboxStore, OverviewStore, ProbeStore,
        ResourceStore, Store, TopicStore,
    };
}

use async_trait::async_trait;
use domain::connection::{CreateConnection, UpdateConnection, VpnConnection};
use domain::customer_gateway::{CustomerGateway, UpdateCgw};
use domain::gateway::{GatewayPlan, UpdateVgw, VpnGateway};
use domain::monitor::ConnectionMonitor;
use domain::retention::{Level, Retention};
use domain::{
    ConnectionId, CustomerGatewayId, DomainError, DomainId, GatewayId, MonitorId, NodeId,
    ProjectId, UserId,
};
use std::time::Duration;

/// Result of store operations: domain errors (`NotFound`, `Invalid`, ...)
/// or `Internal` for storage failures, whose text is for logs only.
pub type Result<T> = std::result::Result<T, DomainError>;

/// Everything vpnmon persists: every capability at once.
pub trait Store:
    IdentityStore
    + ResourceStore
    + ProbeStore
    + MeasurementStore
    + OverviewStore
    + AlarmStore
    + TopicStore
    + OutboxStore
    + 'static
{
}

impl<T> Store for T where
    T: IdentityStore
        + ResourceStore
        + ProbeStore
        + MeasurementStore
        + OverviewStore
        + AlarmStore
        + TopicStore
        + OutboxStore
        + 'static
{
}

/// Domains, projects, users, tokens, credentials and the store's settings.
#[async_trait]
pub trait IdentityStore: Send + Sync {
    /// True when no user exists yet (first start).
    async fn has_users(&self) -> Result<bool>;
    /// Creates a domain (account).
    async fn create_domain(&self, name: &str) -> Result<Domain>;
    /// Finds a domain by name.
    async fn find_domain(&self, name: &str) -> Result<Option<Domain>>;
    /// Finds a domain by id.
    async fn get_domain(&self, id: &DomainId) -> Result<Option<Domain>>;
    /// Creates a project in a domain.
    async fn create_project(&self, domain_id: &DomainId, name: &str) -> Result<Project>;
    /// Finds a project by name.
    async fn find_project(&self, name: &str) -> Result<Option<Project>>;
    /// Finds a project by id.
    async fn get_project(&self, id: &ProjectId) -> Result<Option<Project>>;
    /// Lists projects.
    async fn list_projects(&self) -> Result<Vec<Project>>;
    /// Creates a user with an argon2 password hash.
    async fn create_user(
        &self,
        domain_id: &DomainId,
        name: &str,
        password_hash: &str,
    ) -> Result<User>;
    /// Finds a user by domain and name.
    async fn find_user(&self, domain_id: &DomainId, name: &str) -> Result<Option<User>>;
    /// Finds a user by name in any domain (for the admin CLI); errors when ambiguous.
    async fn find_user_any_domain(&self, name: &str) -> Result<Option<User>>;
    /// Finds a user by id.
    async fn get_user(&self, id: &UserId) -> Result<Option<User>>;
    /// Gives a user a role in a project.
    async fn grant(&self, user_id: &UserId, project_id: &ProjectId) -> Result<()>;
    /// Projects a user has a role in.
    async fn user_projects(&self, user_id: &UserId) -> Result<Vec<Project>>;
    /// A user's failed logins and lock, if any are recorded.
    async fn get_login_lock(&self, user_id: &UserId) -> Result<Option<LoginLock>>;
    /// Records a user's failed logins and lock (replacing what was there).
    async fn put_login_lock(&self, user_id: &UserId, lock: &LoginLock) -> Result<()>;
    /// Forgets a user's failed logins and lock; whether any were recorded.
    async fn clear_login_lock(&self, user_id: &UserId) -> Result<bool>;
    /// Stores an issued token (by digest).
    async fn insert_token(&self, token: &TokenRecord) -> Result<()>;
    /// Looks a token up by digest.
    async fn get_token(&self, digest: &str) -> Result<Option<TokenRecord>>;
    /// Revokes a token.
    async fn revoke_token(&self, digest: &str) -> Result<bool>;
    /// Stores an AK/SK credential (SK sealed).
    async fn insert_credential(&self, c: &CredentialRecord) -> Result<()>;
    /// Looks a credential up by AK.
    async fn get_credential(&self, access: &str) -> Result<Option<CredentialRecord>>;
    /// Lists credentials, optionally of one user.
    async fn list_credentials(&self, user_id: Option<&UserId>) -> Result<Vec<CredentialRecord>>;
    /// Enables or disables a credential.
    async fn set_credential_enabled(&self, access: &str, enabled: bool) -> Result<bool>;
    /// Deletes a credential.
    async fn delete_credential(&self, access: &str) -> Result<bool>;
    /// Returns the stored value of `key`, storing `value` first if absent.
    async fn meta_get_or_init(&self, key: &str, value: &str) -> Result<String>;
    /// The stored value of `key`, if any.
    async fn meta_get(&self, key: &str) -> Result<Option<String>>;
    /// Removes `key`; whether it was there.
    async fn meta_delete(&self, key: &str) -> Result<bool>;
}

/// The EIP pool and the VPN v5 resources, all scoped by project.
#[async_trait]
pub trait ResourceStore: Send + Sync {
    /// Adds addresses (id, address) to the pool; existing ones are kept.
    async fn add_pool(&self, entries: &[(String, String)]) -> Result<usize>;
    /// Pool entries in pool order, with what each is bound to.
    async fn list_pool(&self) -> Result<Vec<PoolEntry>>;

    /// Creates a gateway and binds its EIPs from the pool.
    async fn create_gateway(&self, p: &ProjectId, plan: GatewayPlan) -> Result<VpnGateway>;
    /// Shows a gateway.
    async fn get_gateway(&self, p: &ProjectId, id: &GatewayId) -> Result<VpnGateway>;
    /// Lists gateways, optionally by id and enterprise projects.
    async fn list_gateways(
        &self,
        p: &ProjectId,
        id: Option<&GatewayId>,
        eps: &[String],
    ) -> Result<Vec<VpnGateway>>;
    /// Updates a gateway (rebinding EIPs the update names).
    async fn update_gateway(
        &self,
        p: &ProjectId,
        id: &GatewayId,
        req: &UpdateVgw,
    ) -> Result<VpnGateway>;
    /// Deletes a gateway that no connection uses; its EIPs return to the pool.
    async fn delete_gateway(&self, p: &ProjectId, id: &GatewayId) -> Result<()>;

    /// Creates a customer gateway (`created_at` is set by the store).
    async fn create_cgw(&self, p: &ProjectId, cgw: &CustomerGateway) -> Result<CustomerGateway>;
    /// Shows a customer gateway.
    async fn get_cgw(&self, p: &ProjectId, id: &CustomerGatewayId) -> Result<CustomerGateway>;
    /// Lists customer gateways.
    async fn list_cgws(
        &self,
        p: &ProjectId,
        id: Option<&CustomerGatewayId>,
        page: Page,
    ) -> Result<Listed<CustomerGateway>>;
    /// Updates a customer gateway.
    async fn update_cgw(
        &self,
        p: &ProjectId,
        id: &CustomerGatewayId,
        req: &UpdateCgw,
    ) -> Result<CustomerGateway>;
    /// Deletes a customer gateway that no connection uses.
    async fn delete_cgw(&self, p: &ProjectId, id: &CustomerGatewayId) -> Result<()>;

    /// Creates a connection between a gateway and a customer gateway of the project.
    async fn create_connection(
        &self,
        p: &ProjectId,
        req: CreateConnection,
        id: ConnectionId,
    ) -> Result<VpnConnection>;
    /// Shows a connection (with `connection_monitor_id` when it has a monitor).
    async fn get_connection(&self, p: &ProjectId, id: &ConnectionId) -> Result<VpnConnection>;
    /// Lists connections.
    async fn list_connections(
        &self,
        p: &ProjectId,
        f: &ConnectionFilter,
        page: Page,
    ) -> Result<Listed<VpnConnection>>;
    /// Updates a connection.
    async fn update_connection(
        &self,
        p: &ProjectId,
        id: &ConnectionId,
        req: &UpdateConnection,
    ) -> Result<VpnConnection>;
    /// Deletes a connection and its monitor in one transaction.
    async fn delete_connection(&self, p: &ProjectId, id: &ConnectionId) -> Result<()>;

    /// Creates the monitor of a connection (at most one per connection).
    async fn create_monitor(
        &self,
        p: &ProjectId,
        vpn_connection_id: &ConnectionId,
        id: MonitorId,
    ) -> Result<ConnectionMonitor>;
    /// Shows a monitor.
    async fn get_monitor(&self, p: &ProjectId, id: &MonitorId) -> Result<ConnectionMonitor>;
    /// Lists monitors, optionally of one connection.
    async fn list_monitors(
        &self,
        p: &ProjectId,
        vpn_connection_id: Option<&ConnectionId>,
    ) -> Result<Vec<ConnectionMonitor>>;
    /// One page of monitors (vpnmon's `limit`/`marker` extension), in
    /// creation order, with the total over all pages.
    async fn list_monitors_page(
        &self,
        p: &ProjectId,
        vpn_connection_id: Option<&ConnectionId>,
        page: Page,
    ) -> Result<Listed<ConnectionMonitor>>;
    /// Deletes a monitor.
    async fn delete_monitor(&self, p: &ProjectId, id: &MonitorId) -> Result<()>;
}

/// What the probe engine reads and writes.
#[async_trait]
pub trait ProbeStore: Send + Sync {
    /// Up to `limit` monitors of every project with an id after `after_id`
    /// (from the start when `None`), in id order, so that loading 100 000
    /// monitors never holds them all in memory at once.
    async fn monitors_for_probing_page(
        &self,
        after_id: Option<&MonitorId>,
        limit: usize,
    ) -> Result<Vec<ProbeMonitor>>;
    /// The monitors among `ids` that exist (any order; at most a few
    /// hundred ids at a time).
    async fn monitors_for_probing_by_id(&self, ids: &[MonitorId]) -> Result<Vec<ProbeMonitor>> {
        let _ = ids;
        Err(DomainError::Internal(
            "this store has no monitor lookup by id".into(),
        ))
    }
    /// A subscription to the monitors created or deleted through any node
    /// (PostgreSQL: `LISTEN vpnmon_monitors`), or `None` when the store has
    /// one node only (SQLite), which hears of changes through its own API.
    async fn monitor_feed(&self) -> Result<Option<Box<dyn MonitorFeed>>> {
        Ok(None)
    }
    /// Applies status and link-state changes in one transaction (updates of
    /// monitors that no longer exist are skipped; a status that is already
    /// set is not written again).
    async fn update_monitors(&self, updates: &[MonitorUpdate]) -> Result<()>;
    /// A monitor's link state.
    async fn get_link_state(&self, p: &ProjectId, id: &MonitorId) -> Result<LinkState>;
    /// One round trip to the database (readiness checks).
    async fn ping(&self) -> Result<()>;

    // ---------- node membership (times on the database's clock) ----------

    /// Adds a node with a lease of `ttl`. Registering an id again takes a
    /// fresh lease only once the previous one has run out (a node whose
    /// lease lapsed joins again); an id that is still live is refused.
    async fn register_node(&self, node: &NodeRegistration, ttl: Duration) -> Result<NodeLease>;
    /// Renews a node's lease for `ttl` and records its report, **only while
    /// the lease is still valid**: `None` when it has run out (or the node
    /// left), and the node must then register again. Rows of nodes whose
    /// lease ran out over a minute ago are swept.
    async fn renew_node(
        &self,
        id: &NodeId,
        ttl: Duration,
        report: &NodeReport,
    ) -> Result<Option<NodeLease>>;
    /// Removes a node at once (a clean stop, or a node that failed), so
    /// others need not wait for its lease to run out; false when absent.
    async fn leave_node(&self, id: &NodeId) -> Result<bool>;
    /// The live nodes (lease not run out), by name, then id.
    async fn live_nodes(&self) -> Result<Vec<NodeRecord>>;
}

/// Raw window datapoints, their rollups, and retention.
#[async_trait]
pub trait MeasurementStore: Send + Sync {
    /// Appends raw window datapoints in one batch (any order).
    async fn insert_points(&self, points: &[WindowPoint]) -> Result<()>;
    /// Raw window datapoints of a monitor of project `p` in `[from_ms, to_ms)`.
    async fn list_points(
        &self,
        p: &ProjectId,
        monitor_id: &MonitorId,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<WindowPoint>>;
    /// Deletes raw points older than `before_ms`; returns how many.
    async fn prune_points(&self, before_ms: i64) -> Result<u64>;
    /// Rolls up every complete `period_s` bucket that ends at or before
    /// `until_ms` and is past the period's watermark; returns rows written.
    async fn roll_up(&self, period_s: i64, until_ms: i64) -> Result<u64>;
    /// Rollups of a monitor of project `p` with `from_ms <= bucket < to_ms`.
    async fn list_rollups(
        &self,
        p: &ProjectId,
        monitor_id: &MonitorId,
        period_s: i64,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Rollup>>;
    /// Deletes rollups of `period_s` older than `before_ms`; returns how many.
    async fn prune_rollups(&self, period_s: i64, before_ms: i64) -> Result<u64>;
    /// Applies `retention` at `now_ms`: each level loses what is older than
    /// the time it is kept, but never what the next level has not been
    /// rolled up from yet. SQLite deletes rows, in bounded steps; PostgreSQL
    /// drops the time partitions wholly older than that (so a level is kept
    /// up to one partition longer there) and deletes rows only from the
    /// default partition. Returns what went, per level; a level that fails
    /// does not stop the others (its error is in its place).
    async fn apply_retention(
        &self,
        retention: &Retention,
        now_ms: i64,
    ) -> Vec<(Level, Result<Pruned>)>;
    /// Creates the time partitions that will be written next, ahead of time
    /// (PostgreSQL; nothing to do on SQLite); returns how many it created.
    async fn prepare_partitions(&self, retention: &Retention, now_ms: i64) -> Result<u64>;
}
