//! [`OAuthHttp`]: rmcp's `StreamableHttpClient` around the transport's own `reqwest::Client` (the
//! one that reports URL-policy refusals for this connection attempt). It sends the current token
//! and, when the server challenges (401, 403 `insufficient_scope`, DPoP `use_dpop_nonce`), answers
//! and sends the request again, a bounded number of times.

use std::collections::HashMap;
use std::sync::Arc;

use futures::stream::BoxStream;
use reqwest::header::{HeaderName, HeaderValue};
use rmcp::model::ClientJsonRpcMessage;
use rmcp::transport::streamable_http_client::{
    SseError, StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse,
    StreamableHttpResponseLimits,
};
use sse_stream::Sse;

use super::{Challenge, OAuth};

/// Authorization attempts for one request before giving up (a server that keeps answering
/// `insufficient_scope` must not loop us).
const MAX_ATTEMPTS: usize = 2;

/// The Streamable HTTP transport's client with OAuth: sends the access token, and authorizes and
/// retries once on a 401 or 403 challenge.
#[derive(Clone)]
pub struct OAuthHttp {
    pub inner: reqwest::Client,
    pub oauth: Arc<OAuth>,
}

type HttpError = StreamableHttpError<reqwest::Error>;

impl OAuthHttp {
    /// The challenge to answer, if `error` is one.
    fn challenge(error: &HttpError) -> Option<Challenge> {
        match error {
            StreamableHttpError::AuthRequired(error) => {
                Some(Challenge::parse(&error.www_authenticate_header))
            }
            StreamableHttpError::InsufficientScope(error) => {
                Some(Challenge::parse(&error.www_authenticate_header))
            }
            _ => None,
        }
    }

    /// Authorizes for `challenge`; the new token, or (authorization failed, logged) `None`.
    async fn answer(&self, challenge: &Challenge) -> Option<String> {
        match self.oauth.authorize(challenge).await {
            Ok(()) => self.oauth.access_token().await,
            Err(error) => {
                tracing::warn!(server = %self.oauth.server, "{error}");
                None
            }
        }
    }

    /// Sends a request with the server's credentials (`send` gets the `auth_header` and custom
    /// headers to use) and, when the server challenges, answers and sends it again: on
    /// `use_dpop_nonce` (RFC 9449 §9) after learning the nonce — rmcp keeps only a 401's
    /// WWW-Authenticate, so a probe whose body no server would act on asks for the `DPoP-Nonce`
    /// header — otherwise after authorizing. When that fails, the server's own answer (401/403)
    /// stands.
    async fn authorized<T, F>(
        &self,
        method: &str,
        uri: &str,
        custom_headers: &HashMap<HeaderName, HeaderValue>,
        mut send: impl FnMut(Option<String>, HashMap<HeaderName, HeaderValue>) -> F,
    ) -> Result<T, HttpError>
    where
        F: Future<Output = Result<T, HttpError>>,
    {
        let mut attempts = 0;
        loop {
            let (token, headers) = self.oauth.credentials(method, uri, custom_headers).await;
            let result = send(token, headers).await;
            let Some(challenge) = result.as_ref().err().and_then(Self::challenge) else {
                return result;
            };
            if attempts >= MAX_ATTEMPTS {
                return result;
            }
            attempts += 1;
            let answered = if challenge.error.as_deref() == Some("use_dpop_nonce") {
                self.oauth.fetch_resource_nonce(uri, custom_headers).await
            } else {
                self.answer(&challenge).await.is_some()
            };
            if !answered {
                return result;
            }
        }
    }
}

impl StreamableHttpClient for OAuthHttp {
    type Error = reqwest::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, HttpError> {
        self.post_message_with_response_limits(
            uri,
            message,
            session_id,
            auth_header,
            custom_headers,
            StreamableHttpResponseLimits::default(),
        )
        .await
    }

    async fn post_message_with_response_limits(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        limits: StreamableHttpResponseLimits,
    ) -> Result<StreamableHttpPostResponse, HttpError> {
        self.authorized("POST", &uri, &custom_headers, |token, headers| {
            self.inner.post_message_with_response_limits(
                uri.clone(),
                message.clone(),
                session_id.clone(),
                token,
                headers,
                limits,
            )
        })
        .await
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), HttpError> {
        let (token, headers) = self
            .oauth
            .credentials("DELETE", &uri, &custom_headers)
            .await;
        self.inner
            .delete_session(uri, session_id, token, headers)
            .await
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, HttpError> {
        self.get_stream_with_max_sse_event_size(
            uri,
            session_id,
            last_event_id,
            auth_header,
            custom_headers,
            usize::MAX,
        )
        .await
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, HttpError> {
        self.authorized("GET", &uri, &custom_headers, |token, headers| {
            self.inner.get_stream_with_max_sse_event_size(
                uri.clone(),
                session_id.clone(),
                last_event_id.clone(),
                token,
                headers,
                max_sse_event_size,
            )
        })
        .await
    }
}
