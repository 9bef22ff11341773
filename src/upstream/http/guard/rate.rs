//! The rate limits at the guard: which requests count (a POST with a message other than a
//! notification), as what (a tool call or another request), and for whom (the token, or the
//! client's address without one, as `client.rs` resolves it). The windows and their counts are
//! `limits.rs`'s.

use axum::http::Method;
use axum::http::request::Parts;
use serde_json::Value;

use super::Guard;
use super::refusals::{self, Refused};
use crate::upstream::http::limits::{Key, Kind};
use crate::upstream::http::sessions::TokenHash;

impl Guard {
    /// 429 with `Retry-After` for a request over its limit.
    pub(super) async fn check_rate(
        &self,
        method: &Method,
        methods: &[String],
        token: Option<&TokenHash>,
        parts: &Parts,
        id: &Value,
    ) -> Result<(), Refused> {
        let counted =
            *method == Method::POST && methods.iter().any(|m| !m.starts_with("notifications/"));
        if !counted {
            return Ok(());
        }
        let tool_call = methods.iter().any(|m| m == "tools/call");
        let key = match token {
            Some(token) => Key::Token(*token),
            None => Key::address(self.client_address(&parts.headers, &parts.extensions)),
        };
        let kind = if tool_call {
            Kind::ToolCalls
        } else {
            Kind::Requests
        };
        self.limits
            .admit(key, kind)
            .await
            .map_err(|refusal| refusals::rate_limited(id.clone(), &refusal, tool_call))
    }
}

impl Guard {
    /// The rate limits for the console's API: a change or a call (any method but GET) counts,
    /// a tool call as one; for the token, else the client's address. 429's message and
    /// `Retry-After` seconds when over.
    pub(crate) async fn check_api_rate(
        &self,
        method: &Method,
        path: &str,
        headers: &axum::http::HeaderMap,
        extensions: &axum::http::Extensions,
    ) -> Result<(), (String, u64)> {
        if *method == Method::GET {
            return Ok(());
        }
        let key = match self.token_of(headers) {
            Ok(Some(token)) => Key::Token(token),
            _ => Key::address(self.client_address(headers, extensions)),
        };
        let kind = if path == "/api/v1/tools/call" {
            Kind::ToolCalls
        } else {
            Kind::Requests
        };
        self.limits
            .admit(key, kind)
            .await
            .map_err(|refusal| (refusal.message(), refusal.retry_after_secs()))
    }
}
