//! The rate limits at the guard: which requests count (a POST with a message other than a
//! notification), as what (a tool call or another request), and for whom (the token, or the
//! client's address without one). The windows and their counts are `limits.rs`'s.

use std::net::Ipv4Addr;

use axum::http::Method;
use axum::http::request::Parts;
use serde_json::Value;

use super::refusals::{self, Refused};
use super::{ClientAddr, Guard};
use crate::upstream::http::limits::{Key, Kind};
use crate::upstream::http::sessions::TokenHash;

impl Guard {
    /// 429 with `Retry-After` for a request over its limit.
    pub(super) fn check_rate(
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
        let key = match (token, parts.extensions.get::<ClientAddr>()) {
            (Some(token), _) => Key::Token(*token),
            (None, Some(addr)) => Key::address(addr.0.ip()),
            (None, None) => Key::address(Ipv4Addr::UNSPECIFIED.into()),
        };
        let kind = if tool_call {
            Kind::ToolCalls
        } else {
            Kind::Requests
        };
        self.limits
            .check(key, kind)
            .map_err(|refusal| refusals::rate_limited(id.clone(), &refusal, tool_call))
    }
}
