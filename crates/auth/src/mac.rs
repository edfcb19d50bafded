//! HMAC-SHA256 and SHA-256 shared by the signature and credential modules.

use hmac::{Hmac, KeyInit};
use sha2::{Digest, Sha256};

/// HMAC-SHA256 as used throughout this crate.
pub(crate) type HmacSha256 = Hmac<Sha256>;

/// SHA-256's block size, which is also HMAC-SHA256's key block size.
const BLOCK_LEN: usize = 64;

/// An HMAC-SHA256 keyed with a key of any length.
///
/// RFC 2104 pads keys up to the block size with zeros and hashes longer
/// ones first. Doing that here lets us use the infallible `KeyInit::new`
/// instead of `new_from_slice`, whose `Result` can never be `Err` for HMAC
/// but would otherwise need an `expect`.
pub(crate) fn keyed(key: &[u8]) -> HmacSha256 {
    let mut block = [0u8; BLOCK_LEN];
    if key.len() <= BLOCK_LEN {
        block[..key.len()].copy_from_slice(key);
    } else {
        let digest = Sha256::digest(key);
        block[..digest.len()].copy_from_slice(&digest);
    }
    HmacSha256::new(&block.into())
}

/// Lowercase hex SHA-256 of `data`.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

#[cfg(test)]
mod tests {
    use hmac::{KeyInit, Mac};

    use super::*;

    fn reference(key: &[u8], msg: &[u8]) -> Vec<u8> {
        let mut mac = HmacSha256::new_from_slice(key).unwrap();
        mac.update(msg);
        mac.finalize().into_bytes().to_vec()
    }

    fn ours(key: &[u8], msg: &[u8]) -> Vec<u8> {
        let mut mac = keyed(key);
        mac.update(msg);
        mac.finalize().into_bytes().to_vec()
    }

    #[test]
    fn keyed_matches_new_from_slice_for_short_exact_and_long_keys() {
        for len in [0, 1, 40, 63, 64, 65, 200] {
            let key = vec![0x5a; len];
            assert_eq!(
                ours(&key, b"message"),
                reference(&key, b"message"),
                "key length {len}"
            );
        }
    }

    #[test]
    fn keyed_matches_rfc4231_test_case_2() {
        let out = ours(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(out),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
