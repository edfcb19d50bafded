//! The dashboard's static files: `GET /` (the login page), the pages under
//! `/dashboard/...` and their assets under `/dashboard/assets/...`, from
//! `crates/api/dashboard/` embedded in the binary (rust-embed; a debug build
//! reads the folder from disk, so pages can be edited without a rebuild).
//!
//! The pages are plain HTML, CSS and ES modules, with uPlot vendored under
//! `assets/vendor/uplot/`: nothing is fetched from elsewhere, and they read
//! only the public API (IAM tokens, `/v5`, the CES metric API and vpnmon's
//! `/vpnmon/{project_id}/...` endpoints) with the token kept in the
//! browser's `sessionStorage`. Serving them needs no credentials; every
//! datum they show does. The content security policy allows scripts and
//! connections to this origin only, so an injected script cannot read the
//! token and send it elsewhere.

use crate::json::HwPath;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(rust_embed::Embed)]
#[folder = "dashboard/"]
struct Files;

const CSP: &str = "default-src 'self'; script-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; style-src 'self'; \
                   frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Serves embedded file `path`, honouring `If-None-Match`; a plain 404
/// when there is none.
fn serve(path: &str, req: &HeaderMap) -> Response {
    let Some(file) = Files::get(path) else {
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "not found\n",
        )
            .into_response();
    };
    let etag = format!("\"{}\"", hex(&file.metadata.sha256_hash()[..16]));
    let mut headers = HeaderMap::new();
    let mime = match file.metadata.mimetype() {
        "text/html" => "text/html; charset=utf-8",
        "text/css" => "text/css; charset=utf-8",
        m if m.contains("javascript") => "text/javascript; charset=utf-8",
        m => m,
    };
    if let Ok(v) = HeaderValue::from_str(mime) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    // Revalidate every time: a new binary may carry new files.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    let fresh = req
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    if fresh {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    (StatusCode::OK, headers, file.data.into_owned()).into_response()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `GET /`: the login page.
pub async fn login(req: HeaderMap) -> Response {
    serve("index.html", &req)
}

/// `GET /dashboard` and `/dashboard/`: the overview.
pub async fn overview(req: HeaderMap) -> Response {
    serve("overview.html", &req)
}

/// `GET /dashboard/monitors/{monitor_id}`: one monitor's charts (the page
/// reads the id from its own address).
pub async fn detail(req: HeaderMap, HwPath(_): HwPath<String>) -> Response {
    serve("detail.html", &req)
}

/// `GET /dashboard/alarms`: the alarm rules page (list, enable/disable,
/// delete, create on a connection).
pub async fn alarms(req: HeaderMap) -> Response {
    serve("alarms.html", &req)
}

/// `GET /dashboard/assets/{*path}`: scripts, styles, the vendored uPlot.
pub async fn asset(req: HeaderMap, HwPath(path): HwPath<String>) -> Response {
    if path.split('/').any(|seg| seg.is_empty() || seg == "..") {
        return serve("", &req);
    }
    serve(&format!("assets/{path}"), &req)
}
