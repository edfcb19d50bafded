//! `/v5/{project_id}/vpn-connection` (singular on the wire).

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
use domain::ConnectionId;
use domain::connection::{CreateConnection, UpdateConnection};
use domain::views;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    vpn_connection: CreateConnection,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateBody {
    vpn_connection: UpdateConnection,
}

/// `POST` create.
pub async fn create(
    State(s): State<AppState>,
    Extension(c): Extension<Caller>,
    ReqId(rid): ReqId,
    HwJson(body): HwJson<CreateBody>,
) -> Result<Response, ApiError> {
    let conn = s
        .store
        .create_connection(&c.project, body.vpn_connection, ConnectionId::random())
        .await?;
    Ok(reply(
        StatusCode::CREATED,
        "vpn_connection",
        views::without(&conn, views::CONN_CREATE_DROP),
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
    let id = path_uuid("vpn_connection_id", &id)?;
    let conn = s.store.get_connection(&c.project, &id).await?;
    Ok(reply(
        StatusCode::OK,
        "vpn_connection",
        views::without(&conn, views::CONN_SHOW_DROP),
        &rid,
    ))
}

/// `GET` list (`vpn_id`, `vgw_id`, `vgw_ip`, `eip_id`, `enterprise_project_id`*, `limit` 0-2000, `marker`).
pub async fn list(
    State(s): State<AppState>,
    Extension(c): Extension<Caller>,
    ReqId(rid): ReqId,
    q: QueryParams,
) -> Result<Response, ApiError> {
    let f = store::ConnectionFilter {
        vpn_id: q.uuid("vpn_id")?,
        vgw_id: q.uuid("vgw_id")?,
        vgw_ip: q.get("vgw_ip").map(str::to_string),
        eip_id: q.get("eip_id").map(str::to_string),
        eps: q.all("enterprise_project_id"),
    };
    let page = q.page(2000)?;
    let l = s.store.list_connections(&c.project, &f, page).await?;
    Ok(reply_list(
        "vpn_connections",
        l.items
            .iter()
            .map(|x| views::without(x, views::CONN_SHOW_DROP))
            .collect(),
        Some((l.total, l.next_marker)),
        &rid,
    ))
}

/// `PUT` update.
pub async fn update(
    State(s): State<AppState>,
    Extension(c): Extension<Caller>,
    ReqId(rid): ReqId,
    HwPath((_, id)): HwPath<(String, String)>,
    HwJson(body): HwJson<UpdateBody>,
) -> Result<Response, ApiError> {
    let id = path_uuid("vpn_connection_id", &id)?;
    let conn = s
        .store
        .update_connection(&c.project, &id, &body.vpn_connection)
        .await?;
    Ok(reply(
        StatusCode::OK,
        "vpn_connection",
        views::without(&conn, views::CONN_UPDATE_DROP),
        &rid,
    ))
}

/// `DELETE`: the connection's monitor goes with it.
pub async fn delete(
    State(s): State<AppState>,
    Extension(c): Extension<Caller>,
    HwPath((_, id)): HwPath<(String, String)>,
) -> Result<Response, ApiError> {
    let id = path_uuid("vpn_connection_id", &id)?;
    let monitor = s
        .store
        .get_connection(&c.project, &id)
        .await?
        .connection_monitor_id;
    s.store.delete_connection(&c.project, &id).await?;
    if let Some(m) = monitor {
        s.watcher.deleted(&m);
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
