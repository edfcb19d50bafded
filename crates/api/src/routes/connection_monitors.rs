//! `/v5/{project_id}/connection-monitors`: create, show, list, delete.

use super::{path_uuid, reply, reply_list};
use crate::authn::Caller;
use crate::context::ReqId;
use crate::error::ApiError;
use crate::json::{HwJson, HwPath, QueryParams};
use crate::state::AppState;
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::MonitorId;
use domain::monitor::CreateMonitor;
use domain::views;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    connection_monitor: CreateMonitor,
}

/// `POST` create: 201 without `status`.
pub async fn create(
    State(s): State<AppState>,
    Extension(c): Extension<Caller>,
    ReqId(rid): ReqId,
    HwJson(body): HwJson<CreateBody>,
) -> Result<Response, ApiError> {
    let conn = body
        .connection_monitor
        .vpn_connection_id
        .ok_or_else(|| ApiError::invalid("connection_monitor.vpn_connection_id is required"))?;
    let conn = domain::validate::id_ref("connection_monitor.vpn_connection_id", &conn)?;
    let m = s
        .store
        .create_monitor(&c.project, &conn, MonitorId::random())
        .await?;
    s.watcher.created(&store::ProbeMonitor {
        id: m.id,
        project_id: c.project.clone(),
        vpn_connection_id: m.vpn_connection_id,
        source_ip: m.source_ip.clone(),
        destination_ip: m.destination_ip.clone(),
        status: m.status.clone(),
    });
    Ok(reply(
        StatusCode::CREATED,
        "connection_monitor",
        views::without(&m, views::MONITOR_CREATE_DROP),
        &rid,
    ))
}

/// `GET` show.
pub async fn show(
    State(s): State<AppState>,
    Extension(c): Extension<Caller>,
    ReqId(rid): ReqId,
    HwPath((_, id)): HwPath<(String, String)>,
) -> Result<Response, ApiError> {
    let id = path_uuid("connection_monitor_id", &id)?;
    let m = s.store.get_monitor(&c.project, &id).await?;
    Ok(reply(
        StatusCode::OK,
        "connection_monitor",
        views::show(&m),
        &rid,
    ))
}

/// `GET` list (`vpn_connection_id`, `enterprise_project_id`*).
pub async fn list(
    State(s): State<AppState>,
    Extension(c): Extension<Caller>,
    ReqId(rid): ReqId,
    q: QueryParams,
) -> Result<Response, ApiError> {
    let conn = q.uuid("vpn_connection_id")?;
    // vpnmon's extension: with `limit` or `marker`, one page (at most 2000)
    // with `page_info` and `total_count`, as on `vpn-connection`.
    if q.get("limit").is_some() || q.get("marker").is_some() {
        let page = q.page(2000)?;
        let l = s
            .store
            .list_monitors_page(&c.project, conn.as_ref(), page)
            .await?;
        return Ok(reply_list(
            "connection_monitors",
            l.items.iter().map(views::show).collect(),
            Some((l.total, l.next_marker)),
            &rid,
        ));
    }
    // The reference's whole list: a heavy read, one of a few at a time.
    let _turn = s.heavy_read().await?;
    let ms = s.store.list_monitors(&c.project, conn.as_ref()).await?;
    super::reply_long_list("connection_monitors", ms, monitor_view, &rid).await
}

fn monitor_view(m: &domain::monitor::ConnectionMonitor) -> serde_json::Value {
    views::show(m)
}

/// `DELETE`: probing stops at once.
pub async fn delete(
    State(s): State<AppState>,
    Extension(c): Extension<Caller>,
    HwPath((_, id)): HwPath<(String, String)>,
) -> Result<Response, ApiError> {
    let id = path_uuid("connection_monitor_id", &id)?;
    s.store.delete_monitor(&c.project, &id).await?;
    s.watcher.deleted(&id);
    Ok(StatusCode::NO_CONTENT.into_response())
}
