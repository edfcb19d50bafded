//! The installation's SMN signing key and certificate, shared by every
//! node through the store and made on first use.
//!
//! The key (RSA-3072, PKCS#8) is sealed under the master key, as AK/SK
//! secrets are, in the store's `meta` under [`META_KEY`] together with its
//! self-signed certificate, so every node of one PostgreSQL signs with the
//! same key and serves the same certificate; two nodes making one at once
//! agree on the first one stored (insert-if-absent). Generation runs on
//! the blocking pool (a few hundred milliseconds).

use auth::smn::{SmnSigner, certificate, generate_key};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use domain::DomainError;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use store::Store;
use tokio::sync::OnceCell;

/// The `meta` key of the stored key and certificate.
pub const META_KEY: &str = "smn_signing_key";
/// What the sealed key is bound to.
const SEAL_LABEL: &str = "smn-signing-key";

#[derive(Serialize, Deserialize)]
struct Stored {
    /// The PKCS#8 DER key, Base64, sealed.
    key: String,
    /// The certificate, PEM.
    cert: String,
}

/// A loaded key: the signer, its certificate and the certificate's file
/// name (`SMN_<region>_<32 hex>.pem`, as SMN names them).
pub struct SigningKey {
    /// Signs messages.
    pub signer: SmnSigner,
    /// The certificate, PEM.
    pub cert_pem: String,
    /// `SMN_<region>_<32 hex of the certificate's SHA-256>.pem`.
    pub cert_file: String,
}

/// The lazily loaded key.
pub struct SmnKeys {
    store: Arc<dyn Store>,
    master_key: [u8; 32],
    cell: OnceCell<Arc<SigningKey>>,
}

impl SmnKeys {
    /// Keys kept in `store`, sealed with `master_key`.
    pub fn new(store: Arc<dyn Store>, master_key: [u8; 32]) -> Self {
        SmnKeys {
            store,
            master_key,
            cell: OnceCell::new(),
        }
    }

    /// The key, loaded or made on first use; `region` names a new
    /// certificate and the file.
    pub async fn get(&self, region: &str) -> Result<Arc<SigningKey>, DomainError> {
        self.cell
            .get_or_try_init(|| self.load(region))
            .await
            .cloned()
    }

    async fn load(&self, region: &str) -> Result<Arc<SigningKey>, DomainError> {
        let stored = match self.store.meta_get(META_KEY).await? {
            Some(v) => v,
            None => {
                let region_owned = region.to_string();
                let master = self.master_key;
                let now = chrono::Utc::now().timestamp();
                let fresh = tokio::task::spawn_blocking(move || -> Result<String, String> {
                    let key = generate_key().map_err(|e| e.to_string())?;
                    let cert = certificate(&key, &region_owned, now).map_err(|e| e.to_string())?;
                    let sealed = auth::seal_secret(&master, SEAL_LABEL, &STANDARD.encode(&key));
                    serde_json::to_string(&Stored { key: sealed, cert }).map_err(|e| e.to_string())
                })
                .await
                .map_err(|e| DomainError::internal(format!("SMN key generation: {e}")))?
                .map_err(|e| DomainError::internal(format!("SMN key generation: {e}")))?;
                let kept = self.store.meta_get_or_init(META_KEY, &fresh).await?;
                if kept == fresh {
                    tracing::info!("made this installation's SMN message signing key");
                }
                kept
            }
        };
        let s: Stored = serde_json::from_str(&stored)
            .map_err(|e| DomainError::internal(format!("stored SMN signing key: {e}")))?;
        let b64 = auth::open_secret(&self.master_key, SEAL_LABEL, &s.key).map_err(|e| {
            DomainError::internal(format!(
                "the stored SMN signing key does not open with this master key: {e}"
            ))
        })?;
        let der = STANDARD
            .decode(b64)
            .map_err(|e| DomainError::internal(format!("stored SMN signing key: {e}")))?;
        let signer = SmnSigner::new(&der).map_err(|e| DomainError::internal(e.to_string()))?;
        let digest = {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(s.cert.as_bytes()))
        };
        Ok(Arc::new(SigningKey {
            signer,
            cert_file: format!("SMN_{region}_{}.pem", &digest[..32]),
            cert_pem: s.cert,
        }))
    }
}
