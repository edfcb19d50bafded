//! Request bodies and query strings, parsed so that every failure is a 400
//! in the API's own format whose message names the field.

use crate::error::{ApiError, Code, Family};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use domain::DomainError;
use serde::de::DeserializeOwned;

/// Largest accepted request body.
pub const MAX_BODY: usize = 1024 * 1024;

/// A JSON body: `Content-Type: application/json`, at most [`MAX_BODY`],
/// parsed strictly (unknown fields are errors) with the failing field's
/// path in the message.
pub struct HwJson<T>(pub T);

/// The raw bytes of a request body, read with the size limit (signature
/// verification needs them before parsing).
pub async fn read_body(
    req: Request,
) -> Result<(axum::http::request::Parts, bytes::Bytes), DomainError> {
    let (parts, body) = req.into_parts();
    match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => Ok((parts, b)),
        Err(e) if is_length_limit(&e) => Err(DomainError::BodyTooLarge(MAX_BODY)),
        // The body-read timeout of the server (`server::Limits`), or a
        // client that went away mid-body.
        Err(_) => Err(DomainError::BodyIncomplete),
    }
}

/// Whether a body error is the length limit (somewhere in its chain).
fn is_length_limit(e: &axum::Error) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cur = err.source();
    }
    false
}

/// Parses JSON bytes into `T`, naming the field in errors.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DomainError> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        None => return Err(DomainError::invalid("request body is required")),
        Some(b'{') => {}
        Some(_) if serde_json::from_slice::<serde_json::Value>(bytes).is_err() => {
            return Err(DomainError::invalid(
                "malformed JSON: the request body is not valid JSON",
            ));
        }
        Some(_) => {
            return Err(DomainError::invalid(
                "request body: invalid type, expected a JSON object",
            ));
        }
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let msg = inner.to_string();
        // serde_json says: unknown field `x`, expected one of ...
        if let Some(rest) = msg.strip_prefix("unknown field `")
            && let Some(field) = rest.split('`').next()
        {
            let full = if path == "." || path.is_empty() {
                field.to_string()
            } else {
                // the path already ends in the unknown field
                path.clone()
            };
            let _ = field;
            return DomainError::UnsupportedAttribute(full);
        }
        if inner.is_syntax() || inner.is_eof() {
            return DomainError::invalid(format!("malformed JSON: {}", strip_position(&msg)));
        }
        let msg = strip_position(&msg);
        let at = |field: &str| {
            if path == "." || path.is_empty() {
                field.to_string()
            } else {
                format!("{path}.{field}")
            }
        };
        if let Some(rest) = msg.strip_prefix("missing field `")
            && let Some(field) = rest.split('`').next()
        {
            return DomainError::invalid(format!("{} is required", at(field)));
        }
        let msg = hide_type_names(&msg);
        if path == "." || path.is_empty() {
            DomainError::invalid(format!("request body: {msg}"))
        } else {
            DomainError::invalid(format!("{path}: {msg}"))
        }
    })?;
    // One document and nothing after it but whitespace: a second document
    // or trailing bytes would otherwise be accepted unread.
    de.end().map_err(|_| {
        DomainError::invalid("malformed JSON: unexpected data after the JSON object")
    })?;
    Ok(value)
}

/// serde names Rust types ("expected struct CreateCgw"); say "an object".
fn hide_type_names(msg: &str) -> String {
    match msg.find("expected struct ") {
        Some(i) => {
            let rest = &msg[i + "expected struct ".len()..];
            let end = rest
                .find(|c: char| !c.is_alphanumeric() && c != '_')
                .unwrap_or(rest.len());
            format!("{}expected an object{}", &msg[..i], &rest[end..])
        }
        None => msg.to_string(),
    }
}

fn strip_position(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// Checks that the content type is JSON.
pub fn check_json_content_type(headers: &axum::http::HeaderMap) -> Result<(), DomainError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mime == "application/json" {
        Ok(())
    } else if ct.is_empty() {
        Err(DomainError::invalid(
            "Content-Type must be application/json (header missing)",
        ))
    } else {
        Err(DomainError::invalid(format!(
            "Content-Type must be application/json, got {ct:?}"
        )))
    }
}

/// Why a body was refused: a domain error that the route's API family
/// answers in its own codes ([`ApiError::from_domain`]); VPN's by default.
#[derive(Debug)]
pub struct BodyRejection(pub DomainError);

impl BodyRejection {
    /// The error as `family` answers it.
    pub fn in_family(self, family: Family) -> ApiError {
        ApiError::from_domain(self.0, family)
    }
}

impl From<DomainError> for BodyRejection {
    fn from(e: DomainError) -> Self {
        BodyRejection(e)
    }
}

impl IntoResponse for BodyRejection {
    fn into_response(self) -> Response {
        self.in_family(Family::Vpn).into_response()
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for HwJson<T> {
    type Rejection = BodyRejection;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        check_json_content_type(req.headers())?;
        let (_, bytes) = read_body(req).await?;
        Ok(HwJson(parse_json(&bytes)?))
    }
}

/// Query parameters in order, repeated keys kept.
#[derive(Debug, Default, Clone)]
pub struct QueryParams(pub Vec<(String, String)>);

impl QueryParams {
    /// Parses a raw query string.
    pub fn parse(raw: Option<&str>) -> Self {
        QueryParams(
            form_urlencoded::parse(raw.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }
    /// The last value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
    /// Every value of `key`.
    pub fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }
    /// An integer parameter within `[lo, hi]`.
    pub fn int(&self, key: &str, lo: i64, hi: i64) -> Result<Option<i64>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.parse::<i64>() {
                Ok(n) if (lo..=hi).contains(&n) => Ok(Some(n)),
                _ => Err(ApiError::invalid(format!(
                    "{key} must be an integer between {lo} and {hi}, got {v:?}"
                ))),
            },
        }
    }
    /// A UUID parameter.
    pub fn uuid<T: domain::ResourceId>(&self, key: &str) -> Result<Option<T>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => T::parse(v)
                .map(Some)
                .ok_or_else(|| ApiError::invalid(format!("{key} is not a valid UUID: {v:?}"))),
        }
    }
    /// The pagination parameters (`limit` in `[0, max]`, `marker`).
    pub fn page(&self, max: i64) -> Result<store::Page, ApiError> {
        let limit = self.int("limit", 0, max)?;
        let marker_us = match self.get("marker") {
            None => None,
            Some(m) => Some(domain::time::parse_marker(m).ok_or_else(|| {
                ApiError::invalid(format!("marker is not a valid created_at timestamp: {m:?}"))
            })?),
        };
        Ok(store::Page { limit, marker_us })
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for QueryParams {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(QueryParams::parse(parts.uri.query()))
    }
}

/// Path parameters, refused in the service's format: a path whose
/// percent-decoded bytes are not UTF-8 (`/vpn-gateways/%ff%fe`) answers
/// `400 APIGW.0201` with a request id, not axum's plain text.
#[derive(Debug)]
pub struct HwPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for HwPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(HwPath(v)),
            Err(_) => Err(ApiError::new(
                Code::GatewayBadRequest,
                "API request error: the request path is not valid (a percent-encoded segment is not UTF-8)",
            )),
        }
    }
}
