//! While the replica drains (`http::drain`), a request that begins a client's session —
//! `initialize`, or `server/discover`, a modern client's first look — is refused with 503,
//! `Retry-After` and a JSON-RPC error naming the cause, so the client tries again and the load
//! balancer sends it elsewhere. Every other request is served: it belongs to a client that
//! began before the drain. A modern client's later requests carry no session to tell them by;
//! they are served alike, whoever sends them.

use serde_json::Value;

use super::Guard;
use super::refusals::{self, Refused};

/// The methods a client begins with.
fn begins_a_session(method: &str) -> bool {
    matches!(method, "initialize" | "server/discover")
}

impl Guard {
    /// Refuses a request that begins a session while the replica drains.
    pub(super) fn check_draining(&self, methods: &[String], id: &Value) -> Result<(), Refused> {
        // The method first: the drain's state is shared by every request, the method is not.
        let Some(method) = methods.iter().find(|method| begins_a_session(method)) else {
            return Ok(());
        };
        if self.drain.is_draining() {
            return Err(refusals::draining(id.clone(), method));
        }
        Ok(())
    }
}
