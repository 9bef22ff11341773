//! A lane for requests whose bodies the proxy only passes on, beside rmcp's client service on one
//! stdio connection.
//!
//! rmcp's client service takes each request through its loop: a channel to the loop, the typed
//! encode of the whole request, a task to write it, the typed decode of the answer, a oneshot
//! back. A request the proxy relays (`tools/call`, `prompts/get`, `resources/read`,
//! `completion/complete`) needs none of that: the lane writes the request's line
//! straight to the child's stdin (under the same lock rmcp's writes take, so messages keep their
//! order) and the child transport's read loop hands the answer's `result` back unparsed, before
//! rmcp sees the line. Ids on the lane are strings (`"pluggedin:N"`) and rmcp's are numbers, so
//! the two never meet. Everything else on the connection (progress, the server's own requests,
//! cancellation notifications, every other method) stays rmcp's.
//!
//! It steps around rmcp: if rmcp let a request's params and its answer's result stay raw bytes,
//! the lane could go and the router would send through the peer again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use memchr::memmem::Finder;

use rmcp::model::{ErrorData, NumberOrString, RequestId};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::oneshot;

/// The bytes a request's line starts with room for.
const LINE_ROOM: usize = 1024;

/// The prefix of the lane's request ids.
const ID_PREFIX: &str = "pluggedin:";

/// What came back for a request on the lane.
#[derive(Debug)]
pub enum Answer {
    /// The answer's `result`, as the server wrote it.
    Result(Box<RawValue>),
    /// The server's JSON-RPC error, or the transport's for an answer it refused.
    Error(ErrorData),
}

/// Why a request on the lane has no answer.
#[derive(Debug, thiserror::Error)]
pub enum LaneError {
    /// The connection ended before the answer came (or before the request could be written).
    #[error("the connection is closed")]
    Closed,
    #[error("cannot write to the server: {0}")]
    Write(#[from] std::io::Error),
    #[error("cannot encode the request: {0}")]
    Encode(#[from] serde_json::Error),
}

/// The shared writer of a child's stdin: `None` once closed.
pub type Stdin<W> = Arc<tokio::sync::Mutex<Option<W>>>;

/// Requests in flight on one connection, by the number in their id.
pub struct Lane<W> {
    stdin: Stdin<W>,
    waiting: Mutex<Waiting>,
    /// How many requests wait, read without the lock: a line is inspected only while some do.
    in_flight: AtomicUsize,
    next: AtomicU64,
}

#[derive(Default)]
struct Waiting {
    closed: bool,
    answers: HashMap<u64, oneshot::Sender<Answer>>,
}

/// One request in flight; dropping it (the caller gave up) forgets it.
pub struct Call<W> {
    lane: Arc<Lane<W>>,
    number: u64,
    /// Its id on the connection: `"pluggedin:N"`.
    id: Arc<str>,
    answer: oneshot::Receiver<Answer>,
}

/// The parts of a line the lane reads; the result stays unparsed.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    method: Option<serde::de::IgnoredAny>,
    #[serde(borrow)]
    result: Option<&'a RawValue>,
    error: Option<ErrorData>,
}

impl<W: AsyncWrite + Unpin + Send> Lane<W> {
    pub fn new(stdin: Stdin<W>) -> Arc<Lane<W>> {
        Arc::new(Lane {
            stdin,
            waiting: Mutex::new(Waiting::default()),
            in_flight: AtomicUsize::new(0),
            next: AtomicU64::new(1),
        })
    }

    /// Writes a request, its params made by `params` from the request's id (a progress token
    /// may be the id), and returns the call to await its answer on.
    pub async fn send<P: Serialize>(
        self: &Arc<Self>,
        method: &str,
        params: impl FnOnce(&str) -> P,
    ) -> Result<Call<W>, LaneError> {
        self.send_written(method, |id, line| serde_json::to_writer(line, &params(id)))
            .await
    }

    /// Sends a request whose params `write` writes into its line, given the request's id.
    pub async fn send_written(
        self: &Arc<Self>,
        method: &str,
        write: impl FnOnce(&str, &mut Vec<u8>) -> serde_json::Result<()>,
    ) -> Result<Call<W>, LaneError> {
        let number = self.next.fetch_add(1, Ordering::Relaxed);
        let mut digits = itoa::Buffer::new();
        let id: Arc<str> = [ID_PREFIX, digits.format(number)].concat().into();
        // Room for a usual call's line (its envelope, a modern server's lifecycle `_meta`, a trace
        // context and short arguments) without growing it on the way.
        let mut line = Vec::with_capacity(LINE_ROOM);
        line.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
        serde_json::to_writer(&mut line, &*id)?;
        line.extend_from_slice(br#","method":"#);
        serde_json::to_writer(&mut line, method)?;
        line.extend_from_slice(br#","params":"#);
        write(&id, &mut line)?;
        line.extend_from_slice(b"}\n");
        let (sender, answer) = oneshot::channel();
        {
            let mut waiting = self.lock();
            if waiting.closed {
                return Err(LaneError::Closed);
            }
            waiting.answers.insert(number, sender);
            self.in_flight
                .store(waiting.answers.len(), Ordering::Release);
        }
        // From here on the call forgets itself when dropped, whatever happens.
        let call = Call {
            lane: self.clone(),
            number,
            id,
            answer,
        };
        let mut slot = self.stdin.lock().await;
        if slot.is_none() {
            return Err(LaneError::Closed);
        }
        // A caller may give up while the line is half written (a server that stopped reading its
        // stdin fills the pipe): the rest of the stream would be garbled, so the stream is closed
        // instead, and the server, seeing its stdin end, ends and is restarted.
        let mut writing = Unfinished {
            slot: &mut slot,
            finished: false,
        };
        let written = match writing.slot.as_mut() {
            Some(stdin) => match stdin.write_all(&line).await {
                Ok(()) => stdin.flush().await,
                Err(error) => Err(error),
            },
            None => Ok(()),
        };
        writing.finished = true;
        written?;
        Ok(call)
    }
}

/// A line being written; dropped before it is finished, it closes the stream it was cut short on.
struct Unfinished<'a, W> {
    slot: &'a mut Option<W>,
    finished: bool,
}

impl<W> Drop for Unfinished<'_, W> {
    fn drop(&mut self) {
        if !self.finished {
            *self.slot = None;
        }
    }
}

impl<W> Lane<W> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a line from the server if it answers a request on the lane: `true` when it did (and
    /// the line must not go on to rmcp). Inspects nothing while no request waits.
    pub fn deliver(&self, line: &[u8]) -> bool {
        if self.in_flight.load(Ordering::Acquire) == 0 {
            return false;
        }
        static PREFIX: LazyLock<Finder<'static>> =
            LazyLock::new(|| Finder::new(ID_PREFIX.as_bytes()));
        if PREFIX.find(line).is_none() {
            return false;
        }
        let Ok(head) = serde_json::from_slice::<Head<'_>>(line) else {
            return false;
        };
        if head.method.is_some() {
            return false;
        }
        let Some(number) = head.id.and_then(|id| number_of(id.get())) else {
            return false;
        };
        let answer = match (head.result, head.error) {
            (Some(result), None) => Answer::Result(result.to_owned()),
            (None, Some(error)) => Answer::Error(error),
            _ => Answer::Error(ErrorData::internal_error(
                "the server's answer has neither a result nor an error",
                None,
            )),
        };
        self.answer(number, answer)
    }

    /// Fails the request `id` names, if it is on the lane: `true` when it was.
    pub fn fail(&self, id: &RequestId, error: ErrorData) -> bool {
        let NumberOrString::String(text) = id else {
            return false;
        };
        let Some(number) = text.strip_prefix(ID_PREFIX).and_then(|n| n.parse().ok()) else {
            return false;
        };
        self.answer(number, Answer::Error(error))
    }

    fn answer(&self, number: u64, answer: Answer) -> bool {
        let sender = {
            let mut waiting = self.lock();
            let sender = waiting.answers.remove(&number);
            self.in_flight
                .store(waiting.answers.len(), Ordering::Release);
            sender
        };
        // An answer for a call that gave up (timeout, cancellation) is taken and dropped.
        if let Some(sender) = sender {
            let _ = sender.send(answer);
        }
        true
    }

    /// The connection ended: every waiting call fails, and no new one starts.
    pub fn close(&self) {
        let answers = {
            let mut waiting = self.lock();
            waiting.closed = true;
            self.in_flight.store(0, Ordering::Release);
            std::mem::take(&mut waiting.answers)
        };
        drop(answers);
    }
}

impl<W> Call<W> {
    /// The id the request has on the connection.
    pub fn id(&self) -> RequestId {
        NumberOrString::String(self.id.clone())
    }

    /// The answer, or [`LaneError::Closed`] when the connection ended first.
    pub async fn answer(&mut self) -> Result<Answer, LaneError> {
        (&mut self.answer).await.map_err(|_| LaneError::Closed)
    }
}

impl<W> Drop for Call<W> {
    fn drop(&mut self) {
        let mut waiting = self.lane.lock();
        if waiting.answers.remove(&self.number).is_some() {
            self.lane
                .in_flight
                .store(waiting.answers.len(), Ordering::Release);
        }
    }
}

/// The number in a lane id's JSON text (`"pluggedin:17"`).
fn number_of(id: &str) -> Option<u64> {
    id.strip_prefix('"')?
        .strip_suffix('"')?
        .strip_prefix(ID_PREFIX)?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncBufReadExt;

    fn lane() -> (Arc<Lane<tokio::io::DuplexStream>>, tokio::io::DuplexStream) {
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        (
            Lane::new(Arc::new(tokio::sync::Mutex::new(Some(ours)))),
            theirs,
        )
    }

    async fn written(theirs: &mut tokio::io::DuplexStream) -> serde_json::Value {
        let mut line = String::new();
        tokio::io::BufReader::new(theirs)
            .read_line(&mut line)
            .await
            .unwrap();
        serde_json::from_str(&line).unwrap()
    }

    #[tokio::test]
    async fn an_answer_reaches_its_call_unparsed() {
        let (lane, mut theirs) = lane();
        let mut call = lane
            .send("tools/call", |_| serde_json::json!({"name": "echo"}))
            .await
            .unwrap();
        let request = written(&mut theirs).await;
        assert_eq!(request["method"], "tools/call");
        assert_eq!(request["id"], "pluggedin:1");
        let line = br#"{"result":{"content":[],"x" : 1},"jsonrpc":"2.0","id":"pluggedin:1"}"#;
        assert!(lane.deliver(line));
        match call.answer().await.unwrap() {
            Answer::Result(result) => assert_eq!(result.get(), r#"{"content":[],"x" : 1}"#),
            Answer::Error(error) => panic!("{error:?}"),
        }
    }

    #[tokio::test]
    async fn other_lines_pass_to_rmcp() {
        let (lane, _theirs) = lane();
        let _call = lane.send("tools/call", |_| ()).await.unwrap();
        // rmcp's own answers, the server's requests and notifications are not the lane's.
        assert!(!lane.deliver(br#"{"jsonrpc":"2.0","id":1,"result":{}}"#));
        assert!(!lane.deliver(br#"{"jsonrpc":"2.0","id":"pluggedin:1","method":"roots/list"}"#));
        assert!(!lane.deliver(br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"pluggedin:1"}}"#));
        assert!(!lane.deliver(b"not json pluggedin:1"));
    }

    #[tokio::test]
    async fn errors_and_refusals_fail_their_call() {
        let (lane, _theirs) = lane();
        let mut call = lane.send("tools/call", |_| ()).await.unwrap();
        assert!(lane.deliver(
            br#"{"jsonrpc":"2.0","id":"pluggedin:1","error":{"code":-32602,"message":"no"}}"#
        ));
        assert!(matches!(call.answer().await, Ok(Answer::Error(e)) if e.message == "no"));
        let mut call = lane.send("tools/call", |_| ()).await.unwrap();
        let refused = ErrorData::internal_error("too large", None);
        assert!(lane.fail(&call.id(), refused));
        assert!(matches!(call.answer().await, Ok(Answer::Error(e)) if e.message == "too large"));
    }

    #[tokio::test]
    async fn a_closed_lane_fails_waiting_calls_and_refuses_new_ones() {
        let (lane, _theirs) = lane();
        let mut call = lane.send("tools/call", |_| ()).await.unwrap();
        lane.close();
        assert!(matches!(call.answer().await, Err(LaneError::Closed)));
        assert!(matches!(
            lane.send("tools/call", |_| ()).await,
            Err(LaneError::Closed)
        ));
    }

    #[tokio::test]
    async fn a_call_given_up_is_forgotten_and_its_late_answer_taken() {
        let (lane, _theirs) = lane();
        let call = lane.send("tools/call", |_| ()).await.unwrap();
        drop(call);
        assert_eq!(lane.lock().answers.len(), 0);
        // Nothing waits now: the line is not even inspected, and rmcp drops an unknown answer.
        assert!(!lane.deliver(br#"{"jsonrpc":"2.0","id":"pluggedin:1","result":{}}"#));
    }

    #[tokio::test]
    async fn a_line_cut_short_closes_the_stream_instead_of_garbling_it() {
        // The server reads nothing, and its pipe holds 16 bytes.
        let (ours, _theirs) = tokio::io::duplex(16);
        let lane = Lane::new(Arc::new(tokio::sync::Mutex::new(Some(ours))));
        let gave_up = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            lane.send(
                "tools/call",
                |_| serde_json::json!({"name": "a long enough name"}),
            ),
        )
        .await;
        assert!(gave_up.is_err(), "the write cannot finish");
        assert!(lane.stdin.lock().await.is_none(), "the stream is closed");
        assert!(matches!(
            lane.send("tools/call", |_| ()).await,
            Err(LaneError::Closed)
        ));
    }
}
