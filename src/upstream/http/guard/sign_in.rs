//! The console's sign-in with `--require-api-auth`: a page cannot set an `Authorization`
//! header on a navigation, so a token given once (`POST /api/v1/session`) becomes a random
//! session id in a cookie — HttpOnly (scripts cannot read it), SameSite=Strict (no other site's
//! request carries it), expiring after [`TTL`]. Only the console and its API take it; `/mcp`
//! wants the bearer token. The table keeps hashes of the ids, [`MAX_SIGN_INS`] at most (the
//! oldest goes first).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, header};
use subtle::ConstantTimeEq;

use super::Guard;
use crate::sync::lock;
use crate::upstream::http::sessions::TokenHash;

/// The cookie's name.
pub(crate) const COOKIE: &str = "pluggedin_console";
/// How long a sign-in lasts.
pub(crate) const TTL: Duration = Duration::from_secs(12 * 60 * 60);
/// The most sign-ins kept.
const MAX_SIGN_INS: usize = 256;

/// The console's sign-ins, by the hash of their cookie's value.
#[derive(Default)]
pub(crate) struct SignIns(Mutex<HashMap<TokenHash, Instant>>);

impl Guard {
    /// Signs in with `token` (one `--api-token` names): the cookie's value, or why not.
    pub(crate) fn sign_in(&self, token: &str) -> Result<String, &'static str> {
        let presented = super::auth::hash(token.trim());
        let known = self.tokens.iter().fold(false, |found, known| {
            found | bool::from(known.ct_eq(&presented))
        });
        if !known {
            return Err("unknown token");
        }
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|_| "the system has no random numbers")?;
        let id: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
        let mut table = lock(&self.sign_ins.0);
        table.retain(|_, expires| *expires > Instant::now());
        if table.len() >= MAX_SIGN_INS
            && let Some(oldest) = table
                .iter()
                .min_by_key(|(_, expires)| **expires)
                .map(|(key, _)| *key)
        {
            table.remove(&oldest);
        }
        table.insert(super::auth::hash(&id), Instant::now() + TTL);
        Ok(id)
    }

    /// Ends the sign-in the request's cookie names, if any.
    pub(crate) fn sign_out(&self, headers: &HeaderMap) {
        if let Some(id) = cookie(headers) {
            lock(&self.sign_ins.0).remove(&super::auth::hash(id));
        }
    }

    /// Whether the request's cookie names a live sign-in.
    pub(crate) fn signed_in(&self, headers: &HeaderMap) -> bool {
        let Some(id) = cookie(headers) else {
            return false;
        };
        let presented = super::auth::hash(id);
        let table = lock(&self.sign_ins.0);
        // Looked up by hash: the table's keys are hashes, so timing says nothing of the id.
        table
            .get(&presented)
            .is_some_and(|expires| *expires > Instant::now())
    }
}

/// The console's cookie among the request's cookies.
fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use axum::http::HeaderValue;

    use super::*;
    use crate::cli::Cors;
    use crate::secret::Secret;
    use crate::upstream::http::guard::{GuardConfig, Hosts};

    fn guard() -> Guard {
        let config = GuardConfig {
            require_auth: true,
            tokens: vec![Secret::new("right-token")],
            rate_limit_tools: 0,
            rate_limit_requests: 0,
            trusted_proxies: Vec::new(),
            allowed_origins: None,
            named_origins: Vec::new(),
            max_body_bytes: 1024,
            stream_answers: false,
        };
        Guard::new(config, Cors::Off, Hosts::new(["localhost"]), None)
    }

    fn with_cookie(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn a_token_becomes_a_cookie_that_signs_in_until_signed_out() {
        let guard = guard();
        assert_eq!(guard.sign_in("wrong"), Err("unknown token"));
        let id = guard.sign_in("right-token").unwrap();
        assert_eq!(id.len(), 64);
        assert!(!id.contains("right-token"));
        let headers = with_cookie(&format!("theme=dark; {COOKIE}={id}; other=1"));
        assert!(guard.signed_in(&headers));
        let other = if id.starts_with('0') { '1' } else { '0' };
        assert!(!guard.signed_in(&with_cookie(&format!("{COOKIE}={other}{}", &id[1..]))));
        assert!(!guard.signed_in(&with_cookie(&format!("x{COOKIE}={id}"))));
        assert!(!guard.signed_in(&HeaderMap::new()));
        guard.sign_out(&headers);
        assert!(!guard.signed_in(&headers));
    }

    #[test]
    fn sign_ins_are_bounded() {
        let guard = guard();
        let first = guard.sign_in("right-token").unwrap();
        for _ in 0..MAX_SIGN_INS {
            guard.sign_in("right-token").unwrap();
        }
        assert_eq!(lock(&guard.sign_ins.0).len(), MAX_SIGN_INS);
        // The oldest went to make room.
        assert!(!guard.signed_in(&with_cookie(&format!("{COOKIE}={first}"))));
    }
}
