//! Monitors created or deleted through any node reach the node that owns
//! them at once: on PostgreSQL every node listens to the store's monitor
//! feed (`LISTEN vpnmon_monitors`, sent by a trigger as each transaction
//! commits) and reads the monitors it names again: one that exists is
//! given to the engine if this node owns it, one that is gone is taken off.
//! Once the feed listens (at start, and each time it is taken again after
//! it broke) every monitor is read again (the reconcile), since changes
//! before that were not heard. On SQLite
//! there is one node, which hears of changes through its own API.

use super::ProbeData;
use super::registry::{ProbeWatcher, addresses_digest, spec};
use crate::membership::view::Ownership;
use api::MonitorWatcher;
use domain::MonitorId;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use store::MonitorChange;
use tokio::sync::watch;

/// How long to wait before taking the feed again after it broke.
const RETRY: Duration = Duration::from_secs(2);

/// Follows the store's monitor feed until `stop`.
pub(crate) async fn follow(
    store: Arc<dyn ProbeData>,
    w: Arc<ProbeWatcher>,
    mut stop: watch::Receiver<bool>,
) {
    let mut broke = false;
    loop {
        let feed = tokio::select! {
            f = store.monitor_feed() => f,
            _ = stop.changed() => return,
        };
        match feed {
            Ok(None) => {
                // One node: nothing to follow.
                let _ = stop.changed().await;
                return;
            }
            Ok(Some(mut feed)) => {
                w.metrics.set_feed_up(true);
                // What changed before the feed was taken was not heard:
                // read every monitor (again) once it is listening.
                if broke {
                    tracing::info!("monitor feed taken again; reading every monitor again");
                }
                w.reload.notify_one();
                loop {
                    let next = tokio::select! {
                        n = feed.next() => n,
                        _ = stop.changed() => return,
                    };
                    let r = match next {
                        Ok(MonitorChange::Touched(ids)) => apply(store.as_ref(), &w, &ids).await,
                        Ok(MonitorChange::Missed) => {
                            tracing::info!(
                                "monitor feed may have missed changes; reading every monitor again"
                            );
                            w.reload.notify_one();
                            Ok(())
                        }
                        Err(e) => Err(e),
                    };
                    if let Err(e) = r {
                        tracing::warn!(error = %e, "monitor feed broke; taking it again");
                        break;
                    }
                }
            }
            Err(e) if !broke => {
                tracing::warn!(error = %e, "cannot listen for monitor changes; retrying every 2 s (the reconcile still runs)");
            }
            Err(_) => {}
        }
        broke = true;
        w.metrics.set_feed_up(false);
        tokio::select! {
            _ = tokio::time::sleep(RETRY) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Brings the engine in line with the store for `ids`.
pub(crate) async fn apply(
    store: &dyn ProbeData,
    w: &ProbeWatcher,
    ids: &[MonitorId],
) -> store::Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let found = store.monitors_for_probing_by_id(ids).await?;
    let present: HashSet<MonitorId> = found.iter().map(|m| m.id).collect();
    for m in &found {
        let Some(s) = spec(m) else {
            tracing::warn!(monitor = %m.id, "monitor has unparsable addresses; not probed");
            continue;
        };
        let known = w.owners.lock().by_monitor.get(&s.id).map(|o| o.addresses);
        let ownership = w.view.ownership(&m.id, s.source);
        w.judged(s.id, ownership);
        match ownership {
            Ownership::Mine if known != Some(addresses_digest(&s)) => w.created(m),
            Ownership::Mine => {}
            Ownership::Other | Ownership::Nobody if known.is_some() => w.unload(&m.id),
            Ownership::Other | Ownership::Nobody => {}
        }
    }
    for id in ids.iter().filter(|id| !present.contains(id)) {
        // Gone from the store: remembered, so that a reconcile reading an
        // older page does not give it back.
        w.deleted(id);
    }
    Ok(())
}
