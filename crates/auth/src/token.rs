//! Opaque bearer tokens for `X-Auth-Token`.
//!
//! A token is [`TOKEN_PREFIX`] followed by 32 random bytes in URL-safe
//! base64 without padding (43 characters). The prefix makes leaked tokens
//! easy to recognise in logs and by secret scanners; it is not Huawei's
//! `MII…` shape, which clients never interpret anyway.
//!
//! The store keeps only [`token_digest`], the hex SHA-256 of the token. With
//! 256 random bits a plain hash is enough (no salt or slow hash is needed:
//! nothing can be guessed), and looking a digest up by index leaks nothing
//! useful through timing because an attacker cannot choose digests.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use subtle::ConstantTimeEq as _;

use crate::mac::sha256_hex;

/// Prefix of every token this crate issues.
pub const TOKEN_PREFIX: &str = "vpnmon_";

/// Random bytes per token.
const TOKEN_BYTES: usize = 32;

/// Base64 characters for [`TOKEN_BYTES`] without padding.
const TOKEN_BODY_LEN: usize = 43;

/// A fresh token and its digest: give the token to the client, store the digest.
pub fn new_token() -> (String, String) {
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    let token = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let digest = token_digest(&token);
    (token, digest)
}

/// Lowercase hex SHA-256 of a token, the form in which the store keeps it.
pub fn token_digest(token: &str) -> String {
    sha256_hex(token.as_bytes())
}

/// Whether a presented value has the shape of a token this crate issues.
///
/// Lets the API tell a malformed token from an unknown or expired one, and
/// skip the store lookup for garbage.
pub fn is_well_formed(token: &str) -> bool {
    token.strip_prefix(TOKEN_PREFIX).is_some_and(|body| {
        body.len() == TOKEN_BODY_LEN
            && body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// Compares two digests in constant time (for a given length).
pub fn digests_equal(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_token_is_prefixed_url_safe_and_well_formed() {
        let (token, digest) = new_token();
        assert!(token.starts_with(TOKEN_PREFIX));
        assert_eq!(token.len(), TOKEN_PREFIX.len() + TOKEN_BODY_LEN);
        assert!(is_well_formed(&token), "{token}");
        let decoded = URL_SAFE_NO_PAD
            .decode(&token[TOKEN_PREFIX.len()..])
            .unwrap();
        assert_eq!(decoded.len(), TOKEN_BYTES);
        assert_eq!(digest, token_digest(&token));
    }

    #[test]
    fn tokens_are_distinct() {
        let (a, da) = new_token();
        let (b, db) = new_token();
        assert_ne!(a, b);
        assert_ne!(da, db);
    }

    #[test]
    fn token_digest_is_hex_sha256() {
        assert_eq!(
            token_digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn malformed_tokens_are_recognised() {
        let (token, _) = new_token();
        for bad in [
            String::new(),
            TOKEN_PREFIX.to_owned(),
            token[TOKEN_PREFIX.len()..].to_owned(),
            format!("{token}A"),
            token[..token.len() - 1].to_owned(),
            format!("{}+{}", &token[..10], &token[11..]),
            format!("MII{}", &token[TOKEN_PREFIX.len()..]),
        ] {
            assert!(!is_well_formed(&bad), "{bad:?}");
        }
    }

    #[test]
    fn digests_equal_compares_whole_values() {
        let d = token_digest("t");
        assert!(digests_equal(&d, &d.clone()));
        assert!(!digests_equal(&d, &token_digest("u")));
        assert!(!digests_equal(&d, &d[..63]));
        assert!(!digests_equal(&d, ""));
    }
}
