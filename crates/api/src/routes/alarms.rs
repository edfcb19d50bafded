//! Cloud Eye alarm rules, API v1, as `huaweicloudsdkces` v1 `CesClient`
//! sends them: `/V1.0/{project_id}/alarms` (create, list), `.../{alarm_id}`
//! (show, update, delete), `.../{alarm_id}/action` (enable, disable) and
//! `/V1.0/{project_id}/alarm-histories`.
//!
//! Every failure answers in the CES error body (`ces.0014` naming the
//! field, `ces.0016` for a rule that is not the caller's); the rules
//! themselves are `domain::alarm`'s. Writes answer 201 `{"alarm_id"}` or an
//! empty 204, which the SDK parses as success.

use crate::authn::Caller;
use crate::error::{ApiError, Family};
use crate::json::{BodyRejection, HwJson, HwPath, QueryParams};
use crate::state::AppState;
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::alarm::{self, AlarmAction, AlarmState, CreateAlarm, UpdateAlarm};
use domain::{AlarmId, DomainError};
use serde_json::json;
use store::HistoryQuery;

fn ces(e: DomainError) -> ApiError {
    ApiError::from_domain(e, Family::Ces)
}

fn bad(field: &str, msg: impl std::fmt::Display) -> ApiError {
    ApiError::ces_invalid(format!("{field}: {msg}"))
}

fn alarm_id(v: &str, field: &str) -> Result<AlarmId, ApiError> {
    AlarmId::parse(v).ok_or_else(|| {
        bad(
            field,
            format!("{v:?} is not an alarm id (al and 22 letters or digits)"),
        )
    })
}

fn body<T>(b: Result<HwJson<T>, BodyRejection>) -> Result<T, ApiError> {
    b.map(|HwJson(t)| t).map_err(|r| r.in_family(Family::Ces))
}

/// `POST /V1.0/{project_id}/alarms`: 201 `{"alarm_id"}`.
pub async fn create(
    State(s): State<AppState>,
    Extension(c): Extension<Caller>,
    b: Result<HwJson<CreateAlarm>, BodyRejection>,
) -> Result<Response, ApiError> {
    let req = body(b)?;
    let rule = alarm::create(
        &req,
        AlarmId::random(),
        &c.project,
        s.now().timestamp_millis(),
    )
    .map_err(ces)?;
    s.store.create_alarm(&c.project, &rule).await.map_err(ces)?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"alarm_id": rule.alarm_id})),
    )
        .into_response())
}

/// `GET /V1.0/{project_id}/alarms` (`start`, `limit`, `order`).
pub async fn list(
    State(s): State<AppState>,
    Extension(c): Extension<Caller>,
    q: QueryParams,
) -> Result<Response, ApiError> {
    let start = q.get("start").map(|v| alarm_id(v, "start")).transpose()?;
    let limit = match q.get("limit") {
        None => 100,
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| {
                bad(
                    "limit",
                    format!("{v:?} is not an integer between 1 and 100"),
                )
            })?,
    };
    let desc = match q.get("order") {
        None | Some("desc") => true,
        Some("asc") => false,
        Some(o) => return Err(bad("order", format!("{o:?} is not asc or desc"))),
    };
    let page = s
        .store
        .list_alarms(&c.project, start.as_ref(), limit, desc)
        .await
        .map_err(ces)?;
    let marker = page
        .items
        .last()
        .map(|r| r.alarm_id.to_string())
        .unwrap_or_default();
    let count = page.items.len();
    Ok(axum::Json(json!({
        "metric_alarms": page.items,
        "meta_data": {"count": count, "marker": marker, "total": page.total},
    }))
    .into_response())
}

/// `GET /vpnmon/{project_id}/connections/{connection_id}/alarms`: every
/// rule watching that connection (any of its metrics), in creation order,
/// each as the CES list shows it; 404 for a connection that is not the
/// caller's. vpnmon's own path: CES v1 lists rules by project only, and
/// the dashboard draws one connection's rules.
pub async fn for_connection(
    State(s): State<AppState>,
    Extension(c): Extension<Caller>,
    HwPath((_, id)): HwPath<(String, String)>,
) -> Result<Response, ApiError> {
    let conn = super::path_uuid("connection_id", &id)?;
    s.store.get_connection(&c.project, &conn).await?;
    let rules = s.store.connection_alarms(&c.project, &conn).await?;
    let count = rules.len();
    Ok(
        axum::Json(json!({"metric_alarms": rules, "meta_data": {"count": count, "total": count}}))
            .into_response(),
    )
}

/// `GET /V1.0/{project_id}/alarms/{alarm_id}`: a one-element list.
pub async fn show(
    State(s): State<AppState>,
    Extension(c): Extension<Caller>,
    HwPath((_, id)): HwPath<(String, String)>,
) -> Result<Response, ApiError> {
    let id = alarm_id(&id, "alarm_id")?;
    let rule = s.store.get_alarm(&c.project, &id).await.map_err(ces)?;
    Ok(axum::Json(json!({"metric_alarms": [rule]})).into_response())
}

/// `PUT /V1.0/{project_id}/alarms/{alarm_id}`: 204.
pub async fn update(
    State(s): State<AppState>,
    Extension(c): Extension<Caller>,
    HwPath((_, id)): HwPath<(String, String)>,
    b: Result<HwJson<UpdateAlarm>, BodyRejection>,
) -> Result<Response, ApiError> {
    let id = alarm_id(&id, "alarm_id")?;
    let req = body(b)?;
    s.store
        .update_alarm(&c.project, &id, &req)
        .await
        .map_err(ces)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `PUT /V1.0/{project_id}/alarms/{alarm_id}/action` `{"alarm_enabled"}`: 204.
pub async fn action(
    State(s): State<AppState>,
    Extension(c): Extension<Caller>,
    HwPath((_, id)): HwPath<(String, String)>,
    b: Result<HwJson<AlarmAction>, BodyRejection>,
) -> Result<Response, ApiError> {
    let id = alarm_id(&id, "alarm_id")?;
    let req = body(b)?;
    s.store
        .set_alarm_enabled(&c.project, &id, req.alarm_enabled)
        .await
        .map_err(ces)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /V1.0/{project_id}/alarms/{alarm_id}`: 204.
pub async fn delete(
    State(s): State<AppState>,
    Extension(c): Extension<Caller>,
    HwPath((_, id)): HwPath<(String, String)>,
) -> Result<Response, ApiError> {
    let id = alarm_id(&id, "alarm_id")?;
    s.store.delete_alarm(&c.project, &id).await.map_err(ces)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn int_param(q: &QueryParams, key: &str, lo: i64, hi: i64) -> Result<Option<i64>, ApiError> {
    q.get(key)
        .map(|v| {
            v.parse::<i64>()
                .ok()
                .filter(|n| (lo..=hi).contains(n))
                .ok_or_else(|| {
                    bad(
                        key,
                        format!("{v:?} is not an integer between {lo} and {hi}"),
                    )
                })
        })
        .transpose()
}

/// `GET /V1.0/{project_id}/alarm-histories`: newest first, with the
/// filters the SDK sends; `from`/`to` are inclusive milliseconds, `start`
/// an offset. The `invalid` status and resource groups never match (vpnmon
/// has neither).
pub async fn histories(
    State(s): State<AppState>,
    Extension(c): Extension<Caller>,
    q: QueryParams,
) -> Result<Response, ApiError> {
    let status = match q.get("alarm_status") {
        None => None,
        Some("invalid") => return Ok(empty_history()),
        Some(v) => Some(AlarmState::parse(v).ok_or_else(|| {
            bad(
                "alarm_status",
                format!("{v:?} is not one of ok, alarm, insufficient_data, invalid"),
            )
        })?),
    };
    let hq = HistoryQuery {
        alarm_id: q
            .get("alarm_id")
            .map(|v| alarm_id(v, "alarm_id"))
            .transpose()?,
        alarm_name: q.get("alarm_name").map(str::to_string),
        alarm_status: status,
        alarm_level: int_param(&q, "alarm_level", 1, 4)?,
        namespace: q.get("namespace").map(str::to_string),
        from_ms: int_param(&q, "from", 0, i64::MAX)?,
        to_ms: int_param(&q, "to", 0, i64::MAX)?,
        offset: int_param(&q, "start", 0, i64::MAX)?.unwrap_or(0),
        limit: int_param(&q, "limit", 1, 100)?.unwrap_or(100),
    };
    if let (Some(f), Some(t)) = (hq.from_ms, hq.to_ms)
        && f > t
    {
        return Err(bad("from", "must not be later than to"));
    }
    if q.get("group_id").is_some() {
        return Ok(empty_history());
    }
    let (items, total) = s
        .store
        .list_alarm_history(&c.project, &hq)
        .await
        .map_err(ces)?;
    Ok(
        axum::Json(json!({"alarm_histories": items, "meta_data": {"total": total}}))
            .into_response(),
    )
}

fn empty_history() -> Response {
    axum::Json(json!({"alarm_histories": [], "meta_data": {"total": 0}})).into_response()
}
