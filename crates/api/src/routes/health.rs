//! `GET /healthz` and `GET /readyz`, for load balancers and orchestrators:
//! no authentication, no tenant data, vpnmon's own paths.
//!
//! - `/healthz`: the process is alive and serves HTTP (always 200).
//! - `/readyz`: the node can do its work: the store answers within
//!   [`STORE_DEADLINE`] and the node's own checks ([`crate::Readiness`]:
//!   the probe engine and the background tasks run, the lease is held)
//!   pass. 200 `{"status": "ok"}`, else 503
//!   `{"status": "unavailable", "reason": "..."}`. The reason is a sentence
//!   for operators; database error text stays in the log.

use crate::context::ReqId;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::time::Duration;

/// How long `/readyz` waits for the store.
pub const STORE_DEADLINE: Duration = Duration::from_secs(2);

/// `GET /healthz`.
pub async fn healthz(ReqId(rid): ReqId) -> Response {
    (
        StatusCode::OK,
        axum::Json(json!({"status": "ok", "request_id": rid})),
    )
        .into_response()
}

/// `GET /readyz`.
pub async fn readyz(State(s): State<AppState>, ReqId(rid): ReqId) -> Response {
    let reason = match tokio::time::timeout(STORE_DEADLINE, s.store.ping()).await {
        Ok(Ok(())) => s.readiness.not_ready(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: the store fails");
            Some("the store does not answer".to_string())
        }
        Err(_) => {
            tracing::warn!("readiness: the store did not answer in time");
            Some(format!(
                "the store did not answer within {} s",
                STORE_DEADLINE.as_secs()
            ))
        }
    };
    match reason {
        None => (
            StatusCode::OK,
            axum::Json(json!({"status": "ok", "request_id": rid})),
        )
            .into_response(),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"status": "unavailable", "reason": reason, "request_id": rid})),
        )
            .into_response(),
    }
}
