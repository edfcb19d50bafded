//! Logging in, the token cache, and authenticated requests.
//!
//! The cache is one small JSON file per (endpoint, domain, user, project)
//! in `$XDG_CACHE_HOME/vpnmon/` (or `~/.cache/vpnmon/`), mode 0600, written
//! atomically. A cached token is used until five minutes before its
//! `expires_at`; a command that finds no usable token logs in by itself
//! only when a password is at hand (`VPNMON_PASSWORD` or
//! `--password-stdin`). A token the server rejects (revoked, or a server
//! with a fresh database) is dropped from the cache, and the request is
//! retried once after a new login when that is possible.

use crate::settings::ClientSettings;
use crate::{ClientOpts, OutputFormat};
use anyhow::{Context, Result, anyhow, bail};
use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A cached token is not used when it expires within this margin.
pub const EXPIRY_MARGIN: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// An error answered by the server, shown as
/// `error_code: error_msg (request_id)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError {
    /// HTTP status.
    pub status: u16,
    /// Huawei error code, or `HTTP <status>` when the body had none.
    pub code: String,
    /// Error message.
    pub msg: String,
    /// Request id from the body or the `X-Request-Id` header.
    pub request_id: String,
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} ({})", self.code, self.msg, self.request_id)
    }
}

impl std::error::Error for ServerError {}

impl ServerError {
    /// Builds the error from a non-success response.
    fn from_response(status: StatusCode, header_rid: Option<String>, body: &str) -> ServerError {
        let v: Option<Value> = serde_json::from_str(body).ok();
        let field = |k: &str| {
            v.as_ref()
                .and_then(|v| v.get(k))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let request_id = field("request_id")
            .or(header_rid)
            .unwrap_or_else(|| "no request id".into());
        // IAM's token API answers 401s in Keystone's nested body.
        let keystone = v
            .as_ref()
            .and_then(|v| v.get("error"))
            .and_then(|e| Some((e.get("code")?.as_u64()?, e.get("message")?.as_str()?)))
            .map(|(c, m)| (c.to_string(), m.to_string()));
        let flat = match (field("error_code"), field("error_msg")) {
            (Some(c), Some(m)) => Some((c, m)),
            _ => keystone,
        };
        match flat {
            Some((code, msg)) => ServerError {
                status: status.as_u16(),
                code,
                msg,
                request_id,
            },
            _ => {
                let mut text: String = body.trim().chars().take(200).collect();
                if text.is_empty() {
                    text = status.canonical_reason().unwrap_or("error").to_string();
                }
                ServerError {
                    status: status.as_u16(),
                    code: format!("HTTP {}", status.as_u16()),
                    msg: text,
                    request_id,
                }
            }
        }
    }
}

/// What the cache file holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CachedToken {
    pub endpoint: String,
    pub domain: String,
    pub user: String,
    pub project: String,
    pub user_id: String,
    pub project_id: String,
    pub issued_at: String,
    pub expires_at: String,
    pub token: String,
}

impl CachedToken {
    fn expires(&self) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(&self.expires_at)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// Whether the token may still be used at `now`.
    pub fn usable_at(&self, now: DateTime<Utc>) -> bool {
        self.expires().is_some_and(|e| now + EXPIRY_MARGIN < e)
    }

    fn matches(&self, s: &ClientSettings) -> bool {
        self.endpoint == s.endpoint
            && self.domain == s.domain
            && self.user == s.user
            && self.project == s.project
    }
}

/// The cache file of these settings.
pub fn cache_file(s: &ClientSettings) -> PathBuf {
    let mut h = Sha256::new();
    for part in [&s.endpoint, &s.domain, &s.user, &s.project] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    let digest = hex::encode(h.finalize());
    s.cache_dir.join(format!("token-{}.json", &digest[..24]))
}

fn read_cache(path: &Path) -> Option<CachedToken> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

/// Writes the cache file with mode 0600 (directory 0700), atomically.
fn write_cache(path: &Path, t: &CachedToken) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| anyhow!("cache file {} has no directory", path.display()))?;
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
        .with_context(|| format!("creating cache directory {}", dir.display()))?;
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let write = || -> std::io::Result<()> {
        let mut f = o.open(&tmp)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        f.write_all(serde_json::to_string_pretty(t)?.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        anyhow!("writing token cache {}: {e}", path.display())
    })
}

/// The first line of standard input, without its line ending.
pub fn read_stdin_line() -> Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading standard input")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Which API a path belongs to.
#[derive(Debug, Clone, Copy)]
pub enum Api {
    /// `/v5/{project_id}/...`
    Vpn,
    /// `/V1.0/{project_id}/...` (Cloud Eye).
    Ces,
    /// `/v2/{project_id}/...` (SMN).
    Smn,
}

/// An HTTP client with a token.
pub struct Session {
    settings: ClientSettings,
    http: reqwest::Client,
    password_stdin: bool,
    password: Option<String>,
    token: Option<CachedToken>,
    /// The token was issued to this process (a 401 is then not the cache's fault).
    fresh: bool,
    cache: PathBuf,
}

impl Session {
    /// A session for these options; nothing is sent yet.
    pub fn open(opts: &ClientOpts) -> Result<Session> {
        let settings = ClientSettings::resolve(opts)?;
        // reqwest is built with `rustls-no-provider`: pick ring once.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("vpnmon-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the HTTP client")?;
        let cache = cache_file(&settings);
        Ok(Session {
            settings,
            http,
            password_stdin: opts.password_stdin,
            password: None,
            token: None,
            fresh: false,
            cache,
        })
    }

    /// The token cache file.
    pub fn cache_path(&self) -> &Path {
        &self.cache
    }

    fn can_login(&self) -> bool {
        self.password.is_some() || self.password_stdin || env_password().is_some()
    }

    fn password(&mut self) -> Result<String> {
        if let Some(p) = &self.password {
            return Ok(p.clone());
        }
        let p = if let Some(p) = env_password() {
            p
        } else if self.password_stdin {
            read_stdin_line()?
        } else {
            bail!("no password: set VPNMON_PASSWORD or pass --password-stdin");
        };
        if p.is_empty() {
            bail!("the password is empty");
        }
        self.password = Some(p.clone());
        Ok(p)
    }

    fn url(&self, path: &str) -> Result<reqwest::Url> {
        reqwest::Url::parse(&format!("{}{path}", self.settings.endpoint))
            .with_context(|| format!("bad URL {}{path}", self.settings.endpoint))
    }

    fn transport_error(&self, e: reqwest::Error) -> anyhow::Error {
        anyhow!(
            "cannot reach {}: {}",
            self.settings.endpoint,
            error_chain(&e)
        )
    }

    /// Logs in with the password and caches the new token.
    pub async fn login(&mut self) -> Result<CachedToken> {
        let password = self.password()?;
        let s = &self.settings;
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": s.user, "password": password, "domain": {"name": s.domain}}}},
            "scope": {"project": {"name": s.project}}}});
        let mut url = self.url("/v3/auth/tokens")?;
        url.query_pairs_mut().append_pair("nocatalog", "true");
        let resp = self
            .http
            .post(url)
            .json(&body)
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        let status = resp.status();
        let rid = header_rid(&resp);
        let subject = resp
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = resp.text().await.map_err(|e| self.transport_error(e))?;
        if !status.is_success() {
            return Err(ServerError::from_response(status, rid, &text).into());
        }
        let token = subject.ok_or_else(|| anyhow!("the server sent no X-Subject-Token"))?;
        let v: Value = serde_json::from_str(&text).context("the token response is not JSON")?;
        let t = &v["token"];
        let field = |p: &str| {
            t.pointer(p)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| anyhow!("the token response has no token{}", p.replace('/', ".")))
        };
        let cached = CachedToken {
            endpoint: s.endpoint.clone(),
            domain: s.domain.clone(),
            user: s.user.clone(),
            project: s.project.clone(),
            user_id: field("/user/id")?,
            project_id: field("/project/id")?,
            issued_at: field("/issued_at").unwrap_or_default(),
            expires_at: field("/expires_at")?,
            token,
        };
        if cached.expires().is_none() {
            bail!(
                "the token's expires_at {:?} is not a time",
                cached.expires_at
            );
        }
        write_cache(&self.cache, &cached)?;
        self.token = Some(cached.clone());
        self.fresh = true;
        Ok(cached)
    }

    /// A usable token: this process's, the cache's, or a new one.
    async fn ensure_token(&mut self) -> Result<CachedToken> {
        let now = Utc::now();
        if let Some(t) = &self.token
            && t.usable_at(now)
        {
            return Ok(t.clone());
        }
        let cached = read_cache(&self.cache).filter(|t| t.matches(&self.settings));
        if let Some(t) = &cached
            && t.usable_at(now)
        {
            self.token = Some(t.clone());
            self.fresh = false;
            return Ok(t.clone());
        }
        if self.can_login() {
            return self.login().await;
        }
        let s = &self.settings;
        let why = match cached {
            Some(t) => format!("the cached token expires at {}", t.expires_at),
            None => "no cached token".to_string(),
        };
        bail!(
            "not logged in to {} as {} (domain {}, project {}): {why}; run `vpnmon login` or set VPNMON_PASSWORD",
            s.endpoint,
            s.user,
            s.domain,
            s.project
        )
    }

    /// Revokes the cached token on the server and deletes the cache file.
    pub async fn logout(&mut self) -> Result<()> {
        let Some(t) = read_cache(&self.cache).filter(|t| t.matches(&self.settings)) else {
            println!("not logged in");
            return Ok(());
        };
        let resp = self
            .http
            .delete(self.url("/v3/auth/tokens")?)
            .header("x-auth-token", &t.token)
            .header("x-subject-token", &t.token)
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        let status = resp.status();
        let rid = header_rid(&resp);
        let text = resp.text().await.unwrap_or_default();
        // A token the server no longer knows is as good as revoked.
        if !status.is_success() && status != StatusCode::UNAUTHORIZED {
            return Err(ServerError::from_response(status, rid, &text).into());
        }
        std::fs::remove_file(&self.cache)
            .with_context(|| format!("removing {}", self.cache.display()))?;
        self.token = None;
        println!("logged out: token revoked and removed from the cache");
        Ok(())
    }

    /// Sends an authenticated request to `/{v5|V1.0|v2}/{project_id}/{rel}`;
    /// returns the JSON body (`None` when empty, e.g. 204).
    pub async fn call(
        &mut self,
        method: Method,
        api: Api,
        rel: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Option<Value>> {
        let mut retried = false;
        loop {
            let t = self.ensure_token().await?;
            let prefix = match api {
                Api::Vpn => "v5",
                Api::Ces => "V1.0",
                Api::Smn => "v2",
            };
            let mut url = self.url(&format!("/{prefix}/{}/{rel}", t.project_id))?;
            if !query.is_empty() {
                let mut q = url.query_pairs_mut();
                for (k, v) in query {
                    q.append_pair(k, v);
                }
            }
            let mut req = self
                .http
                .request(method.clone(), url)
                .header("x-auth-token", &t.token);
            if let Some(b) = body {
                req = req.json(b);
            }
            let resp = req.send().await.map_err(|e| self.transport_error(e))?;
            let status = resp.status();
            let rid = header_rid(&resp);
            let text = resp.text().await.map_err(|e| self.transport_error(e))?;
            if status.is_success() {
                if text.trim().is_empty() {
                    return Ok(None);
                }
                return serde_json::from_str(&text)
                    .map(Some)
                    .with_context(|| format!("the server's answer is not JSON: {text:.200}"));
            }
            let err = ServerError::from_response(status, rid, &text);
            if status == StatusCode::UNAUTHORIZED && !self.fresh && !retried {
                // The cached token was refused: forget it.
                let _ = std::fs::remove_file(&self.cache);
                self.token = None;
                if self.can_login() {
                    retried = true;
                    continue;
                }
                bail!("{err}; the cached token was refused, run `vpnmon login`");
            }
            return Err(err.into());
        }
    }
}

fn env_password() -> Option<String> {
    std::env::var("VPNMON_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty())
}

fn header_rid(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

/// Prints what `vpnmon login` got.
pub fn print_login(t: &CachedToken, cache: &Path, out: OutputFormat) {
    match out {
        OutputFormat::Json => println!(
            "{}",
            json!({
                "endpoint": t.endpoint, "domain": t.domain, "user": t.user, "user_id": t.user_id,
                "project": t.project, "project_id": t.project_id,
                "issued_at": t.issued_at, "expires_at": t.expires_at,
                "cache_file": cache.display().to_string(),
            })
        ),
        OutputFormat::Table => {
            println!(
                "logged in to {} as {} (domain {})",
                t.endpoint, t.user, t.domain
            );
            println!("project {} (id {})", t.project, t.project_id);
            println!(
                "token expires at {} (cached in {})",
                t.expires_at,
                cache.display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(dir: &Path) -> ClientSettings {
        ClientSettings {
            endpoint: "http://127.0.0.1:8080".into(),
            domain: "vpnmon".into(),
            user: "admin".into(),
            project: "local-1".into(),
            cache_dir: dir.to_path_buf(),
        }
    }

    fn token(s: &ClientSettings, expires: DateTime<Utc>) -> CachedToken {
        CachedToken {
            endpoint: s.endpoint.clone(),
            domain: s.domain.clone(),
            user: s.user.clone(),
            project: s.project.clone(),
            user_id: "u".into(),
            project_id: "p".into(),
            issued_at: String::new(),
            expires_at: expires.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            token: "t".into(),
        }
    }

    #[test]
    fn cache_files_differ_per_endpoint_user_and_project() {
        let dir = tempfile::tempdir().unwrap();
        let a = settings(dir.path());
        let mut b = a.clone();
        b.project = "other".into();
        let mut c = a.clone();
        c.endpoint = "http://127.0.0.1:8081".into();
        let mut d = a.clone();
        d.user = "alice".into();
        let files: std::collections::HashSet<_> =
            [&a, &b, &c, &d].iter().map(|s| cache_file(s)).collect();
        assert_eq!(files.len(), 4);
        assert_eq!(cache_file(&a), cache_file(&a.clone()));
    }

    #[test]
    fn a_token_is_not_used_in_its_last_five_minutes() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path());
        let now = Utc::now();
        assert!(token(&s, now + chrono::TimeDelta::minutes(6)).usable_at(now));
        assert!(!token(&s, now + chrono::TimeDelta::minutes(4)).usable_at(now));
        assert!(!token(&s, now - chrono::TimeDelta::minutes(1)).usable_at(now));
        let mut bad = token(&s, now);
        bad.expires_at = "soon".into();
        assert!(!bad.usable_at(now));
    }

    #[cfg(unix)]
    #[test]
    fn the_cache_file_is_private_and_round_trips() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let s = settings(&dir.path().join("vpnmon"));
        let t = token(&s, Utc::now() + chrono::TimeDelta::hours(1));
        let p = cache_file(&s);
        write_cache(&p, &t).unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dmode = std::fs::metadata(p.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dmode, 0o700);
        assert_eq!(read_cache(&p).unwrap(), t);
        assert!(t.matches(&s));
    }

    #[test]
    fn server_errors_print_code_message_and_request_id() {
        let e = ServerError::from_response(
            StatusCode::BAD_REQUEST,
            Some("hdr".into()),
            r#"{"error_code":"VPN.0381","error_msg":"already has connection monitor","request_id":"abc"}"#,
        );
        assert_eq!(
            e.to_string(),
            "VPN.0381: already has connection monitor (abc)"
        );
        let e = ServerError::from_response(StatusCode::BAD_GATEWAY, Some("hdr".into()), "");
        assert_eq!(e.to_string(), "HTTP 502: Bad Gateway (hdr)");
    }
}
