//! The CORS middleware on every route but the console's and its API's: the original's permissive headers
//! on every answer, and `OPTIONS` answered `200 OK` without reaching the routes. `--cors off`
//! turns it off; which origins may call `/mcp` at all is the `Origin` rule's (`hosts.rs`), not
//! CORS's. The console (`/console/`) and its API (`/api/`) never get CORS: another page may not read documents,
//! configuration or the catalog from a proxy on loopback, nor preflight a change to them.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Guard;
use crate::cli::Cors;

pub(crate) async fn cors(
    State(guard): State<Arc<Guard>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if guard.cors == Cors::Off
        || path.starts_with("/api/")
        || path == "/console"
        || path.starts_with("/console/")
    {
        return next.run(request).await;
    }
    let mut response = if request.method() == Method::OPTIONS {
        (StatusCode::OK, "OK").into_response()
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, DELETE, OPTIONS"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(
            "Content-Type, Authorization, Mcp-Session-Id, Mcp-Protocol-Version, Last-Event-ID, Mcp-Method, Mcp-Name",
        ),
    );
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Mcp-Session-Id, Mcp-Protocol-Version"),
    );
    response
}
