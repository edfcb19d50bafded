//! `/v5/{project_id}/customer-gateways`.

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
use domain::CustomerGatewayId;
use domain::customer_gateway::{CreateCgw, UpdateCgw};
use domain::views;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    customer_gateway: CreateCgw,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateBody {
    customer_gateway: UpdateCgw,
}

/// `POST` create.
pub async fn create(
    State(s): State<AppState>,
    Extension(c): Extension<Caller>,
    ReqId(rid): ReqId,
    HwJson(body): HwJson<CreateBody>,
) -> Result<Response, ApiError> {
    let cgw = domain::customer_gateway::create(
        body.customer_gateway,
        CustomerGatewayId::random(),
        &s.now_wire(),
    )?;
    let cgw = s.store.create_cgw(&c.project, &cgw).await?;
    Ok(reply(
        StatusCode::CREATED,
        "customer_gateway",
        views::show(&cgw),
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
    let id = path_uuid("customer_gateway_id", &id)?;
    let cgw = s.store.get_cgw(&c.project, &id).await?;
    Ok(reply(
        StatusCode::OK,
        "customer_gateway",
        views::show(&cgw),
        &rid,
    ))
}

/// `GET` list (`cgw_id`, `limit` 0-200, `marker`).
pub async fn list(
    State(s): State<AppState>,
    Extension(c): Extension<Caller>,
    ReqId(rid): ReqId,
    q: QueryParams,
) -> Result<Response, ApiError> {
    let id = q.uuid("cgw_id")?;
    let page = q.page(200)?;
    let l = s.store.list_cgws(&c.project, id.as_ref(), page).await?;
    Ok(reply_list(
        "customer_gateways",
        l.items.iter().map(views::show).collect(),
        Some((l.total, l.next_marker)),
        &rid,
    ))
}

/// `PUT` update (name, certificate).
pub async fn update(
    State(s): State<AppState>,
    Extension(c): Extension<Caller>,
    ReqId(rid): ReqId,
    HwPath((_, id)): HwPath<(String, String)>,
    HwJson(body): HwJson<UpdateBody>,
) -> Result<Response, ApiError> {
    let id = path_uuid("customer_gateway_id", &id)?;
    let cgw = s
        .store
        .update_cgw(&c.project, &id, &body.customer_gateway)
        .await?;
    Ok(reply(
        StatusCode::OK,
        "customer_gateway",
        views::show(&cgw),
        &rid,
    ))
}

/// `DELETE`.
pub async fn delete(
    State(s): State<AppState>,
    Extension(c): Extension<Caller>,
    HwPath((_, id)): HwPath<(String, String)>,
) -> Result<Response, ApiError> {
    let id = path_uuid("customer_gateway_id", &id)?;
    s.store.delete_cgw(&c.project, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
