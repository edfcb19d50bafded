//! docs/spec/vpn-v5.md §5.3 vectors, the §6.4 captured SDK requests, and what must fail.

use super::*;

const AK: &str = "TESTAK0000000000EXAMPLE";
const SK: &[u8] = b"TESTSK0000000000000000000000000000EXAMPLE";
const PID: &str = "0123456789abcdef0123456789abcdef";

/// The Python SDK's User-Agent from the §6.4 "Create" capture, verbatim.
const CAPTURED_USER_AGENT: &str = "huaweicloud-usdk-python/3.0; os/Linux##1_SMP_PREEMPT_DYNAMIC_@0#x86_64 python/3.11.7 impl/CPython; app/cb9272a4-8ab9-493c-814a-37ac31b776a7";
const CAPTURED_DATE: &str = "20261126T041816Z";
const CAPTURED_HOST: &str = "127.0.0.1:18765";
const CAPTURED_MONITOR: &str = "e0c6d86a-a284-4669-874a-fde57ff6745f";

const MONITORS_PATH: &str = "/v5/0123456789abcdef0123456789abcdef/connection-monitors";
const CREATE_BODY: &[u8] =
    br#"{"connection_monitor": {"vpn_connection_id": "cae286f2-0000-4000-8000-e22416ca1220"}}"#;

fn time(sdk_date: &str) -> DateTime<Utc> {
    parse_sdk_date(sdk_date).unwrap()
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn auth_header(signed: &str, signature: &str) -> String {
    format!("SDK-HMAC-SHA256 Access={AK}, SignedHeaders={signed}, Signature={signature}")
}

// ---------------------------------------------------------------- §5.3 vectors

const V_DATE: &str = "20250101T000000Z";
const V_HOST: &str = "127.0.0.1:8080";
const V_SIGNED: &str = "content-type;host;x-project-id;x-sdk-date";

/// The headers the §5.3 vectors were signed with (no User-Agent).
fn vector_request<'a>(
    method: &'a str,
    path: &'a str,
    query: &'a str,
    body: &'a [u8],
) -> SignedRequest<'a> {
    SignedRequest::new(method, path, query, body)
        .with_header("Content-Type", "application/json")
        .with_header("X-Project-Id", PID)
        .with_header("X-Sdk-Date", V_DATE)
        .with_header("Host", V_HOST)
}

/// Canonical request, string to sign and signature built from the pure parts.
fn vector_parts(request: &SignedRequest<'_>) -> (String, String, String) {
    let signed = names(&["content-type", "host", "x-project-id", "x-sdk-date"]);
    let headers = canonical_headers(&signed, |n| request.header(n).map(str::to_owned));
    let creq = canonical_request(
        request.method,
        &canonical_uri(request.path),
        &canonical_query(request.query),
        &headers,
        &signed,
        &payload_hash(request.body, None),
    );
    let sts = string_to_sign(V_DATE, &creq);
    let signature = sign(SK, &sts);
    (creq, sts, signature)
}

fn assert_vector(request: SignedRequest<'_>, sts_hash: &str, signature: &str) {
    let (_, sts, computed) = vector_parts(&request);
    assert_eq!(sts, format!("SDK-HMAC-SHA256\n{V_DATE}\n{sts_hash}"));
    assert_eq!(computed, signature);

    let expected_header = auth_header(V_SIGNED, signature);
    assert_eq!(sign_request(AK, SK, &request).unwrap(), expected_header);

    let signed = request.with_header("Authorization", &expected_header);
    assert_eq!(verify(&signed, SK, time(V_DATE)), Ok(()));
}

#[test]
fn v1_create_monitor_canonical_request_is_exactly_the_spec_text() {
    assert_eq!(CREATE_BODY.len(), 85);
    let request = vector_request("POST", MONITORS_PATH, "", CREATE_BODY);
    let (creq, _, _) = vector_parts(&request);
    let expected = "POST\n\
        /v5/0123456789abcdef0123456789abcdef/connection-monitors/\n\
        \n\
        content-type:application/json\n\
        host:127.0.0.1:8080\n\
        x-project-id:0123456789abcdef0123456789abcdef\n\
        x-sdk-date:20250101T000000Z\n\
        \n\
        content-type;host;x-project-id;x-sdk-date\n\
        8771e3ddd7ad640e902a6dda954f9595587b96cdd5f2dd8503dfcbdcb7cb3988";
    assert_eq!(creq, expected);
}

#[test]
fn v1_create_monitor_signs_and_verifies() {
    assert_vector(
        vector_request("POST", MONITORS_PATH, "", CREATE_BODY),
        "48a2ddd10bd38b7f42500d894086d25ffad1c9c0a4cebf311415bf6df8a223db",
        "b18d54b8348d06cdf62a4d8422b1f5e0d67e6c195b75b3053efb1f79e1e6bd7f",
    );
}

const V2_QUERY: &str = "enterprise_project_id=0&enterprise_project_id=a%20b%2Fc&vpn_connection_id=cae286f2-0000-4000-8000-e22416ca1220";

#[test]
fn v2_query_is_sorted_by_key_then_value_and_rfc3986_encoded() {
    let shuffled = "vpn_connection_id=cae286f2-0000-4000-8000-e22416ca1220&enterprise_project_id=a%20b%2Fc&enterprise_project_id=0";
    assert_eq!(canonical_query(shuffled), V2_QUERY);
    assert_eq!(canonical_query(V2_QUERY), V2_QUERY);
}

#[test]
fn v2_list_with_query_signs_and_verifies() {
    let request = vector_request("GET", MONITORS_PATH, V2_QUERY, b"");
    let (creq, _, _) = vector_parts(&request);
    assert!(creq.starts_with(&format!("GET\n{MONITORS_PATH}/\n{V2_QUERY}\n")));
    assert!(creq.ends_with(EMPTY_PAYLOAD_SHA256));
    assert_vector(
        request,
        "946c19b285065d1f7366dd11292e639bb0f9c691051ed5d7e9512f62cdf17917",
        "71c5ea80ad06691ce50d371ee8c17eeea307d7f8942d784ce11138d7b075e5db",
    );
}

#[test]
fn v3_delete_signs_and_verifies() {
    let path = "/v5/0123456789abcdef0123456789abcdef/connection-monitors/76f64229-0000-4000-8000-3907e2815b6d";
    assert_eq!(canonical_uri(path), format!("{path}/"));
    assert_vector(
        vector_request("DELETE", path, "", b""),
        "c21d52dfa4455cb422ab0e3783dbb2dc724788b722f55537649cf1f2c5d053d5",
        "ad6b8c66f4774b2809e4a5d18f453d6d19a24468c2097e7786f427022f8d4479",
    );
}

// ------------------------------------------------ §6.4 captured SDK requests

const SDK_SIGNED: &str = "content-type;host;user-agent;x-project-id;x-sdk-date";

/// A request exactly as `http.server` received it from the Python SDK,
/// unsigned headers included, in the captured order.
fn captured<'a>(
    method: &'a str,
    path: &'a str,
    query: &'a str,
    body: &'a [u8],
    signature: &str,
    content_length: Option<&str>,
) -> SignedRequest<'a> {
    let mut request = SignedRequest::new(method, path, query, body)
        .with_header("User-Agent", CAPTURED_USER_AGENT)
        .with_header("Accept-Encoding", "gzip, deflate")
        .with_header("Accept", "*/*")
        .with_header("Connection", "keep-alive")
        .with_header("Content-Type", "application/json")
        .with_header("X-Project-Id", PID)
        .with_header("X-Sdk-Date", CAPTURED_DATE)
        .with_header("Host", CAPTURED_HOST)
        .with_header("Authorization", &auth_header(SDK_SIGNED, signature));
    if let Some(length) = content_length {
        request.push_header("Content-Length", length);
    }
    request
}

fn monitor_path() -> String {
    format!("{MONITORS_PATH}/{CAPTURED_MONITOR}")
}

const CREATE_SIG: &str = "f605fa551ff0c5f19aef19d069f886df2528e50d07fa31f8f2436d0d4f8f9737";
const SHOW_SIG: &str = "87a8d34a315fba35224908653007df133c112fe6d8dd633c9f6f0d459594cb27";
const LIST_SIG: &str = "ce789f0eff7a6204c3f1a02fb6c4f1999b809f1c1fe7ebeb4d39c1f87ea2c231";
const DELETE_SIG: &str = "4f718d310c4a338b245660dad4b95d0be4e426ff2309ed600c17e0dbc60ca394";
const LIST_QUERY: &str = "vpn_connection_id=cae286f2-0000-4000-8000-e22416ca1220";

fn captured_create(body: &[u8]) -> SignedRequest<'_> {
    captured("POST", MONITORS_PATH, "", body, CREATE_SIG, Some("85"))
}

fn now() -> DateTime<Utc> {
    time(CAPTURED_DATE) + TimeDelta::seconds(3)
}

#[test]
fn sdk_create_request_verifies() {
    assert_eq!(verify(&captured_create(CREATE_BODY), SK, now()), Ok(()));
}

#[test]
fn sdk_show_request_verifies() {
    let path = monitor_path();
    let request = captured("GET", &path, "", b"", SHOW_SIG, None);
    assert_eq!(verify(&request, SK, now()), Ok(()));
}

#[test]
fn sdk_list_request_verifies() {
    let request = captured("GET", MONITORS_PATH, LIST_QUERY, b"", LIST_SIG, None);
    assert_eq!(verify(&request, SK, now()), Ok(()));
}

#[test]
fn sdk_delete_request_with_content_length_zero_verifies() {
    let path = monitor_path();
    let request = captured("DELETE", &path, "", b"", DELETE_SIG, Some("0"));
    assert_eq!(verify(&request, SK, now()), Ok(()));
}

#[test]
fn sign_request_reproduces_the_sdk_authorization_header() {
    let request = SignedRequest::new("POST", MONITORS_PATH, "", CREATE_BODY)
        .with_header("User-Agent", CAPTURED_USER_AGENT)
        .with_header("Content-Type", "application/json")
        .with_header("X-Project-Id", PID)
        .with_header("X-Sdk-Date", CAPTURED_DATE)
        .with_header("Host", CAPTURED_HOST);
    assert_eq!(
        sign_request(AK, SK, &request).unwrap(),
        auth_header(SDK_SIGNED, CREATE_SIG)
    );
}

// ------------------------------------------------------- one byte changed

#[test]
fn changed_body_byte_fails() {
    let mut body = CREATE_BODY.to_vec();
    body[40] ^= 1;
    assert_eq!(
        verify(&captured_create(&body), SK, now()),
        Err(SignatureError::SignatureMismatch)
    );
}

#[test]
fn changed_path_byte_fails() {
    let path = monitor_path().replacen("e0c6", "e0c7", 1);
    let request = captured("GET", &path, "", b"", SHOW_SIG, None);
    assert_eq!(
        verify(&request, SK, now()),
        Err(SignatureError::SignatureMismatch)
    );
}

#[test]
fn changed_query_byte_fails() {
    let query = LIST_QUERY.replace("cae2", "cae3");
    let request = captured("GET", MONITORS_PATH, &query, b"", LIST_SIG, None);
    assert_eq!(
        verify(&request, SK, now()),
        Err(SignatureError::SignatureMismatch)
    );
}

#[test]
fn added_query_parameter_fails() {
    let query = format!("{LIST_QUERY}&enterprise_project_id=0");
    let request = captured("GET", MONITORS_PATH, &query, b"", LIST_SIG, None);
    assert_eq!(
        verify(&request, SK, now()),
        Err(SignatureError::SignatureMismatch)
    );
}

#[test]
fn changed_signed_header_byte_fails() {
    let mut request = SignedRequest::new("POST", MONITORS_PATH, "", CREATE_BODY);
    for (name, value) in captured_create(CREATE_BODY).headers {
        let value = if name == "x-project-id" {
            value.replacen('0', "1", 1)
        } else {
            value
        };
        request.push_header(&name, &value);
    }
    assert_eq!(
        verify(&request, SK, now()),
        Err(SignatureError::SignatureMismatch)
    );
}

#[test]
fn changed_unsigned_header_is_ignored() {
    let mut request = SignedRequest::new("POST", MONITORS_PATH, "", CREATE_BODY);
    for (name, value) in captured_create(CREATE_BODY).headers {
        let value = if name == "accept" {
            "text/html".to_owned()
        } else {
            value
        };
        request.push_header(&name, &value);
    }
    assert_eq!(verify(&request, SK, now()), Ok(()));
}

#[test]
fn changed_method_fails() {
    let path = monitor_path();
    let request = captured("DELETE", &path, "", b"", SHOW_SIG, None);
    assert_eq!(
        verify(&request, SK, now()),
        Err(SignatureError::SignatureMismatch)
    );
}

#[test]
fn wrong_secret_fails() {
    let wrong = b"TESTSK0000000000000000000000000000EXAMPLF";
    assert_eq!(
        verify(&captured_create(CREATE_BODY), wrong, now()),
        Err(SignatureError::SignatureMismatch)
    );
}

#[test]
fn changed_signature_byte_fails() {
    let request = SignedRequest::new("POST", MONITORS_PATH, "", CREATE_BODY)
        .with_header("User-Agent", CAPTURED_USER_AGENT)
        .with_header("Content-Type", "application/json")
        .with_header("X-Project-Id", PID)
        .with_header("X-Sdk-Date", CAPTURED_DATE)
        .with_header("Host", CAPTURED_HOST)
        .with_header(
            "Authorization",
            &auth_header(SDK_SIGNED, &CREATE_SIG.replacen('f', "e", 1)),
        );
    assert_eq!(
        verify(&request, SK, now()),
        Err(SignatureError::SignatureMismatch)
    );
}

#[test]
fn signing_with_a_different_signed_header_list_fails() {
    // Dropping user-agent from the list changes the canonical request.
    let request = SignedRequest::new("POST", MONITORS_PATH, "", CREATE_BODY)
        .with_header("User-Agent", CAPTURED_USER_AGENT)
        .with_header("Content-Type", "application/json")
        .with_header("X-Project-Id", PID)
        .with_header("X-Sdk-Date", CAPTURED_DATE)
        .with_header("Host", CAPTURED_HOST)
        .with_header("Authorization", &auth_header(V_SIGNED, CREATE_SIG));
    assert_eq!(
        verify(&request, SK, now()),
        Err(SignatureError::SignatureMismatch)
    );
}

#[test]
fn duplicated_signed_header_is_rejected() {
    let request = captured_create(CREATE_BODY).with_header("Host", "evil.example:443");
    assert!(matches!(
        verify(&request, SK, now()),
        Err(SignatureError::MalformedRequest(_))
    ));
}

#[test]
fn error_messages_never_contain_the_expected_signature() {
    let mut body = CREATE_BODY.to_vec();
    body[0] = b' ';
    let err = verify(&captured_create(&body), SK, now()).unwrap_err();
    // The signature the server would have expected for the tampered body.
    let expected = {
        let request = SignedRequest::new("POST", MONITORS_PATH, "", &body)
            .with_header("User-Agent", CAPTURED_USER_AGENT)
            .with_header("Content-Type", "application/json")
            .with_header("X-Project-Id", PID)
            .with_header("X-Sdk-Date", CAPTURED_DATE)
            .with_header("Host", CAPTURED_HOST);
        let header = sign_request(AK, SK, &request).unwrap();
        header.rsplit('=').next().unwrap().to_owned()
    };
    assert_eq!(err, SignatureError::SignatureMismatch);
    assert!(!err.to_string().contains(&expected));
    assert!(!format!("{err:?}").contains(&expected));
}

// ------------------------------------------------------ the date header

fn with_date(date: Option<&str>) -> SignedRequest<'static> {
    let mut request = SignedRequest::new("POST", MONITORS_PATH, "", CREATE_BODY)
        .with_header("Content-Type", "application/json")
        .with_header("Host", CAPTURED_HOST)
        .with_header(
            "Authorization",
            &auth_header("content-type;host", CREATE_SIG),
        );
    if let Some(date) = date {
        request.push_header("X-Sdk-Date", date);
    }
    request
}

#[test]
fn missing_sdk_date_is_rejected() {
    assert_eq!(
        verify(&with_date(None), SK, now()),
        Err(SignatureError::MissingDate)
    );
}

#[test]
fn badly_formatted_sdk_dates_are_rejected() {
    for date in [
        "2026-11-26T04:18:16Z",
        "20261126T041816",
        "20261126t041816Z",
        "20261326T041816Z",
        "20261126T246016Z",
        "+2026112T041816Z",
        "",
    ] {
        assert_eq!(
            verify(&with_date(Some(date)), SK, now()),
            Err(SignatureError::BadDate),
            "{date:?}"
        );
    }
}

#[test]
fn parse_sdk_date_reads_utc() {
    let t = parse_sdk_date("20250101T000000Z").unwrap();
    assert_eq!(t.to_rfc3339(), "2025-01-01T00:00:00+00:00");
    assert_eq!(format_sdk_date(t), "20250101T000000Z");
}

#[test]
fn skew_of_exactly_fifteen_minutes_either_way_is_accepted() {
    let signed_at = time(CAPTURED_DATE);
    let limit = TimeDelta::seconds(MAX_CLOCK_SKEW_SECONDS);
    assert_eq!(check_clock_skew(signed_at, signed_at + limit), Ok(()));
    assert_eq!(check_clock_skew(signed_at, signed_at - limit), Ok(()));
    let request = captured_create(CREATE_BODY);
    assert_eq!(verify(&request, SK, signed_at + limit), Ok(()));
}

#[test]
fn skew_beyond_fifteen_minutes_is_rejected_before_the_signature() {
    let signed_at = time(CAPTURED_DATE);
    let beyond = TimeDelta::seconds(MAX_CLOCK_SKEW_SECONDS + 1);
    let request = captured_create(CREATE_BODY);
    assert_eq!(
        verify(&request, SK, signed_at + beyond),
        Err(SignatureError::ClockSkew)
    );
    assert_eq!(
        verify(&request, SK, signed_at - beyond),
        Err(SignatureError::ClockSkew)
    );
}

// --------------------------------------------------- the Authorization header

#[test]
fn parse_authorization_reads_the_three_parts() {
    let auth = parse_authorization(&auth_header(SDK_SIGNED, CREATE_SIG)).unwrap();
    assert_eq!(auth.access_key(), AK);
    assert_eq!(
        auth.signed_headers(),
        names(&[
            "content-type",
            "host",
            "user-agent",
            "x-project-id",
            "x-sdk-date"
        ])
    );
    assert_eq!(hex::encode(auth.signature()), CREATE_SIG);
}

#[test]
fn parse_authorization_tolerates_extra_spaces_and_any_order() {
    let header = format!(
        "  SDK-HMAC-SHA256   Signature={CREATE_SIG},SignedHeaders=host;x-sdk-date,     Access = {AK}  "
    );
    let auth = parse_authorization(&header).unwrap();
    assert_eq!(auth.access_key(), AK);
    assert_eq!(auth.signed_headers(), names(&["host", "x-sdk-date"]));
}

#[test]
fn other_algorithms_are_unsupported() {
    for header in [
        "Bearer abc".to_owned(),
        format!(
            "V11-HMAC-SHA256 Credential={AK}/20250101/cn-north-4/vpn, SignedHeaders=host, Signature={CREATE_SIG}"
        ),
        format!("SDK-HMAC-SM3 Access={AK}, SignedHeaders=host, Signature={CREATE_SIG}"),
        format!("sdk-hmac-sha256 Access={AK}, SignedHeaders=host, Signature={CREATE_SIG}"),
        String::new(),
    ] {
        assert_eq!(
            parse_authorization(&header),
            Err(SignatureError::UnsupportedAlgorithm),
            "{header:?}"
        );
    }
}

#[test]
fn malformed_authorization_headers_are_rejected() {
    let sig = CREATE_SIG;
    let cases = [
        "SDK-HMAC-SHA256".to_owned(),
        format!("SDK-HMAC-SHA256 Access={AK}, SignedHeaders=host"),
        format!("SDK-HMAC-SHA256 Access={AK}, Signature={sig}"),
        format!("SDK-HMAC-SHA256 SignedHeaders=host, Signature={sig}"),
        format!("SDK-HMAC-SHA256 Access=, SignedHeaders=host, Signature={sig}"),
        format!("SDK-HMAC-SHA256 Access={AK}, SignedHeaders=, Signature={sig}"),
        format!("SDK-HMAC-SHA256 Access={AK}, SignedHeaders=host;;x-sdk-date, Signature={sig}"),
        format!("SDK-HMAC-SHA256 Access={AK}, SignedHeaders=ho st, Signature={sig}"),
        format!(
            "SDK-HMAC-SHA256 Access={AK}, SignedHeaders=host, Signature={}",
            sig.to_uppercase()
        ),
        format!(
            "SDK-HMAC-SHA256 Access={AK}, SignedHeaders=host, Signature={}",
            &sig[1..]
        ),
        format!("SDK-HMAC-SHA256 Access={AK}, SignedHeaders=host, Signature={sig}0"),
        format!("SDK-HMAC-SHA256 Access={AK}, SignedHeaders=host, Signature={sig}, Access={AK}"),
        format!("SDK-HMAC-SHA256 Access={AK}, SignedHeaders=host, Signature={sig}, Region=x"),
        format!("SDK-HMAC-SHA256 Access={AK} SignedHeaders=host Signature={sig}"),
        format!("SDK-HMAC-SHA256 Access={AK}, SignedHeaders=host, Signature={sig},"),
    ];
    for header in cases {
        assert!(
            matches!(
                parse_authorization(&header),
                Err(SignatureError::MalformedAuthorization(_))
            ),
            "{header:?} gave {:?}",
            parse_authorization(&header)
        );
    }
}

#[test]
fn missing_authorization_is_reported_as_such() {
    let request =
        SignedRequest::new("GET", MONITORS_PATH, "", b"").with_header("X-Sdk-Date", CAPTURED_DATE);
    assert_eq!(
        verify(&request, SK, now()),
        Err(SignatureError::MissingAuthorization)
    );
}

#[test]
fn two_authorization_headers_are_malformed() {
    let request = captured_create(CREATE_BODY)
        .with_header("Authorization", &auth_header(SDK_SIGNED, CREATE_SIG));
    assert!(matches!(
        verify(&request, SK, now()),
        Err(SignatureError::MalformedAuthorization(_))
    ));
}

// ------------------------------------------------------ canonical parts

#[test]
fn canonical_uri_appends_slash_and_reencodes_segments() {
    assert_eq!(canonical_uri(""), "/");
    assert_eq!(canonical_uri("/"), "/");
    assert_eq!(canonical_uri("/v5/x/"), "/v5/x/");
    assert_eq!(
        canonical_uri("/v5/%7Bproject_id%7D/vpn"),
        "/v5/%7Bproject_id%7D/vpn/"
    );
    assert_eq!(
        canonical_uri("/a b/c+d/e%2bf/~x.y-z_"),
        "/a%20b/c%2Bd/e%2Bf/~x.y-z_/"
    );
    assert_eq!(canonical_uri("/caf%C3%A9"), "/caf%C3%A9/");
    // An encoded slash is decoded and then splits, exactly as the SDK's unquote().split('/').
    assert_eq!(canonical_uri("/a%2Fb"), "/a/b/");
}

#[test]
fn canonical_query_edge_cases() {
    assert_eq!(canonical_query(""), "");
    assert_eq!(canonical_query("flag"), "flag=");
    assert_eq!(canonical_query("b=1&&a="), "a=&b=1");
    assert_eq!(
        canonical_query("dim.0=evpn_connection_id,cae2"),
        "dim.0=evpn_connection_id%2Ccae2"
    );
    assert_eq!(canonical_query("q=a%2fb"), "q=a%2Fb");
    assert_eq!(canonical_query("q=caf%C3%A9"), "q=caf%C3%A9");
    assert_eq!(canonical_query("k=v=w"), "k=v%3Dw");
}

#[test]
fn canonical_query_reads_plus_as_space_and_keeps_encoded_plus() {
    assert_eq!(canonical_query("q=a+b"), "q=a%20b");
    assert_eq!(canonical_query("q=a%2Bb"), "q=a%2Bb");
}

#[test]
fn ces_captured_query_is_already_canonical() {
    let query = "dim.0=evpn_connection_id%2Ccae286f2-0000-4000-8000-e22416ca1220&filter=average&from=1735686000000&metric_name=link_average_latency&namespace=SYS.VPN&period=60&to=1735689600000";
    assert_eq!(canonical_query(query), query);
}

#[test]
fn canonical_headers_trim_values_and_fill_absent_ones_with_empty() {
    let headers = canonical_headers(&names(&["host", "x-absent"]), |name| {
        (name == "host").then(|| "  127.0.0.1:1 \t".to_owned())
    });
    assert_eq!(headers, "host:127.0.0.1:1\nx-absent:\n");
}

#[test]
fn payload_hash_rules() {
    assert_eq!(payload_hash(b"", None), EMPTY_PAYLOAD_SHA256);
    assert_eq!(
        payload_hash(b"", Some(UNSIGNED_PAYLOAD)),
        EMPTY_PAYLOAD_SHA256
    );
    assert_eq!(payload_hash(b"x", Some(UNSIGNED_PAYLOAD)), UNSIGNED_PAYLOAD);
    assert_eq!(payload_hash(b"x", Some("")), sha256_hex(b"x"));
    assert_eq!(
        payload_hash(CREATE_BODY, None),
        "8771e3ddd7ad640e902a6dda954f9595587b96cdd5f2dd8503dfcbdcb7cb3988"
    );
}

// ------------------------------------------------- tolerances and hardening

/// Signs like the Go SDK would: keys lowercased in the canonical query.
fn go_style_signature(query_as_signed: &str, date: &str) -> String {
    let signed = names(&["host", "x-sdk-date"]);
    let headers = format!("host:{CAPTURED_HOST}\nx-sdk-date:{date}\n");
    let creq = canonical_request(
        "GET",
        &canonical_uri(MONITORS_PATH),
        query_as_signed,
        &headers,
        &signed,
        EMPTY_PAYLOAD_SHA256,
    );
    sign(SK, &string_to_sign(date, &creq))
}

#[test]
fn go_sdk_lowercased_query_keys_are_accepted_on_retry() {
    let signature = go_style_signature("limit=10&marker=x", CAPTURED_DATE);
    let request = SignedRequest::new("GET", MONITORS_PATH, "Marker=x&LIMIT=10", b"")
        .with_header("Host", CAPTURED_HOST)
        .with_header("X-Sdk-Date", CAPTURED_DATE)
        .with_header("Authorization", &auth_header("host;x-sdk-date", &signature));
    assert_eq!(verify(&request, SK, now()), Ok(()));
}

#[test]
fn lowercased_key_retry_does_not_accept_changed_values() {
    let signature = go_style_signature("limit=10&marker=x", CAPTURED_DATE);
    let request = SignedRequest::new("GET", MONITORS_PATH, "Marker=y&LIMIT=10", b"")
        .with_header("Host", CAPTURED_HOST)
        .with_header("X-Sdk-Date", CAPTURED_DATE)
        .with_header("Authorization", &auth_header("host;x-sdk-date", &signature));
    assert_eq!(
        verify(&request, SK, now()),
        Err(SignatureError::SignatureMismatch)
    );
}

#[test]
fn go_sdk_plus_encoded_space_verifies_against_percent_20_signature() {
    let signature = go_style_signature("name=a%20b", CAPTURED_DATE);
    let request = SignedRequest::new("GET", MONITORS_PATH, "name=a+b", b"")
        .with_header("Host", CAPTURED_HOST)
        .with_header("X-Sdk-Date", CAPTURED_DATE)
        .with_header("Authorization", &auth_header("host;x-sdk-date", &signature));
    assert_eq!(verify(&request, SK, now()), Ok(()));
}

fn content_hash_request<'a>(
    body: &'a [u8],
    content_sha256: &str,
    signed: &str,
    signature: &str,
) -> SignedRequest<'a> {
    SignedRequest::new("POST", MONITORS_PATH, "", body)
        .with_header("Content-Type", "application/octet-stream")
        .with_header("Host", CAPTURED_HOST)
        .with_header("X-Sdk-Date", CAPTURED_DATE)
        .with_header("X-Sdk-Content-Sha256", content_sha256)
        .with_header("Authorization", &auth_header(signed, signature))
}

/// Signature over `content-type;host;x-sdk-content-sha256;x-sdk-date` with the given payload hash.
fn content_hash_signature(content_sha256: &str, payload: &str) -> String {
    let signed = names(&["content-type", "host", "x-sdk-content-sha256", "x-sdk-date"]);
    let headers = format!(
        "content-type:application/octet-stream\nhost:{CAPTURED_HOST}\nx-sdk-content-sha256:{content_sha256}\nx-sdk-date:{CAPTURED_DATE}\n"
    );
    let creq = canonical_request(
        "POST",
        &canonical_uri(MONITORS_PATH),
        "",
        &headers,
        &signed,
        payload,
    );
    sign(SK, &string_to_sign(CAPTURED_DATE, &creq))
}

const CONTENT_SIGNED: &str = "content-type;host;x-sdk-content-sha256;x-sdk-date";

#[test]
fn signed_unsigned_payload_covers_headers_but_not_the_body() {
    let signature = content_hash_signature(UNSIGNED_PAYLOAD, UNSIGNED_PAYLOAD);
    let original = content_hash_request(b"abc", UNSIGNED_PAYLOAD, CONTENT_SIGNED, &signature);
    assert_eq!(verify(&original, SK, now()), Ok(()));
    let other_body = content_hash_request(b"xyz", UNSIGNED_PAYLOAD, CONTENT_SIGNED, &signature);
    assert_eq!(verify(&other_body, SK, now()), Ok(()));
}

#[test]
fn empty_body_with_unsigned_payload_accepts_old_and_new_sdk_hashing() {
    let new_sdk = content_hash_signature(UNSIGNED_PAYLOAD, EMPTY_PAYLOAD_SHA256);
    let old_sdk = content_hash_signature(UNSIGNED_PAYLOAD, UNSIGNED_PAYLOAD);
    for signature in [new_sdk, old_sdk] {
        let request = content_hash_request(b"", UNSIGNED_PAYLOAD, CONTENT_SIGNED, &signature);
        assert_eq!(verify(&request, SK, now()), Ok(()));
    }
}

#[test]
fn signed_content_hash_must_match_the_body() {
    let claimed = sha256_hex(b"abc");
    let signature = content_hash_signature(&claimed, &claimed);
    let honest = content_hash_request(b"abc", &claimed, CONTENT_SIGNED, &signature);
    assert_eq!(verify(&honest, SK, now()), Ok(()));
    let swapped = content_hash_request(b"abd", &claimed, CONTENT_SIGNED, &signature);
    assert_eq!(
        verify(&swapped, SK, now()),
        Err(SignatureError::ContentHashMismatch)
    );
}

#[test]
fn unsigned_content_hash_header_cannot_launder_a_swapped_body() {
    // The genuine request: JSON body, content hash header not signed.
    let original = vector_request("POST", MONITORS_PATH, "", CREATE_BODY);
    let genuine = sign_request(AK, SK, &original).unwrap();
    // An attacker swaps the body and adds the original hash as an unsigned header.
    let tampered = vector_request("POST", MONITORS_PATH, "", b"{\"connection_monitor\": {}}")
        .with_header("X-Sdk-Content-Sha256", &sha256_hex(CREATE_BODY))
        .with_header("Authorization", &genuine);
    assert_eq!(
        verify(&tampered, SK, time(V_DATE)),
        Err(SignatureError::SignatureMismatch)
    );
}

// ------------------------------------------------------------- client side

#[test]
fn sign_request_round_trips_through_verify() {
    let request = SignedRequest::new("GET", "/V1.0/pid/metric-data", "b=2&a=x%20y&a=1", b"")
        .with_header("Host", "localhost:1")
        .with_header("X-Sdk-Date", "20250101T000000Z")
        .with_header("X_Ignored", "not signed");
    let header = sign_request("AK1", b"sk", &request).unwrap();
    assert!(
        header.contains("SignedHeaders=host;x-sdk-date,"),
        "{header}"
    );
    let signed = request.with_header("Authorization", &header);
    assert_eq!(verify(&signed, b"sk", time("20250101T000000Z")), Ok(()));
}

#[test]
fn sign_request_needs_a_valid_date_and_access_key() {
    let no_date = SignedRequest::new("GET", "/", "", b"").with_header("Host", "h");
    assert_eq!(
        sign_request(AK, SK, &no_date),
        Err(SignatureError::MissingDate)
    );
    let bad_date = no_date.clone().with_header("X-Sdk-Date", "yesterday");
    assert_eq!(
        sign_request(AK, SK, &bad_date),
        Err(SignatureError::BadDate)
    );
    let ok = no_date.with_header("X-Sdk-Date", V_DATE);
    assert!(matches!(
        sign_request("A K", SK, &ok),
        Err(SignatureError::MalformedAuthorization(_))
    ));
}
