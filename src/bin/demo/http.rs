//! Serving Streamable HTTP (`--http PORT`, at `/mcp` on 127.0.0.1): rmcp's session service
//! behind the layer that cuts `test_reconnection`'s stream. It also holds what the SSE transport
//! shares with it: binding the port, the readiness line tests wait for, and `--require-token`
//! with `--oauth-issuer` (a 401 without the bearer token, RFC 9728 metadata).

use std::sync::Arc;

use anyhow::Context as _;
use axum::{Router, serve::ListenerExt as _};
use rmcp::transport::{
    StreamableHttpServerConfig, StreamableHttpService,
    streamable_http_server::session::local::LocalSessionManager,
};
use tracing::info;

use crate::{conformance, server::DemoServer, shared::Shared};

pub(crate) async fn bind(
    port: u16,
) -> anyhow::Result<(tokio::net::TcpListener, std::net::SocketAddr)> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}

/// Prints the one line tests wait for (on stderr: stdout is never used outside stdio mode).
#[allow(
    clippy::print_stderr,
    reason = "a fixed, parseable readiness line, not a log"
)]
pub(crate) fn announce(addr: std::net::SocketAddr, path: &str) {
    eprintln!("listening on http://{addr}{path}");
}

/// With a required token: answers 401 to requests without `Authorization: Bearer TOKEN`; with
/// an issuer too, publishes protected-resource metadata (RFC 9728) for the endpoint at `path`
/// and points the 401's challenge at it.
pub(crate) fn protect(
    mut app: Router,
    addr: std::net::SocketAddr,
    path: &'static str,
    require_token: Option<String>,
    oauth_issuer: Option<String>,
) -> Router {
    let metadata_path = format!("/.well-known/oauth-protected-resource{path}");
    if let Some(token) = require_token {
        let expected = format!("Bearer {token}");
        let challenge = match &oauth_issuer {
            Some(_) => format!("Bearer resource_metadata=\"http://{addr}{metadata_path}\""),
            None => "Bearer".to_owned(),
        };
        app = app.layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                let challenge = challenge.clone();
                let allowed = request
                    .headers()
                    .get(axum::http::header::AUTHORIZATION)
                    .is_some_and(|value| value.as_bytes() == expected.as_bytes());
                async move {
                    if allowed {
                        next.run(request).await
                    } else {
                        info!("request without the required bearer token: 401");
                        axum::response::IntoResponse::into_response((
                            axum::http::StatusCode::UNAUTHORIZED,
                            [(axum::http::header::WWW_AUTHENTICATE, challenge)],
                            "unauthorized",
                        ))
                    }
                }
            },
        ));
    }
    if let Some(issuer) = oauth_issuer {
        let metadata = serde_json::json!({
            "resource": format!("http://{addr}{path}"),
            "authorization_servers": [issuer],
            "scopes_supported": ["mcp"],
        });
        app = app.route(
            &metadata_path,
            axum::routing::get(move || {
                let metadata = metadata.clone();
                async move { axum::Json(metadata) }
            }),
        );
    }
    app
}

pub(crate) async fn serve_http(
    shared: Arc<Shared>,
    port: u16,
    require_token: Option<String>,
    oauth_issuer: Option<String>,
) -> anyhow::Result<()> {
    let (listener, addr) = bind(port).await?;
    let resumptions = shared.fixtures.resumptions.clone();
    let service = StreamableHttpService::new(
        move || Ok(DemoServer::new_session(&shared)),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    let app =
        Router::new()
            .route_service("/mcp", service)
            .layer(axum::middleware::from_fn_with_state(
                resumptions,
                conformance::drop_stream_mid_call,
            ));
    let app = protect(app, addr, "/mcp", require_token, oauth_issuer);
    announce(addr, "/mcp");
    // TCP_NODELAY: otherwise an SSE answer's second write waits ~40 ms for a delayed ACK.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await?;
    Ok(())
}
