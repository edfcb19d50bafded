//! Small read-only endpoints: quotas and availability zones.

use super::reply;
use crate::authn::Caller;
use crate::context::ReqId;
use crate::error::ApiError;
use crate::state::AppState;
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

/// `GET /v5/{project_id}/vpn/quotas`: quotas are operator settings and
/// unlimited by default, shown as `-1` like other Huawei services do.
pub async fn quotas(
    State(s): State<AppState>,
    Extension(c): Extension<Caller>,
    ReqId(rid): ReqId,
) -> Result<Response, ApiError> {
    let gws = s.store.list_gateways(&c.project, None, &[]).await?.len();
    let cgws = s
        .store
        .list_cgws(
            &c.project,
            None,
            store::Page {
                limit: Some(1),
                marker_us: None,
            },
        )
        .await?
        .total;
    let conns = s
        .store
        .list_connections(
            &c.project,
            &store::ConnectionFilter::default(),
            store::Page {
                limit: Some(1),
                marker_us: None,
            },
        )
        .await?
        .total;
    Ok(reply(
        StatusCode::OK,
        "quotas",
        json!({"resources": [
            {"type": "vpn_gateway", "quota": -1, "used": gws},
            {"type": "customer_gateway", "quota": -1, "used": cgws},
            {"type": "vpn_connection", "quota": -1, "used": conns},
        ]}),
        &rid,
    ))
}

/// `GET /v5/{project_id}/vpn-gateways/availability-zones`.
pub async fn availability_zones(ReqId(rid): ReqId, Extension(_c): Extension<Caller>) -> Response {
    let az = json!({"vpc": ["local-1a"], "er": ["local-1a"]});
    reply(
        StatusCode::OK,
        "availability_zones",
        json!({"basic": az, "professional1": az, "professional2": az,
               "Professional1-NonFixedIP": az, "Professional2-NonFixedIP": az, "gm": az}),
        &rid,
    )
}
