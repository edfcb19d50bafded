//! Shared state of the API: the store, the clock, and the seam through
//! which the probe engine hears about monitors.

use chrono::{DateTime, Utc};
use std::sync::Arc;
use store::Store;

pub use domain::time::{Clock, SystemClock};

/// The probe engine's seam: told when a monitor appears or goes away, so it
/// can start or stop probing at once (it also reconciles with the store, so
/// a missed call only delays, never loses, a change).
pub trait MonitorWatcher: Send + Sync + 'static {
    /// A monitor was created.
    fn created(&self, monitor: &store::ProbeMonitor);
    /// A monitor was deleted (directly or with its connection).
    fn deleted(&self, monitor_id: &domain::MonitorId);
}

/// A watcher that does nothing (no probe engine attached).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoWatcher;

impl MonitorWatcher for NoWatcher {
    fn created(&self, _: &store::ProbeMonitor) {}
    fn deleted(&self, _: &domain::MonitorId) {}
}

/// What `GET /readyz` asks beyond "does the store answer": the node's own
/// state (the probe engine, its background tasks, its lease).
pub trait Readiness: Send + Sync + 'static {
    /// Why this node is not ready (a sentence for operators), or `None`.
    fn not_ready(&self) -> Option<String>;
}

/// Ready whenever the store answers (no probe engine attached).
#[derive(Debug, Default, Clone, Copy)]
pub struct StoreOnly;

impl Readiness for StoreOnly {
    fn not_ready(&self) -> Option<String> {
        None
    }
}

/// Heavy reads that run at once (the others wait their turn).
pub const HEAVY_READS: usize = 2;

/// Everything a handler may need.
#[derive(Clone)]
pub struct AppState {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// How long an issued token lives (24 h).
    pub token_ttl: chrono::Duration,
    /// Key that seals AK/SK secrets at rest.
    pub master_key: [u8; 32],
    /// The probe engine's seam.
    pub watcher: Arc<dyn MonitorWatcher>,
    /// Region name shown in token catalogs.
    pub region: String,
    /// Request metrics, when exported.
    pub metrics: Option<Arc<crate::prometheus::ApiMetrics>>,
    /// The node's readiness beyond the store.
    pub readiness: Arc<dyn Readiness>,
    /// Private and loopback networks SMN HTTP(S) endpoints may be in
    /// (`--notify-allow`); none by default.
    pub notify_allow: Arc<Vec<ipnet::IpNet>>,
    /// Failed-login and bad-signature counting and locks.
    pub login_guard: Arc<crate::login_guard::LoginGuard>,
    /// Permits for heavy reads (whole lists, long CES ranges): at most
    /// this many run at once, so that they can't take every store
    /// connection, core and megabyte from light requests.
    pub heavy_reads: Arc<tokio::sync::Semaphore>,
    /// The SMN signing key and certificate (made on first use).
    pub smn_keys: Arc<crate::smn_keys::SmnKeys>,
    /// Woken when something was put into the SMN outbox, so that the
    /// delivery worker of this node sends it at once.
    pub outbox_wake: Arc<tokio::sync::Notify>,
}

impl AppState {
    /// State with the system clock and no watcher.
    pub fn new(store: Arc<dyn Store>, master_key: [u8; 32]) -> Self {
        AppState {
            clock: Arc::new(SystemClock),
            token_ttl: chrono::Duration::hours(24),
            master_key,
            watcher: Arc::new(NoWatcher),
            region: "local-1".into(),
            metrics: None,
            readiness: Arc::new(StoreOnly),
            notify_allow: Arc::new(Vec::new()),
            login_guard: Arc::new(crate::login_guard::LoginGuard::default()),
            heavy_reads: Arc::new(tokio::sync::Semaphore::new(HEAVY_READS)),
            smn_keys: Arc::new(crate::smn_keys::SmnKeys::new(store.clone(), master_key)),
            outbox_wake: Arc::new(tokio::sync::Notify::new()),
            store,
        }
    }

    /// Waits for a heavy read's turn.
    pub async fn heavy_read(&self) -> Result<tokio::sync::OwnedSemaphorePermit, crate::ApiError> {
        self.heavy_reads
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| crate::ApiError::internal("the heavy-read semaphore is closed"))
    }

    /// Now, per the configured clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Now, rendered for the wire.
    pub fn now_wire(&self) -> String {
        domain::time::wire_ms(self.now())
    }
}
