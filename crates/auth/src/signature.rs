//! Huawei Cloud `SDK-HMAC-SHA256` AK/SK request signatures (docs/spec/vpn-v5.md §5.2).
//!
//! Built from small pure functions, one per part of the canonical request,
//! so each can be checked against the spec's vectors on its own:
//!
//! ```text
//! CanonicalRequest = METHOD \n canonical_uri \n canonical_query \n
//!                    canonical_headers (each line ends in \n) \n
//!                    signed;headers \n payload_hash
//! StringToSign     = "SDK-HMAC-SHA256" \n X-Sdk-Date \n hex(sha256(CanonicalRequest))
//! Signature        = hex(hmac_sha256(SK as bytes, StringToSign))
//! ```
//!
//! [`verify`] is what the server calls; [`sign_request`] is the client side,
//! for tests and the CLI. Both take a [`SignedRequest`], a plain view of the
//! request (no HTTP types).
//!
//! # Where the vendor's behaviour is ambiguous
//!
//! * **`+` in the query string is a space.** The Python SDK sends its
//!   canonical query as the wire query, encoded with `quote(s, safe='~')`,
//!   so a literal `+` never reaches us from it (a plus is `%2B`, a space
//!   `%20`). The Go SDK builds the wire query with `url.Values.Encode`, which
//!   writes a space as `+`, but signs `%20`. The spec's reference verifier
//!   (appendix B) decodes with `parse_qsl`, which reads `+` as a space, and
//!   so does the form decoder a web framework uses to hand the query to a
//!   handler. Reading `+` as a space therefore accepts both SDKs and keeps
//!   what is verified equal to what the handler sees.
//! * **Query order.** The Python SDK sorts `(key, value)` pairs of raw,
//!   decoded strings (Python tuple order, i.e. code-point order), then
//!   encodes. We do the same; Rust's `String` order is code-point order.
//! * **Go SDK lowercases query keys** in its canonical query (it sends the
//!   keys unchanged on the wire). When the first attempt fails and the query
//!   has an uppercase key, [`verify`] retries with lowercased keys. All VPN
//!   and CES keys are lowercase, so this never matters for a well-behaved
//!   client; the cost is that someone who can already alter a request in
//!   flight (and could replay it within the skew window anyway) can change
//!   a key's case without breaking the signature.
//! * **`X-Sdk-Content-Sha256`** replaces the body hash only when it is
//!   listed in `SignedHeaders` (the SDKs always sign it). Honouring an
//!   unsigned one, as appendix B does, would let anyone swap the body of a
//!   captured request and send the original hash alongside. When the body is
//!   non-empty, its value must be `UNSIGNED-PAYLOAD` or the body's real hash.
//! * **Empty body with `X-Sdk-Content-Sha256`.** Current Python SDKs hash an
//!   empty body as the empty hash whatever the header says; older ones and
//!   the Go SDK use the header value (`UNSIGNED-PAYLOAD`). Both are tried.
//! * **Signed headers** come from the `Authorization` header, never a fixed
//!   list: the Python SDK signs `user-agent`, others don't. A signed header
//!   that is absent is canonicalised with an empty value (as in appendix B);
//!   one that appears more than once is rejected, so an added duplicate can
//!   never stand beside the signed value. `host` is not required to be
//!   signed, since every SDK signs it and we serve a single host.
//! * **`X-Sdk-Date`** must be exactly `YYYYMMDDTHHMMSSZ`. The string to sign
//!   uses it verbatim; the SDK re-formats its parsed date, which is the same
//!   string for any value in that exact format. The date is covered by the
//!   signature even when it is not in `SignedHeaders`, because it is part of
//!   the string to sign.
//! * **Percent-decoding to invalid UTF-8** yields U+FFFD, like Python's
//!   `unquote`, before re-encoding.

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use hmac::Mac;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use crate::mac::{keyed, sha256_hex};

#[cfg(test)]
mod tests;

/// The only algorithm accepted: the SDKs' default.
pub const ALGORITHM: &str = "SDK-HMAC-SHA256";

/// Hex SHA-256 of the empty string: the payload hash of a request without a body.
pub const EMPTY_PAYLOAD_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// `X-Sdk-Content-Sha256` value by which a client opts out of signing the body.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// Largest accepted difference between `X-Sdk-Date` and server time, in seconds
/// (Huawei's gateway allows 15 minutes either way).
pub const MAX_CLOCK_SKEW_SECONDS: i64 = 15 * 60;

/// Lowercase name of the timestamp header.
pub const HEADER_SDK_DATE: &str = "x-sdk-date";

/// Lowercase name of the header that may replace the body hash.
pub const HEADER_CONTENT_SHA256: &str = "x-sdk-content-sha256";

/// Lowercase name of the header that carries the signature.
pub const HEADER_AUTHORIZATION: &str = "authorization";

/// `strftime` pattern of `X-Sdk-Date`.
const SDK_DATE_FORMAT: &str = "%Y%m%dT%H%M%SZ";

/// Everything except RFC 3986 unreserved characters (`A-Z a-z 0-9 - _ . ~`)
/// is percent-encoded, as Python's `quote(s, safe='~')` does.
const RFC3986_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Upper bounds that keep a hostile `Authorization` header cheap to reject.
const MAX_ACCESS_KEY_LEN: usize = 128;
const MAX_SIGNED_HEADERS: usize = 64;

/// Why a request's signature was not accepted.
///
/// Messages are safe to show to the client: they never contain the expected
/// signature, the canonical request or the secret. All variants map to
/// HTTP 401 `APIGW.0301` on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `Authorization` header at all.
    #[error("missing Authorization header")]
    MissingAuthorization,
    /// `Authorization` names an algorithm other than `SDK-HMAC-SHA256`.
    #[error("unsupported signing algorithm, only SDK-HMAC-SHA256 is accepted")]
    UnsupportedAlgorithm,
    /// `Authorization` is not `SDK-HMAC-SHA256 Access=…, SignedHeaders=…, Signature=…`.
    #[error("malformed Authorization header: {0}")]
    MalformedAuthorization(&'static str),
    /// The request itself cannot be canonicalised (e.g. a signed header sent twice).
    #[error("malformed signed request: {0}")]
    MalformedRequest(&'static str),
    /// No `X-Sdk-Date` header.
    #[error("missing X-Sdk-Date header")]
    MissingDate,
    /// `X-Sdk-Date` is not `YYYYMMDDTHHMMSSZ`.
    #[error("X-Sdk-Date must be formatted YYYYMMDDTHHMMSSZ")]
    BadDate,
    /// `X-Sdk-Date` is more than [`MAX_CLOCK_SKEW_SECONDS`] from server time.
    #[error("X-Sdk-Date is more than 15 minutes away from server time")]
    ClockSkew,
    /// A signed `X-Sdk-Content-Sha256` disagrees with the body.
    #[error("X-Sdk-Content-Sha256 does not match the request body")]
    ContentHashMismatch,
    /// The signature does not match the request.
    #[error(
        "signature mismatch (check the SK and that every signed header and the body are sent as signed)"
    )]
    SignatureMismatch,
}

/// A parsed `SDK-HMAC-SHA256` `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdkAuthorization {
    access_key: String,
    signed_headers: Vec<String>,
    signature: [u8; 32],
}

impl SdkAuthorization {
    /// The access key (AK) the client claims to sign with.
    pub fn access_key(&self) -> &str {
        &self.access_key
    }

    /// Header names in the order the client listed them (lowercase for the SDKs).
    pub fn signed_headers(&self) -> &[String] {
        &self.signed_headers
    }

    /// The signature the client sent.
    pub fn signature(&self) -> &[u8; 32] {
        &self.signature
    }
}

/// Parses `SDK-HMAC-SHA256 Access=<AK>, SignedHeaders=<a;b;c>, Signature=<hex>`.
///
/// The three parts may come in any order, with any whitespace after the
/// commas and around `=`; each must appear exactly once. The signature must
/// be 64 lowercase hex digits.
///
/// # Errors
/// [`SignatureError::UnsupportedAlgorithm`] for another scheme,
/// [`SignatureError::MalformedAuthorization`] for anything else that is wrong.
pub fn parse_authorization(header: &str) -> Result<SdkAuthorization, SignatureError> {
    use SignatureError::MalformedAuthorization as Malformed;

    let header = header.trim();
    let (algorithm, rest) = header
        .split_once(|c: char| c.is_ascii_whitespace())
        .unwrap_or((header, ""));
    if algorithm != ALGORITHM {
        return Err(SignatureError::UnsupportedAlgorithm);
    }

    let mut access = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',') {
        let (name, value) = part
            .split_once('=')
            .ok_or(Malformed("expected Access=, SignedHeaders= and Signature="))?;
        let slot = match name.trim() {
            "Access" => &mut access,
            "SignedHeaders" => &mut signed,
            "Signature" => &mut signature,
            _ => {
                return Err(Malformed(
                    "unknown part, expected Access=, SignedHeaders= and Signature=",
                ));
            }
        };
        if slot.replace(value.trim()).is_some() {
            return Err(Malformed("a part appears more than once"));
        }
    }

    let access = access.ok_or(Malformed("missing Access="))?;
    let signed = signed.ok_or(Malformed("missing SignedHeaders="))?;
    let signature = signature.ok_or(Malformed("missing Signature="))?;

    if access.is_empty()
        || access.len() > MAX_ACCESS_KEY_LEN
        || !access.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(Malformed("Access must be a non-empty access key"));
    }

    let signed_headers: Vec<String> = signed.split(';').map(str::to_owned).collect();
    if signed_headers.len() > MAX_SIGNED_HEADERS {
        return Err(Malformed("too many SignedHeaders"));
    }
    if !signed_headers.iter().all(|name| is_header_name(name)) {
        return Err(Malformed(
            "SignedHeaders must be header names separated by ';'",
        ));
    }

    let signature = parse_signature_hex(signature)
        .ok_or(Malformed("Signature must be 64 lowercase hex digits"))?;

    Ok(SdkAuthorization {
        access_key: access.to_owned(),
        signed_headers,
        signature,
    })
}

/// An RFC 9110 token: the characters a header name may have.
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn parse_signature_hex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

/// A request as the signature sees it: no HTTP types, only strings and bytes.
///
/// `path` is the raw (still percent-encoded) path without the query,
/// `query` the raw query without the leading `?` (empty if none), `body`
/// the exact body bytes. Header names are lowercased on insertion; values
/// are kept as received. A header that arrives twice is pushed twice.
///
/// Build header values from the raw bytes (`std::str::from_utf8`), not from
/// an ASCII-only accessor: the SDK puts the UTF-8 of its values on the wire
/// and signs that. Over HTTP/2 there is no `Host` header; push the
/// `:authority` as `host`.
#[derive(Debug, Clone)]
pub struct SignedRequest<'a> {
    method: &'a str,
    path: &'a str,
    query: &'a str,
    headers: Vec<(String, String)>,
    body: &'a [u8],
}

impl<'a> SignedRequest<'a> {
    /// A request without headers; add them with [`Self::with_header`] or [`Self::push_header`].
    pub fn new(method: &'a str, path: &'a str, query: &'a str, body: &'a [u8]) -> Self {
        Self {
            method,
            path,
            query,
            headers: Vec::new(),
            body,
        }
    }

    /// Adds a header (builder style).
    #[must_use]
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.push_header(name, value);
        self
    }

    /// Adds a header; the name is lowercased.
    pub fn push_header(&mut self, name: &str, value: &str) {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_owned()));
    }

    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of a header that must not appear more than once.
    fn single_header(&self, name: &str) -> Result<Option<&str>, SignatureError> {
        let name = name.to_ascii_lowercase();
        let mut values = self.headers.iter().filter(|(n, _)| *n == name);
        let first = values.next().map(|(_, v)| v.as_str());
        if values.next().is_some() {
            return Err(SignatureError::MalformedRequest(
                "a signed or signature header appears more than once",
            ));
        }
        Ok(first)
    }

    /// Parses this request's `Authorization` header.
    ///
    /// # Errors
    /// [`SignatureError::MissingAuthorization`] if there is none, otherwise as
    /// [`parse_authorization`]; a repeated header is malformed.
    pub fn authorization(&self) -> Result<SdkAuthorization, SignatureError> {
        let value = self
            .single_header(HEADER_AUTHORIZATION)
            .map_err(|_| {
                SignatureError::MalformedAuthorization("more than one Authorization header")
            })?
            .ok_or(SignatureError::MissingAuthorization)?;
        parse_authorization(value)
    }
}

/// Canonical URI: percent-decode the path, split on `/`, RFC 3986-encode each
/// segment, re-join, and make sure it ends in `/`.
pub fn canonical_uri(raw_path: &str) -> String {
    let decoded = percent_decode_str(raw_path).decode_utf8_lossy();
    let mut out = decoded
        .split('/')
        .map(encode_rfc3986)
        .collect::<Vec<_>>()
        .join("/");
    if !out.ends_with('/') {
        out.push('/');
    }
    out
}

/// Canonical query: parse the raw query into `(key, value)` pairs (a `+` is a
/// space; a key without `=` has an empty value), sort by key then value,
/// RFC 3986-encode both, and join as `k=v` with `&`. Repeated keys keep one
/// pair per value. Empty for an empty query.
pub fn canonical_query(raw_query: &str) -> String {
    encode_query(query_pairs(raw_query))
}

/// The canonical query the Go SDK computes: like [`canonical_query`] but with
/// keys lowercased before sorting.
fn canonical_query_lowercased_keys(raw_query: &str) -> String {
    encode_query(
        query_pairs(raw_query)
            .into_iter()
            .map(|(k, v)| (k.to_lowercase(), v))
            .collect(),
    )
}

fn query_pairs(raw_query: &str) -> Vec<(String, String)> {
    raw_query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_query_component(key), decode_query_component(value))
        })
        .collect()
}

fn decode_query_component(text: &str) -> String {
    // `+` first, so that an encoded plus (`%2B`) stays a plus.
    let spaced = text.replace('+', " ");
    percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
}

fn encode_query(mut pairs: Vec<(String, String)>) -> String {
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode_rfc3986(k), encode_rfc3986(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode_rfc3986(text: &str) -> String {
    utf8_percent_encode(text, RFC3986_ENCODE).to_string()
}

/// Canonical headers: one `name:value\n` line per signed header, in the
/// order given, with the value trimmed; an absent header has an empty value.
pub fn canonical_headers(signed: &[String], headers: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::new();
    for name in signed {
        let value = headers(name).unwrap_or_default();
        out.push_str(name);
        out.push(':');
        out.push_str(value.trim());
        out.push('\n');
    }
    out
}

/// Payload hash as the current Python SDK computes it: the empty hash for an
/// empty body; otherwise the `X-Sdk-Content-Sha256` value if one is given and
/// non-empty; otherwise the hex SHA-256 of the body.
pub fn payload_hash(body: &[u8], x_sdk_content_sha256: Option<&str>) -> String {
    if body.is_empty() {
        return EMPTY_PAYLOAD_SHA256.to_owned();
    }
    match x_sdk_content_sha256.map(str::trim) {
        Some(value) if !value.is_empty() => value.to_owned(),
        _ => sha256_hex(body),
    }
}

/// The six parts joined by `\n`; `canonical_headers` already ends in `\n`,
/// which leaves an empty line before the signed-header list.
pub fn canonical_request(
    method: &str,
    canonical_uri: &str,
    canonical_query: &str,
    canonical_headers: &str,
    signed_headers: &[String],
    payload_hash: &str,
) -> String {
    format!(
        "{}\n{canonical_uri}\n{canonical_query}\n{canonical_headers}\n{}\n{payload_hash}",
        method.to_ascii_uppercase(),
        signed_headers.join(";"),
    )
}

/// `SDK-HMAC-SHA256\n<X-Sdk-Date>\n<hex sha256 of the canonical request>`.
pub fn string_to_sign(sdk_date: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{sdk_date}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

/// Lowercase hex HMAC-SHA256 of the string to sign, keyed with the SK's bytes.
pub fn sign(secret_key: &[u8], string_to_sign: &str) -> String {
    let mut mac = keyed(secret_key);
    mac.update(string_to_sign.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Parses an `X-Sdk-Date` value (`20250101T000000Z`).
///
/// # Errors
/// [`SignatureError::BadDate`] unless the value is exactly `YYYYMMDDTHHMMSSZ`
/// and a real UTC time.
pub fn parse_sdk_date(value: &str) -> Result<DateTime<Utc>, SignatureError> {
    let bytes = value.as_bytes();
    let shape_ok = bytes.len() == 16
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 => *b == b'T',
            15 => *b == b'Z',
            _ => b.is_ascii_digit(),
        });
    if !shape_ok {
        return Err(SignatureError::BadDate);
    }
    NaiveDateTime::parse_from_str(value, SDK_DATE_FORMAT)
        .map(|naive| naive.and_utc())
        .map_err(|_| SignatureError::BadDate)
}

/// Formats a time as an `X-Sdk-Date` value.
pub fn format_sdk_date(time: DateTime<Utc>) -> String {
    time.format(SDK_DATE_FORMAT).to_string()
}

/// Accepts a signing time at most [`MAX_CLOCK_SKEW_SECONDS`] before or after `now`.
///
/// # Errors
/// [`SignatureError::ClockSkew`] when it is further away.
pub fn check_clock_skew(
    signed_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), SignatureError> {
    let skew = (now - signed_at).abs();
    if skew > TimeDelta::seconds(MAX_CLOCK_SKEW_SECONDS) {
        return Err(SignatureError::ClockSkew);
    }
    Ok(())
}

/// Verifies a request signed with `SDK-HMAC-SHA256` against the secret key
/// of the access key named in its `Authorization` header.
///
/// Look the secret up with [`SignedRequest::authorization`]'s access key
/// first. `now` is the server's clock, passed in so this stays pure. Checks,
/// in order: the `Authorization` header, `X-Sdk-Date` and its skew, then the
/// signature, compared in constant time. See the module docs for the
/// tolerances applied (lowercased query keys, legacy empty-body hash).
///
/// # Errors
/// The first check that fails, as a [`SignatureError`].
pub fn verify(
    request: &SignedRequest<'_>,
    secret_key: &[u8],
    now: DateTime<Utc>,
) -> Result<(), SignatureError> {
    let authorization = request.authorization()?;

    let sdk_date = request
        .single_header(HEADER_SDK_DATE)?
        .ok_or(SignatureError::MissingDate)?
        .trim();
    check_clock_skew(parse_sdk_date(sdk_date)?, now)?;

    let signed = authorization.signed_headers();
    for name in signed {
        request.single_header(name)?;
    }
    let headers = canonical_headers(signed, |name| request.header(name).map(str::to_owned));
    let uri = canonical_uri(request.path);

    let content_sha256 = if signed
        .iter()
        .any(|name| name.eq_ignore_ascii_case(HEADER_CONTENT_SHA256))
    {
        request
            .header(HEADER_CONTENT_SHA256)
            .map(str::trim)
            .filter(|value| !value.is_empty())
    } else {
        None
    };
    let payload_hashes = payload_hash_candidates(request.body, content_sha256)?;

    let mut queries = vec![canonical_query(request.query)];
    let lowercased = canonical_query_lowercased_keys(request.query);
    if lowercased != queries[0] {
        queries.push(lowercased);
    }

    for query in &queries {
        for payload in &payload_hashes {
            let creq = canonical_request(request.method, &uri, query, &headers, signed, payload);
            let sts = string_to_sign(sdk_date, &creq);
            let mut mac = keyed(secret_key);
            mac.update(sts.as_bytes());
            if mac.verify_slice(authorization.signature()).is_ok() {
                return Ok(());
            }
        }
    }
    Err(SignatureError::SignatureMismatch)
}

/// The payload hashes a genuine client may have signed.
fn payload_hash_candidates(
    body: &[u8],
    content_sha256: Option<&str>,
) -> Result<Vec<String>, SignatureError> {
    match content_sha256 {
        None => Ok(vec![payload_hash(body, None)]),
        Some(value) if body.is_empty() => {
            let mut hashes = vec![EMPTY_PAYLOAD_SHA256.to_owned()];
            if value == UNSIGNED_PAYLOAD {
                hashes.push(UNSIGNED_PAYLOAD.to_owned());
            }
            Ok(hashes)
        }
        Some(value) => {
            if value != UNSIGNED_PAYLOAD && value != sha256_hex(body) {
                return Err(SignatureError::ContentHashMismatch);
            }
            Ok(vec![value.to_owned()])
        }
    }
}

/// Signs a request as the Python SDK does and returns the `Authorization`
/// header value. For tests and the CLI.
///
/// Every header of `request` is signed except `Authorization` and names
/// containing `_` (which the SDK leaves out). The caller must already have
/// added `X-Sdk-Date` and `Host` (and `Content-Type`, `X-Project-Id` as the
/// SDK does).
///
/// # Errors
/// [`SignatureError::MissingDate`] / [`SignatureError::BadDate`] for the
/// date header, [`SignatureError::MalformedRequest`] for a header added
/// twice, [`SignatureError::MalformedAuthorization`] for an access key that
/// cannot appear in the header.
pub fn sign_request(
    access_key: &str,
    secret_key: &[u8],
    request: &SignedRequest<'_>,
) -> Result<String, SignatureError> {
    if access_key.is_empty()
        || access_key.len() > MAX_ACCESS_KEY_LEN
        || !access_key
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b',')
    {
        return Err(SignatureError::MalformedAuthorization(
            "Access must be a non-empty access key",
        ));
    }
    let sdk_date = request
        .single_header(HEADER_SDK_DATE)?
        .ok_or(SignatureError::MissingDate)?
        .trim();
    parse_sdk_date(sdk_date)?;

    let mut signed: Vec<String> = request
        .headers
        .iter()
        .map(|(name, _)| name.clone())
        .filter(|name| name != HEADER_AUTHORIZATION && !name.contains('_'))
        .collect();
    signed.sort();
    let before = signed.len();
    signed.dedup();
    if signed.len() != before {
        return Err(SignatureError::MalformedRequest(
            "a header to be signed appears more than once",
        ));
    }

    let headers = canonical_headers(&signed, |name| request.header(name).map(str::to_owned));
    let payload = payload_hash(request.body, request.header(HEADER_CONTENT_SHA256));
    let creq = canonical_request(
        request.method,
        &canonical_uri(request.path),
        &canonical_query(request.query),
        &headers,
        &signed,
        &payload,
    );
    let signature = sign(secret_key, &string_to_sign(sdk_date, &creq));
    Ok(format!(
        "{ALGORITHM} Access={access_key}, SignedHeaders={}, Signature={signature}",
        signed.join(";")
    ))
}
