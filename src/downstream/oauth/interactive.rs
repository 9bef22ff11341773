//! `pluggedin-mcp-proxy auth <server>`: the authorization with a user. It asks the server for its
//! challenge, shows the user the authorization URL, receives the redirect on a loopback listener
//! and stores the tokens, which a running proxy then takes up.

use std::time::Duration;

use super::redirect::redirect_uri;
use super::{Challenge, OAuth, OAuthError, ShowUrl, protocol};

/// `pluggedin-mcp-proxy auth <server>`: asks the server for its challenge, runs the
/// authorization with a loopback redirect listener (`show` gets the URL to open) and stores the
/// tokens, which a running proxy then takes up.
pub async fn authorize_server(
    name: &str,
    config: &crate::config::ServerConfig,
    show: &ShowUrl<'_>,
) -> Result<(), String> {
    let (url, headers, sse) = match &config.transport {
        crate::config::TransportConfig::StreamableHttp { url, headers } => (url, headers, false),
        crate::config::TransportConfig::Sse { url, headers } => (url, headers, true),
        crate::config::TransportConfig::Stdio { .. } => {
            return Err(format!(
                "server \"{name}\" is a stdio server; OAuth applies to HTTP servers"
            ));
        }
        crate::config::TransportConfig::StartedHttp(_) => {
            return Err(format!(
                "server \"{name}\" is started by the proxy and reached on this machine; OAuth \
                 applies to remote HTTP servers"
            ));
        }
    };
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    // The challenge: what the server answers a request without a token.
    let mut probe = if sse {
        http.get(url.clone()).header("accept", "text/event-stream")
    } else {
        http.post(url.clone())
        .header("accept", "application/json, text/event-stream")
        .json(&serde_json::json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                       "clientInfo": {"name": "pluggedin-mcp-proxy", "version": env!("CARGO_PKG_VERSION")}}
        }))
    };
    for (key, value) in headers {
        if !key.eq_ignore_ascii_case("authorization") {
            probe = probe.header(key, value.expose());
        }
    }
    let response = probe
        .send()
        .await
        .map_err(|e| format!("cannot reach {url}: {e}"))?;
    let challenge = response
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|value| value.to_str().ok())
        .map(Challenge::parse)
        .unwrap_or_default();
    let oauth = OAuth::new(name, url.clone(), config.oauth.clone(), http);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", config.oauth.redirect_port))
        .await
        .map_err(|e| format!("cannot listen for the redirect: {e}"))?;
    oauth
        .authorize_interactive(&challenge, listener, show)
        .await
        .map_err(|e| e.to_string())
}

impl OAuth {
    /// Runs the authorization flow with a user: `listener` receives the redirect, `show` is
    /// given the URL the user opens.
    pub async fn authorize_interactive(
        &self,
        challenge: &Challenge,
        listener: tokio::net::TcpListener,
        show: &ShowUrl<'_>,
    ) -> Result<(), OAuthError> {
        let _flow = self.flow.lock().await;
        let port = listener
            .local_addr()
            .map_err(|e| protocol(format!("the redirect listener has no address: {e}")))?
            .port();
        let redirect_uri = redirect_uri(port);
        self.run_flow(challenge, &redirect_uri, Some((listener, show)))
            .await
    }
}
