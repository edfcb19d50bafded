//! SMN delivery: the worker that POSTs what the outbox holds to HTTP(S)
//! subscribers, in SMN's envelope, signed.
//!
//! The outbox is in the store (`store::OutboxStore`): a confirmation goes
//! in with its subscription, an alarm notice with the state change that
//! caused it, a published message with the publish call, each in one
//! transaction, so nothing acknowledged is lost across a crash or a
//! restart. This worker claims due rows with a lease (several nodes never
//! send one row at once), sends each, and records the attempt: 2xx is
//! delivered; anything else (an error status, a refused connection, a
//! timeout, an address outside `--notify-allow`) is retried with backoff
//! (1 s doubling to 10 min, at most `MAX_ATTEMPTS`, never past the
//! message's time to live) and then given up, all visible in
//! `/vpnmon/{project_id}/notifications/deliveries` and the metrics.
//!
//! Isolation: sends run as tasks, at most [`Config::concurrency`] at once
//! and at most [`Config::per_endpoint`] per endpoint (host and port); a row
//! whose endpoint is busy is handed back for a second later without an
//! attempt. So a slow or dead endpoint holds two slots for at most the
//! request timeout each, and never delays other endpoints, nor the probe
//! engine (its own thread) nor the API.
//!
//! Addresses: names are resolved at send time and only addresses that are
//! public or inside `--notify-allow` are connected to (a name that turns
//! private later cannot reach inside); proxies from the environment are
//! not used; redirects are not followed.

use api::smn_keys::SmnKeys;
use auth::smn::SignedFields;
use domain::smn::{self, Attempt, Delivery, Outcome};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use store::Store;
use tokio::sync::{Notify, Semaphore, watch};

/// How the worker sends.
#[derive(Clone)]
pub struct Config {
    /// The clock of the store (times in the outbox are on it).
    pub clock: Arc<dyn domain::time::Clock>,
    /// Base of `subscribe_url`, `unsubscribe_url` and `signing_cert_url`.
    pub public_url: String,
    /// Region (names the certificate).
    pub region: String,
    /// `--notify-allow`.
    pub notify_allow: Arc<Vec<ipnet::IpNet>>,
    /// Sends in flight at most.
    pub concurrency: usize,
    /// Sends in flight to one endpoint (host and port) at most.
    pub per_endpoint: usize,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Whole-request timeout.
    pub timeout: Duration,
    /// How often the outbox is looked at when nothing woke the worker.
    pub poll: Duration,
    /// How long a claimed row is leased (longer than `timeout`).
    pub lease: Duration,
    /// Finished rows are kept this long.
    pub keep: Duration,
}

impl Config {
    /// The defaults, with this node's public URL, region and allowlist.
    pub fn new(
        clock: Arc<dyn domain::time::Clock>,
        public_url: String,
        region: String,
        notify_allow: Arc<Vec<ipnet::IpNet>>,
    ) -> Self {
        Config {
            clock,
            public_url,
            region,
            notify_allow,
            concurrency: 16,
            per_endpoint: 2,
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            poll: Duration::from_secs(1),
            lease: Duration::from_secs(60),
            keep: Duration::from_secs(7 * 86_400),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    /// `delivered`, `retry`, `failed`.
    result: String,
    /// `Notification` or `SubscriptionConfirmation`.
    r#type: String,
}

/// The worker's metrics.
#[derive(Clone)]
pub struct DeliveryMetrics {
    attempts: Family<ResultLabel, Counter>,
    pending: Gauge,
    failed: Gauge,
    duration: Histogram,
}

impl Default for DeliveryMetrics {
    fn default() -> Self {
        let attempts = Family::<ResultLabel, Counter>::default();
        // Every series exists from the start at 0, so that `increase()` sees
        // the first failure (a series born at 1 reads as no increase).
        for result in ["delivered", "retry", "failed"] {
            for kind in [smn::NOTIFICATION, smn::CONFIRMATION] {
                drop(attempts.get_or_create(&ResultLabel {
                    result: result.into(),
                    r#type: kind.into(),
                }));
            }
        }
        DeliveryMetrics {
            attempts,
            pending: Gauge::default(),
            failed: Gauge::default(),
            duration: Histogram::new([0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
        }
    }
}

impl DeliveryMetrics {
    /// Registers the families.
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "vpnmon_smn_delivery_attempts",
            "SMN HTTP(S) delivery attempts by result (delivered, retry, failed = given up) and message type",
            self.attempts.clone(),
        );
        r.register(
            "vpnmon_smn_deliveries_pending",
            "SMN messages waiting in the outbox to be delivered or retried (all nodes)",
            self.pending.clone(),
        );
        r.register(
            "vpnmon_smn_deliveries_failed",
            "SMN messages given up and still kept in the outbox (all nodes)",
            self.failed.clone(),
        );
        r.register(
            "vpnmon_smn_delivery_duration_seconds",
            "Time of one SMN HTTP(S) delivery attempt",
            self.duration.clone(),
        );
    }
}

/// Connects only to addresses that are public or inside the allowlist.
struct AllowResolver {
    allow: Arc<Vec<ipnet::IpNet>>,
}

impl reqwest::dns::Resolve for AllowResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.allow.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let ok: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| smn::address_allowed(a.ip(), &allow))
                .collect();
            if ok.is_empty() {
                return Err(format!(
                    "{host} resolves to no address that may be notified (private and loopback addresses need --notify-allow)"
                )
                .into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(ok.into_iter());
            Ok(addrs)
        })
    }
}

/// The HTTP client deliveries use.
pub fn client(cfg: &Config) -> anyhow::Result<reqwest::Client> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(cfg.connect_timeout)
        .timeout(cfg.timeout)
        .user_agent(concat!("vpnmon-smn/", env!("CARGO_PKG_VERSION")))
        .dns_resolver(Arc::new(AllowResolver {
            allow: cfg.notify_allow.clone(),
        }))
        .build()?)
}

/// The JSON body of `d` as SMN sends it, signed.
pub fn envelope(
    d: &Delivery,
    cfg: &Config,
    key: &api::smn_keys::SigningKey,
) -> anyhow::Result<String> {
    let timestamp = smn::wire_time(domain::time::from_micros(d.created_us));
    let url = format!("{}{}", cfg.public_url, d.url_path);
    let confirmation = d.kind != smn::NOTIFICATION;
    let fields = SignedFields {
        kind: &d.kind,
        message: &d.message,
        message_id: &d.message_id,
        subject: d.subject.as_deref(),
        subscribe_url: confirmation.then_some(url.as_str()),
        timestamp: &timestamp,
        topic_urn: &d.topic_urn,
    };
    let signature = key.signer.sign(&fields)?;
    let mut m = Map::new();
    m.insert("type".into(), Value::String(d.kind.clone()));
    m.insert("signature_version".into(), Value::String("v1".into()));
    m.insert("topic_urn".into(), Value::String(d.topic_urn.clone()));
    m.insert("message_id".into(), Value::String(d.message_id.clone()));
    m.insert("message".into(), Value::String(d.message.clone()));
    if confirmation {
        m.insert("subscribe_url".into(), Value::String(url));
    } else {
        if let Some(s) = &d.subject {
            m.insert("subject".into(), Value::String(s.clone()));
        }
        m.insert("unsubscribe_url".into(), Value::String(url));
    }
    m.insert(
        "signing_cert_url".into(),
        Value::String(format!("{}/smn/{}", cfg.public_url, key.cert_file)),
    );
    m.insert("timestamp".into(), Value::String(timestamp));
    m.insert("signature".into(), Value::String(signature));
    Ok(Value::Object(m).to_string())
}

/// Host and port of an endpoint, the unit of per-endpoint limits.
fn endpoint_key(endpoint: &str) -> String {
    match reqwest::Url::parse(endpoint) {
        Ok(u) => format!(
            "{}:{}",
            u.host_str().unwrap_or(""),
            u.port_or_known_default().unwrap_or(0)
        ),
        Err(_) => endpoint.to_string(),
    }
}

/// One attempt: POST the envelope; what happened.
async fn attempt(
    http: &reqwest::Client,
    d: &Delivery,
    cfg: &Config,
    keys: &SmnKeys,
) -> (Option<i64>, Option<String>) {
    // Address literals are checked again (the operator may have narrowed
    // --notify-allow since the subscription was made).
    if let Some(why) = smn::endpoint_refused(&d.endpoint, &cfg.notify_allow) {
        return (None, Some(why));
    }
    let key = match keys.get(&cfg.region).await {
        Ok(k) => k,
        Err(e) => return (None, Some(format!("no signing key: {e}"))),
    };
    let body = match envelope(d, cfg, &key) {
        Ok(b) => b,
        Err(e) => return (None, Some(format!("cannot sign: {e}"))),
    };
    let r = http
        .post(&d.endpoint)
        .header("Content-Type", "application/json; charset=UTF-8")
        .header("X-SMN-MESSAGE-TYPE", &d.kind)
        .header("X-SMN-MESSAGE-ID", &d.message_id)
        .header("X-SMN-TOPIC-URN", &d.topic_urn)
        .header("X-SMN-SUBSCRIPTION-URN", &d.subscription_urn)
        .body(body)
        .send()
        .await;
    match r {
        Ok(resp) => {
            let status = resp.status();
            // Read (and drop) at most a little of the answer, so the
            // connection can be reused without buffering a large body.
            let _ = tokio::time::timeout(Duration::from_secs(1), resp.bytes()).await;
            if status.is_success() {
                (Some(i64::from(status.as_u16())), None)
            } else {
                (
                    Some(i64::from(status.as_u16())),
                    Some(format!("the endpoint answered {status}")),
                )
            }
        }
        Err(e) => {
            let mut why = e.to_string();
            let mut src: Option<&dyn std::error::Error> = std::error::Error::source(&e);
            while let Some(s) = src {
                why.push_str(": ");
                why.push_str(&s.to_string());
                src = s.source();
            }
            (None, Some(why))
        }
    }
}

impl Config {
    fn now_us(&self) -> i64 {
        self.clock.now().timestamp_micros()
    }
}

/// Runs the worker until `stop`.
pub async fn run(
    store: Arc<dyn Store>,
    keys: Arc<SmnKeys>,
    wake: Arc<Notify>,
    cfg: Config,
    metrics: DeliveryMetrics,
    mut stop: watch::Receiver<bool>,
) {
    let http = match client(&cfg) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "SMN delivery cannot start: no HTTP client");
            return;
        }
    };
    let slots = Arc::new(Semaphore::new(cfg.concurrency));
    let endpoints: Arc<Mutex<HashMap<String, Arc<Semaphore>>>> = Arc::default();
    let mut tasks = tokio::task::JoinSet::new();
    let mut last_counts = Instant::now() - Duration::from_secs(60);
    let mut last_prune = Instant::now();
    loop {
        if *stop.borrow() {
            break;
        }
        let free = slots.available_permits();
        if free > 0 {
            match store
                .claim_deliveries(cfg.now_us(), cfg.lease.as_micros() as i64, free as i64)
                .await
            {
                Ok(rows) => {
                    for d in rows {
                        let Ok(slot) = slots.clone().try_acquire_owned() else {
                            let _ = store.defer_delivery(&d.id, cfg.now_us()).await;
                            continue;
                        };
                        let ep = endpoints
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .entry(endpoint_key(&d.endpoint))
                            .or_insert_with(|| Arc::new(Semaphore::new(cfg.per_endpoint)))
                            .clone();
                        let Ok(ep_permit) = ep.try_acquire_owned() else {
                            // That endpoint is busy: later, without an attempt.
                            let _ = store.defer_delivery(&d.id, cfg.now_us() + 1_000_000).await;
                            continue;
                        };
                        let (store, keys, cfg, http, metrics) = (
                            store.clone(),
                            keys.clone(),
                            cfg.clone(),
                            http.clone(),
                            metrics.clone(),
                        );
                        tasks.spawn(async move {
                            let _slot = slot;
                            let _ep = ep_permit;
                            send_one(&*store, &keys, &cfg, &http, &metrics, d).await;
                        });
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot read the SMN outbox"),
            }
        }
        if last_counts.elapsed() >= Duration::from_secs(5) {
            last_counts = Instant::now();
            match store.outbox_counts().await {
                Ok(c) => {
                    metrics.pending.set(c.pending);
                    metrics.failed.set(c.failed);
                }
                Err(e) => tracing::debug!(error = %e, "cannot count the SMN outbox"),
            }
        }
        if last_prune.elapsed() >= Duration::from_secs(600) {
            last_prune = Instant::now();
            let before = cfg.now_us() - cfg.keep.as_micros() as i64;
            if let Err(e) = store.prune_deliveries(before).await {
                tracing::warn!(error = %e, "cannot prune the SMN outbox");
            }
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(cfg.poll) => {}
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            _ = stop.changed() => {}
        }
    }
    // Sends in flight finish (each is bounded by the request timeout), so
    // that their attempts are recorded; a row cut short is sent again.
    while tasks.join_next().await.is_some() {}
}

/// Runs the worker on its own task, restarted 5 s after a panic (counted
/// in the log; delivery stops, nothing else does), until `stop`.
pub fn spawn(
    store: Arc<dyn Store>,
    keys: Arc<SmnKeys>,
    wake: Arc<Notify>,
    cfg: Config,
    metrics: DeliveryMetrics,
    stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let h = tokio::spawn(run(
                store.clone(),
                keys.clone(),
                wake.clone(),
                cfg.clone(),
                metrics.clone(),
                stop.clone(),
            ));
            match h.await {
                Ok(()) => return,
                Err(e) => {
                    tracing::error!(error = %e, "the SMN delivery worker failed; restarting in 5 s");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    if *stop.borrow() {
                        return;
                    }
                }
            }
        }
    })
}

async fn send_one(
    store: &dyn Store,
    keys: &SmnKeys,
    cfg: &Config,
    http: &reqwest::Client,
    metrics: &DeliveryMetrics,
    d: Delivery,
) {
    let at = cfg.now_us();
    let started = Instant::now();
    let (status, error) = attempt(http, &d, cfg, keys).await;
    let took = started.elapsed();
    metrics.duration.observe(took.as_secs_f64());
    let n = d.attempts + 1;
    let outcome = if error.is_none() {
        Outcome::Delivered
    } else {
        smn::after_failure(n, cfg.now_us(), d.expires_us)
    };
    let result = match outcome {
        Outcome::Delivered => "delivered",
        Outcome::Retry(_) => "retry",
        Outcome::Failed => "failed",
    };
    metrics
        .attempts
        .get_or_create(&ResultLabel {
            result: result.into(),
            r#type: d.kind.clone(),
        })
        .inc();
    match (&outcome, &error) {
        (Outcome::Delivered, _) => tracing::info!(
            message_id = %d.message_id, subscription = %d.subscription_urn, kind = %d.kind,
            attempt = n, "SMN message delivered"
        ),
        (Outcome::Retry(next), Some(e)) => tracing::warn!(
            message_id = %d.message_id, subscription = %d.subscription_urn, attempt = n,
            retry_in_s = (next - cfg.now_us()) / 1_000_000, error = %e, "SMN delivery failed; will retry"
        ),
        (_, e) => tracing::error!(
            message_id = %d.message_id, subscription = %d.subscription_urn, attempt = n,
            error = ?e, "SMN delivery given up"
        ),
    }
    let a = Attempt {
        at_us: at,
        duration_us: took.as_micros() as i64,
        http_status: status,
        error,
    };
    if let Err(e) = store.finish_attempt(&d, &a, outcome).await {
        // The lease runs out and the row is sent again: at least once.
        tracing::error!(error = %e, message_id = %d.message_id, "cannot record an SMN delivery attempt");
    }
}
