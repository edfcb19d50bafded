//! The one place where failures become the Huawei error body
//! `{"error_code", "error_msg", "request_id"}`: the table of every code
//! vpnmon answers with ([`Code`]), and the table from domain errors to
//! those codes per API family ([`ApiError::from_domain`]), in the spirit of
//! Garage's `aws_code()`.
//!
//! Handlers return [`ApiError`]; its response carries the code and message
//! as an extension with an empty body, and the request-context middleware
//! renders the body, because only it knows the request id. The same
//! middleware turns axum's own 404/405 into Huawei bodies.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::DomainError;

/// Every error code vpnmon answers with, and its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// `VPN.0001` 400: an invalid request; the message names the field.
    VpnInvalid,
    /// `VPN.0002` 500: an internal failure (details in the log only).
    VpnInternal,
    /// `VPN.0003` 403: authenticated, but not allowed here.
    VpnForbidden,
    /// `VPN.0004` 404: no such resource in this project.
    VpnNotFound,
    /// `VPN.0013` 400: an attribute the API does not know.
    VpnUnsupportedAttribute,
    /// `VPN.0381` 400: the connection already has a monitor.
    VpnMonitorExists,
    /// `APIGW.0101` 404: no such route.
    GatewayNoSuchApi,
    /// `APIGW.0101` 405: the route exists, the method does not.
    GatewayMethodNotAllowed,
    /// `APIGW.0201` 413: the request body is too large.
    GatewayBodyTooLarge,
    /// `APIGW.0201` 400: a request that is not valid HTTP, or a path that
    /// is not valid UTF-8 when percent-decoded.
    GatewayBadRequest,
    /// `APIGW.0201` 408: the request (its body) did not arrive in time.
    GatewayRequestTimeout,
    /// `APIGW.0201` 414: the request URI is too long.
    GatewayUriTooLong,
    /// `APIGW.0201` 431: too many or too large request headers.
    GatewayHeadersTooLarge,
    /// `APIGW.0308` 429: a throttling limit was reached.
    GatewayThrottled,
    /// `APIGW.0301` 401: authentication failed.
    GatewayUnauthenticated,
    /// 401 from IAM's token API (a wrong user name or password, a locked
    /// account), in Keystone's body: `{"error": {"code": 401, "message",
    /// "title": "Unauthorized"}}` (no code string; `IAM.401` in logs).
    IamUnauthorized,
    /// `ces.0014` 400: an invalid Cloud Eye request.
    CesInvalid,
    /// `ces.0016` 404: no such alarm rule in this project.
    CesNotFound,
    /// `SMN.0002` 400: a topic name that is not valid.
    SmnNameInvalid,
    /// `SMN.0003` 400: a topic display name that is not valid.
    SmnDisplayNameInvalid,
    /// `SMN.0005` 400: a topic URN that is not one.
    SmnTopicUrnInvalid,
    /// `SMN.0011` 400: a protocol other than http and https.
    SmnProtocolInvalid,
    /// `SMN.0012` 400: an endpoint that is not a URL of the protocol, or
    /// that is private without `--notify-allow`.
    SmnEndpointInvalid,
    /// `SMN.0014` 400: a subscription URN that is not one.
    SmnSubscriptionUrnInvalid,
    /// `SMN.0015` 400: `offset` or `limit` out of range.
    SmnPageInvalid,
    /// `SMN.0017` 400: a remark that is too long.
    SmnRemarkInvalid,
    /// `SMN.0001` 400: any other invalid SMN request (vpnmon's own code:
    /// Huawei's list has one code per field, and none for the rest).
    SmnInvalid,
    /// `SMN.0006` 404: no such topic in this project.
    SmnTopicNotFound,
    /// 404: a signing certificate file that is not this installation's.
    SmnCertificateNotFound,
    /// `SMN.0013` 404: no such subscription in this project.
    SmnSubscriptionNotFound,
}

impl Code {
    /// Every code, for documentation and tests.
    pub const ALL: [Code; 30] = [
        Code::VpnInvalid,
        Code::VpnInternal,
        Code::VpnForbidden,
        Code::VpnNotFound,
        Code::VpnUnsupportedAttribute,
        Code::VpnMonitorExists,
        Code::GatewayNoSuchApi,
        Code::GatewayMethodNotAllowed,
        Code::GatewayBodyTooLarge,
        Code::GatewayBadRequest,
        Code::GatewayRequestTimeout,
        Code::GatewayUriTooLong,
        Code::GatewayHeadersTooLarge,
        Code::GatewayThrottled,
        Code::GatewayUnauthenticated,
        Code::IamUnauthorized,
        Code::CesInvalid,
        Code::CesNotFound,
        Code::SmnNameInvalid,
        Code::SmnDisplayNameInvalid,
        Code::SmnTopicUrnInvalid,
        Code::SmnProtocolInvalid,
        Code::SmnEndpointInvalid,
        Code::SmnSubscriptionUrnInvalid,
        Code::SmnPageInvalid,
        Code::SmnRemarkInvalid,
        Code::SmnInvalid,
        Code::SmnTopicNotFound,
        Code::SmnCertificateNotFound,
        Code::SmnSubscriptionNotFound,
    ];

    /// The code as the wire shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::VpnInvalid => "VPN.0001",
            Code::VpnInternal => "VPN.0002",
            Code::VpnForbidden => "VPN.0003",
            Code::VpnNotFound => "VPN.0004",
            Code::VpnUnsupportedAttribute => "VPN.0013",
            Code::VpnMonitorExists => "VPN.0381",
            Code::GatewayNoSuchApi | Code::GatewayMethodNotAllowed => "APIGW.0101",
            Code::GatewayBodyTooLarge
            | Code::GatewayBadRequest
            | Code::GatewayRequestTimeout
            | Code::GatewayUriTooLong
            | Code::GatewayHeadersTooLarge => "APIGW.0201",
            Code::GatewayThrottled => "APIGW.0308",
            Code::GatewayUnauthenticated => "APIGW.0301",
            Code::IamUnauthorized => "IAM.401",
            Code::CesInvalid => "ces.0014",
            Code::CesNotFound => "ces.0016",
            Code::SmnNameInvalid => "SMN.0002",
            Code::SmnDisplayNameInvalid => "SMN.0003",
            Code::SmnTopicUrnInvalid => "SMN.0005",
            Code::SmnProtocolInvalid => "SMN.0011",
            Code::SmnEndpointInvalid => "SMN.0012",
            Code::SmnSubscriptionUrnInvalid => "SMN.0014",
            Code::SmnPageInvalid => "SMN.0015",
            Code::SmnRemarkInvalid => "SMN.0017",
            Code::SmnInvalid => "SMN.0001",
            Code::SmnTopicNotFound => "SMN.0006",
            Code::SmnCertificateNotFound => "SMN.0099",
            Code::SmnSubscriptionNotFound => "SMN.0013",
        }
    }

    /// The keys of the error body: SMN answers `{"request_id", "code",
    /// "message"}`, IAM's token API `{"error": {"code", "message",
    /// "title"}}` ([`Code::is_keystone`]), every other family
    /// `{"error_code", "error_msg", "request_id"}`.
    pub fn body_keys(self) -> (&'static str, &'static str) {
        if self == Code::IamUnauthorized {
            return ("code", "message");
        }
        if self.as_str().starts_with("SMN.") {
            ("code", "message")
        } else {
            ("error_code", "error_msg")
        }
    }

    /// Whether the body is Keystone's nested `{"error": {...}}`.
    pub fn is_keystone(self) -> bool {
        self == Code::IamUnauthorized
    }

    /// The HTTP status that goes with the code.
    pub fn status(self) -> StatusCode {
        match self {
            Code::VpnInvalid
            | Code::VpnUnsupportedAttribute
            | Code::VpnMonitorExists
            | Code::GatewayBadRequest
            | Code::CesInvalid
            | Code::SmnNameInvalid
            | Code::SmnDisplayNameInvalid
            | Code::SmnTopicUrnInvalid
            | Code::SmnProtocolInvalid
            | Code::SmnEndpointInvalid
            | Code::SmnSubscriptionUrnInvalid
            | Code::SmnPageInvalid
            | Code::SmnRemarkInvalid
            | Code::SmnInvalid => StatusCode::BAD_REQUEST,
            Code::VpnInternal => StatusCode::INTERNAL_SERVER_ERROR,
            Code::VpnForbidden => StatusCode::FORBIDDEN,
            Code::VpnNotFound
            | Code::GatewayNoSuchApi
            | Code::CesNotFound
            | Code::SmnTopicNotFound
            | Code::SmnCertificateNotFound
            | Code::SmnSubscriptionNotFound => StatusCode::NOT_FOUND,
            Code::GatewayMethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Code::GatewayUnauthenticated | Code::IamUnauthorized => StatusCode::UNAUTHORIZED,
            Code::GatewayBodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Code::GatewayRequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Code::GatewayUriTooLong => StatusCode::URI_TOO_LONG,
            Code::GatewayHeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Code::GatewayThrottled => StatusCode::TOO_MANY_REQUESTS,
        }
    }
}

/// The API family a route belongs to: each answers domain errors in its
/// own codes and words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// VPN v5 (and vpnmon's own routes, which follow it).
    Vpn,
    /// Cloud Eye (`/V1.0/...`).
    Ces,
    /// IAM (`/v3/auth/...`).
    Iam,
    /// SMN (`/v2/{project_id}/notifications/...`).
    Smn,
}

/// An error as the client will see it, plus an optional internal detail
/// that goes to the log only.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Huawei error code.
    pub code: Code,
    /// Client-visible message.
    pub msg: String,
    /// Log-only detail (never sent).
    pub internal: Option<String>,
}

/// The code and message of an error response, for the middleware to render.
#[derive(Debug, Clone)]
pub struct HwError {
    pub code: &'static str,
    pub msg: String,
    /// The body's keys for the code and the message ([`Code::body_keys`]).
    pub keys: (&'static str, &'static str),
    /// Keystone's nested body ([`Code::is_keystone`]).
    pub keystone: bool,
}

impl ApiError {
    /// A new error with the code's status.
    pub fn new(code: Code, msg: impl Into<String>) -> Self {
        ApiError {
            status: code.status(),
            code,
            msg: msg.into(),
            internal: None,
        }
    }
    /// 400 `VPN.0001 invalid request: ...`.
    pub fn invalid(msg: impl std::fmt::Display) -> Self {
        Self::new(Code::VpnInvalid, format!("invalid request: {msg}"))
    }
    /// 404 `VPN.0004 resource not found`.
    pub fn not_found() -> Self {
        Self::new(Code::VpnNotFound, "resource not found")
    }
    /// 401 `APIGW.0301` with the reason.
    pub fn unauthenticated(reason: impl std::fmt::Display) -> Self {
        Self::new(
            Code::GatewayUnauthenticated,
            format!("Incorrect IAM authentication information: {reason}"),
        )
    }
    /// 403 `VPN.0003`.
    pub fn forbidden(reason: impl std::fmt::Display) -> Self {
        Self::new(
            Code::VpnForbidden,
            format!("Authentication failed: {reason}"),
        )
    }
    /// 500 `VPN.0002`; the detail is logged, never sent.
    pub fn internal(detail: impl Into<String>) -> Self {
        ApiError {
            internal: Some(detail.into()),
            ..Self::new(
                Code::VpnInternal,
                "server error: internal error, see the server log with this request id",
            )
        }
    }
    /// 404 `SMN.0013`: a subscription that is not the caller's.
    pub fn smn_subscription_not_found() -> Self {
        Self::new(Code::SmnSubscriptionNotFound, "Subscription not found.")
    }
    /// 400 `ces.0014 Some content in message body is incorrect, ...`.
    pub fn ces_invalid(msg: impl std::fmt::Display) -> Self {
        Self::new(
            Code::CesInvalid,
            format!("Some content in message body is incorrect, {msg}"),
        )
    }

    /// An invalid SMN request: the code of the field the message names.
    fn smn_invalid(msg: String) -> Self {
        let field = msg.split(':').next().unwrap_or("");
        let code = match field {
            "name" => Code::SmnNameInvalid,
            "display_name" => Code::SmnDisplayNameInvalid,
            "topic_urn" => Code::SmnTopicUrnInvalid,
            "protocol" => Code::SmnProtocolInvalid,
            "endpoint" => Code::SmnEndpointInvalid,
            "subscription_urn" => Code::SmnSubscriptionUrnInvalid,
            "offset" | "limit" => Code::SmnPageInvalid,
            "remark" => Code::SmnRemarkInvalid,
            _ => Code::SmnInvalid,
        };
        Self::new(code, format!("Parameter {msg}"))
    }

    /// The table: a domain error as `family` answers it.
    pub fn from_domain(e: DomainError, family: Family) -> Self {
        match (e, family) {
            (DomainError::Invalid(m), Family::Smn) => ApiError::smn_invalid(m),
            (DomainError::UnsupportedAttribute(a), Family::Smn) => {
                Self::new(Code::SmnInvalid, format!("Unsupported attribute: {a}"))
            }
            (DomainError::NotFound, Family::Smn) => {
                Self::new(Code::SmnTopicNotFound, "Topic not found.")
            }
            (DomainError::QuotaExceeded(m), Family::Smn) => {
                Self::new(Code::SmnInvalid, format!("quota exceeded: {m}"))
            }
            (DomainError::Invalid(m), Family::Ces) => ApiError::ces_invalid(m),
            (DomainError::Invalid(m), _) => ApiError::invalid(m),
            (DomainError::UnsupportedAttribute(a), _) => Self::new(
                Code::VpnUnsupportedAttribute,
                format!("Unsupported attribute: {a}"),
            ),
            (DomainError::NotFound, Family::Ces) => {
                Self::new(Code::CesNotFound, "The alarm rule does not exist")
            }
            (DomainError::NotFound, _) => ApiError::not_found(),
            (DomainError::MonitorExists(c), _) => Self::new(
                Code::VpnMonitorExists,
                format!("VPN connection {c} already has connection monitor"),
            ),
            (DomainError::QuotaExceeded(m), _) => ApiError::invalid(format!("quota exceeded: {m}")),
            (DomainError::BodyTooLarge(limit), _) => Self::new(
                Code::GatewayBodyTooLarge,
                format!("Request entity too large: at most {limit} bytes are accepted"),
            ),
            (DomainError::BodyIncomplete, _) => Self::new(
                Code::GatewayRequestTimeout,
                "Request timeout: the request body did not arrive in time",
            ),
            (DomainError::Internal(m), _) => ApiError::internal(m),
        }
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        ApiError::from_domain(e, Family::Vpn)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Some(detail) = &self.internal {
            tracing::error!(code = self.code.as_str(), detail = %detail, "request failed");
        }
        let mut r = self.status.into_response();
        r.extensions_mut().insert(HwError {
            code: self.code.as_str(),
            msg: self.msg,
            keys: self.code.body_keys(),
            keystone: self.code.is_keystone(),
        });
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// One example of every domain error.
    fn every_domain_error() -> Vec<DomainError> {
        vec![
            DomainError::Invalid("x is required".into()),
            DomainError::UnsupportedAttribute("x".into()),
            DomainError::NotFound,
            DomainError::MonitorExists(domain::ConnectionId::random()),
            DomainError::QuotaExceeded("q".into()),
            DomainError::BodyTooLarge(1),
            DomainError::BodyIncomplete,
            DomainError::Internal("disk".into()),
        ]
    }

    #[test]
    fn every_code_has_a_status_and_a_wire_form() {
        let wire: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
        for c in Code::ALL {
            assert!(
                c.as_str().starts_with("VPN.")
                    || c.as_str().starts_with("SMN.")
                    || c.as_str().starts_with("APIGW.")
                    || c.as_str().starts_with("IAM.")
                    || c.as_str().starts_with("ces."),
                "{c:?}"
            );
            assert!(c.status().is_client_error() || c.status().is_server_error());
        }
        // As API Gateway does, APIGW.0101 is shared by 404 and 405, and
        // APIGW.0201 by every malformed request (400, 408, 413, 414, 431),
        // each with its own status; nothing else is shared.
        let mut seen = HashMap::new();
        for c in Code::ALL {
            seen.entry(c.as_str())
                .or_insert_with(Vec::new)
                .push(c.status());
        }
        assert_eq!(seen["APIGW.0101"].len(), 2);
        assert_eq!(seen["APIGW.0201"].len(), 5);
        for (k, statuses) in &seen {
            let distinct: std::collections::HashSet<_> = statuses.iter().collect();
            assert_eq!(distinct.len(), statuses.len(), "{k} shares a status");
            if *k != "APIGW.0101" && *k != "APIGW.0201" {
                assert_eq!(statuses.len(), 1, "{k}");
            }
        }
        assert_eq!(wire.len(), Code::ALL.len());
    }

    #[test]
    fn each_domain_code_maps_from_exactly_one_domain_error() {
        // Per family: which domain errors give each code.
        for family in [Family::Vpn, Family::Ces, Family::Iam, Family::Smn] {
            let mut by_code: HashMap<Code, Vec<String>> = HashMap::new();
            for e in every_domain_error() {
                let what = format!("{e:?}");
                let api = ApiError::from_domain(e, family);
                assert_eq!(api.status, api.code.status());
                by_code.entry(api.code).or_default().push(what);
            }
            for (code, from) in &by_code {
                // QuotaExceeded is reported as an invalid request, as the
                // reference service does; nothing else shares a code.
                let allowed = match code {
                    // SMN has no code for an unknown attribute or a quota.
                    Code::SmnInvalid => 3,
                    Code::VpnInvalid if family != Family::Ces => 2,
                    Code::VpnInvalid => 1,
                    _ => 1,
                };
                assert_eq!(from.len(), allowed, "{family:?} {code:?} <- {from:?}");
            }
        }
    }

    #[test]
    fn ces_answers_invalid_requests_in_its_own_code_and_words() {
        let e = ApiError::from_domain(DomainError::invalid("period: must be 1"), Family::Ces);
        assert_eq!(e.code.as_str(), "ces.0014");
        assert_eq!(
            e.msg,
            "Some content in message body is incorrect, period: must be 1"
        );
        let v = ApiError::from_domain(DomainError::invalid("period: must be 1"), Family::Vpn);
        assert_eq!(v.code.as_str(), "VPN.0001");
        assert_eq!(v.msg, "invalid request: period: must be 1");
    }

    #[test]
    fn ces_answers_not_found_in_its_own_code() {
        let e = ApiError::from_domain(DomainError::NotFound, Family::Ces);
        assert_eq!((e.status.as_u16(), e.code.as_str()), (404, "ces.0016"));
        let v = ApiError::from_domain(DomainError::NotFound, Family::Vpn);
        assert_eq!(v.code.as_str(), "VPN.0004");
    }

    #[test]
    fn smn_answers_in_the_code_of_the_field_and_its_own_body_keys() {
        let e = ApiError::from_domain(DomainError::invalid("name: \"a b\" must be"), Family::Smn);
        assert_eq!(
            (e.code.as_str(), e.msg.as_str()),
            ("SMN.0002", "Parameter name: \"a b\" must be")
        );
        let e = ApiError::from_domain(DomainError::invalid("display_name: too long"), Family::Smn);
        assert_eq!(e.code.as_str(), "SMN.0003");
        let e = ApiError::from_domain(DomainError::invalid("limit: 0"), Family::Smn);
        assert_eq!(e.code.as_str(), "SMN.0015");
        let e = ApiError::from_domain(DomainError::invalid("x: y"), Family::Smn);
        assert_eq!(e.code.as_str(), "SMN.0001");
        let e = ApiError::from_domain(DomainError::NotFound, Family::Smn);
        assert_eq!((e.status.as_u16(), e.code.as_str()), (404, "SMN.0006"));
        assert_eq!(e.code.body_keys(), ("code", "message"));
        assert_eq!(Code::CesInvalid.body_keys(), ("error_code", "error_msg"));
    }

    #[test]
    fn internal_detail_is_never_the_message() {
        let e = ApiError::from_domain(DomainError::Internal("SQL: disk I/O".into()), Family::Vpn);
        assert_eq!(e.code.as_str(), "VPN.0002");
        assert!(!e.msg.contains("SQL"));
        assert_eq!(e.internal.as_deref(), Some("SQL: disk I/O"));
    }
}
