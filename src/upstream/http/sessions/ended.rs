//! Ended request streams, for resumption. Each session remembers the last event id of its
//! request streams that ended without a result (the request was cancelled, or answered with an
//! error), so the guard can tell a client that resumes one that there is nothing to resume
//! ([`BoundedSessions::stream_ended`]; ARCHITECTURE.md says why). A stream cut by the network is
//! not remembered: resuming it still replays what was missed.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::Stream;
use rmcp::model::ServerJsonRpcMessage;
use rmcp::transport::streamable_http_server::session::{ServerSseMessage, SessionId};

use super::BoundedSessions;
use crate::sync::lock;

/// Ended request streams a session remembers (the oldest are forgotten first). A client resumes
/// within seconds (rmcp's priming event says 3 s), so this only needs to cover the calls a client
/// cancels at once; about 50 bytes each.
const ENDED_STREAMS_KEPT: usize = 64;

/// Last event ids of ended request streams, shared between a session's entry and its streams.
pub(super) type EndedStreams = Arc<Mutex<VecDeque<String>>>;

/// A request's stream that notes, when it ends without a result, its last event id in its
/// session's [`EndedStreams`].
pub(super) struct Watched<S> {
    inner: Pin<Box<S>>,
    last_event_id: Option<String>,
    answered: bool,
    ended: Option<EndedStreams>,
}

impl BoundedSessions {
    /// Whether `last_event_id` is the last event of a request stream of session `id` that
    /// ended without a result: resuming it would bring nothing, ever. rmcp answers such a
    /// resumption with an empty 200 stream (or replays the stream's priming event), which a
    /// client takes for a cut connection and resumes again: the TypeScript SDK every 3 s.
    pub(crate) fn stream_ended(&self, id: &str, last_event_id: &str) -> bool {
        let ended = match lock(&self.entries).get(&SessionId::from(id.to_owned())) {
            Some(entry) => entry.ended.clone(),
            None => return false,
        };
        lock(&ended).iter().any(|ended| ended == last_event_id)
    }

    pub(super) fn ended_streams(&self, id: &SessionId) -> Option<EndedStreams> {
        lock(&self.entries).get(id).map(|entry| entry.ended.clone())
    }
}

pub(super) fn watched<S>(stream: S, ended: Option<EndedStreams>) -> Watched<S>
where
    S: Stream<Item = ServerSseMessage> + Send + Sync + 'static,
{
    Watched {
        inner: Box::pin(stream),
        last_event_id: None,
        answered: false,
        ended,
    }
}

impl<S> Watched<S> {
    /// The stream ended: remembered if it brought no result.
    fn note_end(&mut self) {
        if let Some(ended) = self.ended.take()
            && !self.answered
            && let Some(id) = self.last_event_id.take()
        {
            note_ended(&ended, id);
        }
    }
}

/// Notes `last_event_id` as the last event of a request stream that ended without a result.
pub(super) fn note_ended(ended: &EndedStreams, last_event_id: String) {
    let mut ended = lock(ended);
    if ended.len() >= ENDED_STREAMS_KEPT {
        ended.pop_front();
    }
    ended.push_back(last_event_id);
}

impl<S> Stream for Watched<S>
where
    S: Stream<Item = ServerSseMessage>,
{
    type Item = ServerSseMessage;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let polled = this.inner.as_mut().poll_next(cx);
        match &polled {
            Poll::Ready(Some(message)) => {
                if let Some(id) = &message.event_id {
                    this.last_event_id = Some(id.clone());
                }
                if matches!(
                    message.message.as_deref(),
                    Some(ServerJsonRpcMessage::Response(_))
                ) {
                    this.answered = true;
                }
            }
            Poll::Ready(None) => this.note_end(),
            Poll::Pending => {}
        }
        polled
    }
}
