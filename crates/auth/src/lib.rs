//! Authentication primitives for vpnmon: Huawei `SDK-HMAC-SHA256` AK/SK
//! request signatures, `X-Auth-Token` bearer tokens, password hashes, and
//! sealed storage of secret keys.
//!
//! Everything here is a pure function over strings and bytes: no HTTP types,
//! no storage, no clock reads (callers pass `now`). The API layer extracts
//! what it needs from a request, looks secrets up in the store, and calls
//! in; this crate decides whether the credentials hold. That keeps the
//! signature rules testable against the vendor's vectors on their own, as
//! Garage does for S3 signatures.
//!
//! Modules:
//!
//! * [`signature`] — canonical request, string to sign, HMAC, [`signature::verify`]
//!   with constant-time comparison and the 15-minute clock-skew rule, and the
//!   client side [`signature::sign_request`]. Its module docs list where the
//!   vendor's spec is ambiguous and what we chose (`+` in queries, the Go
//!   SDK's lowercased query keys, when `X-Sdk-Content-Sha256` counts,
//!   repeated and missing signed headers).
//! * [`token`] — random opaque tokens; the store keeps only their SHA-256.
//! * [`password`] — Argon2id PHC strings.
//! * [`credential`] — AK/SK generation, and sealing SKs under a master key
//!   (the signature scheme is symmetric, so the server must be able to
//!   recover an SK; it is never shown again after creation).
//!
//! Design choices:
//!
//! * Secrets are compared in constant time (`Mac::verify_slice`, `subtle`).
//! * Error messages are meant to be safe for clients: they say what was
//!   wrong with the request, never the expected signature or any secret.
//! * Only `SDK-HMAC-SHA256`, the SDKs' default, is accepted; SM3, ECDSA and
//!   the derived `V11-HMAC-SHA256` schemes are opt-in on the client and are
//!   reported as unsupported.
//! * Sealing uses HMAC-SHA256 only (counter-mode keystream, encrypt-then-MAC)
//!   rather than pulling in an AEAD crate; see [`credential`] for the format.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod credential;
mod mac;
pub mod password;
pub mod signature;
pub mod smn;
pub mod token;

pub use credential::{
    SealError, generate_access_key, generate_secret_key, new_master_key, open_secret,
    parse_master_key, seal_secret,
};
pub use password::{
    PasswordCost, PasswordError, hash_password, hash_password_with_cost, verify_password,
};
pub use signature::{SdkAuthorization, SignatureError, SignedRequest, sign_request, verify};
pub use token::{digests_equal, is_well_formed, new_token, token_digest};
