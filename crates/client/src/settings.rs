//! The client's settings: flags, then environment (clap reads both), then
//! the config file, then defaults.

use crate::ClientOpts;
use anyhow::{Context, Result, anyhow};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Default API endpoint.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:8080";
/// Default domain: the one the server bootstraps.
pub const DEFAULT_DOMAIN: &str = "vpnmon";
/// Default user: the one the server bootstraps.
pub const DEFAULT_USER: &str = "admin";
/// Default project: the one the server bootstraps.
pub const DEFAULT_PROJECT: &str = "local-1";

/// `client.toml`: the same keys as the flags. No password: it comes from
/// `VPNMON_PASSWORD` or standard input only.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientFileSettings {
    endpoint: Option<String>,
    domain: Option<String>,
    user: Option<String>,
    project: Option<String>,
}

/// Resolved client settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSettings {
    /// Endpoint without a trailing slash, e.g. `http://127.0.0.1:8080`.
    pub endpoint: String,
    pub domain: String,
    pub user: String,
    pub project: String,
    /// Directory of the token cache.
    pub cache_dir: PathBuf,
}

fn env_path(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
}

/// `$XDG_CONFIG_HOME/vpnmon/client.toml` or `~/.config/vpnmon/client.toml`.
fn default_config_path() -> Option<PathBuf> {
    env_path("XDG_CONFIG_HOME")
        .or_else(|| env_path("HOME").map(|h| h.join(".config")))
        .map(|d| d.join("vpnmon").join("client.toml"))
}

/// `$XDG_CACHE_HOME/vpnmon` or `~/.cache/vpnmon`.
fn default_cache_dir() -> Result<PathBuf> {
    env_path("XDG_CACHE_HOME")
        .or_else(|| env_path("HOME").map(|h| h.join(".cache")))
        .map(|d| d.join("vpnmon"))
        .ok_or_else(|| anyhow!("no cache directory: set XDG_CACHE_HOME or HOME"))
}

fn load_file(path: &Path) -> Result<ClientFileSettings> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading client config {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing client config {}", path.display()))
}

/// Checks and normalises an endpoint URL.
pub fn normalize_endpoint(e: &str) -> Result<String> {
    let e = e.trim().trim_end_matches('/');
    let url = reqwest::Url::parse(e)
        .map_err(|err| anyhow!("endpoint {e:?} is not a URL like http://127.0.0.1:8080: {err}"))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(anyhow!("endpoint {e:?} must be http:// or https://"));
    }
    if url.host().is_none() {
        return Err(anyhow!("endpoint {e:?} has no host"));
    }
    Ok(e.to_string())
}

impl ClientSettings {
    /// Resolves the settings for one invocation.
    pub fn resolve(opts: &ClientOpts) -> Result<ClientSettings> {
        let file = match &opts.config {
            Some(p) => load_file(p)?,
            None => match default_config_path() {
                Some(p) if p.exists() => load_file(&p)?,
                _ => ClientFileSettings::default(),
            },
        };
        let pick = |flag: &Option<String>, file: Option<String>, default: &str| {
            flag.clone()
                .filter(|v| !v.is_empty())
                .or(file)
                .unwrap_or_else(|| default.to_string())
        };
        let endpoint = pick(&opts.endpoint, file.endpoint, DEFAULT_ENDPOINT);
        Ok(ClientSettings {
            endpoint: normalize_endpoint(&endpoint)?,
            domain: pick(&opts.domain, file.domain, DEFAULT_DOMAIN),
            user: pick(&opts.user, file.user, DEFAULT_USER),
            project: pick(&opts.project, file.project, DEFAULT_PROJECT),
            cache_dir: default_cache_dir()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_loses_its_trailing_slash_and_must_be_http() {
        assert_eq!(
            normalize_endpoint("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert!(normalize_endpoint("ftp://x").is_err());
        assert!(normalize_endpoint("127.0.0.1:8080").is_err());
    }

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("client.toml");
        std::fs::write(
            &p,
            "endpoint = \"http://10.0.0.1:9000\"\nuser = \"alice\"\n",
        )
        .unwrap();
        let opts = ClientOpts {
            user: Some("bob".into()),
            config: Some(p.clone()),
            ..ClientOpts::default()
        };
        let s = ClientSettings::resolve(&opts).unwrap();
        assert_eq!(s.endpoint, "http://10.0.0.1:9000");
        assert_eq!(s.user, "bob");
        assert_eq!(s.domain, DEFAULT_DOMAIN);
        assert_eq!(s.project, DEFAULT_PROJECT);

        std::fs::write(&p, "passwd = \"x\"\n").unwrap();
        let err = ClientSettings::resolve(&opts).unwrap_err();
        assert!(format!("{err:#}").contains("passwd"), "{err:#}");
    }
}
