//! IAM: `POST /v3/auth/tokens` (password method, project scope) and
//! `DELETE /v3/auth/tokens` (revoke).

use crate::error::{ApiError, Code, Family};
use crate::json::{QueryParams, check_json_content_type, parse_json, read_body};
use crate::login_guard::Refused;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::{DomainId, ProjectId, UserId};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenBody {
    auth: AuthBody,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthBody {
    identity: Identity,
    scope: Option<Scope>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Identity {
    methods: Vec<String>,
    password: Option<PasswordIdentity>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordIdentity {
    user: UserIdent,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserIdent {
    id: Option<String>,
    name: Option<String>,
    password: String,
    domain: Option<NameOrId>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NameOrId {
    id: Option<String>,
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Scope {
    project: Option<ProjectRef>,
    domain: Option<NameOrId>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectRef {
    id: Option<String>,
    name: Option<String>,
    domain: Option<NameOrId>,
}

/// IAM's answer to a wrong user name, domain or password (the same for
/// each, so it tells nothing about which exist).
fn bad_credentials() -> ApiError {
    ApiError::new(Code::IamUnauthorized, "The username or password is wrong.")
}

/// IAM's answer while a user name is locked after failed logins.
fn locked() -> ApiError {
    ApiError::new(Code::IamUnauthorized, "The account is locked.")
}

/// The answer to a login refused by the login protection, with
/// `Retry-After`.
fn refused(r: Refused, now_us: i64) -> Response {
    let secs = r.retry_after_secs(now_us);
    let mut resp = match r {
        Refused::UserLocked { .. } => locked().into_response(),
        _ => ApiError::new(
            Code::GatewayThrottled,
            format!(
                "The throttling threshold has been reached: too many failed logins from this address; retry in {secs} s"
            ),
        )
        .into_response(),
    };
    resp.headers_mut()
        .insert(axum::http::header::RETRY_AFTER, HeaderValue::from(secs));
    resp
}

/// Password checks are the costliest work a request can ask for (argon2,
/// tens of milliseconds of CPU): at most this many run at once, on the
/// blocking pool, so that logins can't take the async workers or every core.
static PASSWORD_CHECKS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// Checks `password` against `phc`; without a hash (no such user), against
/// a dummy hash of the same cost, and fails. Once its turn comes, `still_ok`
/// is asked again (a lock may have been set while it waited).
async fn check_password(
    password: String,
    phc: Option<String>,
    still_ok: impl FnOnce() -> Result<(), Refused>,
) -> Result<bool, Refused> {
    let Ok(_permit) = PASSWORD_CHECKS.acquire().await else {
        return Ok(false);
    };
    still_ok()?;
    Ok(tokio::task::spawn_blocking(move || match phc {
        Some(h) => auth::password::verify_password(&password, &h),
        None => {
            let _ = auth::password::verify_password(&password, dummy_hash());
            false
        }
    })
    .await
    .unwrap_or(false))
}

/// A hash of a password nobody has, made once, with the same parameters as
/// users' hashes.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        auth::password::hash_password("no user has this password").unwrap_or_default()
    })
}

/// `POST /v3/auth/tokens`.
pub async fn issue_token(
    State(state): State<AppState>,
    q: QueryParams,
    req: Request,
) -> Result<Response, ApiError> {
    let iam = |e| ApiError::from_domain(e, Family::Iam);
    check_json_content_type(req.headers()).map_err(iam)?;
    let host = req
        .headers()
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_string();
    let addr = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let (_, bytes) = read_body(req).await.map_err(iam)?;
    let body: TokenBody = parse_json(&bytes).map_err(iam)?;
    let auth = body.auth;
    if !auth.identity.methods.iter().any(|m| m == "password") {
        return Err(ApiError::invalid(
            "auth.identity.methods must contain \"password\" (the only method vpnmon supports)",
        ));
    }
    let pw = auth
        .identity
        .password
        .ok_or_else(|| ApiError::invalid("auth.identity.password is required"))?;
    let store = &state.store;

    // Who: by user id, or by name within a domain.
    let user = if let Some(id) = &pw.user.id {
        match UserId::parse(id) {
            Some(id) => store.get_user(&id).await?,
            None => None,
        }
    } else {
        let name = pw
            .user
            .name
            .as_deref()
            .ok_or_else(|| ApiError::invalid("auth.identity.password.user needs id or name"))?;
        let dom = pw.user.domain.as_ref().ok_or_else(|| {
            ApiError::invalid("auth.identity.password.user.domain is required with a user name")
        })?;
        let domain = match (&dom.id, &dom.name) {
            (Some(id), _) => match DomainId::parse(id) {
                Some(id) => store.get_domain(&id).await?,
                None => None,
            },
            (None, Some(n)) => store.find_domain(n).await?,
            _ => {
                return Err(ApiError::invalid(
                    "auth.identity.password.user.domain needs id or name",
                ));
            }
        };
        match domain {
            Some(d) => store.find_user(&d.id, name).await?,
            None => None,
        }
    };
    // Login protection, keyed by the user id for a known user and by what
    // the client sent for an unknown one: both are locked alike.
    let key = match &user {
        Some(u) => format!("id:{}", u.id),
        None => format!(
            "name:{}/{}/{}",
            pw.user
                .domain
                .as_ref()
                .and_then(|d| d.id.as_deref().or(d.name.as_deref()))
                .unwrap_or(""),
            pw.user.id.as_deref().unwrap_or(""),
            pw.user.name.as_deref().unwrap_or("")
        ),
    };
    let stored = match &user {
        Some(u) => store.get_login_lock(&u.id).await?,
        None => None,
    };
    let known = user.is_some();
    let guard = state.login_guard.clone();
    let now_us = state.now().timestamp_micros();
    if let Err(r) = guard.check_login(&key, known, stored, addr, now_us) {
        return Ok(refused(r, now_us));
    }
    // An unknown user costs the same hash check as a known one, so the
    // answer's timing does not tell which users exist.
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    let checked = check_password(pw.user.password.clone(), hash, || {
        guard.check_login(&key, known, stored, addr, state.now().timestamp_micros())
    })
    .await;
    let now_us = state.now().timestamp_micros();
    match checked {
        Err(r) => return Ok(refused(r, now_us)),
        Ok(false) => {
            let entry = guard.login_failed(&key, known, stored, addr, now_us);
            if let Some(u) = &user {
                // In the background: the answer's timing must not tell
                // that this user exists.
                let (store, id) = (state.store.clone(), u.id.clone());
                tokio::spawn(async move {
                    if let Err(e) = store.put_login_lock(&id, &entry.into()).await {
                        tracing::warn!(error = %e, "cannot record a failed login");
                    }
                });
            }
            return Err(bad_credentials());
        }
        Ok(true) => {}
    }
    let Some(user) = user else {
        return Err(bad_credentials());
    };
    guard.login_succeeded(&key, now_us);
    if stored.is_some() {
        store.clear_login_lock(&user.id).await?;
    }

    // Scope: one project, by id or name.
    let scope = auth.scope.ok_or_else(|| {
        ApiError::invalid("auth.scope.project is required: vpnmon issues project-scoped tokens")
    })?;
    if scope.domain.is_some() && scope.project.is_none() {
        return Err(ApiError::invalid(
            "auth.scope.domain: vpnmon issues project-scoped tokens only; use auth.scope.project",
        ));
    }
    let pref = scope
        .project
        .ok_or_else(|| ApiError::invalid("auth.scope.project is required"))?;
    let _ = pref.domain;
    let project = match (&pref.id, &pref.name) {
        (Some(id), _) => match ProjectId::parse(id) {
            Some(id) => store.get_project(&id).await?,
            None => None,
        },
        (None, Some(n)) => store.find_project(n).await?,
        _ => return Err(ApiError::invalid("auth.scope.project needs id or name")),
    };
    // The same answer for a project that does not exist and for one the
    // user holds no role in (and no names in it).
    let no_role = || {
        ApiError::new(
            Code::IamUnauthorized,
            "The user has no role in the requested project.",
        )
    };
    let project = project.ok_or_else(no_role)?;
    let holds = store
        .user_projects(&user.id)
        .await?
        .iter()
        .any(|p| p.id == project.id);
    if !holds {
        return Err(no_role());
    }
    let domain = store
        .get_domain(&user.domain_id)
        .await?
        .ok_or_else(|| ApiError::internal("user without domain"))?;
    let pdomain = store
        .get_domain(&project.domain_id)
        .await?
        .ok_or_else(|| ApiError::internal("project without domain"))?;

    let issued = state.now();
    let expires = issued + state.token_ttl;
    let (token, digest) = auth::token::new_token();
    store
        .insert_token(&store::TokenRecord {
            digest,
            user_id: user.id.clone(),
            project_id: project.id.clone(),
            issued_us: issued.timestamp_micros(),
            expires_us: expires.timestamp_micros(),
            revoked: false,
        })
        .await?;
    let us =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let catalog = if q.get("nocatalog").is_some_and(|v| v != "false") {
        json!([])
    } else {
        let url = format!("http://{host}");
        json!([{
            "type": "vpn", "id": "vpnmon-vpn", "name": "vpn",
            "endpoints": [{"url": format!("{url}/v5/{}", project.id), "region": state.region,
                           "region_id": state.region, "interface": "public", "id": "vpnmon-vpn-public"}]
        }, {
            "type": "ces", "id": "vpnmon-ces", "name": "ces",
            "endpoints": [{"url": format!("{url}/V1.0/{}", project.id), "region": state.region,
                           "region_id": state.region, "interface": "public", "id": "vpnmon-ces-public"}]
        }])
    };
    let body = json!({"token": {
        "expires_at": us(expires),
        "issued_at": us(issued),
        "methods": ["password"],
        "catalog": catalog,
        "project": {"id": project.id, "name": project.name, "domain": {"id": pdomain.id, "name": pdomain.name}},
        "user": {"id": user.id, "name": user.name, "password_expires_at": "",
                 "domain": {"id": domain.id, "name": domain.name}},
        "roles": [{"id": "0", "name": "te_admin"}, {"id": "1", "name": "op_fine_grained"}],
    }});
    let mut resp = (StatusCode::CREATED, axum::Json(body)).into_response();
    let hv = HeaderValue::from_str(&token)
        .map_err(|_| ApiError::internal("token not a header value"))?;
    resp.headers_mut().insert("x-subject-token", hv);
    Ok(resp)
}

/// `DELETE /v3/auth/tokens`: revokes `X-Subject-Token`; the caller proves
/// itself with `X-Auth-Token` (itself, or another token of the same user).
pub async fn revoke_token(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let get = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).map(str::trim);
    let caller =
        get("x-auth-token").ok_or_else(|| ApiError::unauthenticated("x-auth-token not found"))?;
    let subject = get("x-subject-token")
        .ok_or_else(|| ApiError::invalid("X-Subject-Token header is required"))?;
    let now = state.now().timestamp_micros();
    let c = state
        .store
        .get_token(&auth::token::token_digest(caller))
        .await?
        .filter(|t| !t.revoked && t.expires_us > now)
        .ok_or_else(|| ApiError::unauthenticated("the X-Auth-Token is invalid or expired"))?;
    let sdigest = auth::token::token_digest(subject);
    let s = state
        .store
        .get_token(&sdigest)
        .await?
        .ok_or_else(ApiError::not_found)?;
    if s.user_id != c.user_id {
        return Err(ApiError::not_found());
    }
    state.store.revoke_token(&sdigest).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
