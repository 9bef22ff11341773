//! What a fast call's stream carries before its answer: its server's questions to the client
//! (sampling, elicitation, roots, marked with the call as their origin), the progress the client
//! asked for, and the cancellation of a question. The router sends them through the session's
//! rmcp peer, like any message to the client; the worker's transport (`requests.rs`) takes them
//! out of the worker's way and keeps them here, numbered, for the call's response to send
//! (`fast.rs`) and for a client that resumes a cut stream to get again. The client's answers to
//! the questions come back through rmcp, which matches them to the peer's own request ids.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use rmcp::model::ServerJsonRpcMessage;
use tokio::sync::Notify;

use crate::sync::lock;

/// Messages kept per call. Beyond them the oldest are dropped: progress that a client that
/// does not read its stream would never see anyway.
const KEPT: usize = 256;

/// A fast call's messages, numbered from 1, and a wake-up for whoever waits on the call.
#[derive(Default)]
pub(crate) struct Diverted {
    messages: Mutex<Messages>,
    /// Notified at each message and when the call ends.
    changed: Notify,
}

#[derive(Default)]
struct Messages {
    kept: VecDeque<Arc<ServerJsonRpcMessage>>,
    /// How many were dropped before the first kept.
    dropped: u64,
}

impl Diverted {
    pub(super) fn push(&self, message: ServerJsonRpcMessage) {
        {
            let mut messages = lock(&self.messages);
            if messages.kept.len() >= KEPT {
                messages.kept.pop_front();
                messages.dropped += 1;
            }
            messages.kept.push_back(Arc::new(message));
        }
        self.changed.notify_waiters();
    }

    /// The first message numbered after `after` that is still kept, with its number.
    pub(super) fn next_after(&self, after: u64) -> Option<(u64, Arc<ServerJsonRpcMessage>)> {
        let messages = lock(&self.messages);
        let first = messages.dropped + 1;
        let number = (after + 1).max(first);
        let index = usize::try_from(number - first).ok()?;
        messages
            .kept
            .get(index)
            .map(|message| (number, message.clone()))
    }

    /// Wakes whoever waits on the call.
    pub(super) fn wake(&self) {
        self.changed.notify_waiters();
    }

    pub(super) fn changed(&self) -> &Notify {
        &self.changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::{ErrorData, RequestId};

    fn message(n: i64) -> ServerJsonRpcMessage {
        ServerJsonRpcMessage::error(
            ErrorData::internal_error("x", None),
            Some(RequestId::Number(n)),
        )
    }

    #[test]
    fn messages_are_numbered_from_one_and_the_oldest_go_past_the_bound() {
        let diverted = Diverted::default();
        assert!(diverted.next_after(0).is_none());
        diverted.push(message(1));
        diverted.push(message(2));
        assert_eq!(diverted.next_after(0).map(|(n, _)| n), Some(1));
        assert_eq!(diverted.next_after(1).map(|(n, _)| n), Some(2));
        assert!(diverted.next_after(2).is_none());
        for n in 3..=(KEPT as i64 + 10) {
            diverted.push(message(n));
        }
        // A reader far behind continues from the oldest kept.
        assert_eq!(diverted.next_after(0).map(|(n, _)| n), Some(11));
        assert_eq!(
            diverted.next_after(KEPT as u64 + 9).map(|(n, _)| n),
            Some(KEPT as u64 + 10)
        );
    }
}
