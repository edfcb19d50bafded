//! `/v5/{project_id}/vpn-gateways`.

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
use domain::GatewayId;
use domain::gateway::{CreateVgw, UpdateVgw};
use domain::views;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    vpn_gateway: CreateVgw,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateBody {
    vpn_gateway: UpdateVgw,
}

/// `POST` create.
pub async fn create(
    State(s): State<AppState>,
    Extension(c): Extension<Caller>,
    ReqId(rid): ReqId,
    HwJson(body): HwJson<CreateBody>,
) -> Result<Response, ApiError> {
    let plan = domain::gateway::plan_create(body.vpn_gateway, GatewayId::random(), &s.now_wire())?;
    let g = s.store.create_gateway(&c.project, plan).await?;
    Ok(reply(
        StatusCode::CREATED,
        "vpn_gateway",
        views::only(&g, views::VGW_CREATE),
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
    let id = path_uuid("vgw_id", &id)?;
    let g = s.store.get_gateway(&c.project, &id).await?;
    Ok(reply(StatusCode::OK, "vpn_gateway", views::show(&g), &rid))
}

/// `GET` list (`vgw_id`, `enterprise_project_id`*).
pub async fn list(
    State(s): State<AppState>,
    Extension(c): Extension<Caller>,
    ReqId(rid): ReqId,
    q: QueryParams,
) -> Result<Response, ApiError> {
    let id = q.uuid("vgw_id")?;
    let eps = q.all("enterprise_project_id");
    let gws = s.store.list_gateways(&c.project, id.as_ref(), &eps).await?;
    Ok(reply_list(
        "vpn_gateways",
        gws.iter().map(views::show).collect(),
        None,
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
    let id = path_uuid("vgw_id", &id)?;
    let g = s
        .store
        .update_gateway(&c.project, &id, &body.vpn_gateway)
        .await?;
    Ok(reply(
        StatusCode::OK,
        "vpn_gateway",
        views::without(&g, views::VGW_UPDATE_DROP),
        &rid,
    ))
}

/// `DELETE`.
pub async fn delete(
    State(s): State<AppState>,
    Extension(c): Extension<Caller>,
    HwPath((_, id)): HwPath<(String, String)>,
) -> Result<Response, ApiError> {
    let id = path_uuid("vgw_id", &id)?;
    s.store.delete_gateway(&c.project, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
