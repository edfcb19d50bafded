//! The application: opens the store, bootstraps IAM on first start, loads
//! the EIP pool, binds the listener and serves. Tests build it the same way
//! on `127.0.0.1:0`.

use crate::config::Settings;
use anyhow::Context;
use api::{AppState, Clock, MonitorWatcher};
use std::net::SocketAddr;
use std::sync::Arc;
use store::{SqlStore, Store};
use tokio::net::TcpListener;

/// Options that tests (and the probe engine) inject.
#[derive(Clone, Default)]
pub struct Hooks {
    /// Replaces the system clock.
    pub clock: Option<Arc<dyn Clock>>,
    /// Told when monitors are created or deleted.
    pub watcher: Option<Arc<dyn MonitorWatcher>>,
}

/// What first start created.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub domain: String,
    pub user: String,
    pub project: String,
    pub project_id: String,
    /// Set when the password was generated (printed once).
    pub generated_password: Option<String>,
}

/// A built, not yet serving, application.
pub struct Application {
    listener: TcpListener,
    limits: api::server::Limits,
    addr: SocketAddr,
    store: Arc<SqlStore>,
    state: AppState,
    probe: Option<crate::probing::ProbeService>,
    metrics: Arc<crate::prometheus::Metrics>,
    metrics_listener: Option<TcpListener>,
    node: store::NodeRegistration,
    /// The membership and address tasks.
    node_tasks: Vec<tokio::task::JoinHandle<()>>,
    membership_stop: tokio::sync::watch::Sender<bool>,
    /// Set when this start created the bootstrap admin.
    pub bootstrap: Option<Bootstrap>,
}

/// Opens the store the settings point at.
pub async fn open_store(settings: &Settings) -> anyhow::Result<SqlStore> {
    let store = match &settings.database_url {
        Some(url) => SqlStore::open(url).await,
        None => SqlStore::open_data_dir(&settings.data_dir).await,
    };
    store.map_err(|e| anyhow::anyhow!("cannot open the store: {e}"))
}

/// The key that seals AK/SK secrets, created on first use (see
/// [`crate::secrets`] for where it lives).
pub async fn master_key(store: &dyn Store, settings: &Settings) -> anyhow::Result<[u8; 32]> {
    crate::secrets::master_key(store, &crate::secrets::key_source(settings)).await
}

/// Creates the bootstrap admin on an empty store: domain `vpnmon`, project
/// `local-1`, user `admin` with `VPNMON_ADMIN_PASSWORD` or a generated password.
///
/// Several nodes started at once on one empty PostgreSQL race here: the
/// loser's insert of the domain, project or user fails on the unique name,
/// so it looks again (a few times, briefly), finds what the winner made and
/// has nothing to create.
pub async fn bootstrap(
    store: &dyn Store,
    admin_password: Option<&str>,
) -> anyhow::Result<Option<Bootstrap>> {
    let mut tries = 0u32;
    loop {
        match bootstrap_once(store, admin_password).await {
            Err(err) if tries < 5 => {
                tries += 1;
                tracing::debug!(error = %err, "bootstrap raced another node; looking again");
                tokio::time::sleep(std::time::Duration::from_millis(100 * u64::from(tries))).await;
            }
            done => return done,
        }
    }
}

async fn bootstrap_once(
    store: &dyn Store,
    admin_password: Option<&str>,
) -> anyhow::Result<Option<Bootstrap>> {
    let e = |e: domain::DomainError| anyhow::anyhow!("{e}");
    if store.has_users().await.map_err(e)? {
        return Ok(None);
    }
    let (password, generated) = match admin_password {
        Some(p) if !p.is_empty() => (p.to_string(), None),
        _ => {
            let p = crate::admin::generate_password();
            (p.clone(), Some(p))
        }
    };
    let domain = match store.find_domain("vpnmon").await.map_err(e)? {
        Some(d) => d,
        None => store.create_domain("vpnmon").await.map_err(e)?,
    };
    let project = match store.find_project("local-1").await.map_err(e)? {
        Some(p) => p,
        None => store
            .create_project(&domain.id, "local-1")
            .await
            .map_err(e)?,
    };
    let hash = auth::password::hash_password(&password).map_err(|e| anyhow::anyhow!("{e}"))?;
    let user = store
        .create_user(&domain.id, "admin", &hash)
        .await
        .map_err(e)?;
    store.grant(&user.id, &project.id).await.map_err(e)?;
    Ok(Some(Bootstrap {
        domain: domain.name,
        user: user.name,
        project: project.name,
        project_id: project.id.to_string(),
        generated_password: generated,
    }))
}

/// Adds the configured EIP pool to the store.
pub async fn load_pool(store: &dyn Store, specs: &[String]) -> anyhow::Result<usize> {
    let mut entries = Vec::new();
    for spec in specs {
        for s in spec.split(',').filter(|s| !s.trim().is_empty()) {
            let addrs =
                domain::eip::parse_pool_spec(s).map_err(|e| anyhow::anyhow!("--eip-pool: {e}"))?;
            entries.extend(
                addrs
                    .iter()
                    .map(|a| (domain::eip::pool_entry_id(a), a.to_string())),
            );
        }
    }
    store
        .add_pool(&entries)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// `http://` and the listen address (a wildcard address as loopback).
fn default_public_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        std::net::IpAddr::V4(v) if v.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(v) if v.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

impl Application {
    /// Opens everything and binds the listener.
    pub async fn build(settings: &Settings, hooks: Hooks) -> anyhow::Result<Self> {
        // One clock for the API and the store.
        let clock: Arc<dyn Clock> = hooks.clock.unwrap_or_else(|| Arc::new(api::SystemClock));
        let store = Arc::new(open_store(settings).await?.with_clock(clock.clone()));
        let bootstrap = bootstrap(store.as_ref(), settings.admin_password.as_deref()).await?;
        load_pool(store.as_ref(), &settings.eip_pool).await?;
        let key = master_key(store.as_ref(), settings).await?;
        let mut state = AppState::new(store.clone(), key);
        state.clock = clock;
        state.notify_allow = std::sync::Arc::new(settings.notify_allow.clone());
        let metrics = crate::prometheus::Metrics::new(settings.metrics_max_monitors);
        state.metrics = Some(metrics.api.clone());
        state.login_guard = std::sync::Arc::new(api::login_guard::LoginGuard::new(
            api::login_guard::LoginPolicy {
                max_failures: settings.login_max_failures,
                window: settings.login_failure_window,
                lockout: settings.login_lockout,
                max_failures_per_address: settings.login_max_failures_per_address,
                max_failures_per_access_key: settings.login_max_failures_per_address,
            },
        ));
        let guard = state.login_guard.clone();
        metrics.register_more(|r| guard.register(r));
        let health = crate::health::NodeHealth::new(metrics.clone());
        state.readiness = health.clone();
        // Join the membership before serving: a node that cannot take a
        // lease does not start.
        let timing = crate::membership::core::Timing::DEFAULT;
        let node = crate::membership::registration(settings.node_name.as_deref());
        let granted_at = crate::membership::join(store.as_ref(), &node, timing)
            .await
            .map_err(|e| anyhow::anyhow!("cannot join the membership of the store: {e}"))?;
        // Run-once jobs: on PostgreSQL a node leads them only after holding
        // its lease for a lease time and a renewal without a break (so a
        // node that lost its lease and registers again cannot overlap the
        // one that took over); SQLite has one node.
        let settle = match store.backend() {
            store::Backend::Sqlite => std::time::Duration::ZERO,
            _ => timing.ttl + timing.renew_every,
        };
        let view = Arc::new(crate::membership::view::View::new(&node, settle));
        let mut probe = None;
        if let Some(w) = hooks.watcher {
            state.watcher = w;
        } else if settings.probe {
            // What this node can send from, before the first reconcile
            // decides what it probes.
            match tokio::task::spawn_blocking(crate::membership::addresses::local_prefixes).await {
                Ok(Ok(p)) => {
                    view.set_local(p);
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot read the local addresses yet"),
                Err(e) => tracing::warn!(error = %e, "the address reader failed"),
            }
            // Publish them at once (not only with the first renewal), so
            // that other nodes and the state endpoint see what this node
            // can probe from its first second on.
            let report = store::NodeReport {
                addresses: view.local(),
                monitors: 0,
            };
            if let Err(e) =
                store::ProbeStore::renew_node(store.as_ref(), &node.id, timing.ttl, &report).await
            {
                tracing::warn!(error = %e, "cannot publish the local addresses yet");
            }
            crate::membership::refresh_members(store.as_ref(), &view, &crate::membership::NoProber)
                .await;
            match crate::probing::ProbeService::start(
                store.clone(),
                settings,
                metrics.clone(),
                health.clone(),
                view.clone(),
            )
            .await
            {
                Ok(p) => {
                    state.watcher = p.watcher.clone();
                    probe = Some(p);
                }
                Err(e) => {
                    anyhow::bail!(
                        "the probe engine cannot start: {e} (or run with --no-probe to serve the API only)"
                    );
                }
            }
        }
        let prober: Arc<dyn crate::membership::Fence> = match &probe {
            Some(p) => p.watcher.clone(),
            None => Arc::new(crate::membership::NoProber),
        };
        health.fence_on_failure(prober.clone());
        let (membership_stop, stop_rx) = tokio::sync::watch::channel(false);
        let mut node_tasks = Vec::new();
        if probe.is_some() {
            node_tasks.push(crate::health::supervise(
                "addresses",
                health.clone(),
                stop_rx.clone(),
                crate::membership::addresses::watch(view.clone(), prober.clone(), stop_rx.clone()),
            ));
        }
        node_tasks.push(crate::health::supervise(
            "membership",
            health.clone(),
            stop_rx.clone(),
            crate::membership::run(
                store.clone(),
                node.clone(),
                timing,
                granted_at,
                view,
                prober,
                health,
                stop_rx,
            ),
        ));
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        let addr = listener.local_addr()?;
        // SMN delivery: this node sends what the outbox holds.
        if store.backend() == store::Backend::Sqlite {
            // The only node: leases of a previous run of it are void.
            if let Err(e) = store::OutboxStore::release_delivery_leases(store.as_ref()).await {
                tracing::warn!(error = %e, "cannot release the SMN outbox leases of the last run");
            }
        }
        let delivery_metrics = crate::delivery::DeliveryMetrics::default();
        metrics.register_more(|r| delivery_metrics.register(r));
        let public_url = settings
            .public_url
            .clone()
            .unwrap_or_else(|| default_public_url(addr));
        node_tasks.push(crate::delivery::spawn(
            store.clone(),
            state.smn_keys.clone(),
            state.outbox_wake.clone(),
            crate::delivery::Config::new(
                state.clock.clone(),
                public_url,
                state.region.clone(),
                state.notify_allow.clone(),
            ),
            delivery_metrics,
            membership_stop.subscribe(),
        ));
        if settings.metrics_listen.is_some() {
            node_tasks.push(tokio::spawn(crate::prometheus::alarms::refresh(
                store.clone(),
                metrics.alarm_states.clone(),
                settings.metrics_max_monitors,
                membership_stop.subscribe(),
            )));
        }
        let metrics_listener =
            match settings.metrics_listen {
                Some(a) => Some(TcpListener::bind(a).await.with_context(|| {
                    format!("cannot listen on {a} for metrics (--metrics-listen)")
                })?),
                None => None,
            };
        Ok(Application {
            metrics,
            metrics_listener,
            listener,
            limits: api::server::Limits {
                header_timeout: settings.http_header_timeout,
                body_timeout: settings.http_body_timeout,
                max_connections: settings.http_max_connections,
            },
            addr,
            store,
            state,
            probe,
            node,
            node_tasks,
            membership_stop,
            bootstrap,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where metrics are served, if they are.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// The metrics.
    pub fn metrics(&self) -> Arc<crate::prometheus::Metrics> {
        self.metrics.clone()
    }

    /// The probe engine's counters, when it runs.
    pub fn probe_engine(&self) -> Option<probe::EngineHandle> {
        self.probe.as_ref().map(|p| p.engine.clone())
    }

    /// This node's registration in the membership.
    pub fn node(&self) -> &store::NodeRegistration {
        &self.node
    }

    /// The store (shared with the probe engine).
    pub fn store(&self) -> Arc<SqlStore> {
        self.store.clone()
    }

    /// Serves until `shutdown` completes, then closes the store.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (router, _) = api::router(self.state);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
        let wait = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|v| *v).await;
        };
        let metrics_task = self.metrics_listener.map(|l| {
            let r = crate::prometheus::router(self.metrics.clone());
            tokio::spawn(
                axum::serve(l, r)
                    .with_graceful_shutdown(wait(stop_rx.clone()))
                    .into_future(),
            )
        });
        api::server::serve(self.listener, router, self.limits, wait(stop_rx))
            .await
            .context("server failed")?;
        if let Some(t) = metrics_task {
            match t.await {
                Ok(r) => r.context("metrics server failed")?,
                Err(e) => anyhow::bail!("metrics server task failed: {e}"),
            }
        }
        // Leave first, so that other nodes take this node's monitors at
        // once; then stop probing.
        let _ = self.membership_stop.send(true);
        for t in self.node_tasks {
            if let Err(e) = t.await {
                tracing::error!(error = %e, "membership task failed");
            }
        }
        if let Some(p) = self.probe {
            p.shutdown().await;
        }
        self.store.close().await;
        Ok(())
    }
}
