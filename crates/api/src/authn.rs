//! Authentication: an ordered chain of schemes, each answering "not mine",
//! "authenticated" or "failed" (the omicron pattern). Token
//! (`X-Auth-Token`) first, then AK/SK (`Authorization: SDK-HMAC-SHA256`).
//! After that, authorization: the caller must hold the path's project.

use crate::error::ApiError;
use crate::json::read_body;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use domain::{ProjectId, UserId};

/// Who is calling, and for which project (the path's, once authorized).
#[derive(Debug, Clone)]
pub struct Caller {
    /// The user.
    pub user_id: UserId,
    /// The project of the path, which the caller holds.
    pub project: ProjectId,
    /// How the caller authenticated.
    pub scheme: &'static str,
}

enum Outcome {
    NotMine,
    Authenticated(Principal),
    Failed(ApiError),
}

enum Principal {
    /// A token is scoped to exactly one project.
    Token {
        user_id: UserId,
        project_id: ProjectId,
    },
    /// An AK/SK acts for its user in any project the user holds.
    AkSk { user_id: UserId },
}

/// The project id in a path like `/v5/{project_id}/...` or `/V1.0/{project_id}/...`.
pub fn path_project(path: &str) -> Option<&str> {
    let mut it = path.split('/').skip(1);
    let _version = it.next()?;
    it.next()
}

async fn token_scheme(state: &AppState, parts: &Parts) -> Outcome {
    let Some(v) = parts.headers.get("x-auth-token") else {
        return Outcome::NotMine;
    };
    let Ok(token) = v.to_str() else {
        return Outcome::Failed(ApiError::unauthenticated("malformed token"));
    };
    let token = token.trim();
    if !auth::token::is_well_formed(token) {
        return Outcome::Failed(ApiError::unauthenticated(
            "decrypt token fail (malformed token)",
        ));
    }
    let digest = auth::token::token_digest(token);
    match state.store.get_token(&digest).await {
        Err(e) => Outcome::Failed(ApiError::from(e)),
        Ok(None) => Outcome::Failed(ApiError::unauthenticated(
            "decrypt token fail (unknown token)",
        )),
        Ok(Some(t)) if t.revoked => {
            Outcome::Failed(ApiError::unauthenticated("token has been revoked"))
        }
        Ok(Some(t)) if state.now().timestamp_micros() >= t.expires_us => {
            Outcome::Failed(ApiError::unauthenticated(format!(
                "token expires, expires_at: {}",
                domain::time::wire_ms(domain::time::from_micros(t.expires_us))
            )))
        }
        Ok(Some(t)) => Outcome::Authenticated(Principal::Token {
            user_id: t.user_id,
            project_id: t.project_id,
        }),
    }
}

async fn aksk_scheme(state: &AppState, parts: &Parts, body: &[u8]) -> Outcome {
    let Some(v) = parts.headers.get(axum::http::header::AUTHORIZATION) else {
        return Outcome::NotMine;
    };
    let Ok(value) = std::str::from_utf8(v.as_bytes()) else {
        return Outcome::Failed(ApiError::unauthenticated(
            "verify aksk signature fail: malformed Authorization header",
        ));
    };
    if !value.trim_start().starts_with("SDK-") {
        return Outcome::Failed(ApiError::unauthenticated(
            "verify aksk signature fail: unsupported Authorization scheme (want SDK-HMAC-SHA256)",
        ));
    }
    let path = parts.uri.path();
    let query = parts.uri.query().unwrap_or("");
    let method = parts.method.as_str();
    let mut req = auth::SignedRequest::new(method, path, query, body);
    for (name, value) in &parts.headers {
        if let Ok(v) = std::str::from_utf8(value.as_bytes()) {
            req.push_header(name.as_str(), v);
        }
    }
    if parts.headers.get(axum::http::header::HOST).is_none()
        && let Some(a) = parts.uri.authority()
    {
        req.push_header("host", a.as_str());
    }
    let authz = match req.authorization() {
        Ok(a) => a,
        Err(e) => {
            return Outcome::Failed(ApiError::unauthenticated(format!(
                "verify aksk signature fail: {e}"
            )));
        }
    };
    let ak = authz.access_key().to_string();
    let guard = &state.login_guard;
    let now_us = state.now().timestamp_micros();
    if let Err(r) = guard.check_key(&ak, now_us) {
        return Outcome::Failed(ApiError::new(
            crate::error::Code::GatewayThrottled,
            format!(
                "The throttling threshold has been reached: too many failed signatures with this access key; retry in {} s",
                r.retry_after_secs(now_us)
            ),
        ));
    }
    let cred = match state.store.get_credential(&ak).await {
        Err(e) => return Outcome::Failed(ApiError::from(e)),
        Ok(None) => {
            guard.key_failed(&ak, now_us);
            return Outcome::Failed(ApiError::unauthenticated(
                "verify aksk signature fail: unknown access key",
            ));
        }
        Ok(Some(c)) if !c.enabled => {
            return Outcome::Failed(ApiError::unauthenticated(
                "verify aksk signature fail: access key is disabled",
            ));
        }
        Ok(Some(c)) => c,
    };
    let sk = match auth::credential::open_secret(&state.master_key, &ak, &cred.sealed_secret) {
        Ok(sk) => sk,
        Err(e) => {
            return Outcome::Failed(ApiError::internal(format!(
                "cannot open sealed secret of {ak}: {e}"
            )));
        }
    };
    match auth::verify(&req, sk.as_bytes(), state.now()) {
        Ok(()) => Outcome::Authenticated(Principal::AkSk {
            user_id: cred.user_id,
        }),
        Err(e) => {
            guard.key_failed(&ak, now_us);
            Outcome::Failed(ApiError::unauthenticated(format!(
                "verify aksk signature fail: {e}"
            )))
        }
    }
}

/// Middleware for project-scoped APIs: authenticates, then checks that the
/// caller holds the path's project, and puts a [`Caller`] in the request.
pub async fn authenticate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match authenticate_inner(&state, req).await {
        Ok(req) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

/// Runs the chain of schemes.
async fn principal(state: &AppState, parts: &Parts, body: &[u8]) -> Result<Principal, ApiError> {
    let mut outcome = token_scheme(state, parts).await;
    if matches!(outcome, Outcome::NotMine) {
        outcome = aksk_scheme(state, parts, body).await;
    }
    match outcome {
        Outcome::NotMine => Err(ApiError::unauthenticated(
            "x-auth-token not found (send X-Auth-Token or an SDK-HMAC-SHA256 signature)",
        )),
        Outcome::Failed(e) => Err(e),
        Outcome::Authenticated(p) => Ok(p),
    }
}

async fn authenticate_inner(state: &AppState, req: Request) -> Result<Request, ApiError> {
    let (mut parts, body) = read_body(req).await?;
    let principal = principal(state, &parts, &body).await?;
    let raw_project = path_project(parts.uri.path()).unwrap_or("").to_string();
    let project = ProjectId::parse(&raw_project);
    // A project named in X-Project-Id must be the path's, whatever the
    // scheme (the SDKs send it with AK/SK; a token client may too).
    if let Some(h) = parts.headers.get("x-project-id") {
        let h = h.to_str().unwrap_or("");
        if h != raw_project {
            return Err(ApiError::forbidden(
                "X-Project-Id does not match the project of the path",
            ));
        }
    }
    let (user_id, scheme) = match principal {
        Principal::Token {
            user_id,
            project_id,
        } => {
            if project.as_ref() != Some(&project_id) {
                return Err(ApiError::forbidden(format!(
                    "the token is scoped to project {project_id}, not to {raw_project}"
                )));
            }
            (user_id, "token")
        }
        Principal::AkSk { user_id } => {
            let holds = match &project {
                Some(p) => state
                    .store
                    .user_projects(&user_id)
                    .await?
                    .iter()
                    .any(|x| x.id == *p),
                None => false,
            };
            if !holds {
                return Err(ApiError::forbidden(format!(
                    "the credential's user has no role in project {raw_project}"
                )));
            }
            (user_id, "aksk")
        }
    };
    let project =
        project.ok_or_else(|| ApiError::forbidden(format!("no project {raw_project}")))?;
    parts.extensions.insert(Caller {
        user_id,
        project,
        scheme,
    });
    Ok(Request::from_parts(parts, Body::from(body)))
}

/// The domain of the bootstrap admin (created on first start).
pub const BOOTSTRAP_DOMAIN: &str = "vpnmon";
/// The bootstrap admin's user name.
pub const BOOTSTRAP_ADMIN: &str = "admin";

/// An operator of the whole installation, not of one project: vpnmon has
/// no admin role, so this is the bootstrap admin (user `admin` of domain
/// `vpnmon`), by token (of any project it holds) or AK/SK.
#[derive(Debug, Clone)]
pub struct AdminCaller {
    /// The user.
    pub user_id: domain::UserId,
    /// How the caller authenticated.
    pub scheme: &'static str,
}

/// Middleware for installation-wide routes (`/vpnmon/nodes`): the same
/// chain of schemes, then the caller must be the bootstrap admin. An AK/SK
/// request's `X-Project-Id`, when sent, must name a project the user holds.
pub async fn authenticate_admin(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    match authenticate_admin_inner(&state, req).await {
        Ok(req) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

async fn authenticate_admin_inner(state: &AppState, req: Request) -> Result<Request, ApiError> {
    let (mut parts, body) = read_body(req).await?;
    let (user_id, scheme) = match principal(state, &parts, &body).await? {
        Principal::Token { user_id, .. } => (user_id, "token"),
        Principal::AkSk { user_id } => {
            if let Some(h) = parts.headers.get("x-project-id") {
                let h = h.to_str().unwrap_or("");
                let holds = state
                    .store
                    .user_projects(&user_id)
                    .await?
                    .iter()
                    .any(|p| p.id == h);
                if !holds {
                    return Err(ApiError::forbidden(format!(
                        "the credential's user has no role in project {h}"
                    )));
                }
            }
            (user_id, "aksk")
        }
    };
    let admin = match state.store.find_domain(BOOTSTRAP_DOMAIN).await? {
        Some(d) => state.store.find_user(&d.id, BOOTSTRAP_ADMIN).await?,
        None => None,
    };
    if admin.is_none_or(|a| a.id != user_id) {
        return Err(ApiError::forbidden(format!(
            "only the bootstrap admin ({BOOTSTRAP_ADMIN} of domain {BOOTSTRAP_DOMAIN}) may use this API"
        )));
    }
    parts.extensions.insert(AdminCaller { user_id, scheme });
    Ok(Request::from_parts(parts, Body::from(body)))
}
