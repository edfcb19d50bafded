//! The server loop: accepts connections and serves the router on each, with
//! the limits a service on a network needs and `axum::serve` does not have.
//!
//! - **A cap on open connections** ([`Limits::max_connections`]): one more
//!   is answered `429 APIGW.0308` at once and closed, so a flood of idle
//!   sockets costs a bounded amount of memory and file descriptors.
//! - **A header-read timeout** ([`Limits::header_timeout`]): a request's
//!   line and headers must arrive within it, counted from the moment the
//!   connection waits for them, i.e. from its start or from the end of the
//!   previous response; so it is also the keep-alive idle timeout, and a
//!   client sending headers a byte at a time is cut off at the deadline.
//! - **A body-read timeout** ([`Limits::body_timeout`]): the whole body
//!   must arrive within it once the handler starts reading (`408`).
//! - **Every error in the service's format**: hyper answers requests it
//!   cannot parse (bad framing, a URI over 64 KiB, too many or too large
//!   headers) itself, with an empty body. The connection's writer
//!   ([`ErrorRewrite`]) recognises such an answer (a response head with no
//!   `X-Request-Id`, which every response of the router carries) and
//!   replaces it with the same status and an `APIGW.0201` body with a new
//!   request id. hyper closes the connection after such an answer, so the
//!   replacement cannot desynchronise a keep-alive stream.

use crate::error::Code;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::{ServiceBuilder, ServiceExt};
use tower_http::timeout::RequestBodyTimeoutLayer;

/// Most headers a request may carry (hyper's default, kept explicit).
pub const MAX_HEADERS: usize = 100;
/// Most bytes of a request's line and headers together.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Most bytes of a request URI that the router accepts (longer ones get
/// `414` from the request-context middleware; hyper's own limit is 64 KiB).
pub const MAX_URI_BYTES: usize = 32 * 1024;

/// Connection limits of one listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Time allowed for a request's line and headers (also the keep-alive
    /// idle timeout).
    pub header_timeout: Duration,
    /// Time allowed for a request's body, once the handler reads it.
    pub body_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(60),
            max_connections: 10_000,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then lets the
/// open requests finish (at most 10 s) and returns.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_headers(MAX_HEADERS)
        .max_buf_size(MAX_HEAD_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEAD_BYTES as u32)
        .keep_alive_interval(limits.header_timeout)
        .keep_alive_timeout(Duration::from_secs(20));
    let service = ServiceBuilder::new()
        .layer(RequestBodyTimeoutLayer::new(limits.body_timeout))
        .service(app);
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: wait a little instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(%peer, limit = limits.max_connections, "connection refused: too many open connections");
            tokio::spawn(refuse(stream, limits.max_connections));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let header_timeout = limits.header_timeout;
        // The client's address, for `ConnectInfo<SocketAddr>` extractors.
        let svc = service.clone().map_request(
            move |mut req: axum::http::Request<hyper::body::Incoming>| {
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                req
            },
        );
        let svc = hyper_util::service::TowerToHyperService::new(svc);
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            // hyper's header timeout starts once the protocol is known;
            // until then (a connection that sends nothing), ours applies.
            if !version_known_within(&stream, header_timeout).await {
                tracing::debug!(%peer, "connection closed: no request within the header timeout");
                drop(permit);
                return;
            }
            let io = TokioIo::new(ErrorRewrite::new(stream));
            let conn = builder.serve_connection_with_upgrades(io, svc).into_owned();
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(10), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open 10 s after shutdown began; closing them");
    }
    Ok(())
}

/// Whether the first bytes of a connection, enough to tell HTTP/1 from
/// HTTP/2's preface, arrive within `limit` (peeked, not consumed).
async fn version_known_within(stream: &TcpStream, limit: Duration) -> bool {
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let wait = async {
        let mut buf = [0u8; 24];
        loop {
            match stream.peek(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) if n >= PREFACE.len() || buf[..n] != PREFACE[..n] => return true,
                // A prefix of the preface: wait for more.
                Ok(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    };
    tokio::time::timeout(limit, wait).await.unwrap_or(false)
}

/// Answers a connection over the cap and closes it.
async fn refuse(mut stream: TcpStream, limit: usize) {
    let msg = format!(
        "The throttling threshold has been reached: too many open connections (at most {limit}); retry later"
    );
    let bytes = error_response(
        "HTTP/1.1 429 Too Many Requests",
        Code::GatewayThrottled,
        &msg,
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(&bytes).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// A full response with the `APIGW` error body, for the answers written
/// below the router.
fn error_response(status_line: &str, code: Code, msg: &str) -> Vec<u8> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let (kc, km) = code.body_keys();
    let body = serde_json::json!({ kc: code.as_str(), km: msg, "request_id": id }).to_string();
    format!(
        "{status_line}\r\ncontent-type: application/json\r\nx-request-id: {id}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The replacement for an empty error answer of hyper's, if `head` is one:
/// the whole response head (up to its blank line) of an HTTP/1 4xx or 5xx
/// response with `content-length: 0` and no `x-request-id`.
fn rewrite(head: &[u8]) -> Option<Vec<u8>> {
    if !(head.starts_with(b"HTTP/1.1 4")
        || head.starts_with(b"HTTP/1.1 5")
        || head.starts_with(b"HTTP/1.0 4")
        || head.starts_with(b"HTTP/1.0 5"))
    {
        return None;
    }
    let end = head.windows(4).position(|w| w == b"\r\n\r\n")?;
    let text = std::str::from_utf8(&head[..end]).ok()?;
    let lower = text.to_ascii_lowercase();
    if lower.contains("\r\nx-request-id:") || !lower.contains("\r\ncontent-length: 0") {
        return None;
    }
    let status_line = text.split("\r\n").next()?;
    let status: u16 = status_line.get(9..12)?.parse().ok()?;
    let (code, msg) = match status {
        400 => (
            Code::GatewayBadRequest,
            "API request error: the request is not valid HTTP/1.1 (its request line, a header or its framing)".to_string(),
        ),
        408 => (
            Code::GatewayRequestTimeout,
            "Request timeout: the request did not arrive in time".to_string(),
        ),
        413 => (
            Code::GatewayBodyTooLarge,
            "Request entity too large".to_string(),
        ),
        414 => (
            Code::GatewayUriTooLong,
            format!("Request URI too large: at most {MAX_URI_BYTES} bytes"),
        ),
        431 => (
            Code::GatewayHeadersTooLarge,
            format!(
                "Request headers too large: at most {MAX_HEADERS} headers and {MAX_HEAD_BYTES} bytes with the request line"
            ),
        ),
        505 => (
            Code::GatewayBadRequest,
            "API request error: only HTTP/1.0, HTTP/1.1 and HTTP/2 are served".to_string(),
        ),
        _ => (
            Code::GatewayBadRequest,
            "API request error: the request could not be read".to_string(),
        ),
    };
    Some(error_response(status_line, code, &msg))
}

/// The connection's stream, with hyper's empty error answers replaced
/// (see the module's documentation).
pub struct ErrorRewrite<IO> {
    inner: IO,
    /// A replacement being written: its bytes, how many are written, and
    /// how many bytes of hyper's the whole replacement stands for.
    pending: Option<(Vec<u8>, usize, usize)>,
}

impl<IO> ErrorRewrite<IO> {
    /// Wraps a stream.
    pub fn new(inner: IO) -> Self {
        ErrorRewrite {
            inner,
            pending: None,
        }
    }
}

impl<IO: AsyncWrite + Unpin> ErrorRewrite<IO> {
    fn drive_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        while let Some((bytes, done, _)) = self.pending.as_mut() {
            if *done == bytes.len() {
                let (_, _, claimed) = self.pending.take().unwrap_or_default();
                return Poll::Ready(Ok(claimed));
            }
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*done..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *done += n;
        }
        Poll::Ready(Ok(0))
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for ErrorRewrite<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for ErrorRewrite<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.pending.is_none() {
            match rewrite(buf) {
                Some(r) => self.pending = Some((r, 0, buf.len())),
                None => return Pin::new(&mut self.inner).poll_write(cx, buf),
            }
        }
        self.drive_pending(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.pending.is_none() {
            let first = bufs.iter().find(|b| !b.is_empty());
            match first.and_then(|b| rewrite(b)) {
                Some(r) => {
                    let total = bufs.iter().map(|b| b.len()).sum();
                    self.pending = Some((r, 0, total));
                }
                None => return Pin::new(&mut self.inner).poll_write_vectored(cx, bufs),
            }
        }
        self.drive_pending(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_hypers_empty_error_answers_only() {
        let bare = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: Wed, 02 Dec 2026 22:15:55 GMT\r\n\r\n";
        let r = String::from_utf8(rewrite(bare).unwrap()).unwrap();
        assert!(r.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(r.contains("\r\nx-request-id: "));
        let body: serde_json::Value =
            serde_json::from_str(r.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        assert_eq!(body["error_code"], "APIGW.0201");
        assert!(body["error_msg"].as_str().unwrap().contains("100 headers"));
        assert_eq!(body["request_id"].as_str().unwrap().len(), 32);

        // The router's own answers carry a request id: left alone.
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\nx-request-id: ab\r\ncontent-length: 0\r\n\r\n";
        assert!(rewrite(ours).is_none());
        // Successes, bodies and answers with content are left alone.
        assert!(rewrite(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(rewrite(b"{\"error_code\":\"x\"}").is_none());
        assert!(rewrite(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 12\r\n\r\n").is_none());
        // A head not yet complete in this write is left alone.
        assert!(rewrite(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n").is_none());
    }
}
