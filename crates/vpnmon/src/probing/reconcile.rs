//! The safety net: every [`RECONCILE_EVERY`] the engine's monitor set is
//! brought in line with the store (the API's watcher tells the engine about
//! changes at once; this catches anything missed), a page at a time. It
//! also runs at once when ownership may have moved (membership or local
//! addresses changed, or the node was unfenced): the engine then holds
//! exactly the monitors this node owns ([`crate::membership::view`]).

use super::ProbeData;
use super::jobs::release_freed_memory;
use super::registry::{ProbeWatcher, addresses_digest, spec};
use crate::membership::view::Ownership;
use api::MonitorWatcher;
use domain::MonitorId;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

/// How often the engine's monitor set is reconciled with the store.
pub(crate) const RECONCILE_EVERY: Duration = Duration::from_secs(300);

/// Monitors read from the store per page during a reconcile.
const RECONCILE_PAGE: usize = 5_000;

/// Loads every monitor into the engine, a page at a time, and removes those
/// gone from the store; what the engine has is what the registry records.
pub(crate) async fn reconcile(
    store: Arc<dyn ProbeData>,
    w: Arc<ProbeWatcher>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        // Only monitors known before the store is read can be gone from it
        // (one the API creates meanwhile is not in this snapshot); each one
        // the store still has is taken out, and what is left is gone.
        w.forget_old_deletions();
        let mut gone: HashSet<Uuid> = w.owners.lock().by_monitor.keys().copied().collect();
        match load_all(store.as_ref(), &w, &mut gone).await {
            Ok(()) => {
                for id in gone.drain() {
                    w.unload(&MonitorId::from_uuid(id));
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot load monitors for probing"),
        }
        drop(gone);
        release_freed_memory();
        tokio::select! {
            _ = tokio::time::sleep(RECONCILE_EVERY) => {}
            _ = w.reload.notified() => {}
            _ = stop.changed() => return,
        }
    }
}

/// Gives the engine every monitor of the store that is new or has new
/// addresses, and takes every monitor seen out of `unseen`.
pub(crate) async fn load_all(
    store: &dyn ProbeData,
    w: &ProbeWatcher,
    unseen: &mut HashSet<Uuid>,
) -> store::Result<()> {
    let mut after: Option<MonitorId> = None;
    let mut unowned = HashSet::new();
    loop {
        let page = store
            .monitors_for_probing_page(after.as_ref(), RECONCILE_PAGE)
            .await?;
        for m in &page {
            let Some(s) = spec(m) else {
                tracing::warn!(monitor = %m.id, "monitor has unparsable addresses; not probed");
                continue;
            };
            let known = w.owners.lock().by_monitor.get(&s.id).map(|o| o.addresses);
            match w.view.ownership(&m.id, s.source) {
                // Deleted since this page was read: it stays in `unseen`.
                Ownership::Mine if w.is_deleted(&s.id) => {}
                Ownership::Mine => {
                    if known != Some(addresses_digest(&s)) {
                        w.created(m);
                    }
                    unseen.remove(&s.id);
                }
                // Another node probes it, or none can: what the engine has
                // of it goes (it stays in `unseen`).
                Ownership::Other => {}
                Ownership::Nobody => {
                    unowned.insert(s.id);
                }
            }
        }
        if page.len() < RECONCILE_PAGE {
            w.judged_all(unowned);
            return Ok(());
        }
        after = page.last().map(|m| m.id);
    }
}
