//! Cloud Eye alarm rules, their history, and their evaluation as the data
//! they watch is stored.
//!
//! A rule is scoped by project like every resource; it names a connection,
//! and the monitor of that connection supplies its data. Evaluation is fed
//! by the writer of the data ([`AlarmStore::evaluate_windows`] with each
//! batch of raw windows), not by a poll of the rule table: a batch of windows
//! costs one indexed lookup of the rules of its monitors, and nothing more
//! when none has a rule. The rule's state, its evaluator memory and the
//! history rows of its transitions are written in one transaction, so a
//! transition is recorded exactly when the state changes. The one timer is
//! the no-data check ([`AlarmStore::expire_alarms`]), which reads only the
//! rules that are due, through the index of the narrow `alarm_data` table
//! (each rule's newest data time). A healthy link's rule changes nothing
//! but that time; the evaluation keeps it in memory and writes it for every
//! such rule in one sweep every 4 minutes of window time, so such a rule
//! costs no write of its own.

use crate::Result;
use crate::measurements::WindowPoint;
use async_trait::async_trait;
use domain::alarm::eval::{Notice, Transition};
use domain::alarm::{AlarmHistory, AlarmRule, AlarmState, UpdateAlarm};
use domain::{AlarmId, ConnectionId, MonitorId, ProjectId};

/// One page of rules.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmPage {
    pub items: Vec<AlarmRule>,
    /// Rules of the project.
    pub total: i64,
}

/// The filters and page of `GET /alarm-histories`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HistoryQuery {
    pub alarm_id: Option<AlarmId>,
    pub alarm_name: Option<String>,
    pub alarm_status: Option<AlarmState>,
    pub alarm_level: Option<i64>,
    pub namespace: Option<String>,
    /// Inclusive, ms.
    pub from_ms: Option<i64>,
    /// Inclusive, ms.
    pub to_ms: Option<i64>,
    pub offset: i64,
    pub limit: i64,
}

/// What evaluating a batch did to one rule: a transition (recorded in the
/// history) and/or a notice that is due.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmEvent {
    pub project_id: ProjectId,
    /// The monitor whose data caused it (none for the no-data check).
    pub monitor_id: Option<MonitorId>,
    /// The rule after the change.
    pub rule: AlarmRule,
    pub transition: Option<Transition>,
    pub notice: Option<Notice>,
}

/// Alarm rules (CES v1), their history and their evaluation.
#[async_trait]
pub trait AlarmStore: Send + Sync {
    /// Stores a new rule; its connection must be one of project `p`.
    async fn create_alarm(&self, p: &ProjectId, rule: &AlarmRule) -> Result<()>;
    /// Shows a rule.
    async fn get_alarm(&self, p: &ProjectId, id: &AlarmId) -> Result<AlarmRule>;
    /// Up to `limit` rules in creation order (newest first when `desc`),
    /// after the rule `start` when given.
    async fn list_alarms(
        &self,
        p: &ProjectId,
        start: Option<&AlarmId>,
        limit: i64,
        desc: bool,
    ) -> Result<AlarmPage>;
    /// Every rule watching connection `conn` of project `p`, in creation
    /// order (the dashboard's overlay of one connection).
    async fn connection_alarms(&self, p: &ProjectId, conn: &ConnectionId)
    -> Result<Vec<AlarmRule>>;
    /// Applies an update body (validated by `domain::alarm::update` in the
    /// transaction); a changed condition restarts the evaluation.
    async fn update_alarm(
        &self,
        p: &ProjectId,
        id: &AlarmId,
        req: &UpdateAlarm,
    ) -> Result<AlarmRule>;
    /// Enables or disables a rule.
    async fn set_alarm_enabled(&self, p: &ProjectId, id: &AlarmId, enabled: bool) -> Result<()>;
    /// Deletes a rule (its history stays).
    async fn delete_alarm(&self, p: &ProjectId, id: &AlarmId) -> Result<()>;
    /// History records, newest first, and how many match.
    async fn list_alarm_history(
        &self,
        p: &ProjectId,
        q: &HistoryQuery,
    ) -> Result<(Vec<AlarmHistory>, i64)>;
    /// Evaluates the enabled period-1 rules of the monitors in `points`
    /// with these raw windows (in time order per monitor, whatever order
    /// they come in); returns what changed. The rules of longer periods are
    /// evaluated by the roll-up ([`crate::MeasurementStore::roll_up`]), with
    /// each bucket of their period as it is completed, in the transaction
    /// that writes it.
    async fn evaluate_windows(&self, points: &[WindowPoint]) -> Result<Vec<AlarmEvent>>;
    /// Enabled rules of every project with their state (a disabled rule
    /// keeps its last state, which says nothing now), for the metrics: the
    /// first `limit` by id (an index walk, however many rules there are),
    /// and how many there are.
    async fn alarm_states(&self, limit: i64) -> Result<(Vec<(ProjectId, AlarmRule)>, i64)>;
    /// The no-data check at `now_ms`: enabled rules without data for
    /// `domain::alarm::eval::no_data_ms` of their period (since their
    /// newest data, or since they started watching) become
    /// `insufficient_data`.
    async fn expire_alarms(&self, now_ms: i64) -> Result<Vec<AlarmEvent>>;
}
