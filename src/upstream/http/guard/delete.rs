//! `DELETE` of a session: one the proxy does not know is answered 404 (rmcp would end it without a
//! word, 202), and one that ended gets the original's `200 {"success":true,"message":"Session
//! terminated"}` instead of rmcp's empty 202. Ending the session itself is rmcp's.

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::Guard;
use super::refusals::{self, Refused};

impl Guard {
    /// The client should learn that the session it ends was not there, as for any other request.
    pub(super) fn check_delete(
        &self,
        method: &Method,
        session: Option<&str>,
    ) -> Result<(), Refused> {
        if let (Some(sessions), Some(session)) = (&self.sessions, session)
            && *method == Method::DELETE
            && !sessions.knows(session)
        {
            return Err(refusals::session_not_found(Value::Null));
        }
        Ok(())
    }
}

/// The original's answer to a DELETE that ended a session, when rmcp's answer says it did.
pub(super) fn deleted(method: &Method, response: &Response) -> Option<Response> {
    (*method == Method::DELETE && response.status() == StatusCode::ACCEPTED).then(|| {
        (
            StatusCode::OK,
            axum::Json(json!({"success": true, "message": "Session terminated"})),
        )
            .into_response()
    })
}
