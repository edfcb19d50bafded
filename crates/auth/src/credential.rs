//! AK/SK generation and sealing of secret keys at rest.
//!
//! `SDK-HMAC-SHA256` is symmetric: to verify a signature the server needs
//! the plain SK, so SKs cannot be stored as one-way hashes. Instead they are
//! sealed with a server master key and opened only to verify. The API shows
//! an SK once, at creation, and never returns it again.
//!
//! # Sealed format
//!
//! `v1.` followed by URL-safe base64 (no padding) of
//! `nonce (16) ‖ ciphertext (len of SK) ‖ tag (32)`, where, from two
//! sub-keys derived from the master key with HMAC-SHA256 and distinct labels:
//!
//! * ciphertext = SK XOR keystream, keystream block *i* =
//!   HMAC(enc_key, nonce ‖ i as u32 big-endian) — HMAC as a PRF in counter mode;
//! * tag = HMAC(mac_key, "v1" ‖ len(AK) as u64 big-endian ‖ AK ‖ nonce ‖ ciphertext)
//!   — encrypt-then-MAC, checked in constant time before decrypting.
//!
//! The AK is bound into the tag so that someone able to write the store
//! cannot copy their own sealed SK onto another tenant's AK and then sign
//! as that tenant. The random 16-byte nonce makes two seals of one SK differ.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::Mac as _;
use rand::{Rng as _, RngCore as _};

use crate::mac::keyed;

/// Characters of an access key: 20 of `A–Z 0–9`, like Huawei's AKs.
const ACCESS_KEY_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
/// Length of a generated access key.
pub const ACCESS_KEY_LEN: usize = 20;

/// Characters of a secret key: 40 of `A–Z a–z 0–9` (≈238 bits).
const SECRET_KEY_ALPHABET: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/// Length of a generated secret key.
pub const SECRET_KEY_LEN: usize = 40;

const SEAL_VERSION: &str = "v1.";
const NONCE_LEN: usize = 16;
const TAG_LEN: usize = 32;
const BLOCK_LEN: usize = 32;
const ENC_LABEL: &[u8] = b"vpnmon sk-seal v1 encryption";
const MAC_LABEL: &[u8] = b"vpnmon sk-seal v1 authentication";

/// Why a sealed secret or a master key was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// Not a `v1.` sealed value, or not decodable.
    #[error("sealed secret is malformed")]
    Malformed,
    /// The tag does not match: wrong master key, wrong access key, or altered value.
    #[error("sealed secret failed authentication")]
    Tampered,
    /// A master key must be 64 hex digits (32 bytes).
    #[error("master key must be 64 hex digits")]
    BadMasterKey,
}

/// A new access key (AK): 20 random characters from `A–Z 0–9`.
pub fn generate_access_key() -> String {
    random_string(ACCESS_KEY_ALPHABET, ACCESS_KEY_LEN)
}

/// A new secret key (SK): 40 random characters from `A–Z a–z 0–9`.
pub fn generate_secret_key() -> String {
    random_string(SECRET_KEY_ALPHABET, SECRET_KEY_LEN)
}

fn random_string(alphabet: &[u8], len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())]))
        .collect()
}

/// A new random 32-byte master key for [`seal_secret`].
pub fn new_master_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    key
}

/// Reads a master key written as 64 hex digits (as in a config file).
///
/// # Errors
/// [`SealError::BadMasterKey`] for anything else.
pub fn parse_master_key(text: &str) -> Result<[u8; 32], SealError> {
    let mut key = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut key).map_err(|_| SealError::BadMasterKey)?;
    Ok(key)
}

/// Seals `secret_key` for storage, bound to `access_key`.
pub fn seal_secret(master_key: &[u8; 32], access_key: &str, secret_key: &str) -> String {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rng().fill_bytes(&mut nonce);
    seal_with_nonce(master_key, access_key, secret_key, nonce)
}

fn seal_with_nonce(
    master_key: &[u8; 32],
    access_key: &str,
    secret_key: &str,
    nonce: [u8; NONCE_LEN],
) -> String {
    let keys = SubKeys::derive(master_key);
    let mut out = Vec::with_capacity(NONCE_LEN + secret_key.len() + TAG_LEN);
    out.extend_from_slice(&nonce);
    let mut ciphertext = secret_key.as_bytes().to_vec();
    keys.apply_keystream(&nonce, &mut ciphertext);
    out.extend_from_slice(&ciphertext);
    out.extend_from_slice(&keys.tag(access_key, &nonce, &ciphertext));
    format!("{SEAL_VERSION}{}", URL_SAFE_NO_PAD.encode(out))
}

/// Opens a value made by [`seal_secret`] with the same master key and access key.
///
/// # Errors
/// [`SealError::Malformed`] if it is not a sealed value,
/// [`SealError::Tampered`] if the key, the access key or the value is wrong.
pub fn open_secret(
    master_key: &[u8; 32],
    access_key: &str,
    sealed: &str,
) -> Result<String, SealError> {
    let encoded = sealed
        .strip_prefix(SEAL_VERSION)
        .ok_or(SealError::Malformed)?;
    let raw = URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| SealError::Malformed)?;
    if raw.len() < NONCE_LEN + TAG_LEN {
        return Err(SealError::Malformed);
    }
    let (nonce, rest) = raw.split_at(NONCE_LEN);
    let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);

    let keys = SubKeys::derive(master_key);
    keys.tag_mac(access_key, nonce, ciphertext)
        .verify_slice(tag)
        .map_err(|_| SealError::Tampered)?;

    let mut plain = ciphertext.to_vec();
    keys.apply_keystream(nonce, &mut plain);
    // Sealed from a &str and authenticated, so this only fails for a value
    // sealed by other code with the same key.
    String::from_utf8(plain).map_err(|_| SealError::Malformed)
}

struct SubKeys {
    enc: [u8; 32],
    mac: [u8; 32],
}

impl SubKeys {
    fn derive(master_key: &[u8; 32]) -> Self {
        Self {
            enc: prf(master_key, &[ENC_LABEL]),
            mac: prf(master_key, &[MAC_LABEL]),
        }
    }

    fn apply_keystream(&self, nonce: &[u8], data: &mut [u8]) {
        for (counter, chunk) in (0u32..).zip(data.chunks_mut(BLOCK_LEN)) {
            let block = prf(&self.enc, &[nonce, &counter.to_be_bytes()]);
            for (byte, key) in chunk.iter_mut().zip(block) {
                *byte ^= key;
            }
        }
    }

    fn tag_mac(&self, access_key: &str, nonce: &[u8], ciphertext: &[u8]) -> crate::mac::HmacSha256 {
        let mut mac = keyed(&self.mac);
        mac.update(b"v1");
        mac.update(&(access_key.len() as u64).to_be_bytes());
        mac.update(access_key.as_bytes());
        mac.update(nonce);
        mac.update(ciphertext);
        mac
    }

    fn tag(&self, access_key: &str, nonce: &[u8], ciphertext: &[u8]) -> [u8; TAG_LEN] {
        self.tag_mac(access_key, nonce, ciphertext)
            .finalize()
            .into_bytes()
            .into()
    }
}

/// HMAC-SHA256 of the concatenated parts.
fn prf(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = keyed(key);
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];
    const AK: &str = "ABCDEFGHIJ0123456789";
    const SK: &str = "TESTSK0000000000000000000000000000EXAMPLE";

    #[test]
    fn generated_access_keys_are_20_uppercase_alphanumerics() {
        for _ in 0..50 {
            let ak = generate_access_key();
            assert_eq!(ak.len(), ACCESS_KEY_LEN);
            assert!(
                ak.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()),
                "{ak}"
            );
        }
    }

    #[test]
    fn generated_secret_keys_are_40_alphanumerics() {
        for _ in 0..50 {
            let sk = generate_secret_key();
            assert_eq!(sk.len(), SECRET_KEY_LEN);
            assert!(sk.bytes().all(|b| b.is_ascii_alphanumeric()), "{sk}");
        }
        assert_ne!(generate_secret_key(), generate_secret_key());
    }

    #[test]
    fn seal_then_open_round_trips() {
        for sk in [SK, "", "x", &"y".repeat(33), &generate_secret_key()] {
            let sealed = seal_secret(&KEY, AK, sk);
            assert!(sealed.starts_with("v1."));
            assert!(!sealed.contains(sk) || sk.len() < 2, "{sealed}");
            assert_eq!(open_secret(&KEY, AK, &sealed), Ok(sk.to_owned()));
        }
    }

    #[test]
    fn two_seals_of_one_secret_differ() {
        assert_ne!(seal_secret(&KEY, AK, SK), seal_secret(&KEY, AK, SK));
    }

    #[test]
    fn sealing_is_deterministic_for_a_fixed_nonce() {
        let a = seal_with_nonce(&KEY, AK, SK, [1; NONCE_LEN]);
        let b = seal_with_nonce(&KEY, AK, SK, [1; NONCE_LEN]);
        assert_eq!(a, b);
        assert_eq!(open_secret(&KEY, AK, &a), Ok(SK.to_owned()));
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let sealed = seal_secret(&KEY, AK, SK);
        let raw = URL_SAFE_NO_PAD.decode(&sealed[3..]).unwrap();
        for i in 0..raw.len() {
            let mut altered = raw.clone();
            altered[i] ^= 0x01;
            let altered = format!("v1.{}", URL_SAFE_NO_PAD.encode(altered));
            assert_eq!(
                open_secret(&KEY, AK, &altered),
                Err(SealError::Tampered),
                "byte {i}"
            );
        }
    }

    #[test]
    fn wrong_master_key_or_access_key_is_tampered() {
        let sealed = seal_secret(&KEY, AK, SK);
        let mut other = KEY;
        other[31] ^= 1;
        assert_eq!(open_secret(&other, AK, &sealed), Err(SealError::Tampered));
        assert_eq!(
            open_secret(&KEY, "ABCDEFGHIJ0123456788", &sealed),
            Err(SealError::Tampered)
        );
    }

    #[test]
    fn truncated_or_foreign_values_are_malformed() {
        let sealed = seal_secret(&KEY, AK, SK);
        for bad in [
            "",
            "v1.",
            "v2.AAAA",
            SK,
            &sealed[3..],
            "v1.!!!!",
            &format!(
                "v1.{}",
                URL_SAFE_NO_PAD.encode([0u8; NONCE_LEN + TAG_LEN - 1])
            ),
        ] {
            assert_eq!(
                open_secret(&KEY, AK, bad),
                Err(SealError::Malformed),
                "{bad:?}"
            );
        }
        // Cutting bytes off changes where the tag is read from.
        let raw = URL_SAFE_NO_PAD.decode(&sealed[3..]).unwrap();
        let short = format!("v1.{}", URL_SAFE_NO_PAD.encode(&raw[..raw.len() - 3]));
        assert_eq!(open_secret(&KEY, AK, &short), Err(SealError::Tampered));
    }

    #[test]
    fn master_keys_round_trip_through_hex() {
        let key = new_master_key();
        assert_ne!(key, new_master_key());
        assert_eq!(parse_master_key(&hex::encode(key)), Ok(key));
        assert_eq!(
            parse_master_key(&format!(" {}\n", hex::encode(key))),
            Ok(key)
        );
        assert_eq!(parse_master_key("00"), Err(SealError::BadMasterKey));
        assert_eq!(
            parse_master_key(&"zz".repeat(32)),
            Err(SealError::BadMasterKey)
        );
    }
}
