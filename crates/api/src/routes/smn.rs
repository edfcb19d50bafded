//! SMN topics and HTTP(S) subscriptions, as `huaweicloudsdksmn` v2
//! `SmnClient` sends them: `/v2/{project_id}/notifications/topics` (create,
//! list), `.../topics/{topic_urn}` (show, update, delete),
//! `.../topics/{topic_urn}/subscriptions` (add, list) and
//! `/v2/{project_id}/notifications/subscriptions[/{subscription_urn}]`
//! (list, cancel), `.../topics/{topic_urn}/publish`; URNs are
//! percent-encoded in paths by the SDK (the router decodes them).
//!
//! Delivery: a new HTTP(S) subscription starts unconfirmed (status 0) and
//! its `SubscriptionConfirmation` goes into the outbox in the same
//! transaction; a GET of its `subscribe_url`
//! (`/v2/notifications/subscriptions/subscribe?topic_urn&endpoint&token`,
//! the SDK's `subscribe_topic`, no authentication: the token is the proof)
//! confirms it. Published messages and alarm notices go to confirmed
//! subscriptions only. The signing certificate is served at
//! `/smn/SMN_<region>_<id>.pem` without authentication. What was sent, and
//! each attempt, is shown by the vpnmon extension
//! `/vpnmon/{project_id}/notifications/deliveries`.
//!
//! Errors answer in SMN's body `{"request_id", "code", "message"}` with the
//! code of the field (`api::error`); a topic URN of another project is not
//! found, like any resource of another tenant. Topic names are unique per
//! project: creating an existing name answers 200 with that topic's URN
//! (201 when new).

use super::reply;
use crate::authn::Caller;
use crate::context::ReqId;
use crate::error::{ApiError, Family};
use crate::json::{BodyRejection, HwJson, HwPath, QueryParams};
use crate::state::AppState;
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::DomainError;
use domain::smn::{self, CreateTopic, UpdateTopic};
use serde_json::{Map, Value, json};

fn err(e: DomainError) -> ApiError {
    ApiError::from_domain(e, Family::Smn)
}

fn invalid(field: &str, msg: impl std::fmt::Display) -> ApiError {
    err(DomainError::invalid(format!("{field}: {msg}")))
}

fn body<T>(b: Result<HwJson<T>, BodyRejection>) -> Result<T, ApiError> {
    b.map(|HwJson(t)| t).map_err(|r| r.in_family(Family::Smn))
}

/// The topic name of a path URN of the caller's project.
fn name_of(urn: &str, c: &Caller) -> Result<String, ApiError> {
    if !urn.starts_with("urn:smn:") || urn.split(':').count() != 5 {
        return Err(invalid(
            "topic_urn",
            format!("{urn:?} is not a topic URN (urn:smn:<region>:<project_id>:<name>)"),
        ));
    }
    smn::topic_name_of(urn, &c.project).ok_or_else(|| err(DomainError::NotFound))
}

fn ok(rid: &str) -> Response {
    (StatusCode::OK, axum::Json(json!({"request_id": rid}))).into_response()
}

/// `POST .../topics`: 201 new, 200 when the name exists.
pub async fn create_topic(
    State(s): State<AppState>,
    Extension(c): Extension<Caller>,
    ReqId(rid): ReqId,
    b: Result<HwJson<CreateTopic>, BodyRejection>,
) -> Result<Response, ApiError> {
    let req = body(b)?;
    let topic = smn::create(&req, &s.region, &c.project, s.now()).map_err(err)?;
    let (topic, created) = s
        .store
        .create_topic(&c.project, &topic)
        .await
        .map_err(err)?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(reply(
        status,
        "topic_urn",
        Value::String(topic.topic_urn),
        &rid,
    ))
}

/// `GET .../topics` (`offset`, `limit` 1-100, `name`).
pub async fn list_topics(
    State(s): State<AppState>,
    Extension(c): Extension<Caller>,
    ReqId(rid): ReqId,
    q: QueryParams,
) -> Result<Response, ApiError> {
    let int = |key: &str, lo: i64, hi: i64, default: i64| -> Result<i64, ApiError> {
        match q.get(key) {
            None => Ok(default),
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|n| (lo..=hi).contains(n))
                .ok_or_else(|| {
                    invalid(
                        key,
                        format!("{v:?} is not an integer between {lo} and {hi}"),
                    )
                }),
        }
    };
    let offset = int("offset", 0, i64::MAX, 0)?;
    let limit = int("limit", 1, 100, 100)?;
    for unsupported in ["fuzzy_name", "topic_id", "fuzzy_display_name"] {
        if q.get(unsupported).is_some() {
            return Err(invalid(
                unsupported,
                "is not supported by vpnmon (use name)",
            ));
        }
    }
    let (topics, total) = s
        .store
        .list_topics(&c.project, q.get("name"), offset, limit)
        .await
        .map_err(err)?;
    Ok(
        axum::Json(json!({"request_id": rid, "topic_count": total, "topics": topics}))
            .into_response(),
    )
}

/// `GET .../topics/{topic_urn}`: the topic's fields and `request_id`.
pub async fn show_topic(
    State(s): State<AppState>,
    Extension(c): Extension<Caller>,
    ReqId(rid): ReqId,
    HwPath((_, urn)): HwPath<(String, String)>,
) -> Result<Response, ApiError> {
    let name = name_of(&urn, &c)?;
    let t = s.store.get_topic(&c.project, &name).await.map_err(err)?;
    let mut m = match serde_json::to_value(&t) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    m.insert("request_id".into(), Value::String(rid));
    Ok(axum::Json(Value::Object(m)).into_response())
}

/// `PUT .../topics/{topic_urn}` `{"display_name"}`.
pub async fn update_topic(
    State(s): State<AppState>,
    Extension(c): Extension<Caller>,
    ReqId(rid): ReqId,
    HwPath((_, urn)): HwPath<(String, String)>,
    b: Result<HwJson<UpdateTopic>, BodyRejection>,
) -> Result<Response, ApiError> {
    let name = name_of(&urn, &c)?;
    let req = body(b)?;
    smn::display_name(&req.display_name).map_err(err)?;
    s.store
        .update_topic(&c.project, &name, &req.display_name)
        .await
        .map_err(err)?;
    Ok(ok(&rid))
}

/// `DELETE .../topics/{topic_urn}`.
pub async fn delete_topic(
    State(s): State<AppState>,
    Extension(c): Extension<Caller>,
    ReqId(rid): ReqId,
    HwPath((_, urn)): HwPath<(String, String)>,
) -> Result<Response, ApiError> {
    let name = name_of(&urn, &c)?;
    s.store.delete_topic(&c.project, &name).await.map_err(err)?;
    Ok(ok(&rid))
}

// ---------- subscriptions ----------

fn page(q: &QueryParams) -> Result<(i64, i64), ApiError> {
    let int = |key: &str, lo: i64, hi: i64, default: i64| -> Result<i64, ApiError> {
        match q.get(key) {
            None => Ok(default),
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|n| (lo..=hi).contains(n))
                .ok_or_else(|| {
                    invalid(
                        key,
                        format!("{v:?} is not an integer between {lo} and {hi}"),
                    )
                }),
        }
    };
    Ok((int("offset", 0, i64::MAX, 0)?, int("limit", 1, 100, 100)?))
}

fn reject(q: &QueryParams, keys: &[&str]) -> Result<(), ApiError> {
    for k in keys {
        if q.get(k).is_some() {
            return Err(invalid(k, "is not supported by vpnmon"));
        }
    }
    Ok(())
}

fn subscriptions_reply(rid: String, (subs, total): (Vec<smn::Subscription>, i64)) -> Response {
    axum::Json(json!({"request_id": rid, "subscription_count": total, "subscriptions": subs}))
        .into_response()
}

/// `POST .../topics/{topic_urn}/subscriptions`: 201 new (unconfirmed), 200
/// when the topic has that protocol and endpoint already. The endpoint's
/// host must be public or in `--notify-allow`.
pub async fn add_subscription(
    State(s): State<AppState>,
    Extension(c): Extension<Caller>,
    ReqId(rid): ReqId,
    HwPath((_, urn)): HwPath<(String, String)>,
    b: Result<HwJson<smn::AddSubscription>, BodyRejection>,
) -> Result<Response, ApiError> {
    let name = name_of(&urn, &c)?;
    let req = body(b)?;
    smn::subscription(&req, &s.notify_allow).map_err(err)?;
    let topic = s.store.get_topic(&c.project, &name).await.map_err(err)?;
    let sub = smn::new_subscription(&req, &topic.topic_urn, &c.project);
    let token = smn::confirmation_token();
    let (sub, created) = s
        .store
        .add_subscription(&c.project, &name, &sub, &token)
        .await
        .map_err(err)?;
    let status = if created {
        s.outbox_wake.notify_one();
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(reply(
        status,
        "subscription_urn",
        Value::String(sub.subscription_urn),
        &rid,
    ))
}

/// `GET .../topics/{topic_urn}/subscriptions` (`offset`, `limit`).
pub async fn list_topic_subscriptions(
    State(s): State<AppState>,
    Extension(c): Extension<Caller>,
    ReqId(rid): ReqId,
    HwPath((_, urn)): HwPath<(String, String)>,
    q: QueryParams,
) -> Result<Response, ApiError> {
    let name = name_of(&urn, &c)?;
    let (offset, limit) = page(&q)?;
    reject(&q, &["fuzzy_remark"])?;
    s.store.get_topic(&c.project, &name).await.map_err(err)?;
    let listed = s
        .store
        .list_subscriptions(&c.project, Some(&name), offset, limit)
        .await
        .map_err(err)?;
    Ok(subscriptions_reply(rid, listed))
}

/// `GET /v2/{project_id}/notifications/subscriptions` (`offset`, `limit`).
pub async fn list_subscriptions(
    State(s): State<AppState>,
    Extension(c): Extension<Caller>,
    ReqId(rid): ReqId,
    q: QueryParams,
) -> Result<Response, ApiError> {
    let (offset, limit) = page(&q)?;
    reject(&q, &["protocol", "status", "endpoint", "fuzzy_remark"])?;
    let listed = s
        .store
        .list_subscriptions(&c.project, None, offset, limit)
        .await
        .map_err(err)?;
    Ok(subscriptions_reply(rid, listed))
}

/// `DELETE /v2/{project_id}/notifications/subscriptions/{subscription_urn}`.
pub async fn cancel_subscription(
    State(s): State<AppState>,
    Extension(c): Extension<Caller>,
    ReqId(rid): ReqId,
    HwPath((_, urn)): HwPath<(String, String)>,
) -> Result<Response, ApiError> {
    if urn.split(':').count() != 6 || !urn.starts_with("urn:smn:") {
        return Err(invalid(
            "subscription_urn",
            format!("{urn:?} is not a subscription URN (<topic_urn>:<32 hex>)"),
        ));
    }
    if smn::subscription_of(&urn, &c.project).is_none() {
        return Err(ApiError::smn_subscription_not_found());
    }
    match s.store.cancel_subscription(&c.project, &urn).await {
        Ok(()) => Ok(ok(&rid)),
        Err(DomainError::NotFound) => Err(ApiError::smn_subscription_not_found()),
        Err(e) => Err(err(e)),
    }
}

// ---------- publish and delivery ----------

/// `POST .../topics/{topic_urn}/publish`: the message goes to every
/// confirmed subscription of the topic; `{"request_id", "message_id"}`.
pub async fn publish(
    State(s): State<AppState>,
    Extension(c): Extension<Caller>,
    ReqId(rid): ReqId,
    HwPath((_, urn)): HwPath<(String, String)>,
    b: Result<HwJson<smn::Publish>, BodyRejection>,
) -> Result<Response, ApiError> {
    let name = name_of(&urn, &c)?;
    let req = body(b)?;
    let published = smn::published(&req).map_err(err)?;
    let topic = s.store.get_topic(&c.project, &name).await.map_err(err)?;
    let now = s.now().timestamp_micros();
    let msg = smn::OutMessage {
        kind: smn::NOTIFICATION,
        topic_urn: topic.topic_urn,
        message_id: smn::message_id(),
        subject: published.subject,
        https_message: (published.https != published.http).then_some(published.https),
        message: published.http,
        created_us: now,
        expires_us: now + published.ttl_s * 1_000_000,
        url_path: None,
    };
    let n = s
        .store
        .publish(&c.project, &name, &msg)
        .await
        .map_err(err)?;
    if n > 0 {
        s.outbox_wake.notify_one();
    }
    Ok(reply(
        StatusCode::OK,
        "message_id",
        Value::String(msg.message_id),
        &rid,
    ))
}

fn required<'a>(q: &'a QueryParams, key: &str) -> Result<&'a str, ApiError> {
    q.get(key)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| invalid(key, "is required"))
}

/// `GET /v2/notifications/subscriptions/subscribe` (and SMN's older
/// `/rest/v2/notifications/subscription/confirm`): `topic_urn`,
/// `endpoint`, `token` from a confirmation's `subscribe_url`. Confirms the
/// subscription; `{"request_id", "subscription_urn"}`. A wrong token is
/// "subscription not found", whatever else is right.
pub async fn confirm(
    State(s): State<AppState>,
    ReqId(rid): ReqId,
    q: QueryParams,
) -> Result<Response, ApiError> {
    let topic_urn = required(&q, "topic_urn")?;
    let endpoint = required(&q, "endpoint")?;
    let token = required(&q, "token")?;
    match s
        .store
        .confirm_subscription(topic_urn, endpoint, token)
        .await
    {
        Ok(sub) => Ok(reply(
            StatusCode::OK,
            "subscription_urn",
            Value::String(sub.subscription_urn),
            &rid,
        )),
        Err(DomainError::NotFound) => Err(ApiError::smn_subscription_not_found()),
        Err(e) => Err(err(e)),
    }
}

/// `GET /v2/notifications/subscriptions/unsubscribe` (and
/// `/rest/v2/notifications/subscription/unsubscribe`): the
/// `unsubscribe_url` of a notification, `subscription_urn` and its
/// `token`. Deletes the subscription; `{"request_id", "message"}`.
pub async fn unsubscribe(
    State(s): State<AppState>,
    ReqId(rid): ReqId,
    q: QueryParams,
) -> Result<Response, ApiError> {
    let urn = required(&q, "subscription_urn")?;
    let token = required(&q, "token")?;
    match s.store.unsubscribe(urn, token).await {
        Ok(()) => Ok(axum::Json(json!({
            "request_id": rid,
            "message": format!("You have unsubscribed {urn}."),
        }))
        .into_response()),
        Err(DomainError::NotFound) => Err(ApiError::smn_subscription_not_found()),
        Err(e) => Err(err(e)),
    }
}

/// `GET /smn/{certificate_file}` (and SMN's
/// `/v2/notifications/certifications/download/{certificate_id}`): the
/// certificate of the key that signs messages, PEM, without
/// authentication. Only the current file name is served.
pub async fn certificate(
    State(s): State<AppState>,
    HwPath(file): HwPath<String>,
) -> Result<Response, ApiError> {
    let key = s.smn_keys.get(&s.region).await.map_err(err)?;
    if file != key.cert_file {
        return Err(ApiError::new(
            crate::error::Code::SmnCertificateNotFound,
            "Certificate not found.",
        ));
    }
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/x-pem-file")],
        key.cert_pem.clone(),
    )
        .into_response())
}

/// `GET /vpnmon/{project_id}/notifications/deliveries` (vpnmon extension;
/// `message_id`, `limit` 1-1000, default 100): what was put into the
/// outbox, newest first, with its state, attempts and last result.
pub async fn list_deliveries(
    State(s): State<AppState>,
    Extension(c): Extension<Caller>,
    ReqId(rid): ReqId,
    q: QueryParams,
) -> Result<Response, ApiError> {
    let limit = match q.get("limit") {
        None => 100,
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| {
                invalid(
                    "limit",
                    format!("{v:?} is not an integer between 1 and 1000"),
                )
            })?,
    };
    let items = s
        .store
        .list_deliveries(&c.project, q.get("message_id"), limit)
        .await
        .map_err(err)?;
    Ok(axum::Json(json!({"request_id": rid, "deliveries": items})).into_response())
}

/// `GET /vpnmon/{project_id}/notifications/deliveries/{id}`: one delivery
/// with every attempt (`at_us`, `duration_us`, `http_status`, `error`).
pub async fn show_delivery(
    State(s): State<AppState>,
    Extension(c): Extension<Caller>,
    ReqId(rid): ReqId,
    HwPath((_, id)): HwPath<(String, String)>,
) -> Result<Response, ApiError> {
    let (d, attempts) = s.store.get_delivery(&c.project, &id).await.map_err(err)?;
    Ok(axum::Json(json!({"request_id": rid, "delivery": d, "attempts": attempts})).into_response())
}
