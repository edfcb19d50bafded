//! SMN topics (the targets of alarm actions) and their HTTP(S)
//! subscriptions, scoped by project. Topics are keyed by name: creating a
//! topic whose name exists returns the existing one, as SMN does, decided
//! by the primary key so that a race cannot make two; likewise one
//! subscription per topic, protocol and endpoint. Deleting a topic deletes
//! its subscriptions.

use crate::Result;
use async_trait::async_trait;
use domain::ProjectId;
use domain::smn::{Attempt, Delivery, OutMessage, Outcome, Subscription, Topic};

/// SMN topics.
#[async_trait]
pub trait TopicStore: Send + Sync {
    /// Stores `topic`, or returns the topic of that name; `true` when new.
    async fn create_topic(&self, p: &ProjectId, topic: &Topic) -> Result<(Topic, bool)>;
    /// A topic by name.
    async fn get_topic(&self, p: &ProjectId, name: &str) -> Result<Topic>;
    /// Topics newest first, `limit` from `offset`, optionally of one exact
    /// name; and how many match.
    async fn list_topics(
        &self,
        p: &ProjectId,
        name: Option<&str>,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<Topic>, i64)>;
    /// Sets a topic's display name.
    async fn update_topic(&self, p: &ProjectId, name: &str, display_name: &str) -> Result<Topic>;
    /// Deletes a topic and its subscriptions.
    async fn delete_topic(&self, p: &ProjectId, name: &str) -> Result<()>;
    /// Adds a subscription to topic `topic` (which must exist), or returns
    /// the one with its protocol and endpoint; `true` when new. A new
    /// subscription keeps `token` (its confirmation token) and, in the same
    /// transaction, its `SubscriptionConfirmation` goes into the outbox.
    async fn add_subscription(
        &self,
        p: &ProjectId,
        topic: &str,
        sub: &Subscription,
        token: &str,
    ) -> Result<(Subscription, bool)>;
    /// Subscriptions oldest first, of one topic or all, `limit` from
    /// `offset`; and how many match.
    async fn list_subscriptions(
        &self,
        p: &ProjectId,
        topic: Option<&str>,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<Subscription>, i64)>;
    /// Cancels (deletes) a subscription by URN.
    async fn cancel_subscription(&self, p: &ProjectId, urn: &str) -> Result<()>;
}

/// Counts of the outbox, for the gauges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutboxCounts {
    /// Waiting to be delivered (or retried).
    pub pending: i64,
    /// Given up, still kept.
    pub failed: i64,
}

/// A delivery as `GET /vpnmon/v1/{project_id}/notifications/deliveries`
/// shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeliveryView {
    pub id: String,
    pub message_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub topic_urn: String,
    pub subscription_urn: String,
    pub endpoint: String,
    pub subject: Option<String>,
    /// `pending`, `delivered`, `failed` or `cancelled`.
    pub state: String,
    pub attempts: i64,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_us: i64,
    pub next_us: i64,
    pub done_us: Option<i64>,
}

/// SMN delivery: confirmations, the outbox of messages to POST, and the
/// record of every attempt. Rows are claimed with a lease so that several
/// nodes never send the same row at once; a node that dies mid-send loses
/// only its lease, and the row is sent again (at least once, as SMN).
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Confirms the subscription of topic `topic_urn` with `endpoint` whose
    /// token is `token` (any project: the token is the proof). Not found
    /// when nothing matches.
    async fn confirm_subscription(
        &self,
        topic_urn: &str,
        endpoint: &str,
        token: &str,
    ) -> Result<Subscription>;
    /// Deletes subscription `urn` whose token is `token`, and cancels what
    /// was waiting for it.
    async fn unsubscribe(&self, urn: &str, token: &str) -> Result<()>;
    /// Puts `msg` into the outbox for every confirmed subscription of topic
    /// `topic` (which must exist) of project `p`; how many.
    async fn publish(&self, p: &ProjectId, topic: &str, msg: &OutMessage) -> Result<i64>;
    /// Leases up to `limit` due rows for `lease_us` (a row whose lease ran
    /// out is due again).
    async fn claim_deliveries(
        &self,
        now_us: i64,
        lease_us: i64,
        limit: i64,
    ) -> Result<Vec<Delivery>>;
    /// Records attempt number `d.attempts + 1` and what follows it.
    async fn finish_attempt(&self, d: &Delivery, a: &Attempt, outcome: Outcome) -> Result<()>;
    /// Gives a leased row back without an attempt, due at `next_us`.
    async fn defer_delivery(&self, id: &str, next_us: i64) -> Result<()>;
    /// Ends every lease (at start, when this is the only node).
    async fn release_delivery_leases(&self) -> Result<u64>;
    /// How many rows are pending and failed.
    async fn outbox_counts(&self) -> Result<OutboxCounts>;
    /// Deletes finished rows (and their attempts) finished before `before_us`.
    async fn prune_deliveries(&self, before_us: i64) -> Result<u64>;
    /// Deliveries of project `p`, newest first, optionally of one message.
    async fn list_deliveries(
        &self,
        p: &ProjectId,
        message_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<DeliveryView>>;
    /// Delivery `id` of project `p` and its attempts, in order.
    async fn get_delivery(&self, p: &ProjectId, id: &str) -> Result<(DeliveryView, Vec<Attempt>)>;
}
