//! OAuth on the legacy HTTP+SSE transport: the token goes with the stream's GET, and a 401 or 403
//! there (whose challenge the transport does not keep) is probed for its challenge, answered, and
//! the connection opened again once.

use std::time::Duration;

use reqwest::header::HeaderValue;
use url::Url;

use super::{Challenge, OAuth};
use crate::downstream::sse::{SseClientTransport, SseTransportError};

impl OAuth {
    /// The challenge of a legacy SSE server: what its stream answers without a token.
    async fn probe_sse(&self, headers: &reqwest::header::HeaderMap) -> Option<Challenge> {
        let mut headers = headers.clone();
        headers.remove(reqwest::header::AUTHORIZATION);
        let response = self
            .http
            .get(self.url.clone())
            .headers(headers)
            .header("accept", "text/event-stream")
            .send()
            .await
            .ok()?;
        let header = response
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)?
            .to_str()
            .ok()?;
        header
            .trim_start()
            .to_ascii_lowercase()
            .starts_with("bearer")
            .then(|| Challenge::parse(header))
    }
}

/// Opens a legacy HTTP+SSE connection with OAuth: the stored token goes along; when the server
/// answers 401 (or 403), its challenge is fetched, the client authorizes and connects again once.
/// (Messages are POSTed with the token of the connection; when it expires, the failed POST ends
/// the connection and the reconnection refreshes it.)
pub(in crate::downstream) async fn connect_sse(
    oauth: &OAuth,
    client: reqwest::Client,
    url: Url,
    headers: reqwest::header::HeaderMap,
    timeout: Duration,
    max_event_bytes: usize,
) -> Result<SseClientTransport, SseTransportError> {
    let with_token = |token: Option<String>| {
        let mut headers = headers.clone();
        if let Some(value) =
            token.and_then(|token| HeaderValue::from_str(&format!("Bearer {token}")).ok())
        {
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        headers
    };
    let token = oauth.access_token().await;
    let first = SseClientTransport::connect(
        client.clone(),
        url.clone(),
        with_token(token),
        timeout,
        max_event_bytes,
    )
    .await;
    let Err(SseTransportError::Status { status, .. }) = &first else {
        return first;
    };
    if *status != reqwest::StatusCode::UNAUTHORIZED && *status != reqwest::StatusCode::FORBIDDEN {
        return first;
    }
    let Some(challenge) = oauth.probe_sse(&headers).await else {
        return first;
    };
    if let Err(error) = oauth.authorize(&challenge).await {
        tracing::warn!(server = %oauth.server, "{error}");
        return first;
    }
    let token = oauth.access_token().await;
    SseClientTransport::connect(
        client.clone(),
        url,
        with_token(token),
        timeout,
        max_event_bytes,
    )
    .await
}
