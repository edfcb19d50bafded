//! What the engine was given: every monitor it probes, with the project and
//! connection it belongs to, and the API's watcher seam that tells the
//! engine about monitors created and deleted.

use crate::membership::Fence;
use crate::membership::view::{Ownership, View};
use crate::prometheus::{Metrics, MonitorLabels};
use api::MonitorWatcher;
use domain::{ConnectionId, MonitorId, ProjectId};
use probe::{EngineHandle, MonitorSpec};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use store::NodeReport;
use tokio::sync::Notify;
use uuid::Uuid;

/// Every monitor given to the engine: which project it belongs to
/// (datapoints are stored per project; project ids are shared, not copied
/// per monitor), its connection (for metric labels), and a digest of the
/// addresses it was given with, so a reconcile sees what changed.
#[derive(Default)]
pub(crate) struct Owners {
    pub(crate) by_monitor: HashMap<Uuid, Owner>,
    interned: HashMap<ProjectId, Arc<ProjectId>>,
}

#[derive(Clone)]
pub(crate) struct Owner {
    pub(crate) project: Arc<ProjectId>,
    pub(crate) connection: ConnectionId,
    pub(crate) addresses: u64,
}

/// Digest of a monitor's source and destination.
pub(crate) fn addresses_digest(s: &MonitorSpec) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (s.source, s.destination).hash(&mut h);
    h.finish()
}

impl Owners {
    pub(crate) fn insert(
        &mut self,
        spec: &MonitorSpec,
        project: &ProjectId,
        connection: ConnectionId,
    ) {
        let p = match self.interned.get(project) {
            Some(p) => p.clone(),
            None => {
                let p = Arc::new(project.clone());
                self.interned.insert(project.clone(), p.clone());
                p
            }
        };
        self.by_monitor.insert(
            spec.id,
            Owner {
                project: p,
                connection,
                addresses: addresses_digest(spec),
            },
        );
    }
}

impl Owner {
    pub(crate) fn labels(&self, id: Uuid) -> MonitorLabels {
        MonitorLabels {
            project: self.project.to_string(),
            vpn_connection: self.connection.to_string(),
            monitor: id.to_string(),
        }
    }
}

/// The shared registry. A task that panicked while holding the lock leaves
/// it poisoned; the map itself is still whole (every update is a single
/// insert or remove), so the others go on with it rather than silently
/// dropping what they were doing, and the panic is logged where it
/// happened.
#[derive(Clone, Default)]
pub(crate) struct Registry(Arc<Mutex<Owners>>);

impl Registry {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Owners> {
        self.0.lock().unwrap_or_else(|e: PoisonError<_>| {
            tracing::error!("monitor registry lock was poisoned by a panic; going on with it");
            e.into_inner()
        })
    }

    /// The owner of a monitor the engine probes.
    pub(crate) fn owner(&self, id: &Uuid) -> Option<Owner> {
        self.lock().by_monitor.get(id).cloned()
    }

    #[cfg(test)]
    pub(crate) fn poison(&self) {
        let r = self.clone();
        let _ = std::thread::spawn(move || {
            let _g = r.0.lock();
            panic!("poisoning the registry on purpose");
        })
        .join();
    }
}

/// The engine, as the API's watcher sees it.
pub struct ProbeWatcher {
    pub(crate) engine: EngineHandle,
    pub(crate) owners: Registry,
    pub(crate) metrics: Arc<Metrics>,
    /// Set while the node cannot prove its lease: nothing is given to the
    /// engine (the reconcile after unfencing loads everything again).
    pub(crate) fenced: AtomicBool,
    /// Wakes the reconcile at once (after unfencing, or when ownership may
    /// have moved).
    pub(crate) reload: Arc<Notify>,
    /// Who probes what.
    pub(crate) view: Arc<View>,
    /// Monitors the store no longer has (deleted through an API, this
    /// node's or another's), with when that was heard: a reconcile that
    /// read one before it was deleted must not give it back to the engine.
    /// Ids are never reused; entries go after [`TOMBSTONE_FOR`].
    tombstones: Mutex<HashMap<Uuid, Instant>>,
    /// Monitors no live node can send from, as last judged (by the
    /// reconcile for all of them, by a create or a change for one):
    /// `vpnmon_monitors_unowned`.
    unowned: Mutex<HashSet<Uuid>>,
}

/// How long a deleted monitor's id is remembered (longer than a reconcile
/// takes).
const TOMBSTONE_FOR: Duration = Duration::from_secs(600);

impl ProbeWatcher {
    pub(crate) fn new(
        engine: EngineHandle,
        owners: Registry,
        metrics: Arc<Metrics>,
        view: Arc<View>,
    ) -> Self {
        ProbeWatcher {
            engine,
            owners,
            metrics,
            view,
            fenced: AtomicBool::new(false),
            reload: Arc::new(Notify::new()),
            tombstones: Mutex::default(),
            unowned: Mutex::default(),
        }
    }

    /// Records how one monitor was judged, for the unowned gauge.
    pub(crate) fn judged(&self, id: Uuid, ownership: Ownership) {
        let mut set = self.unowned.lock().unwrap_or_else(PoisonError::into_inner);
        let changed = if ownership == Ownership::Nobody {
            set.insert(id)
        } else {
            set.remove(&id)
        };
        if changed {
            self.metrics.set_unowned(set.len());
        }
    }

    /// Replaces the unowned set after a reconcile that judged every
    /// monitor.
    pub(crate) fn judged_all(&self, unowned: HashSet<Uuid>) {
        let mut set = self.unowned.lock().unwrap_or_else(PoisonError::into_inner);
        *set = unowned;
        self.metrics.set_unowned(set.len());
    }

    /// Takes a monitor off the engine (another node probes it now, or the
    /// node is fenced); it may come back.
    pub(crate) fn unload(&self, id: &MonitorId) {
        let u = id.uuid();
        self.engine.remove(u);
        let gone = self.owners.lock().by_monitor.remove(&u);
        if let Some(owner) = gone {
            self.metrics.remove(&owner.labels(u), u);
        }
    }

    /// Whether the monitor was deleted from the store (recently).
    pub(crate) fn is_deleted(&self, id: &Uuid) -> bool {
        self.tombstones
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(id)
    }

    /// Forgets deletions older than [`TOMBSTONE_FOR`].
    pub(crate) fn forget_old_deletions(&self) {
        let now = Instant::now();
        self.tombstones
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, at| now.duration_since(*at) < TOMBSTONE_FOR);
    }

    /// Whether the prober is fenced.
    pub fn is_fenced(&self) -> bool {
        self.fenced.load(Ordering::Acquire)
    }
}

impl Fence for ProbeWatcher {
    fn fence(&self) {
        self.fenced.store(true, Ordering::Release);
        let ids: Vec<Uuid> = self.owners.lock().by_monitor.keys().copied().collect();
        for id in &ids {
            self.unload(&MonitorId::from_uuid(*id));
        }
        tracing::warn!(
            monitors = ids.len(),
            "fenced: every monitor taken off the engine"
        );
    }

    fn unfence(&self) {
        self.fenced.store(false, Ordering::Release);
        self.reload.notify_one();
    }

    fn reassess(&self) {
        self.reload.notify_one();
    }

    fn report(&self) -> NodeReport {
        NodeReport {
            addresses: self.view.local(),
            monitors: i64::try_from(self.owners.lock().by_monitor.len()).unwrap_or(i64::MAX),
        }
    }
}

/// The engine's view of a monitor; `None` when its stored addresses do not
/// parse (the caller logs it).
pub(crate) fn spec(m: &store::ProbeMonitor) -> Option<MonitorSpec> {
    Some(MonitorSpec {
        id: m.id.uuid(),
        source: m.source_ip.parse::<IpAddr>().ok()?,
        destination: m.destination_ip.parse::<IpAddr>().ok()?,
        resume: m.status == domain::monitor::status::ACTIVE,
    })
}

impl MonitorWatcher for ProbeWatcher {
    fn created(&self, m: &store::ProbeMonitor) {
        if self.is_fenced() {
            return;
        }
        let Some(s) = spec(m) else {
            tracing::warn!(monitor = %m.id, "monitor has unparsable addresses; not probed");
            return;
        };
        if self.is_deleted(&s.id) {
            return;
        }
        let ownership = self.view.ownership(&m.id, s.source);
        self.judged(s.id, ownership);
        match ownership {
            Ownership::Other | Ownership::Nobody => {}
            Ownership::Mine => {
                self.owners
                    .lock()
                    .insert(&s, &m.project_id, m.vpn_connection_id);
                self.engine.upsert(s);
            }
        }
    }

    fn deleted(&self, id: &MonitorId) {
        self.tombstones
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.uuid(), Instant::now());
        self.judged(id.uuid(), Ownership::Other);
        self.unload(id);
    }
}
