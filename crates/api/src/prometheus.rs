//! API request metrics for Prometheus: counts by route template, method and status, and
//! latency by route template and method. Route templates (not raw paths)
//! keep label cardinality bounded by the number of routes.

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Instant;

/// Labels of the request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

/// Labels of the latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: String,
    pub route: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new([
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    ])
}

/// The API's metrics.
pub struct ApiMetrics {
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
}

impl ApiMetrics {
    /// Creates the metrics and registers them.
    pub fn new(registry: &mut Registry) -> Arc<Self> {
        let m = ApiMetrics {
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
        };
        registry.register(
            "vpnmon_api_requests",
            "API requests by method, route template and status",
            m.requests.clone(),
        );
        registry.register(
            "vpnmon_api_request_duration_seconds",
            "API request latency by method and route template",
            m.latency.clone(),
        );
        Arc::new(m)
    }

    fn observe(&self, method: &str, route: &str, status: u16, secs: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_string(),
                route: route.to_string(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                method: method.to_string(),
                route: route.to_string(),
            })
            .observe(secs);
    }
}

/// Middleware recording every request.
pub async fn track(metrics: Arc<ApiMetrics>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().as_str().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| route_label(p.as_str()))
        .unwrap_or_else(|| "unmatched".into());
    let resp = next.run(req).await;
    metrics.observe(
        &method,
        &route,
        resp.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    resp
}

/// `/v5/{project_id}/x` -> `/v5/:project_id/x`: some exposition parsers
/// choke on braces inside label values.
fn route_label(template: &str) -> String {
    template.replace('{', ":").replace('}', "")
}
