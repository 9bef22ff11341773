//! A `GET` with `Last-Event-ID` resuming a request stream that has ended is refused (405): nothing
//! will ever come on it, and rmcp's empty 200 would have the TypeScript SDK ask again every few
//! seconds. The session remembers which streams ended
//! ([`BoundedSessions::stream_ended`](crate::upstream::http::sessions::BoundedSessions::stream_ended));
//! ARCHITECTURE.md tells the whole story.

use axum::http::{HeaderMap, Method};

use super::Guard;
use super::refusals::{self, Refused};

impl Guard {
    /// 405 is what the SDKs take for "no stream here": they stop asking.
    pub(super) fn check_resumption(
        &self,
        method: &Method,
        headers: &HeaderMap,
        session: Option<&str>,
    ) -> Result<(), Refused> {
        let (Some(sessions), Some(session)) = (&self.sessions, session) else {
            return Ok(());
        };
        if *method == Method::GET
            && let Some(last_event_id) = headers
                .get("last-event-id")
                .and_then(|value| value.to_str().ok())
            && (sessions.stream_ended(session, last_event_id)
                || sessions.fast_stream_gone(session, last_event_id))
        {
            tracing::debug!(
                session = %session,
                last_event_id,
                "resumption of a request stream that ended refused"
            );
            return Err(refusals::stream_ended(last_event_id));
        }
        Ok(())
    }
}
