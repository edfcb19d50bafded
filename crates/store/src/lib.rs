//! vpnmon's storage: one interface ([`Store`]) with SQLite (the embedded
//! default) and PostgreSQL behind it.
//!
//! Design choices:
//! - One generic SQL path serves both engines through sqlx's `Any` driver:
//!   queries use `$N` placeholders, which both engines accept, and only
//!   portable types (TEXT, BIGINT). Each engine has its own migrations folder
//!   because DDL is where they differ.
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
//!   as plain functions from the `domain` crate.

mod buckets;
mod bulk;
mod iam;
mod metrics;
mod overview;
mod probe;
mod resources;
mod sql;

pub use iam::{CredentialRecord, Domain, Project, TokenRecord, User};
pub use metrics::{Agg, MetricStore, ROLLUP_PERIODS, Rollup};
pub use overview::{OverviewRow, OverviewStore};
pub use probe::{LinkState, MonitorUpdate, ProbeMonitor, WindowPoint};
pub use resources::{ConnectionFilter, Listed, Page};
pub use sql::SqlStore;

/// The time bucket that leads the raw datapoints' key (10 s wide): a writer
/// that batches can sort by `(point_bucket(window_start_ms), monitor_id,
/// window_start_ms)` to write in key order.
pub fn point_bucket(window_start_ms: i64) -> i64 {
    buckets::point_bucket(window_start_ms)
}

use async_trait::async_trait;
use domain::connection::{CreateConnection, UpdateConnection, VpnConnection};
use domain::customer_gateway::{CustomerGateway, UpdateCgw};
use domain::gateway::{GatewayPlan, UpdateVgw, VpnGateway};
use domain::monitor::ConnectionMonitor;
use domain::{DomainError, ProjectId};

/// Result of store operations: domain errors (`NotFound`, `Invalid`, ...)
/// or `Internal` for storage failures, whose text is for logs only.
pub type Result<T> = std::result::Result<T, DomainError>;

/// Everything vpnmon persists.
#[async_trait]
pub trait Store: MetricStore + OverviewStore + Send + Sync + 'static {
    // ---- IAM ----
    /// True when no user exists yet (first start).
    async fn has_users(&self) -> Result<bool>;
    /// Creates a domain (account).
    async fn create_domain(&self, name: &str) -> Result<Domain>;
    /// Finds a domain by name.
    async fn find_domain(&self, name: &str) -> Result<Option<Domain>>;
    /// Finds a domain by id.
    async fn get_domain(&self, id: &str) -> Result<Option<Domain>>;
    /// Creates a project in a domain.
    async fn create_project(&self, domain_id: &str, name: &str) -> Result<Project>;
    /// Finds a project by name.
    async fn find_project(&self, name: &str) -> Result<Option<Project>>;
    /// Finds a project by id.
    async fn get_project(&self, id: &str) -> Result<Option<Project>>;
    /// Lists projects.
    async fn list_projects(&self) -> Result<Vec<Project>>;
    /// Creates a user with an argon2 password hash.
    async fn create_user(&self, domain_id: &str, name: &str, password_hash: &str) -> Result<User>;
    /// Finds a user by domain and name.
    async fn find_user(&self, domain_id: &str, name: &str) -> Result<Option<User>>;
    /// Finds a user by name in any domain (for the admin CLI); errors when ambiguous.
    async fn find_user_any_domain(&self, name: &str) -> Result<Option<User>>;
    /// Finds a user by id.
    async fn get_user(&self, id: &str) -> Result<Option<User>>;
    /// Gives a user a role in a project.
    async fn grant(&self, user_id: &str, project_id: &str) -> Result<()>;
    /// Projects a user has a role in.
    async fn user_projects(&self, user_id: &str) -> Result<Vec<Project>>;
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
    async fn list_credentials(&self, user_id: Option<&str>) -> Result<Vec<CredentialRecord>>;
    /// Enables or disables a credential.
    async fn set_credential_enabled(&self, access: &str, enabled: bool) -> Result<bool>;
    /// Deletes a credential.
    async fn delete_credential(&self, access: &str) -> Result<bool>;
    /// Returns the stored value of `key`, storing `value` first if absent.
    async fn meta_get_or_init(&self, key: &str, value: &str) -> Result<String>;

    // ---- EIP pool ----
    /// Adds addresses (id, address) to the pool; existing ones are kept.
    async fn add_pool(&self, entries: &[(String, String)]) -> Result<usize>;
    /// Pool entries: (id, address, project, gateway).
    async fn list_pool(&self) -> Result<Vec<(String, String, Option<String>, Option<String>)>>;

    // ---- resources (all scoped by project) ----
    /// Creates a gateway and binds its EIPs from the pool.
    async fn create_gateway(&self, p: &ProjectId, plan: GatewayPlan) -> Result<VpnGateway>;
    /// Shows a gateway.
    async fn get_gateway(&self, p: &ProjectId, id: &str) -> Result<VpnGateway>;
    /// Lists gateways, optionally by id and enterprise projects.
    async fn list_gateways(
        &self,
        p: &ProjectId,
        id: Option<&str>,
        eps: &[String],
    ) -> Result<Vec<VpnGateway>>;
    /// Updates a gateway.
    async fn update_gateway(
        &self,
        p: &ProjectId,
        id: &str,
        req: &UpdateVgw,
        now: &str,
    ) -> Result<VpnGateway>;
    /// Deletes a gateway that no connection uses; its EIPs return to the pool.
    async fn delete_gateway(&self, p: &ProjectId, id: &str) -> Result<()>;

    /// Creates a customer gateway.
    async fn create_cgw(&self, p: &ProjectId, cgw: &CustomerGateway) -> Result<CustomerGateway>;
    /// Shows a customer gateway.
    async fn get_cgw(&self, p: &ProjectId, id: &str) -> Result<CustomerGateway>;
    /// Lists customer gateways.
    async fn list_cgws(
        &self,
        p: &ProjectId,
        id: Option<&str>,
        page: Page,
    ) -> Result<Listed<CustomerGateway>>;
    /// Updates a customer gateway.
    async fn update_cgw(
        &self,
        p: &ProjectId,
        id: &str,
        req: &UpdateCgw,
        now: &str,
    ) -> Result<CustomerGateway>;
    /// Deletes a customer gateway that no connection uses.
    async fn delete_cgw(&self, p: &ProjectId, id: &str) -> Result<()>;

    /// Creates a connection between a gateway and a customer gateway of the project.
    async fn create_connection(
        &self,
        p: &ProjectId,
        req: CreateConnection,
        id: String,
        now: &str,
    ) -> Result<VpnConnection>;
    /// Shows a connection (with `connection_monitor_id` when it has a monitor).
    async fn get_connection(&self, p: &ProjectId, id: &str) -> Result<VpnConnection>;
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
        id: &str,
        req: &UpdateConnection,
        now: &str,
    ) -> Result<VpnConnection>;
    /// Deletes a connection and its monitor in one transaction.
    async fn delete_connection(&self, p: &ProjectId, id: &str) -> Result<()>;

    /// Creates the monitor of a connection (at most one per connection).
    async fn create_monitor(
        &self,
        p: &ProjectId,
        vpn_connection_id: &str,
        id: String,
        now_us: i64,
    ) -> Result<ConnectionMonitor>;
    /// Shows a monitor.
    async fn get_monitor(&self, p: &ProjectId, id: &str) -> Result<ConnectionMonitor>;
    /// Lists monitors, optionally of one connection.
    async fn list_monitors(
        &self,
        p: &ProjectId,
        vpn_connection_id: Option<&str>,
    ) -> Result<Vec<ConnectionMonitor>>;
    /// Deletes a monitor.
    async fn delete_monitor(&self, p: &ProjectId, id: &str) -> Result<()>;

    // ---- the probe engine's seam ----
    /// Every monitor of every project, for the probe engine to take.
    async fn monitors_for_probing(&self) -> Result<Vec<ProbeMonitor>>;
    /// Up to `limit` monitors of every project with an id after `after_id`
    /// (from the start when `None`), in id order: the same as
    /// [`Store::monitors_for_probing`], a page at a time, so that loading
    /// 100 000 monitors never holds them all in memory at once.
    async fn monitors_for_probing_page(
        &self,
        after_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ProbeMonitor>>;
    /// Sets a monitor's status (e.g. `ACTIVE` once its first probe left).
    async fn set_monitor_status(&self, id: &str, status: &str) -> Result<bool>;
    /// Records a monitor's link state and why it is not probed, if it is not.
    async fn set_link_state(&self, id: &str, state: &LinkState) -> Result<bool>;
    /// Applies status and link-state changes in one transaction (updates of
    /// monitors that no longer exist are skipped; a status that is already
    /// set is not written again).
    async fn update_monitors(&self, updates: &[MonitorUpdate]) -> Result<()>;
    /// A monitor's link state.
    async fn get_link_state(&self, p: &ProjectId, id: &str) -> Result<LinkState>;
    /// Appends raw window datapoints in one batch.
    async fn insert_points(&self, points: &[WindowPoint]) -> Result<()>;
    /// Raw window datapoints of a monitor of project `p` in `[from_ms, to_ms)`.
    async fn list_points(
        &self,
        p: &ProjectId,
        monitor_id: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<WindowPoint>>;
    /// Deletes raw points older than `before_ms`; returns how many.
    async fn prune_points(&self, before_ms: i64) -> Result<u64>;
}
