//! SMN message signatures: what an HTTP(S) subscriber of a topic checks to
//! know that a message came from this installation.
//!
//! SMN signs each message it POSTs (`signature_version` `v1`): RSA,
//! PKCS#1 v1.5, SHA-256 over the *string to sign*, Base64 in `signature`,
//! with the public key in the X.509 certificate at `signing_cert_url`. The
//! string to sign is, for each key in a fixed order, the key, `\n`, the
//! value, `\n`:
//!
//! * `Notification`: `message`, `message_id`, `subject` (when present),
//!   `timestamp`, `topic_urn`, `type`;
//! * `SubscriptionConfirmation` / `UnsubscribeConfirmation`: `message`,
//!   `message_id`, `subscribe_url`, `timestamp`, `topic_urn`, `type`.
//!
//! An installation has one key (RSA-3072, generated once, sealed in the
//! store under the master key) and one self-signed certificate for it
//! (sha256WithRSAEncryption). Keys are generated with the `rsa` crate
//! (constant-time arithmetic), the certificate made with `rcgen`, and
//! messages signed with `ring`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};

/// Why a key or certificate cannot be made or used.
#[derive(Debug, thiserror::Error)]
pub enum SmnKeyError {
    /// The RSA key could not be generated or encoded.
    #[error("cannot generate the SMN signing key: {0}")]
    Generate(String),
    /// The stored key is not a usable RSA PKCS#8 key.
    #[error("the stored SMN signing key is not a usable RSA key: {0}")]
    BadKey(String),
    /// The certificate could not be made.
    #[error("cannot make the SMN signing certificate: {0}")]
    Certificate(String),
    /// Signing failed.
    #[error("cannot sign an SMN message")]
    Sign,
}

/// The fields of one SMN message that its signature covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedFields<'a> {
    /// `Notification`, `SubscriptionConfirmation` or `UnsubscribeConfirmation`.
    pub kind: &'a str,
    /// The message text (JSON is embedded as a string).
    pub message: &'a str,
    /// 32 hex characters.
    pub message_id: &'a str,
    /// Notifications only (always non-empty from vpnmon; see the research
    /// note on receivers that skip an empty one).
    pub subject: Option<&'a str>,
    /// Confirmations only.
    pub subscribe_url: Option<&'a str>,
    /// First-send time, `YYYY-MM-DDTHH:MM:SSZ`.
    pub timestamp: &'a str,
    /// The topic the message was published to.
    pub topic_urn: &'a str,
}

/// SMN's string to sign for `f`.
pub fn string_to_sign(f: &SignedFields<'_>) -> String {
    let mut pairs: Vec<(&str, &str)> = vec![("message", f.message), ("message_id", f.message_id)];
    if f.kind == "Notification" {
        if let Some(s) = f.subject {
            pairs.push(("subject", s));
        }
    } else {
        pairs.push(("subscribe_url", f.subscribe_url.unwrap_or("")));
    }
    pairs.push(("timestamp", f.timestamp));
    pairs.push(("topic_urn", f.topic_urn));
    pairs.push(("type", f.kind));
    let mut out = String::new();
    for (k, v) in pairs {
        out.push_str(k);
        out.push('\n');
        out.push_str(v);
        out.push('\n');
    }
    out
}

/// A new RSA-3072 private key, PKCS#8 DER.
pub fn generate_key() -> Result<Vec<u8>, SmnKeyError> {
    use rsa::Generate;
    use rsa::pkcs8::EncodePrivateKey;
    let key = rsa::PrivateKey::try_generate().map_err(|e| SmnKeyError::Generate(e.to_string()))?;
    let der = key
        .to_pkcs8_der()
        .map_err(|e| SmnKeyError::Generate(e.to_string()))?;
    Ok(der.as_bytes().to_vec())
}

/// A self-signed certificate (PEM) for PKCS#8 RSA key `pkcs8`, named for
/// `region`, valid from `not_before` (Unix seconds) for 20 years.
pub fn certificate(pkcs8: &[u8], region: &str, not_before: i64) -> Result<String, SmnKeyError> {
    let der = rustls_pki_types::PrivatePkcs8KeyDer::from(pkcs8.to_vec());
    let kp = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_RSA_SHA256)
        .map_err(|e| SmnKeyError::BadKey(e.to_string()))?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
        .map_err(|e| SmnKeyError::Certificate(e.to_string()))?;
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(
        rcgen::DnType::CommonName,
        format!("vpnmon SMN message signing ({region})"),
    );
    dn.push(rcgen::DnType::OrganizationName, "vpnmon");
    params.distinguished_name = dn;
    let start = time::OffsetDateTime::from_unix_timestamp(not_before)
        .map_err(|e| SmnKeyError::Certificate(e.to_string()))?;
    params.not_before = start;
    params.not_after = start + time::Duration::days(20 * 365);
    params.is_ca = rcgen::IsCa::ExplicitNoCa;
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    let cert = params
        .self_signed(&kp)
        .map_err(|e| SmnKeyError::Certificate(e.to_string()))?;
    Ok(cert.pem())
}

/// Signs SMN messages with one key.
pub struct SmnSigner {
    key: RsaKeyPair,
    rng: ring::rand::SystemRandom,
}

impl std::fmt::Debug for SmnSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SmnSigner(..)")
    }
}

impl SmnSigner {
    /// A signer for PKCS#8 RSA key `pkcs8`.
    pub fn new(pkcs8: &[u8]) -> Result<Self, SmnKeyError> {
        let key = RsaKeyPair::from_pkcs8(pkcs8).map_err(|e| SmnKeyError::BadKey(e.to_string()))?;
        Ok(SmnSigner {
            key,
            rng: ring::rand::SystemRandom::new(),
        })
    }

    /// The Base64 signature of `f`.
    pub fn sign(&self, f: &SignedFields<'_>) -> Result<String, SmnKeyError> {
        let text = string_to_sign(f);
        let mut sig = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &self.rng, text.as_bytes(), &mut sig)
            .map_err(|_| SmnKeyError::Sign)?;
        Ok(STANDARD.encode(sig))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    #[test]
    fn the_string_to_sign_matches_huaweis_example() {
        let f = SignedFields {
            kind: "Notification",
            message: "My test message",
            message_id: "88c726942175432bac921eafd0036163",
            subject: Some("demo"),
            subscribe_url: None,
            timestamp: "2016-08-15T07:29:16Z",
            topic_urn: "urn:smn:regionId:74dc9e44d0cc4573adfce91cdfdd3ba9:xxxx",
        };
        let s = string_to_sign(&f);
        assert_eq!(s.len(), 195);
        assert_eq!(
            hex::encode(sha2::Sha256::digest(s.as_bytes())),
            "00909757b05b77bf4a76a42f5f8dbfcda9010627623dc28b0659a3d7c7e9caec"
        );
    }

    #[test]
    fn confirmations_sign_the_subscribe_url_not_the_subject() {
        let f = SignedFields {
            kind: "SubscriptionConfirmation",
            message: "m",
            message_id: "id",
            subject: Some("ignored"),
            subscribe_url: Some("http://127.0.0.1/x?token=t"),
            timestamp: "t",
            topic_urn: "u",
        };
        assert_eq!(
            string_to_sign(&f),
            "message\nm\nmessage_id\nid\nsubscribe_url\nhttp://127.0.0.1/x?token=t\ntimestamp\nt\ntopic_urn\nu\ntype\nSubscriptionConfirmation\n"
        );
    }

    #[test]
    fn a_generated_key_signs_what_its_certificate_verifies() {
        let key = generate_key().expect("key");
        let pem = certificate(&key, "local-1", 1_767_225_600).expect("certificate");
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
        let signer = SmnSigner::new(&key).expect("signer");
        let f = SignedFields {
            kind: "Notification",
            message: "{\"alarm_status\":\"alarm\"}",
            message_id: "0123456789abcdef0123456789abcdef",
            subject: Some("s"),
            subscribe_url: None,
            timestamp: "2026-12-03T10:00:00Z",
            topic_urn: "urn:smn:local-1:p:t",
        };
        let sig = STANDARD
            .decode(signer.sign(&f).expect("sign"))
            .expect("b64");
        assert_eq!(sig.len(), 384);
        // Verify with the public half ring derives from the key: PKCS#1 v1.5
        // over SHA-256 of the string to sign.
        let kp = RsaKeyPair::from_pkcs8(&key).expect("key");
        let public = ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            kp.public().as_ref().to_vec(),
        );
        public
            .verify(string_to_sign(&f).as_bytes(), &sig)
            .expect("verifies");
        let mut tampered = f.clone();
        tampered.message = "{\"alarm_status\":\"ok\"}";
        assert!(
            public
                .verify(string_to_sign(&tampered).as_bytes(), &sig)
                .is_err()
        );
    }
}
