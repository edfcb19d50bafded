//! `GET /vpnmon/{project_id}/monitors/{id}/state`: what the prober knows of a
//! monitor that the Huawei API has no field for — link state and when it
//! last changed, why it is not probed (outside the allowlist, source not
//! local, ...), and the newest window. vpnmon's own path, outside `/v5`.

use super::{path_uuid, reply};
use crate::authn::Caller;
use crate::context::ReqId;
use crate::error::ApiError;
use crate::state::AppState;
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

/// `GET` the probe state of a monitor.
pub async fn show(
    State(s): State<AppState>,
    Extension(c): Extension<Caller>,
    ReqId(rid): ReqId,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = path_uuid("monitor_id", &id)?;
    let m = s.store.get_monitor(&c.project, &id).await?;
    let link = s.store.get_link_state(&c.project, &id).await?;
    let now = s.now().timestamp_millis();
    let last = s
        .store
        .list_points(&c.project, &id, now - 24 * 3_600_000, now + 60_000)
        .await?
        .into_iter()
        .last()
        .map(|p| {
            json!({"window_start": p.window_start_ms, "sent": p.sent, "received": p.received,
                   "loss_pct": p.loss_pct, "rtt_min_ms": p.rtt_min_ms, "rtt_avg_ms": p.rtt_avg_ms,
                   "rtt_max_ms": p.rtt_max_ms, "jitter_ms": p.jitter_ms})
        });
    let link_json = json!({
        "up": link.up,
        "changed_at": link.changed_us.map(|us| domain::time::wire_ms(domain::time::from_micros(us))),
    });
    Ok(reply(
        StatusCode::OK,
        "monitor_state",
        json!({"id": m.id, "status": m.status, "source_ip": m.source_ip, "destination_ip": m.destination_ip,
               "link": link_json, "not_probed_reason": link.note, "last_window": last}),
        &rid,
    ))
}
