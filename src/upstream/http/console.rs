//! The console: the pages a browser gets at `/console/` (and at `/`, redirected there, when it
//! asks for HTML). Its files are compiled into the binary (no build step, nothing fetched), a
//! single page that works through the JSON API (`api.rs`, `api_v1.rs`). Served under the API's
//! rules but without the token, which the page asks for when the API wants one: the files hold
//! no data. A strict Content-Security-Policy keeps them to this origin; no framing.

use std::sync::Arc;

use axum::Json;
use axum::Router as AxumRouter;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde_json::{Value, json};

/// What the console's files may load and where they may connect: this origin only (images and
/// audio from a tool's result come as `data:` URLs).
const POLICY: &str = "default-src 'self'; img-src 'self' data:; media-src 'self' data:; \
                      script-src 'self'; style-src 'self'; connect-src 'self'; \
                      frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

const INDEX: &str = include_str!("console/index.html");
const SCRIPT: &str = include_str!("console/app.js");
const STYLE: &str = include_str!("console/style.css");

/// The console's routes; the caller puts them behind the page rules.
pub(super) fn routes<S: Clone + Send + Sync + 'static>() -> AxumRouter<S> {
    AxumRouter::new()
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route(
            "/console/",
            get(|| async { file(INDEX, "text/html; charset=utf-8") }),
        )
        .route(
            "/console/app.js",
            get(|| async { file(SCRIPT, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/console/style.css",
            get(|| async { file(STYLE, "text/css; charset=utf-8") }),
        )
}

fn file(body: &'static str, media: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POLICY),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // The files change with the binary: a browser asks again each time.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// A browser's GET of `/` (it asks for HTML, not an event stream) goes to the console; every
/// MCP use of `/` (POST, DELETE, a GET for the event stream) passes untouched.
pub(super) async fn browsers_to_console(request: Request, next: Next) -> Response {
    if request.uri().path() == "/" && request.method() == Method::GET && wants_html(&request) {
        return (StatusCode::SEE_OTHER, [(header::LOCATION, "/console/")]).into_response();
    }
    next.run(request).await
}

fn wants_html(request: &Request) -> bool {
    let accept = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let media = |name: &str| {
        accept
            .split(',')
            .any(|part| part.split(';').next().unwrap_or("").trim() == name)
    };
    media("text/html") && !media("text/event-stream")
}

/// Whose console a page shows, for `GET /api/v1/console`.
#[derive(Clone, Debug)]
pub(crate) enum Attachment {
    /// The proxy serving it over HTTP.
    Http,
    /// A proxy serving a client on stdio, reached through its control channel.
    Stdio { pid: u32 },
    /// The console command's own connections (no proxy was running).
    Standalone,
}

impl Attachment {
    fn describe(&self) -> Value {
        match self {
            Attachment::Http => json!({ "attached": "http" }),
            Attachment::Stdio { pid } => json!({
                "attached": "stdio",
                "pid": pid,
                "note": format!("the proxy your MCP client runs (process {pid})"),
            }),
            Attachment::Standalone => json!({
                "attached": "standalone",
                "note": "no running proxy was found: this console runs its own connections to \
                         the configured servers, not your MCP client's",
            }),
        }
    }
}

/// `GET /api/v1/console`: whose console this is.
pub(super) fn route<S: Clone + Send + Sync + 'static>(attachment: Attachment) -> AxumRouter<S> {
    let answer = Arc::new(attachment.describe());
    AxumRouter::new().route(
        "/api/v1/console",
        get(move || {
            let answer = answer.clone();
            async move { Json((*answer).clone()) }
        }),
    )
}
