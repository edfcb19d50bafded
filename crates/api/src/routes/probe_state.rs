//! `GET /vpnmon/{project_id}/monitors/{id}/state`: what the prober knows of a
//! monitor that the Huawei API has no field for — link state and when it
//! last changed, why it is not probed (outside the allowlist, source not
//! local, ...), which node probes it (`node`, the name of the live node
//! that rendezvous hashing picks among those that can send from its
//! source, or null: then `not_probed_reason` says no live node can send
//! from it), and the newest window. vpnmon's own path, outside `/v5`.

use super::{path_uuid, reply};
use crate::authn::Caller;
use crate::context::ReqId;
use crate::error::ApiError;
use crate::json::HwPath;
use crate::state::AppState;
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use domain::ownership::{Member, owner, parse_prefixes, unowned_reason};
use serde_json::json;
use std::net::IpAddr;

/// `GET` the probe state of a monitor.
pub async fn show(
    State(s): State<AppState>,
    Extension(c): Extension<Caller>,
    ReqId(rid): ReqId,
    HwPath((_, id)): HwPath<(String, String)>,
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
    // Who probes it: the same rendezvous decision every node makes, over
    // the live nodes and the addresses they reported.
    let members: Vec<Member> = s
        .store
        .live_nodes()
        .await?
        .into_iter()
        .map(|n| Member {
            id: n.id,
            name: n.name,
            prefixes: parse_prefixes(&n.addresses),
        })
        .collect();
    let source = m.source_ip.parse::<IpAddr>().ok();
    let node = source.and_then(|src| owner(&m.id, src, &members).map(|o| o.name.clone()));
    let not_probed_reason = match (&node, source) {
        (None, Some(src)) => Some(unowned_reason(src)),
        _ => link.note.clone(),
    };
    let link_json = json!({
        "up": link.up,
        "changed_at": link.changed_us.map(|us| domain::time::wire_ms(domain::time::from_micros(us))),
    });
    Ok(reply(
        StatusCode::OK,
        "monitor_state",
        json!({"id": m.id, "status": m.status, "source_ip": m.source_ip, "destination_ip": m.destination_ip,
               "link": link_json, "node": node, "not_probed_reason": not_probed_reason,
               "last_window": last}),
        &rid,
    ))
}
