//! The HTTP layer below the router: requests hyper cannot parse are
//! answered in the service's error format with a request id, slow and idle
//! connections are cut off at the configured timeouts, and the connection
//! cap refuses one more with 429 while normal requests keep being answered.
//! Raw sockets: these are requests no HTTP client library would send.

use crate::helpers::TestApp;
use serde_json::Value;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn addr(app: &TestApp) -> SocketAddr {
    app.base
        .trim_start_matches("http://")
        .parse()
        .expect("base is http://ADDR:PORT")
}

/// A response read off a raw connection: status, lower-cased head, body.
struct RawResp {
    status: u16,
    head: String,
    body: String,
}

impl RawResp {
    /// Asserts the `APIGW` error body with `status` and `code` whose
    /// request id is the `x-request-id` header's; returns the message.
    fn assert_gateway_error(&self, status: u16, code: &str) -> String {
        assert_eq!(self.status, status, "{}\n\n{}", self.head, self.body);
        assert!(
            self.head.contains("content-type: application/json"),
            "{}",
            self.head
        );
        let rid = self
            .head
            .lines()
            .find_map(|l| l.strip_prefix("x-request-id: "))
            .unwrap_or_else(|| panic!("no x-request-id in {}", self.head))
            .trim()
            .to_string();
        let v: Value = serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body));
        assert_eq!(v["error_code"], code, "{}", self.body);
        assert_eq!(v["request_id"], rid.as_str(), "{}", self.body);
        assert_eq!(v.as_object().unwrap().len(), 3, "{}", self.body);
        v["error_msg"].as_str().unwrap().to_string()
    }
}

/// Reads one response (head and a `content-length` body) or until EOF.
async fn read_response(s: &mut TcpStream) -> RawResp {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut chunk))
            .await
            .expect("a response within 10 s")
            .expect("read");
        assert!(
            n > 0,
            "connection closed before a response head: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut chunk))
            .await
            .expect("the body within 10 s")
            .expect("read");
        assert!(n > 0, "connection closed inside the body");
        body.extend_from_slice(&chunk[..n]);
    }
    let status = head[9..12].parse().unwrap();
    RawResp {
        status,
        head,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// Sends `bytes` on a new connection and reads the answer.
async fn exchange(app: &TestApp, bytes: &[u8]) -> RawResp {
    let mut s = TcpStream::connect(addr(app)).await.unwrap();
    s.write_all(bytes).await.unwrap();
    read_response(&mut s).await
}

/// Waits until the peer closes `s` (EOF or reset); returns how long it took.
async fn closed_within(s: &mut TcpStream, limit: Duration) -> Duration {
    let t0 = Instant::now();
    let mut chunk = [0u8; 1024];
    loop {
        match tokio::time::timeout(limit, s.read(&mut chunk)).await {
            Err(_) => panic!("still open after {limit:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => return t0.elapsed(),
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn a_path_that_is_not_utf8_is_400_apigw_json() {
    let app = TestApp::spawn().await;
    let r = app.get("/vpn-gateways/%ff%fe").await;
    let msg = r.assert_error(400, "APIGW.0201");
    assert!(msg.contains("path"), "{msg}");
    assert!(!msg.contains("Invalid URL"), "axum's wording leaked: {msg}");
    // The same for a connection-monitor id and on the CES routes.
    app.get("/connection-monitors/%c3%28")
        .await
        .assert_error(400, "APIGW.0201");
}

#[tokio::test]
async fn a_long_uri_is_414_apigw_json_with_a_request_id() {
    let app = TestApp::spawn().await;
    // Over our limit, under hyper's buffer: answered by the router.
    let path = format!("/v5/{}/vpn-gateways/{}", app.project_id, "a".repeat(40_000));
    let req = format!(
        "GET {path} HTTP/1.1\r\nhost: x\r\nx-auth-token: {}\r\n\r\n",
        app.token
    );
    let msg = exchange(&app, req.as_bytes())
        .await
        .assert_gateway_error(414, "APIGW.0201");
    assert!(msg.len() < 200, "the path is not echoed: {msg}");
    // 100 KB: over hyper's head buffer; hyper's own answer, rewritten.
    let req = format!("GET /{} HTTP/1.1\r\nhost: x\r\n\r\n", "a".repeat(100_000));
    let r = exchange(&app, req.as_bytes()).await;
    assert!(r.status == 414 || r.status == 431, "{} {}", r.head, r.body);
    let msg = r.assert_gateway_error(r.status, "APIGW.0201");
    assert!(msg.len() < 200, "{msg}");
}

#[tokio::test]
async fn too_many_headers_are_431_apigw_json_with_a_request_id() {
    let app = TestApp::spawn().await;
    let mut req = String::from("GET /v3/auth/tokens HTTP/1.1\r\nhost: x\r\n");
    for i in 0..120 {
        req.push_str(&format!("x-h{i}: v\r\n"));
    }
    req.push_str("\r\n");
    let msg = exchange(&app, req.as_bytes())
        .await
        .assert_gateway_error(431, "APIGW.0201");
    assert!(msg.contains("100 headers"), "{msg}");
}

#[tokio::test]
async fn malformed_framing_is_400_apigw_json_with_a_request_id() {
    let app = TestApp::spawn().await;
    let p = app.project_id.clone();
    let cases: Vec<Vec<u8>> = vec![
        format!("POST /v5/{p}/customer-gateways HTTP/1.1\r\nhost: x\r\ncontent-length: abc\r\n\r\n{{}}").into_bytes(),
        format!("POST /v5/{p}/customer-gateways HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n{{}}").into_bytes(),
        b"GET / HTTP/1.1\r\nhost: x\r\nx-bad: a\0b\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nhost x\r\n\r\n".to_vec(),
        b"NOT A REQUEST\r\n\r\n".to_vec(),
    ];
    for c in cases {
        let r = exchange(&app, &c).await;
        r.assert_gateway_error(400, "APIGW.0201");
    }
    // The service still answers normally afterwards.
    assert_eq!(app.get("/vpn-gateways").await.status.as_u16(), 200);
}

#[tokio::test]
async fn partial_headers_and_idle_connections_are_closed_at_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = TestApp::spawn_with(
        dir,
        |s| s.http_header_timeout = Duration::from_millis(800),
        false,
    )
    .await;
    // Headers that never end.
    let mut partial = TcpStream::connect(addr(&app)).await.unwrap();
    partial
        .write_all(b"GET /v3/auth/tokens HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    // A connection that never sends anything.
    let mut idle = TcpStream::connect(addr(&app)).await.unwrap();
    let t = closed_within(&mut partial, Duration::from_secs(5)).await;
    assert!(t >= Duration::from_millis(500), "closed too early: {t:?}");
    closed_within(&mut idle, Duration::from_secs(5)).await;

    // Keep-alive: a connection idle after a response is closed too.
    let mut ka = TcpStream::connect(addr(&app)).await.unwrap();
    ka.write_all(b"GET /no-such-thing HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_response(&mut ka).await.status, 404);
    closed_within(&mut ka, Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_body_that_stops_arriving_is_408_at_the_body_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = TestApp::spawn_with(
        dir,
        |s| s.http_body_timeout = Duration::from_millis(800),
        false,
    )
    .await;
    let mut s = TcpStream::connect(addr(&app)).await.unwrap();
    let head = format!(
        "POST /v5/{}/customer-gateways HTTP/1.1\r\nhost: x\r\nx-auth-token: {}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"customer",
        app.project_id, app.token
    );
    let t0 = Instant::now();
    s.write_all(head.as_bytes()).await.unwrap();
    let r = read_response(&mut s).await;
    let t = t0.elapsed();
    let msg = r.assert_gateway_error(408, "APIGW.0201");
    assert!(msg.contains("did not arrive"), "{msg}");
    assert!(t >= Duration::from_millis(500), "answered too early: {t:?}");
    assert!(t < Duration::from_secs(5), "answered too late: {t:?}");
}

#[tokio::test]
async fn connections_over_the_cap_get_429_and_idle_ones_do_not_block_requests() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = TestApp::spawn_with(dir, |s| s.http_max_connections = 40, false).await;
    // The helper's client keeps its own connection; send from raw sockets.
    let mut held = Vec::new();
    for _ in 0..39 {
        held.push(TcpStream::connect(addr(&app)).await.unwrap());
    }
    // Give the server time to accept them all.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut refused = 0;
    for _ in 0..3 {
        let mut s = TcpStream::connect(addr(&app)).await.unwrap();
        s.write_all(b"GET /no-such-thing HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let r = read_response(&mut s).await;
        if r.status == 429 {
            let msg = r.assert_gateway_error(429, "APIGW.0308");
            assert!(msg.contains("at most 40"), "{msg}");
            refused += 1;
        }
    }
    assert!(refused >= 2, "over the cap, connections are refused");
    // Closing idle ones frees room at once.
    held.truncate(20);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t0 = Instant::now();
    let r = exchange(&app, b"GET /no-such-thing HTTP/1.1\r\nhost: x\r\n\r\n").await;
    r.assert_gateway_error(404, "APIGW.0101");
    assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
    drop(held);
}

#[tokio::test]
async fn a_thousand_idle_connections_do_not_delay_a_normal_request() {
    let app = TestApp::spawn().await;
    let mut held = Vec::new();
    for _ in 0..1000 {
        held.push(TcpStream::connect(addr(&app)).await.unwrap());
    }
    // Half of them start a request and stall.
    for s in held.iter_mut().step_by(2) {
        s.write_all(b"POST /v3/auth/tokens HTTP/1.1\r\nhost: x\r\n")
            .await
            .unwrap();
    }
    let t0 = Instant::now();
    let r = app.get("/vpn-gateways").await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.raw);
    assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
    drop(held);
}
