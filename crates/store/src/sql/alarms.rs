//! The SQL of alarm rules, their history and their evaluation.

use super::{Q, SqlStore, get, get_project_id, internal, json, next_created_us, parse};
use crate::Result;
use crate::alarms::{AlarmEvent, AlarmPage, AlarmStore, HistoryQuery};
use crate::measurements::WindowPoint;
use async_trait::async_trait;
use domain::alarm::eval::{
    DATA_TIME_SAVED_EVERY_MS, EvalState, Evaluator, NO_DATA_MS, Notice, Step, raw_value,
};
use domain::alarm::{self, AlarmHistory, AlarmRule, AlarmState, Measure, NAMESPACE, UpdateAlarm};
use domain::smn;
use domain::{AlarmId, ConnectionId, DomainError, MonitorId, ProjectId};
use sqlx::{AnyConnection, AssertSqlSafe};
use std::collections::HashMap;

async fn load(
    c: &mut AnyConnection,
    p: &ProjectId,
    id: &AlarmId,
) -> Result<(AlarmRule, EvalState)> {
    let row = sqlx::query("SELECT body, eval FROM alarms WHERE id = $1 AND project_id = $2")
        .bind(id.to_string())
        .bind(p.as_str().to_string())
        .fetch_optional(&mut *c)
        .await
        .map_err(internal)?
        .ok_or(DomainError::NotFound)?;
    let body: String = get(&row, "body")?;
    let eval: String = get(&row, "eval")?;
    Ok((parse(&body)?, parse(&eval)?))
}

async fn store_rule(c: &mut AnyConnection, r: &AlarmRule, eval: &EvalState) -> Result<()> {
    sqlx::query(
        "UPDATE alarms SET body = $1, eval = $2, period = $3, enabled = $4, state = $5, \
         last_data_ms = $6 WHERE id = $7",
    )
    .bind(json(r)?)
    .bind(json(eval)?)
    .bind(r.condition.period)
    .bind(i64::from(r.alarm_enabled))
    .bind(r.alarm_state.as_str().to_string())
    .bind(eval.last_data_ms)
    .bind(r.alarm_id.to_string())
    .execute(&mut *c)
    .await
    .map_err(internal)?;
    save_data_time(c, &r.alarm_id.to_string(), eval.last_data_ms).await
}

/// Moves rule `id`'s stored time of newest data on to `t`, never back.
async fn save_data_time(c: &mut AnyConnection, id: &str, t: Option<i64>) -> Result<()> {
    let Some(t) = t else { return Ok(()) };
    sqlx::query(
        "UPDATE alarm_data SET last_data_ms = $1 WHERE id = $2 \
         AND (last_data_ms IS NULL OR last_data_ms < $1)",
    )
    .bind(t)
    .bind(id.to_string())
    .execute(&mut *c)
    .await
    .map_err(internal)?;
    Ok(())
}

/// Puts the notice `n` of `rule` into the outbox for every confirmed
/// subscription of the topics of its actions (`alarm_actions` for an alarm
/// notice, `ok_actions` for an ok notice), in the evaluating transaction.
#[allow(clippy::too_many_arguments)]
async fn notify(
    c: &mut AnyConnection,
    p: &ProjectId,
    rule: &AlarmRule,
    n: Notice,
    previous: AlarmState,
    value: Option<f64>,
    time_ms: i64,
    monitor_id: &MonitorId,
    now_us: i64,
) -> Result<()> {
    let actions = match n {
        Notice::Alarm => &rule.alarm_actions,
        Notice::Ok => &rule.ok_actions,
    };
    let (subject, message) =
        alarm::notice::message(rule, n, previous, value, time_ms, Some(monitor_id));
    for urn in actions.iter().flat_map(|a| a.notification_list.iter()) {
        let Some(topic) = smn::topic_name_of(urn, p) else {
            continue;
        };
        let msg = smn::OutMessage {
            kind: smn::NOTIFICATION,
            topic_urn: urn.clone(),
            message_id: smn::message_id(),
            subject: Some(subject.clone()),
            message: message.clone(),
            https_message: None,
            created_us: now_us,
            expires_us: now_us + smn::ALARM_TTL_S * 1_000_000,
            url_path: None,
        };
        super::outbox::enqueue_topic(c, p, &topic, &msg).await?;
    }
    Ok(())
}

async fn insert_history(c: &mut AnyConnection, p: &ProjectId, h: &AlarmHistory) -> Result<()> {
    sqlx::query(
        "INSERT INTO alarm_history (project_id, alarm_id, alarm_name, alarm_level, status, namespace, \
         trigger_ms, body) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(p.as_str().to_string())
    .bind(h.alarm_id.to_string())
    .bind(h.alarm_name.clone())
    .bind(h.alarm_level)
    .bind(h.alarm_status.as_str().to_string())
    .bind(NAMESPACE.to_string())
    .bind(h.trigger_time)
    .bind(json(h)?)
    .execute(&mut *c)
    .await
    .map_err(internal)?;
    Ok(())
}

/// The value of a raw window for a metric (none: the window has none, e.g.
/// latency without a reply, or nothing was sent).
fn window_value(m: Measure, p: &WindowPoint) -> Option<f64> {
    if p.sent <= 0 {
        return None;
    }
    match m {
        Measure::Latency => p.rtt_avg_ms,
        Measure::MaxLatency => p.rtt_max_ms,
        Measure::Loss => Some(p.loss_pct),
    }
}

/// What evaluating a window needs of a rule: its body is parsed into this
/// on the hot path (serde skips the rest), and in full only when something
/// changes.
#[derive(serde::Deserialize)]
struct RuleHead {
    metric: alarm::Metric,
    condition: alarm::Condition,
    alarm_action_enabled: bool,
    alarm_state: AlarmState,
}

/// Whether `after` (the memory after a batch without transitions or
/// notices) must be written over `before`: anything but the newest window's
/// time changed. That time alone is written by the next sweep
/// ([`RuleCache::sweep_due_ms`]).
fn memory_worth_saving(before: &EvalState, after: &EvalState) -> bool {
    EvalState {
        last_data_ms: before.last_data_ms,
        ..*after
    } != *before
}

/// How often, in the time of the windows evaluated, the newest data time
/// of every cached rule that moved is written ([`RuleCache::sweep_due_ms`]):
/// a minute less than [`DATA_TIME_SAVED_EVERY_MS`], the most that the
/// no-data check allows the stored time to lag, which leaves the windows of
/// a sweep's 10 s and the batches that carry them time to arrive.
pub(crate) const DATA_TIME_SWEEP_MS: i64 = DATA_TIME_SAVED_EVERY_MS - 60_000;

/// Rules written per statement of a sweep: each is its own short write.
const SWEEP_CHUNK: usize = 2_000;

/// The first sweep boundary after the window time `t_ms`.
fn next_sweep(t_ms: i64) -> i64 {
    (t_ms.div_euclid(DATA_TIME_SWEEP_MS) + 1) * DATA_TIME_SWEEP_MS
}

/// Writes only the evaluator's memory of rule `id` (its body is
/// unchanged), if the stored memory is still `seen` (its exact text);
/// whether it was written.
async fn save_memory(c: &mut AnyConnection, id: &str, m: &EvalState, seen: &str) -> Result<bool> {
    let r =
        sqlx::query("UPDATE alarms SET eval = $1, last_data_ms = $2 WHERE id = $3 AND eval = $4")
            .bind(json(m)?)
            .bind(m.last_data_ms)
            .bind(id.to_string())
            .bind(seen.to_string())
            .execute(&mut *c)
            .await
            .map_err(internal)?;
    if r.rows_affected() != 1 {
        return Ok(false);
    }
    save_data_time(c, id, m.last_data_ms).await?;
    Ok(true)
}

/// Rule `id` and the exact text of its stored memory, if it still exists;
/// its row locked until the end of the transaction on PostgreSQL (`pg`).
async fn load_current(
    c: &mut AnyConnection,
    p: &ProjectId,
    id: &AlarmId,
    pg: bool,
) -> Result<Option<(AlarmRule, String)>> {
    let sql = if pg {
        "SELECT body, eval FROM alarms WHERE id = $1 AND project_id = $2 FOR UPDATE"
    } else {
        "SELECT body, eval FROM alarms WHERE id = $1 AND project_id = $2"
    };
    let row = sqlx::query(sql)
        .bind(id.to_string())
        .bind(p.as_str().to_string())
        .fetch_optional(&mut *c)
        .await
        .map_err(internal)?;
    let Some(row) = row else { return Ok(None) };
    let body: String = get(&row, "body")?;
    Ok(Some((parse(&body)?, get(&row, "eval")?)))
}

/// The key in `meta` whose value changes with every change to the rules
/// or their state made outside the evaluation of raw windows (API writes,
/// the no-data check, a monitor created for a connection with rules), and
/// with every transition the evaluation records.
const VERSION_KEY: &str = "alarms_version";

/// A new version in `meta`, in the transaction `c`.
pub(crate) async fn touch_version(c: &mut AnyConnection) -> Result<()> {
    sqlx::query(
        "INSERT INTO meta (key, value) VALUES ($1, $2) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .bind(VERSION_KEY)
    .bind(uuid::Uuid::new_v4().simple().to_string())
    .execute(&mut *c)
    .await
    .map_err(internal)?;
    Ok(())
}

/// What [`bump_version`] did.
enum Bumped {
    /// The version was `seen` and is now this: the cache stays valid.
    Ours(String),
    /// Something else changed it: the cache must be reloaded.
    Raced,
}

/// A new version, and whether it replaced `seen` (nothing else changed the
/// rules since the cache was loaded).
async fn bump_version(c: &mut AnyConnection, seen: Option<&str>) -> Result<Bumped> {
    let new = uuid::Uuid::new_v4().simple().to_string();
    if let Some(seen) = seen {
        let r = sqlx::query("UPDATE meta SET value = $1 WHERE key = $2 AND value = $3")
            .bind(new.clone())
            .bind(VERSION_KEY)
            .bind(seen.to_string())
            .execute(&mut *c)
            .await
            .map_err(internal)?;
        if r.rows_affected() == 1 {
            return Ok(Bumped::Ours(new));
        }
    }
    touch_version(c).await?;
    Ok(Bumped::Raced)
}

/// Rules per page when the cache is loaded.
const LOAD_PAGE: i64 = 2_000;

/// One enabled period-1 rule of a monitor, as the evaluation needs it.
#[derive(Debug, Clone)]
struct CachedRule {
    id: AlarmId,
    project: ProjectId,
    condition: alarm::Condition,
    actions_enabled: bool,
    measure: Measure,
    state: AlarmState,
    /// The evaluator's memory now.
    memory: EvalState,
    /// The memory as the store has it, and its exact text.
    saved: EvalState,
    saved_text: String,
    /// The newest data time as `alarm_data` has it.
    data_saved: Option<i64>,
}

/// The enabled period-1 rules by monitor with their state and memory, kept
/// between batches so that evaluating a window costs no SQL unless it
/// changes something. Valid while [`VERSION_KEY`] is what it was when it
/// was loaded.
#[derive(Debug, Default)]
pub(crate) struct RuleCache {
    /// The version it was loaded at (`None`: not loaded, or stale; the
    /// version itself is `None` before any change ever set one).
    loaded_at: Option<Option<String>>,
    by_monitor: HashMap<MonitorId, Vec<CachedRule>>,
    /// The window time from which the next batch writes, in one sweep in
    /// key order, the newest data time of every rule whose time moved
    /// (`None`: set by the first batch). The boundaries are multiples of
    /// [`DATA_TIME_SWEEP_MS`], the same on every node and across restarts,
    /// so a stored time lags the rule's newest window by at most that and
    /// a window's arrival; a healthy link's rule is otherwise not written.
    sweep_due_ms: Option<i64>,
}

impl RuleCache {
    /// Reloads every enabled period-1 rule when the version moved.
    async fn refresh(&mut self, read: &sqlx::AnyPool) -> Result<()> {
        let row = sqlx::query("SELECT value FROM meta WHERE key = $1")
            .bind(VERSION_KEY)
            .fetch_optional(read)
            .await
            .map_err(internal)?;
        let now: Option<String> = match &row {
            Some(r) => Some(get(r, "value")?),
            None => None,
        };
        if self.loaded_at.as_ref() == Some(&now) {
            return Ok(());
        }
        // The version is read before the rules: a change in between is
        // seen again at the next batch. Read in pages by id, so that a load
        // holds at most one page of rows besides what it keeps.
        let mut by_monitor: HashMap<MonitorId, Vec<CachedRule>> = HashMap::new();
        let mut after = String::new();
        loop {
            let rows = sqlx::query(
                "SELECT a.id, a.project_id, a.body, a.eval, m.id AS monitor_id, \
                   d.last_data_ms AS data_ms \
                 FROM alarms a JOIN connection_monitors m \
                   ON m.vpn_connection_id = a.connection_id AND m.project_id = a.project_id \
                 LEFT JOIN alarm_data d ON d.id = a.id \
                 WHERE a.enabled = 1 AND a.period = 1 AND a.id > $1 ORDER BY a.id LIMIT $2",
            )
            .bind(after.clone())
            .bind(LOAD_PAGE)
            .fetch_all(read)
            .await
            .map_err(internal)?;
            for r in &rows {
                let head: RuleHead = parse(&get::<String>(r, "body")?)?;
                let saved_text: String = get(r, "eval")?;
                let saved: EvalState = parse(&saved_text)?;
                let data_saved: Option<i64> = get(r, "data_ms")?;
                // The swept time is newer than the memory's when nothing
                // else changed since.
                let memory = EvalState {
                    last_data_ms: saved.last_data_ms.max(data_saved),
                    ..saved
                };
                let id: String = get(r, "id")?;
                let alarm = AlarmId::parse(&id)
                    .ok_or_else(|| DomainError::Internal(format!("stored alarm id {id:?}")))?;
                after = id;
                by_monitor
                    .entry(super::get_id(r, "monitor_id")?)
                    .or_default()
                    .push(CachedRule {
                        id: alarm,
                        project: get_project_id(r, "project_id")?,
                        measure: head.metric.metric.measure(),
                        condition: head.condition,
                        actions_enabled: head.alarm_action_enabled,
                        state: head.alarm_state,
                        memory,
                        saved,
                        saved_text,
                        data_saved,
                    });
            }
            if (rows.len() as i64) < LOAD_PAGE {
                break;
            }
        }
        self.by_monitor = by_monitor;
        self.loaded_at = Some(now);
        Ok(())
    }
}

/// One tick that changed something, and what it was fed.
struct Applied {
    step: Step,
    /// The state before the tick.
    before: AlarmState,
    time_ms: i64,
    value: Option<f64>,
}

/// Writes what the ticks `steps` of `rule` did, in the evaluating
/// transaction: the notices into the outbox, each transition into the
/// history, the rule's state and evaluator memory; the events are added to
/// `events`.
#[allow(clippy::too_many_arguments)]
async fn apply(
    c: &mut AnyConnection,
    p: &ProjectId,
    mut rule: AlarmRule,
    monitor_id: &MonitorId,
    steps: &[Applied],
    memory: &EvalState,
    now_us: i64,
    events: &mut Vec<AlarmEvent>,
) -> Result<()> {
    for a in steps {
        if let Some(n) = a.step.notice {
            let mut after = rule.clone();
            if let Some(t) = a.step.transition {
                after.alarm_state = t.to;
            }
            notify(
                c, p, &after, n, a.before, a.value, a.time_ms, monitor_id, now_us,
            )
            .await?;
        }
        if let Some(t) = a.step.transition {
            rule.alarm_state = t.to;
            rule.update_time = t.time_ms;
            insert_history(c, p, &alarm::history(&rule, t.to, t.time_ms, t.value)).await?;
        }
        events.push(AlarmEvent {
            project_id: p.clone(),
            monitor_id: Some(*monitor_id),
            rule: rule.clone(),
            transition: a.step.transition,
            notice: a.step.notice,
        });
    }
    store_rule(c, &rule, memory).await
}

/// Evaluates the enabled rules of period `period_s` (longer than the raw
/// window) with the buckets of that period in `[from_ms, until_ms)`, just
/// rolled up in the transaction `c`: each completed bucket is one period.
pub(crate) async fn evaluate_rollups(
    c: &mut AnyConnection,
    period_s: i64,
    from_ms: i64,
    until_ms: i64,
    now_us: i64,
    pg: bool,
) -> Result<Vec<AlarmEvent>> {
    let any = sqlx::query("SELECT 1 AS x FROM alarms WHERE enabled = 1 AND period = $1 LIMIT 1")
        .bind(period_s)
        .fetch_optional(&mut *c)
        .await
        .map_err(internal)?;
    if any.is_none() {
        return Ok(Vec::new());
    }
    let sql: &str = "SELECT a.id AS alarm_id, a.project_id, a.body, a.eval, m.id AS monitor_id, r.bucket_ms, \
           r.windows, r.lat_n, r.lat_sum, r.lat_sumsq, r.lat_min, r.lat_max, \
           r.max_sum, r.max_sumsq, r.max_min, r.max_max, \
           r.loss_sum, r.loss_sumsq, r.loss_min, r.loss_max \
         FROM alarms a \
         JOIN connection_monitors m ON m.vpn_connection_id = a.connection_id AND m.project_id = a.project_id \
         JOIN monitor_rollups r ON r.period = a.period AND r.monitor_id = m.id \
           AND r.bucket_ms >= $2 AND r.bucket_ms < $3 \
         WHERE a.enabled = 1 AND a.period = $1 \
         ORDER BY a.id, m.id, r.bucket_ms";
    // On PostgreSQL the rules are locked: an API change waits for the
    // evaluation or is seen by it, never overwritten with what it read.
    let locked;
    let sql = if pg {
        locked = format!("{sql} FOR UPDATE OF a");
        locked.as_str()
    } else {
        sql
    };
    // One constant statement, with a constant suffix on PostgreSQL.
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(period_s)
        .bind(from_ms)
        .bind(until_ms)
        .fetch_all(&mut *c)
        .await
        .map_err(internal)?;
    let mut events = Vec::new();
    let mut i = 0;
    while i < rows.len() {
        let key = (
            get::<String>(&rows[i], "alarm_id")?,
            get::<String>(&rows[i], "monitor_id")?,
        );
        let mut j = i;
        while j < rows.len()
            && get::<String>(&rows[j], "alarm_id")? == key.0
            && get::<String>(&rows[j], "monitor_id")? == key.1
        {
            j += 1;
        }
        let first = &rows[i];
        let p = get_project_id(first, "project_id")?;
        let monitor_id: MonitorId = super::get_id(first, "monitor_id")?;
        let rule: AlarmRule = parse(&get::<String>(first, "body")?)?;
        let memory: EvalState = parse(&get::<String>(first, "eval")?)?;
        let condition = rule.condition.clone();
        let mut e = Evaluator {
            condition: &condition,
            actions_enabled: rule.alarm_action_enabled,
            state: rule.alarm_state,
            memory,
        };
        let measure = rule.metric.metric.measure();
        let mut steps = Vec::new();
        for r in &rows[i..j] {
            let bucket_ms: i64 = get(r, "bucket_ms")?;
            let windows: i64 = get(r, "windows")?;
            let lat_n: i64 = get(r, "lat_n")?;
            let n = match measure {
                Measure::Loss => windows,
                _ => lat_n,
            };
            let prefix = match measure {
                Measure::Latency => "lat",
                Measure::MaxLatency => "max",
                Measure::Loss => "loss",
            };
            let v = super::measurements::agg(r, prefix, n)?.filtered(condition.filter);
            let before = e.state;
            let s = e.period(bucket_ms, v);
            if s.transition.is_some() || s.notice.is_some() {
                steps.push(Applied {
                    step: s,
                    before,
                    time_ms: bucket_ms,
                    value: v,
                });
            }
        }
        i = j;
        if e.memory == memory && steps.is_empty() {
            continue;
        }
        let mem = e.memory;
        apply(c, &p, rule, &monitor_id, &steps, &mem, now_us, &mut events).await?;
    }
    Ok(events)
}

impl SqlStore {
    /// Writes the newest data time of every cached rule whose time moved
    /// since it was stored, in key order, [`SWEEP_CHUNK`] rules a
    /// statement. A time only moves on (a rule deleted meanwhile has no row
    /// to update), so a sweep from a cache that is stale writes nothing
    /// false.
    async fn sweep_data_times(&self, cache: &mut RuleCache) -> Result<()> {
        let mut due: Vec<(String, i64, MonitorId, usize)> = Vec::new();
        for (m, rules) in &cache.by_monitor {
            for (i, r) in rules.iter().enumerate() {
                if let Some(t) = r.memory.last_data_ms
                    && r.data_saved.is_none_or(|s| s < t)
                {
                    due.push((r.id.to_string(), t, *m, i));
                }
            }
        }
        due.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let sql = if self.backend == super::Backend::Postgres {
            "UPDATE alarm_data SET last_data_ms = j.t FROM \
             (SELECT e->>0 AS id, (e->>1)::BIGINT AS t FROM json_array_elements($1::json) AS e) AS j \
             WHERE alarm_data.id = j.id AND (alarm_data.last_data_ms IS NULL OR alarm_data.last_data_ms < j.t)"
        } else {
            "UPDATE alarm_data SET last_data_ms = j.t FROM \
             (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS t \
              FROM json_each($1)) AS j \
             WHERE alarm_data.id = j.id AND (alarm_data.last_data_ms IS NULL OR alarm_data.last_data_ms < j.t)"
        };
        for chunk in due.chunks(SWEEP_CHUNK) {
            let pairs: Vec<(&str, i64)> = chunk
                .iter()
                .map(|(id, t, _, _)| (id.as_str(), *t))
                .collect();
            sqlx::query(sql)
                .bind(json(&pairs)?)
                .execute(&self.write)
                .await
                .map_err(internal)?;
            for (_, t, m, i) in chunk {
                if let Some(r) = cache.by_monitor.get_mut(m).and_then(|v| v.get_mut(*i)) {
                    r.data_saved = Some(*t);
                }
            }
        }
        Ok(())
    }
}

#[async_trait]
impl AlarmStore for SqlStore {
    async fn create_alarm(&self, p: &ProjectId, rule: &AlarmRule) -> Result<()> {
        let mut tx = self.write.begin().await.map_err(internal)?;
        let conn = rule.metric.connection;
        let exists =
            sqlx::query("SELECT 1 AS one FROM vpn_connections WHERE id = $1 AND project_id = $2")
                .bind(conn.to_string())
                .bind(p.as_str().to_string())
                .fetch_optional(&mut *tx)
                .await
                .map_err(internal)?;
        if exists.is_none() {
            return Err(alarm::unknown_connection(&conn));
        }
        let created = next_created_us(&mut tx, "alarms", p, self.now_us()).await?;
        sqlx::query(
            "INSERT INTO alarms (id, project_id, created_us, connection_id, period, enabled, state, \
             watch_ms, body, eval) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(rule.alarm_id.to_string())
        .bind(p.as_str().to_string())
        .bind(created)
        .bind(conn.to_string())
        .bind(rule.condition.period)
        .bind(i64::from(rule.alarm_enabled))
        .bind(rule.alarm_state.as_str().to_string())
        .bind(rule.update_time)
        .bind(json(rule)?)
        .bind(json(&EvalState::default())?)
        .execute(&mut *tx)
        .await
        .map_err(internal)?;
        sqlx::query("INSERT INTO alarm_data (id, last_data_ms) VALUES ($1, NULL)")
            .bind(rule.alarm_id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
        touch_version(&mut tx).await?;
        tx.commit().await.map_err(internal)
    }

    async fn get_alarm(&self, p: &ProjectId, id: &AlarmId) -> Result<AlarmRule> {
        let mut c = self.read.acquire().await.map_err(internal)?;
        Ok(load(&mut c, p, id).await?.0)
    }

    async fn list_alarms(
        &self,
        p: &ProjectId,
        start: Option<&AlarmId>,
        limit: i64,
        desc: bool,
    ) -> Result<AlarmPage> {
        let mut c = self.read.acquire().await.map_err(internal)?;
        let total_row = sqlx::query("SELECT COUNT(*) AS n FROM alarms WHERE project_id = $1")
            .bind(p.as_str().to_string())
            .fetch_one(&mut *c)
            .await
            .map_err(internal)?;
        let total: i64 = get(&total_row, "n")?;
        let mut q = Q::new("SELECT body FROM alarms WHERE project_id = ");
        let a = q.s(p.as_str());
        q.push(&a);
        if let Some(s) = start {
            let row =
                sqlx::query("SELECT created_us FROM alarms WHERE id = $1 AND project_id = $2")
                    .bind(s.to_string())
                    .bind(p.as_str().to_string())
                    .fetch_optional(&mut *c)
                    .await
                    .map_err(internal)?
                    .ok_or_else(|| alarm::unknown_start(s))?;
            let at: i64 = get(&row, "created_us")?;
            let a = q.i(at);
            q.push(&format!(
                " AND created_us {} {a}",
                if desc { "<" } else { ">" }
            ));
        }
        let l = q.i(limit.max(0));
        q.push(&format!(
            " ORDER BY created_us {} LIMIT {l}",
            if desc { "DESC" } else { "ASC" }
        ));
        let rows = q.build().fetch_all(&mut *c).await.map_err(internal)?;
        let items = rows
            .iter()
            .map(|r| parse(&get::<String>(r, "body")?))
            .collect::<Result<Vec<AlarmRule>>>()?;
        Ok(AlarmPage { items, total })
    }

    async fn connection_alarms(
        &self,
        p: &ProjectId,
        conn: &ConnectionId,
    ) -> Result<Vec<AlarmRule>> {
        let rows = sqlx::query(
            "SELECT body FROM alarms WHERE connection_id = $1 AND project_id = $2 \
             ORDER BY created_us, id",
        )
        .bind(conn.to_string())
        .bind(p.as_str().to_string())
        .fetch_all(&self.read)
        .await
        .map_err(internal)?;
        rows.iter()
            .map(|r| parse(&get::<String>(r, "body")?))
            .collect()
    }

    async fn update_alarm(
        &self,
        p: &ProjectId,
        id: &AlarmId,
        req: &UpdateAlarm,
    ) -> Result<AlarmRule> {
        let mut tx = self.write.begin().await.map_err(internal)?;
        let (rule, eval) = load(&mut tx, p, id).await?;
        let (rule, reset) = alarm::update(&rule, req, p)?;
        let eval = if reset { eval.restarted() } else { eval };
        store_rule(&mut tx, &rule, &eval).await?;
        if reset {
            // The no-data check counts from now.
            sqlx::query("UPDATE alarms SET watch_ms = $1 WHERE id = $2")
                .bind(self.now_us() / 1000)
                .bind(id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(internal)?;
        }
        touch_version(&mut tx).await?;
        tx.commit().await.map_err(internal)?;
        Ok(rule)
    }

    async fn set_alarm_enabled(&self, p: &ProjectId, id: &AlarmId, enabled: bool) -> Result<()> {
        let mut tx = self.write.begin().await.map_err(internal)?;
        let (mut rule, eval) = load(&mut tx, p, id).await?;
        rule.alarm_enabled = enabled;
        store_rule(&mut tx, &rule, &eval).await?;
        touch_version(&mut tx).await?;
        tx.commit().await.map_err(internal)
    }

    async fn delete_alarm(&self, p: &ProjectId, id: &AlarmId) -> Result<()> {
        let mut tx = self.write.begin().await.map_err(internal)?;
        let r = sqlx::query("DELETE FROM alarms WHERE id = $1 AND project_id = $2")
            .bind(id.to_string())
            .bind(p.as_str().to_string())
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
        if r.rows_affected() == 0 {
            return Err(DomainError::NotFound);
        }
        sqlx::query("DELETE FROM alarm_data WHERE id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
        touch_version(&mut tx).await?;
        tx.commit().await.map_err(internal)
    }

    async fn list_alarm_history(
        &self,
        p: &ProjectId,
        hq: &HistoryQuery,
    ) -> Result<(Vec<AlarmHistory>, i64)> {
        let mut q = Q::new(" FROM alarm_history WHERE project_id = ");
        let a = q.s(p.as_str());
        q.push(&a);
        if let Some(id) = &hq.alarm_id {
            let a = q.s(&id.to_string());
            q.push(&format!(" AND alarm_id = {a}"));
        }
        if let Some(n) = &hq.alarm_name {
            let a = q.s(n);
            q.push(&format!(" AND alarm_name = {a}"));
        }
        if let Some(s) = hq.alarm_status {
            let a = q.s(s.as_str());
            q.push(&format!(" AND status = {a}"));
        }
        if let Some(l) = hq.alarm_level {
            let a = q.i(l);
            q.push(&format!(" AND alarm_level = {a}"));
        }
        if let Some(n) = &hq.namespace {
            let a = q.s(n);
            q.push(&format!(" AND namespace = {a}"));
        }
        if let Some(f) = hq.from_ms {
            let a = q.i(f);
            q.push(&format!(" AND trigger_ms >= {a}"));
        }
        if let Some(t) = hq.to_ms {
            let a = q.i(t);
            q.push(&format!(" AND trigger_ms <= {a}"));
        }
        self.body_page(q, "trigger_ms DESC, seq DESC", hq.offset, hq.limit)
            .await
    }

    async fn evaluate_windows(&self, points: &[WindowPoint]) -> Result<Vec<AlarmEvent>> {
        let mut by_monitor: HashMap<MonitorId, Vec<&WindowPoint>> = HashMap::new();
        for pt in points {
            by_monitor.entry(pt.monitor_id).or_default().push(pt);
        }
        if by_monitor.is_empty() {
            return Ok(Vec::new());
        }
        // The rules come from memory (one read of the version per batch);
        // the store is written only for what changed.
        let mut cache = self.alarm_cache.lock().await;
        cache.refresh(&self.read).await?;
        if cache.by_monitor.is_empty() {
            return Ok(Vec::new());
        }
        // What each touched rule becomes: (monitor, index in its list,
        // state and memory after, the ticks that changed something).
        let mut changed: Vec<(MonitorId, usize, AlarmState, EvalState, Vec<Applied>)> = Vec::new();
        for (monitor_id, pts) in by_monitor.iter_mut() {
            let Some(rules) = cache.by_monitor.get(monitor_id) else {
                continue;
            };
            pts.sort_by_key(|x| x.window_start_ms);
            for (i, c) in rules.iter().enumerate() {
                let mut e = Evaluator {
                    condition: &c.condition,
                    actions_enabled: c.actions_enabled,
                    state: c.state,
                    memory: c.memory,
                };
                let mut steps = Vec::new();
                for pt in pts.iter() {
                    let v = window_value(c.measure, pt).map(|v| raw_value(c.condition.filter, v));
                    let before = e.state;
                    let s = e.period(pt.window_start_ms, v);
                    if s.transition.is_some() || s.notice.is_some() {
                        steps.push(Applied {
                            step: s,
                            before,
                            time_ms: pt.window_start_ms,
                            value: v,
                        });
                    }
                }
                if e.memory != c.memory || !steps.is_empty() {
                    changed.push((*monitor_id, i, e.state, e.memory, steps));
                }
            }
        }
        let mut events = Vec::new();
        let must_write = changed.iter().any(|(m, i, _, after, steps)| {
            !steps.is_empty() || memory_worth_saving(&cache.by_monitor[m][*i].saved, after)
        });
        // Which changed rules were written (and are now what the store has).
        let mut written = vec![false; changed.len()];
        let mut stale = false;
        let mut version = None;
        if must_write {
            let pg = self.backend == super::Backend::Postgres;
            let mut tx = self.write.begin().await.map_err(internal)?;
            let mut transitions = false;
            for (k, (m, i, _, after, steps)) in changed.iter().enumerate() {
                let c = &cache.by_monitor[m][*i];
                if steps.is_empty() {
                    if memory_worth_saving(&c.saved, after) {
                        // Only over the memory this evaluation started from:
                        // a rule changed meanwhile (by the API, the no-data
                        // check or another node) is not overwritten.
                        if save_memory(&mut tx, &c.id.to_string(), after, &c.saved_text).await? {
                            written[k] = true;
                        } else {
                            stale = true;
                        }
                    }
                    continue;
                }
                // The rule as the store has it now (locked on PostgreSQL):
                // its ticks apply only if it is still what was evaluated.
                let current = load_current(&mut tx, &c.project, &c.id, pg).await?;
                let Some((rule, _)) = current.filter(|(r, text)| {
                    *text == c.saved_text
                        && r.alarm_enabled
                        && r.condition == c.condition
                        && r.alarm_state == c.state
                        && r.alarm_action_enabled == c.actions_enabled
                }) else {
                    stale = true;
                    continue;
                };
                let now_us = self.now_us();
                apply(
                    &mut tx,
                    &c.project,
                    rule,
                    m,
                    steps,
                    after,
                    now_us,
                    &mut events,
                )
                .await?;
                written[k] = true;
                transitions = true;
            }
            if transitions {
                // Other nodes reload; this one keeps its cache, unless
                // something else changed the rules meanwhile.
                let seen = cache.loaded_at.clone().flatten();
                version = Some(bump_version(&mut tx, seen.as_deref()).await?);
            }
            tx.commit().await.map_err(internal)?;
        }
        for (k, (m, i, state, after, _)) in changed.into_iter().enumerate() {
            if stale && !written[k] {
                continue;
            }
            if let Some(c) = cache.by_monitor.get_mut(&m).and_then(|v| v.get_mut(i)) {
                c.state = state;
                c.memory = after;
                if written[k] {
                    c.saved = after;
                    c.saved_text = json(&after)?;
                    c.data_saved = c.data_saved.max(after.last_data_ms);
                }
            }
        }
        match version {
            Some(Bumped::Ours(v)) if !stale => cache.loaded_at = Some(Some(v)),
            Some(_) => cache.loaded_at = None,
            None if stale => cache.loaded_at = None,
            None => {}
        }
        if let Some(newest) = points.iter().map(|p| p.window_start_ms).max() {
            match cache.sweep_due_ms {
                Some(due) if newest >= due => {
                    self.sweep_data_times(&mut cache).await?;
                    cache.sweep_due_ms = Some(next_sweep(newest));
                }
                Some(_) => {}
                None => cache.sweep_due_ms = Some(next_sweep(newest)),
            }
        }
        Ok(events)
    }

    async fn alarm_states(&self, limit: i64) -> Result<(Vec<(ProjectId, AlarmRule)>, i64)> {
        let mut c = self.read.acquire().await.map_err(internal)?;
        let total: i64 = get(
            &sqlx::query("SELECT COUNT(*) AS n FROM alarms WHERE enabled = 1")
                .fetch_one(&mut *c)
                .await
                .map_err(internal)?,
            "n",
        )?;
        let rows = sqlx::query(
            "SELECT project_id, body FROM alarms WHERE enabled = 1 ORDER BY id LIMIT $1",
        )
        .bind(limit.max(0))
        .fetch_all(&mut *c)
        .await
        .map_err(internal)?;
        let rules = rows
            .iter()
            .map(|r| {
                Ok((
                    get_project_id(r, "project_id")?,
                    parse(&get::<String>(r, "body")?)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((rules, total))
    }

    async fn expire_alarms(&self, now_ms: i64) -> Result<Vec<AlarmEvent>> {
        let mut tx = self.write.begin().await.map_err(internal)?;
        let rows = sqlx::query(
            // `domain::alarm::eval::no_data_ms` in SQL: two periods more
            // for the rules of longer periods.
            // The time index finds the rules whose newest data is old
            // enough for the shortest period (or that have none).
            "SELECT a.project_id, a.body, a.eval, a.watch_ms, d.last_data_ms AS data_ms \
             FROM alarm_data d JOIN alarms a ON a.id = d.id \
             WHERE (d.last_data_ms IS NULL OR d.last_data_ms <= $2) \
             AND a.enabled = 1 AND a.state <> 'insufficient_data' \
             AND a.watch_ms <= $1 - CASE WHEN a.period > 1 THEN 2000 * a.period ELSE 0 END \
             AND (d.last_data_ms IS NULL \
                  OR d.last_data_ms <= $2 - CASE WHEN a.period > 1 THEN 2000 * a.period ELSE 0 END)",
        )
        .bind(now_ms - NO_DATA_MS)
        // The stored time of the newest data may lag by up to
        // DATA_TIME_SAVED_EVERY_MS: wait that much more, never less than 3 h.
        .bind(now_ms - NO_DATA_MS - DATA_TIME_SAVED_EVERY_MS)
        .fetch_all(&mut *tx)
        .await
        .map_err(internal)?;
        let mut events = Vec::new();
        for r in &rows {
            let p = get_project_id(r, "project_id")?;
            let mut rule: AlarmRule = parse(&get::<String>(r, "body")?)?;
            let mut memory: EvalState = parse(&get::<String>(r, "eval")?)?;
            memory.last_data_ms = memory.last_data_ms.max(get(r, "data_ms")?);
            let watch_ms: i64 = get(r, "watch_ms")?;
            let condition = rule.condition.clone();
            let mut e = Evaluator {
                condition: &condition,
                actions_enabled: rule.alarm_action_enabled,
                state: rule.alarm_state,
                memory,
            };
            let s = e.no_data(now_ms, watch_ms);
            let Some(t) = s.transition else { continue };
            // Claimed with a conditional write: of two nodes running the
            // check at once, one records the change.
            let claimed = sqlx::query(
                "UPDATE alarms SET state = $1 WHERE id = $2 AND state <> $1 AND eval = $3",
            )
            .bind(AlarmState::InsufficientData.as_str().to_string())
            .bind(rule.alarm_id.to_string())
            .bind(get::<String>(r, "eval")?)
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
            if claimed.rows_affected() == 0 {
                continue;
            }
            rule.alarm_state = t.to;
            rule.update_time = t.time_ms;
            insert_history(&mut tx, &p, &alarm::history(&rule, t.to, t.time_ms, None)).await?;
            store_rule(&mut tx, &rule, &e.memory).await?;
            events.push(AlarmEvent {
                project_id: p,
                monitor_id: None,
                rule,
                transition: Some(t),
                notice: s.notice,
            });
        }
        if !events.is_empty() {
            touch_version(&mut tx).await?;
        }
        tx.commit().await.map_err(internal)?;
        Ok(events)
    }
}
