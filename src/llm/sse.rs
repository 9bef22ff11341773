//! Server-sent events read from a response body, and the HTTP plumbing the providers share:
//! sending a request and reading a refusal ([`send`], [`get_json`]), naming what went wrong for a
//! person ([`kind_for_status`], [`trimmed`]), and turning a body of events into the stream of
//! [`Delta`]s through a provider's [`Decode`].
//!
//! The reader follows the HTML event-stream format: lines end with LF, CR or CRLF (a pair split
//! across two chunks included), `event:` and `data:` fields (several `data:` lines joined with
//! LF), `:` comments, and a blank line dispatching the event. One event is bounded
//! ([`MAX_EVENT`]); a body that ends in the middle of one still gives what it had.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::{Stream, StreamExt};
use reqwest::header::HeaderValue;
use serde_json::Value;

use super::{Delta, Deltas, ErrorKind, LlmError};

/// The most one event (its fields and the line being read) may hold.
pub(super) const MAX_EVENT: usize = 4 * 1024 * 1024;

/// The most a tool call's arguments may gather from the stream's pieces.
pub(super) const MAX_ARGUMENTS: usize = 4 * 1024 * 1024;

/// The most of a refusal's body read for its message.
const MAX_REFUSAL: usize = 64 * 1024;

/// The most of a listing (`GET …/models`) read.
const MAX_LISTING: usize = 16 * 1024 * 1024;

/// The longest provider message kept, in characters.
const MAX_MESSAGE: usize = 2000;

/// One dispatched event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Event {
    /// The `event:` field; empty when the event had none.
    pub(super) name: String,
    /// The `data:` lines, joined with LF.
    pub(super) data: String,
}

/// The event-stream reader: bytes in, events out.
#[derive(Debug, Default)]
pub(super) struct Reader {
    /// The line read so far (without its end).
    line: Vec<u8>,
    /// The last byte seen was a CR: an LF right after it ends nothing.
    after_cr: bool,
    /// The first bytes have been seen (a byte-order mark is dropped there).
    started: bool,
    name: String,
    data: String,
    has_data: bool,
}

impl Reader {
    /// Reads `bytes`, adding every event they complete to `out`.
    pub(super) fn feed(&mut self, bytes: &[u8], out: &mut Vec<Event>) -> Result<(), LlmError> {
        let mut bytes = bytes;
        if !self.started && !bytes.is_empty() {
            self.started = true;
            bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        }
        while !bytes.is_empty() {
            if self.after_cr {
                self.after_cr = false;
                if bytes[0] == b'\n' {
                    bytes = &bytes[1..];
                    continue;
                }
            }
            match memchr::memchr2(b'\n', b'\r', bytes) {
                Some(end) => {
                    self.line.extend_from_slice(&bytes[..end]);
                    self.check_size()?;
                    self.after_cr = bytes[end] == b'\r';
                    bytes = &bytes[end + 1..];
                    self.end_line(out)?;
                }
                None => {
                    self.line.extend_from_slice(bytes);
                    self.check_size()?;
                    bytes = &[];
                }
            }
        }
        Ok(())
    }

    /// The body ended: a last line without its end is read, and an event not yet dispatched is.
    pub(super) fn finish(&mut self, out: &mut Vec<Event>) -> Result<(), LlmError> {
        if !self.line.is_empty() {
            self.end_line(out)?;
        }
        self.dispatch(out);
        Ok(())
    }

    fn check_size(&self) -> Result<(), LlmError> {
        if self.line.len() + self.data.len() > MAX_EVENT {
            return Err(LlmError {
                kind: ErrorKind::Unavailable,
                status: None,
                message: format!(
                    "one event of the provider's stream is larger than {} MiB",
                    MAX_EVENT / (1024 * 1024)
                ),
            });
        }
        Ok(())
    }

    fn end_line(&mut self, out: &mut Vec<Event>) -> Result<(), LlmError> {
        let line = std::mem::take(&mut self.line);
        if line.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        if line[0] == b':' {
            return Ok(());
        }
        let line = String::from_utf8_lossy(&line);
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_ref(), ""),
        };
        match field {
            "event" => value.clone_into(&mut self.name),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
                self.check_size()?;
            }
            // `id` and `retry` serve reconnection, which these requests never do.
            _ => {}
        }
        Ok(())
    }

    fn dispatch(&mut self, out: &mut Vec<Event>) {
        let name = std::mem::take(&mut self.name);
        let data = std::mem::take(&mut self.data);
        if std::mem::take(&mut self.has_data) {
            out.push(Event { name, data });
        }
    }
}

/// What a provider makes of its events.
pub(super) trait Decode: Send + 'static {
    /// The deltas one event brings, in order. A [`Delta::Done`] ends the answer.
    fn event(&mut self, event: Event, out: &mut Vec<Delta>) -> Result<(), LlmError>;

    /// The body ended (every event before has been given): the last deltas, or why the answer
    /// is incomplete.
    fn end(&mut self, out: &mut Vec<Delta>) -> Result<(), LlmError>;
}

struct State<S, D> {
    body: Pin<Box<S>>,
    reader: Reader,
    decode: D,
    ready: VecDeque<Result<Delta, LlmError>>,
    /// The body has ended (or broke off).
    ended: bool,
    /// A `Done` or an error has been given: nothing follows.
    over: bool,
}

impl<S, B, E, D> State<S, D>
where
    S: Stream<Item = Result<B, E>>,
    B: AsRef<[u8]>,
    E: std::error::Error + 'static,
    D: Decode,
{
    fn decode_all(&mut self, events: Vec<Event>) {
        let mut deltas = Vec::new();
        // An event without data (a keep-alive some servers send as `data:`) brings nothing.
        for event in events
            .into_iter()
            .filter(|event| !event.data.trim().is_empty())
        {
            let result = self.decode.event(event, &mut deltas);
            self.ready.extend(deltas.drain(..).map(Ok));
            if let Err(error) = result {
                self.ready.push_back(Err(error));
                return;
            }
        }
    }

    async fn next(&mut self) -> Option<Result<Delta, LlmError>> {
        loop {
            if self.over {
                return None;
            }
            if let Some(item) = self.ready.pop_front() {
                if matches!(item, Ok(Delta::Done { .. }) | Err(_)) {
                    self.over = true;
                    self.ready.clear();
                }
                return Some(item);
            }
            if self.ended {
                return None;
            }
            let mut events = Vec::new();
            match self.body.next().await {
                Some(Ok(bytes)) => {
                    if let Err(error) = self.reader.feed(bytes.as_ref(), &mut events) {
                        self.decode_all(events);
                        self.ready.push_back(Err(error));
                        continue;
                    }
                    self.decode_all(events);
                }
                Some(Err(error)) => {
                    self.ended = true;
                    self.ready.push_back(Err(LlmError {
                        kind: ErrorKind::Unavailable,
                        status: None,
                        message: format!("the stream broke off: {}", cause(&error)),
                    }));
                }
                None => {
                    self.ended = true;
                    let finished = self.reader.finish(&mut events);
                    self.decode_all(events);
                    if let Err(error) = finished {
                        self.ready.push_back(Err(error));
                        continue;
                    }
                    let mut deltas = Vec::new();
                    let result = self.decode.end(&mut deltas);
                    self.ready.extend(deltas.into_iter().map(Ok));
                    if let Err(error) = result {
                        self.ready.push_back(Err(error));
                    }
                }
            }
        }
    }
}

/// The deltas `decode` makes of a body arriving in `chunks` (the providers' stream tests).
#[cfg(test)]
pub(super) async fn decode_chunks<D: Decode>(
    chunks: &[&str],
    decode: D,
) -> Vec<Result<super::Delta, LlmError>> {
    use futures::StreamExt;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = chunks
        .iter()
        .map(|chunk| Ok(chunk.as_bytes().to_vec()))
        .collect();
    deltas(futures::stream::iter(chunks), decode)
        .collect()
        .await
}

/// The deltas of a streamed body, decoded by `decode`; the stream ends after a
/// [`Delta::Done`] or the first error.
pub(super) fn deltas<S, B, E, D>(body: S, decode: D) -> Deltas
where
    S: Stream<Item = Result<B, E>> + Send + 'static,
    B: AsRef<[u8]> + Send + 'static,
    E: std::error::Error + Send + 'static,
    D: Decode,
{
    let state = State {
        body: Box::pin(body),
        reader: Reader::default(),
        decode,
        ready: VecDeque::new(),
        ended: false,
        over: false,
    };
    Box::pin(futures::stream::unfold(state, |mut state| async move {
        let item = state.next().await?;
        Some((item, state))
    }))
}

/// An id for a tool call the provider gave none: `call_<n>`, distinct within this process.
pub(super) fn new_call_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("call_{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Whether `id` is one [`new_call_id`] (or a compatible server's numbering) made up.
pub(super) fn is_made_up_call_id(id: &str) -> bool {
    id.strip_prefix("call_")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// A tool call's arguments gathered from the stream: empty is `{}`.
pub(super) fn parse_arguments(name: &str, text: &str) -> Result<Value, LlmError> {
    if text.trim().is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    serde_json::from_str(text).map_err(|error| LlmError {
        kind: ErrorKind::InvalidRequest,
        status: None,
        message: format!("the model's arguments for {name} are not JSON: {error}"),
    })
}

/// Arguments growing past [`MAX_ARGUMENTS`].
pub(super) fn arguments_too_long(name: &str) -> LlmError {
    LlmError {
        kind: ErrorKind::Unavailable,
        status: None,
        message: format!(
            "the model's arguments for {name} grew past {} MiB",
            MAX_ARGUMENTS / (1024 * 1024)
        ),
    }
}

/// An event whose data is not the JSON the provider documents.
pub(super) fn unreadable(provider: &str, error: &serde_json::Error) -> LlmError {
    LlmError {
        kind: ErrorKind::Unavailable,
        status: None,
        message: format!("could not read {provider}'s stream: {error}"),
    }
}

/// A stream that ended before the provider said the answer was complete.
pub(super) fn ended_early() -> LlmError {
    LlmError {
        kind: ErrorKind::Unavailable,
        status: None,
        message: "the stream ended before the answer was finished".to_owned(),
    }
}

/// `text` percent-encoded to stay one path segment or one query value.
pub(super) fn encoded(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(byte).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// A key as a header value, kept out of debug output.
pub(super) fn secret_header(value: &str) -> Result<HeaderValue, LlmError> {
    let mut header = HeaderValue::from_str(value).map_err(|_| LlmError {
        kind: ErrorKind::Auth,
        status: None,
        message: "the API key holds characters an HTTP header cannot carry".to_owned(),
    })?;
    header.set_sensitive(true);
    Ok(header)
}

/// The kind of a refusal, from its status and what it says.
pub(super) fn kind_for_status(status: u16, said: &str) -> ErrorKind {
    match status {
        401 | 403 => ErrorKind::Auth,
        429 => ErrorKind::RateLimit,
        400..=499 if too_long(said) => ErrorKind::ContextLength,
        400..=499 => ErrorKind::InvalidRequest,
        _ => ErrorKind::Unavailable,
    }
}

/// Whether a provider's message or code says the conversation does not fit the model.
pub(super) fn too_long(said: &str) -> bool {
    let said = said.to_ascii_lowercase();
    [
        "context_length_exceeded",
        "prompt is too long",
        "exceeds the maximum number of tokens",
        "maximum context length",
        "maximum prompt length",
        "context window",
        "context length",
    ]
    .iter()
    .any(|phrase| said.contains(phrase))
}

/// A provider's message for people: trimmed, at most [`MAX_MESSAGE`] characters.
pub(super) fn trimmed(message: &str) -> String {
    let message = message.trim();
    match message.char_indices().nth(MAX_MESSAGE) {
        Some((end, _)) => format!("{}…", &message[..end]),
        None => message.to_owned(),
    }
}

/// The message of a refusal whose body said nothing readable.
pub(super) fn no_message(status: u16) -> String {
    let reason = reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|status| status.canonical_reason())
        .unwrap_or("an unexpected status");
    format!("HTTP {status} {reason}, with no message")
}

/// A URL as shown in a message: without credentials or query.
pub(super) fn shown(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut url) => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.set_query(None);
            url.to_string()
        }
        Err(_) => url.split('?').next().unwrap_or_default().to_owned(),
    }
}

/// What went wrong, in the words of the innermost error (the outer ones of reqwest and hyper
/// say only "error sending request").
fn cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut inner = error;
    while let Some(source) = inner.source() {
        inner = source;
    }
    inner.to_string()
}

fn unreachable(url: &str, error: &reqwest::Error) -> LlmError {
    let what = if error.is_timeout() {
        "it did not answer in time".to_owned()
    } else {
        cause(error)
    };
    LlmError {
        kind: ErrorKind::Unavailable,
        status: None,
        message: format!("could not reach {}: {what}", shown(url)),
    }
}

/// Up to `limit` bytes of a body; a body that breaks off gives what came.
async fn read_capped(response: reqwest::Response, limit: usize) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    let mut chunks = response.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|error| cause(&error))?;
        let room = limit.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= limit {
            break;
        }
    }
    Ok(body)
}

/// Sends `request` to `url`; a non-2xx answer becomes the provider's refusal, read from its body
/// by `refusal(status, body)`.
pub(super) async fn send(
    request: reqwest::RequestBuilder,
    url: &str,
    refusal: fn(u16, &str) -> LlmError,
) -> Result<reqwest::Response, LlmError> {
    let response = request
        .send()
        .await
        .map_err(|error| unreachable(url, &error))?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = read_capped(response, MAX_REFUSAL).await.unwrap_or_default();
    Err(refusal(status.as_u16(), &String::from_utf8_lossy(&body)))
}

/// Sends a `GET` and reads its JSON answer.
pub(super) async fn get_json(
    request: reqwest::RequestBuilder,
    url: &str,
    refusal: fn(u16, &str) -> LlmError,
) -> Result<Value, LlmError> {
    let response = send(request, url, refusal).await?;
    let body = read_capped(response, MAX_LISTING)
        .await
        .map_err(|error| LlmError {
            kind: ErrorKind::Unavailable,
            status: None,
            message: format!("the answer from {} broke off: {error}", shown(url)),
        })?;
    serde_json::from_slice(&body).map_err(|error| LlmError {
        kind: ErrorKind::Unavailable,
        status: None,
        message: format!("the answer from {} is not JSON: {error}", shown(url)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(chunks: &[&[u8]]) -> Vec<Event> {
        let mut reader = Reader::default();
        let mut out = Vec::new();
        for chunk in chunks {
            reader.feed(chunk, &mut out).unwrap();
        }
        reader.finish(&mut out).unwrap();
        out
    }

    fn event(name: &str, data: &str) -> Event {
        Event {
            name: name.to_owned(),
            data: data.to_owned(),
        }
    }

    #[test]
    fn events_are_dispatched_at_blank_lines_with_their_names() {
        let events = read(&[b"event: ping\ndata: {}\n\nevent: message_stop\ndata: {\"a\":1}\n\n"]);
        assert_eq!(
            events,
            vec![event("ping", "{}"), event("message_stop", "{\"a\":1}")]
        );
    }

    #[test]
    fn crlf_and_cr_line_ends_are_read_even_split_across_chunks() {
        let events = read(&[
            b"data: one\r",
            b"\n\r",
            b"\ndata: two\r\r",
            b"data:three\n\n",
        ]);
        assert_eq!(
            events,
            vec![event("", "one"), event("", "two"), event("", "three")]
        );
    }

    #[test]
    fn an_event_split_anywhere_reads_the_same() {
        let whole: &[u8] = b"event: content_block_delta\r\ndata: {\"text\":\"h\xC3\xA9\"}\r\n\r\n";
        for cut in 1..whole.len() {
            let events = read(&[&whole[..cut], &whole[cut..]]);
            assert_eq!(
                events,
                vec![event("content_block_delta", "{\"text\":\"hé\"}")],
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn data_lines_join_comments_and_unknown_fields_are_skipped() {
        let events = read(&[b": keep-alive\nid: 7\nretry: 10\ndata: a\ndata:  b\ndata\n\n"]);
        assert_eq!(events, vec![event("", "a\n b\n")]);
    }

    #[test]
    fn an_event_without_data_is_not_dispatched_and_its_name_is_forgotten() {
        let events = read(&[b"event: lonely\n\ndata: x\n\n"]);
        assert_eq!(events, vec![event("", "x")]);
    }

    #[test]
    fn a_body_ending_without_a_blank_line_still_gives_its_last_event() {
        assert_eq!(read(&[b"data: [DONE]"]), vec![event("", "[DONE]")]);
        assert_eq!(read(&[b"data: [DONE]\n"]), vec![event("", "[DONE]")]);
    }

    #[test]
    fn a_byte_order_mark_at_the_start_is_dropped() {
        assert_eq!(read(&[b"\xEF\xBB\xBFdata: x\n\n"]), vec![event("", "x")]);
    }

    #[test]
    fn an_event_larger_than_the_bound_is_refused() {
        let mut reader = Reader::default();
        let mut out = Vec::new();
        let line = vec![b'a'; 1024 * 1024];
        let mut result = reader.feed(b"data: ", &mut out);
        for _ in 0..5 {
            if result.is_err() {
                break;
            }
            result = reader
                .feed(&line, &mut out)
                .and_then(|()| reader.feed(b"\ndata: ", &mut out));
        }
        let error = result.unwrap_err();
        assert_eq!(error.kind, ErrorKind::Unavailable);
        assert!(error.message.contains("4 MiB"), "{error}");
    }

    #[test]
    fn kinds_follow_the_status_and_what_the_provider_said() {
        assert_eq!(kind_for_status(401, ""), ErrorKind::Auth);
        assert_eq!(kind_for_status(403, ""), ErrorKind::Auth);
        assert_eq!(
            kind_for_status(429, "too many tokens"),
            ErrorKind::RateLimit
        );
        assert_eq!(
            kind_for_status(400, "prompt is too long: 210000 tokens > 200000 maximum"),
            ErrorKind::ContextLength
        );
        assert_eq!(
            kind_for_status(400, "context_length_exceeded"),
            ErrorKind::ContextLength
        );
        assert_eq!(
            kind_for_status(404, "no such model"),
            ErrorKind::InvalidRequest
        );
        assert_eq!(kind_for_status(500, ""), ErrorKind::Unavailable);
        assert_eq!(kind_for_status(529, "Overloaded"), ErrorKind::Unavailable);
    }

    #[test]
    fn long_messages_are_cut_and_urls_lose_their_credentials() {
        let long = "é".repeat(3000);
        let cut = trimmed(&format!("  {long}  "));
        assert_eq!(cut.chars().count(), MAX_MESSAGE + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(
            shown("http://user:pw@127.0.0.1:8080/v1/models?key=secret"),
            "http://127.0.0.1:8080/v1/models"
        );
    }

    #[test]
    fn model_names_and_tokens_stay_one_url_segment() {
        assert_eq!(encoded("gemini-2.5-flash"), "gemini-2.5-flash");
        assert_eq!(encoded("a/b?c=d é"), "a%2Fb%3Fc%3Dd%20%C3%A9");
    }

    #[test]
    fn made_up_call_ids_are_told_from_the_providers_own() {
        let id = new_call_id();
        assert!(is_made_up_call_id(&id), "{id}");
        assert_ne!(new_call_id(), id);
        assert!(!is_made_up_call_id("call_abc123"));
        assert!(!is_made_up_call_id("call_"));
        assert!(!is_made_up_call_id("toolu_01"));
    }
}
