//! vpnmon's HTTP API: the Huawei Cloud VPN v5 resources a connection
//! monitor needs, and IAM tokens, in the wire format of the real service.
//!
//! Design choices:
//! - Errors are converted to the Huawei body in one place ([`error`]), and
//!   every response carries `X-Request-Id` ([`context`]).
//! - Authentication is a chain of schemes ([`authn`]): token, then AK/SK.
//!   A resource of another project answers 404, never 403; a path project
//!   other than the caller's answers 403.
//! - The dashboard ([`routes::dashboard`]) is static files on the same
//!   listener; its pages read only the API above.
//! - The router records every (method, path) it serves ([`RouteInfo`]) so
//!   a test can prove that the credential sweep covers every route.

#![forbid(unsafe_code)]

pub mod authn;
pub mod context;
pub mod error;
pub mod json;
pub mod login_guard;
pub mod prometheus;
pub mod routes;
pub mod server;
pub mod smn_keys;
pub mod state;

pub use error::ApiError;
pub use state::{AppState, Clock, MonitorWatcher, NoWatcher, Readiness, StoreOnly, SystemClock};

use axum::Router;
use axum::routing::{MethodRouter, get, post, put};

/// One served route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteInfo {
    /// HTTP method.
    pub method: &'static str,
    /// Path template, e.g. `/v5/{project_id}/vpn-gateways/{vgw_id}`.
    pub path: &'static str,
    /// Whether the route needs credentials.
    pub authenticated: bool,
}

struct Routes {
    router: Router<AppState>,
    infos: Vec<RouteInfo>,
}

impl Routes {
    fn add(
        mut self,
        path: &'static str,
        methods: &[&'static str],
        authenticated: bool,
        mr: MethodRouter<AppState>,
    ) -> Self {
        for m in methods {
            self.infos.push(RouteInfo {
                method: m,
                path,
                authenticated,
            });
        }
        self.router = self.router.route(path, mr);
        self
    }
}

/// The router and the list of routes it serves.
pub fn router(state: AppState) -> (Router, Vec<RouteInfo>) {
    let metrics = state.metrics.clone();
    use routes::*;
    let v5 = Routes {
        router: Router::new(),
        infos: Vec::new(),
    }
    .add(
        "/v5/{project_id}/vpn-gateways",
        &["GET", "POST"],
        true,
        get(vpn_gateways::list).post(vpn_gateways::create),
    )
    .add(
        "/v5/{project_id}/vpn-gateways/availability-zones",
        &["GET"],
        true,
        get(misc::availability_zones),
    )
    .add(
        "/v5/{project_id}/vpn-gateways/{vgw_id}",
        &["GET", "PUT", "DELETE"],
        true,
        get(vpn_gateways::show)
            .put(vpn_gateways::update)
            .delete(vpn_gateways::delete),
    )
    .add(
        "/v5/{project_id}/customer-gateways",
        &["GET", "POST"],
        true,
        get(customer_gateways::list).post(customer_gateways::create),
    )
    .add(
        "/v5/{project_id}/customer-gateways/{customer_gateway_id}",
        &["GET", "PUT", "DELETE"],
        true,
        get(customer_gateways::show)
            .put(customer_gateways::update)
            .delete(customer_gateways::delete),
    )
    .add(
        "/v5/{project_id}/vpn-connection",
        &["GET", "POST"],
        true,
        get(vpn_connections::list).post(vpn_connections::create),
    )
    .add(
        "/v5/{project_id}/vpn-connection/{vpn_connection_id}",
        &["GET", "PUT", "DELETE"],
        true,
        get(vpn_connections::show)
            .put(vpn_connections::update)
            .delete(vpn_connections::delete),
    )
    .add(
        "/v5/{project_id}/connection-monitors",
        &["GET", "POST"],
        true,
        get(connection_monitors::list).post(connection_monitors::create),
    )
    .add(
        "/v5/{project_id}/connection-monitors/{connection_monitor_id}",
        &["GET", "DELETE"],
        true,
        get(connection_monitors::show).delete(connection_monitors::delete),
    )
    .add(
        "/v5/{project_id}/vpn/quotas",
        &["GET"],
        true,
        get(misc::quotas),
    )
    .add(
        "/V1.0/{project_id}/metric-data",
        &["GET"],
        true,
        get(ces::show_metric_data),
    )
    .add(
        "/V1.0/{project_id}/batch-query-metric-data",
        &["POST"],
        true,
        post(ces::batch_query),
    )
    .add(
        "/V1.0/{project_id}/metrics",
        &["GET"],
        true,
        get(ces::list_metrics),
    )
    .add(
        "/V1.0/{project_id}/alarms",
        &["GET", "POST"],
        true,
        get(alarms::list).post(alarms::create),
    )
    .add(
        "/V1.0/{project_id}/alarms/{alarm_id}",
        &["GET", "PUT", "DELETE"],
        true,
        get(alarms::show).put(alarms::update).delete(alarms::delete),
    )
    .add(
        "/V1.0/{project_id}/alarms/{alarm_id}/action",
        &["PUT"],
        true,
        put(alarms::action),
    )
    .add(
        "/V1.0/{project_id}/alarm-histories",
        &["GET"],
        true,
        get(alarms::histories),
    )
    .add(
        "/v2/{project_id}/notifications/topics",
        &["GET", "POST"],
        true,
        get(smn::list_topics).post(smn::create_topic),
    )
    .add(
        "/v2/{project_id}/notifications/topics/{topic_urn}",
        &["GET", "PUT", "DELETE"],
        true,
        get(smn::show_topic)
            .put(smn::update_topic)
            .delete(smn::delete_topic),
    )
    .add(
        "/v2/{project_id}/notifications/topics/{topic_urn}/subscriptions",
        &["GET", "POST"],
        true,
        get(smn::list_topic_subscriptions).post(smn::add_subscription),
    )
    .add(
        "/v2/{project_id}/notifications/topics/{topic_urn}/publish",
        &["POST"],
        true,
        post(smn::publish),
    )
    .add(
        "/v2/{project_id}/notifications/subscriptions",
        &["GET"],
        true,
        get(smn::list_subscriptions),
    )
    .add(
        "/vpnmon/{project_id}/notifications/deliveries",
        &["GET"],
        true,
        get(smn::list_deliveries),
    )
    .add(
        "/vpnmon/{project_id}/notifications/deliveries/{delivery_id}",
        &["GET"],
        true,
        get(smn::show_delivery),
    )
    .add(
        "/v2/{project_id}/notifications/subscriptions/{subscription_urn}",
        &["DELETE"],
        true,
        axum::routing::delete(smn::cancel_subscription),
    )
    .add(
        "/vpnmon/{project_id}/monitors/{monitor_id}/state",
        &["GET"],
        true,
        get(probe_state::show),
    )
    .add(
        "/vpnmon/{project_id}/connections/{connection_id}/alarms",
        &["GET"],
        true,
        get(alarms::for_connection),
    )
    .add(
        "/vpnmon/{project_id}/overview",
        &["GET"],
        true,
        get(overview::show),
    );

    let authed = v5.router.route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        authn::authenticate,
    ));
    let mut infos = v5.infos;
    let admin = Routes {
        router: Router::new(),
        infos: Vec::new(),
    }
    .add("/vpnmon/nodes", &["GET"], true, get(nodes::list));
    let admin_router = admin
        .router
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authn::authenticate_admin,
        ));
    infos.extend(admin.infos);
    let open = Routes {
        router: Router::new(),
        infos: Vec::new(),
    }
    .add(
        "/v3/auth/tokens",
        &["POST", "DELETE"],
        false,
        post(iam::issue_token).delete(iam::revoke_token),
    )
    .add(
        "/v2/notifications/subscriptions/subscribe",
        &["GET"],
        false,
        get(smn::confirm),
    )
    .add(
        "/rest/v2/notifications/subscription/confirm",
        &["GET"],
        false,
        get(smn::confirm),
    )
    .add(
        "/v2/notifications/subscriptions/unsubscribe",
        &["GET"],
        false,
        get(smn::unsubscribe),
    )
    .add(
        "/rest/v2/notifications/subscription/unsubscribe",
        &["GET"],
        false,
        get(smn::unsubscribe),
    )
    .add(
        "/smn/{certificate_file}",
        &["GET"],
        false,
        get(smn::certificate),
    )
    .add(
        "/v2/notifications/certifications/download/{certificate_file}",
        &["GET"],
        false,
        get(smn::certificate),
    )
    .add("/healthz", &["GET"], false, get(health::healthz))
    .add("/readyz", &["GET"], false, get(health::readyz))
    .add("/", &["GET"], false, get(dashboard::login))
    .add("/dashboard", &["GET"], false, get(dashboard::overview))
    .add("/dashboard/", &["GET"], false, get(dashboard::overview))
    .add(
        "/dashboard/monitors/{monitor_id}",
        &["GET"],
        false,
        get(dashboard::detail),
    )
    .add("/dashboard/alarms", &["GET"], false, get(dashboard::alarms))
    .add(
        "/dashboard/assets/{*path}",
        &["GET"],
        false,
        get(dashboard::asset),
    );
    infos.extend(open.infos);
    let app = authed
        .merge(admin_router)
        .merge(open.router)
        .fallback(|| async {
            error::ApiError::new(
                error::Code::GatewayNoSuchApi,
                "The API does not exist or has not been published in the environment",
            )
        })
        .layer(axum::middleware::from_fn(context::request_context))
        .with_state(state);
    let app = match metrics {
        Some(m) => app.layer(axum::middleware::from_fn(move |req, next| {
            prometheus::track(m.clone(), req, next)
        })),
        None => app,
    };
    (app, infos)
}
