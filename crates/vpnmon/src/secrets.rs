//! The SK master key: the key that seals AK/SK secrets in the store.
//!
//! It is kept outside the database whenever there is a place for it, so
//! that a copy of the database (a backup, a stolen disk image of the
//! database alone) does not open the secrets:
//!
//! 1. `--master-key-file FILE` (`VPNMON_MASTER_KEY_FILE`), when given;
//! 2. else `$CREDENTIALS_DIRECTORY/vpnmon-master-key`, when systemd passes
//!    that credential (`LoadCredential=vpnmon-master-key:/etc/...`);
//! 3. else, with SQLite, `vpnmon.key` beside the database;
//! 4. else (PostgreSQL without a key file) in the database, as before:
//!    every node must read the same key, and the database is the one place
//!    they all share. Give every node the same `--master-key-file` to move
//!    it out.
//!
//! The file holds the key in hex, mode 0600. A store that still holds its
//! key (vpnmon before 0.x) has it moved to the file on the first start:
//! the file is written and synced, then the key is deleted from the
//! database. The database keeps a check value (a sealed constant), so a
//! node started with a different key file, or with none after the key was
//! moved out, refuses to start instead of sealing with a second key.

use crate::config::Settings;
use anyhow::{Context, anyhow, bail};
use std::path::{Path, PathBuf};
use store::Store;

/// The key's entry in the database (when it is kept there).
const DB_KEY: &str = "sk_master_key";
/// The check value: a constant sealed with the key.
const DB_CHECK: &str = "sk_master_key_check";
const CHECK_AK: &str = "vpnmon-master-key-check";
const CHECK_PLAIN: &str = "the SK master key";
/// The key file's name in the data directory.
pub const KEY_FILE_NAME: &str = "vpnmon.key";
/// The systemd credential's name.
pub const CREDENTIAL_NAME: &str = "vpnmon-master-key";

/// Where the key lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// In this file.
    File(PathBuf),
    /// In the database.
    Database,
}

/// Where the key of a server or admin command with these settings lives.
pub fn key_source(settings: &Settings) -> KeySource {
    key_source_with(settings, std::env::var_os("CREDENTIALS_DIRECTORY"))
}

fn key_source_with(settings: &Settings, credentials: Option<std::ffi::OsString>) -> KeySource {
    if let Some(f) = &settings.master_key_file {
        return KeySource::File(f.clone());
    }
    if let Some(dir) = credentials.filter(|d| !d.is_empty()) {
        let f = Path::new(&dir).join(CREDENTIAL_NAME);
        if f.exists() {
            return KeySource::File(f);
        }
    }
    match &settings.database_url {
        None => KeySource::File(settings.data_dir.join(KEY_FILE_NAME)),
        Some(url) if url.starts_with("sqlite:") => {
            let path = url
                .trim_start_matches("sqlite://")
                .trim_start_matches("sqlite:")
                .split('?')
                .next()
                .unwrap_or("");
            match Path::new(path).parent() {
                Some(dir) if !path.is_empty() && path != ":memory:" => {
                    KeySource::File(dir.join(KEY_FILE_NAME))
                }
                _ => KeySource::Database,
            }
        }
        Some(_) => KeySource::Database,
    }
}

fn check_value(key: &[u8; 32]) -> String {
    auth::credential::seal_secret(key, CHECK_AK, CHECK_PLAIN)
}

fn matches_check(key: &[u8; 32], check: &str) -> bool {
    auth::credential::open_secret(key, CHECK_AK, check).is_ok_and(|p| p == CHECK_PLAIN)
}

fn store_err(e: domain::DomainError) -> anyhow::Error {
    anyhow!("{e}")
}

/// The master key, created on first use, moved out of the database when it
/// has a file to live in.
pub async fn master_key(store: &dyn Store, source: &KeySource) -> anyhow::Result<[u8; 32]> {
    let in_db = match store.meta_get(DB_KEY).await.map_err(store_err)? {
        Some(v) => Some(
            auth::credential::parse_master_key(&v)
                .map_err(|e| anyhow!("the master key in the database: {e}"))?,
        ),
        None => None,
    };
    let from_file = match source {
        KeySource::File(p) => read_key_file(p)?,
        KeySource::Database => None,
    };
    let mut check = store.meta_get(DB_CHECK).await.map_err(store_err)?;
    // Without sealed secrets a lost or replaced key costs nothing: forget
    // the old check and start with the key at hand.
    if check.is_some()
        && in_db.is_none()
        && store
            .list_credentials(None)
            .await
            .map_err(store_err)?
            .is_empty()
    {
        let lost = match from_file {
            Some(k) => !matches_check(&k, check.as_deref().unwrap_or("")),
            None => true,
        };
        if lost {
            tracing::warn!("no AK/SK credentials are stored: replacing the SK master key");
            store.meta_delete(DB_CHECK).await.map_err(store_err)?;
            check = None;
        }
    }
    let key = match source {
        KeySource::Database => match in_db {
            Some(k) => k,
            None if check.is_some() => bail!(
                "the SK master key was moved out of the database into a key file: give this node \
                 the same file with --master-key-file (VPNMON_MASTER_KEY_FILE)"
            ),
            None => {
                let fresh = hex::encode(auth::credential::new_master_key());
                let v = store
                    .meta_get_or_init(DB_KEY, &fresh)
                    .await
                    .map_err(store_err)?;
                auth::credential::parse_master_key(&v)
                    .map_err(|e| anyhow!("the master key in the database: {e}"))?
            }
        },
        KeySource::File(path) => match (from_file, in_db) {
            (Some(f), Some(d)) if f != d => bail!(
                "{} holds a different SK master key than the database; keep the one that \
                     sealed the stored secrets (move the file aside to adopt the database's)",
                path.display()
            ),
            (Some(f), _) => f,
            (None, db) => {
                if db.is_none() && check.is_some() {
                    bail!(
                        "the SK master key file {} is missing, and the database's secrets \
                             were sealed with a key kept outside it: restore the file (or give \
                             it with --master-key-file)",
                        path.display()
                    );
                }
                let k = db.unwrap_or_else(auth::credential::new_master_key);
                write_key_file(path, &k)?;
                if db.is_some() {
                    tracing::info!(file = %path.display(), "moved the SK master key out of the database");
                }
                k
            }
        },
    };
    match &check {
        Some(c) if !matches_check(&key, c) => bail!(
            "the SK master key ({}) is not the one that sealed this database's secrets",
            match source {
                KeySource::File(p) => p.display().to_string(),
                KeySource::Database => "in the database".into(),
            }
        ),
        Some(_) => {}
        None => {
            store
                .meta_get_or_init(DB_CHECK, &check_value(&key))
                .await
                .map_err(store_err)?;
        }
    }
    if matches!(source, KeySource::File(_)) && in_db.is_some() {
        store.meta_delete(DB_KEY).await.map_err(store_err)?;
    }
    Ok(key)
}

fn read_key_file(path: &Path) -> anyhow::Result<Option<[u8; 32]>> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(path)?.permissions().mode();
                if mode & 0o077 != 0 {
                    tracing::warn!(file = %path.display(), mode = format!("{:o}", mode & 0o777), "the SK master key file is readable by others: chmod 600 it");
                }
            }
            auth::credential::parse_master_key(&text)
                .map(Some)
                .map_err(|e| anyhow!("{}: {e}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow!("cannot read {}: {e}", path.display())),
    }
}

/// Writes the key file (0600) through a temporary file, synced, renamed.
fn write_key_file(path: &Path, key: &[u8; 32]) -> anyhow::Result<()> {
    use std::io::Write;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(d) = dir {
        std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    let tmp = path.with_extension("key.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(&tmp)
        .with_context(|| format!("cannot write the SK master key file {}", tmp.display()))?;
    f.write_all(format!("{}\n", hex::encode(key)).as_bytes())?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot write the SK master key file {}", path.display()))?;
    if let Some(d) = dir
        && let Ok(d) = std::fs::File::open(d)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(data_dir: &str, url: Option<&str>) -> Settings {
        Settings {
            data_dir: PathBuf::from(data_dir),
            database_url: url.map(str::to_string),
            ..Settings::default()
        }
    }

    #[test]
    fn the_key_file_is_beside_an_sqlite_database_and_absent_for_postgres() {
        assert_eq!(
            key_source_with(&settings("/var/lib/vpnmon", None), None),
            KeySource::File("/var/lib/vpnmon/vpnmon.key".into())
        );
        assert_eq!(
            key_source_with(&settings("x", Some("sqlite:///srv/db/v.db?mode=rwc")), None),
            KeySource::File("/srv/db/vpnmon.key".into())
        );
        assert_eq!(
            key_source_with(&settings("x", Some("postgres://u@h/db")), None),
            KeySource::Database
        );
        let mut s = settings("x", Some("postgres://u@h/db"));
        s.master_key_file = Some("/etc/vpnmon/key".into());
        assert_eq!(
            key_source_with(&s, None),
            KeySource::File("/etc/vpnmon/key".into())
        );
    }

    #[test]
    fn a_systemd_credential_is_used_when_present() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings("/var/lib/vpnmon", None);
        // Not there: the data directory's file.
        assert_eq!(
            key_source_with(&s, Some(dir.path().as_os_str().to_owned())),
            KeySource::File("/var/lib/vpnmon/vpnmon.key".into())
        );
        std::fs::write(dir.path().join(CREDENTIAL_NAME), "x").unwrap();
        assert_eq!(
            key_source_with(&s, Some(dir.path().as_os_str().to_owned())),
            KeySource::File(dir.path().join(CREDENTIAL_NAME))
        );
    }
}
