//! The stdio transport to a child process, with bounded framing: a line (one JSON-RPC message)
//! longer than the limit is never buffered whole. Its bytes are skipped as they arrive while a
//! small scanner looks for its top-level `"id"`, so a refused answer still fails its request at
//! once, with an error naming the limit, instead of leaving it to time out. rmcp's own child
//! transport has a fixed 16 MiB limit and drops oversized lines silently.

use std::sync::Arc;
use std::time::Duration;

use process_wrap::tokio::ChildWrapper;
use rmcp::RoleClient;
use rmcp::model::{ErrorData, JsonRpcMessage, NumberOrString, RequestId};
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{ChildStdin, ChildStdout};
use tokio::sync::Mutex;

use crate::wire::typed_answers::TypedAnswers;

/// How long a closing child may take to exit after its stdin closes, and again after SIGTERM.
const EXIT_GRACE: Duration = Duration::from_secs(3);

/// The longest `"id"` value the scanner keeps, in bytes.
const MAX_ID_BYTES: usize = 256;

/// What the framer found.
#[derive(Debug, PartialEq)]
pub enum Frame {
    /// A whole line, without its line break.
    Line(Vec<u8>),
    /// A line longer than the limit, skipped; its top-level `"id"` when one was seen.
    Oversized { id: Option<RequestId> },
}

/// Cuts a byte stream into lines of at most `max` bytes; longer lines are skipped as they arrive.
#[derive(Debug)]
pub struct LineFramer {
    max: usize,
    line: Vec<u8>,
    /// Skipping the rest of an oversized line.
    skipping: bool,
    scanner: IdScanner,
}

impl LineFramer {
    pub fn new(max: usize) -> LineFramer {
        LineFramer {
            max,
            line: Vec::new(),
            skipping: false,
            scanner: IdScanner::default(),
        }
    }

    /// Takes bytes from the front of `input`: how many it consumed, and a frame if one ended.
    /// Call again with the rest until everything is consumed.
    pub fn push(&mut self, input: &[u8]) -> (usize, Option<Frame>) {
        let newline = input.iter().position(|byte| *byte == b'\n');
        let take = newline.map_or(input.len(), |at| at + 1);
        let content = &input[..newline.unwrap_or(input.len())];
        if !self.skipping && self.line.len() + content.len() > self.max {
            // Over the limit: hand what we held to the scanner and skip from here on.
            let held = std::mem::take(&mut self.line);
            self.scanner.feed(&held);
            self.skipping = true;
        }
        if self.skipping {
            self.scanner.feed(content);
            if newline.is_none() {
                return (take, None);
            }
            self.skipping = false;
            let id = std::mem::take(&mut self.scanner).id();
            return (take, Some(Frame::Oversized { id }));
        }
        self.line.extend_from_slice(content);
        if newline.is_none() {
            return (take, None);
        }
        let mut line = std::mem::take(&mut self.line);
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        (take, Some(Frame::Line(line)))
    }
}

/// Finds the value of a JSON object's top-level `"id"` in a stream of bytes, holding no more than
/// a key's and an id's worth of them. Anything that is not a JSON object gives no id.
#[derive(Debug, Default)]
pub struct IdScanner {
    depth: u32,
    in_string: bool,
    escaped: bool,
    /// At depth 1, the next string is a key.
    expect_key: bool,
    /// The key being read (only its first bytes; `"id"` is short).
    key: Vec<u8>,
    key_is_id: bool,
    /// After `"id"`, before its `:`.
    after_id_key: bool,
    /// Reading the id's value.
    capturing: bool,
    value: Vec<u8>,
    found: Option<Vec<u8>>,
    broken: bool,
}

impl IdScanner {
    pub fn feed(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            if self.broken {
                return;
            }
            self.step(byte);
        }
    }

    fn step(&mut self, byte: u8) {
        if self.capturing && self.depth == 1 && !self.in_string && matches!(byte, b',' | b'}') {
            self.capturing = false;
            if self.found.is_none() {
                self.found = Some(std::mem::take(&mut self.value));
            }
        } else if self.capturing && self.value.len() < MAX_ID_BYTES + 2 {
            self.value.push(byte);
        }
        if self.in_string {
            if self.escaped {
                self.escaped = false;
            } else if byte == b'\\' {
                self.escaped = true;
            } else if byte == b'"' {
                self.in_string = false;
                if self.expect_key {
                    self.expect_key = false;
                    self.key_is_id = self.key == b"id";
                    self.after_id_key = self.key_is_id;
                    return;
                }
            }
            if self.expect_key && self.key.len() < 3 {
                self.key.push(byte);
            }
            return;
        }
        match byte {
            b'"' => {
                self.in_string = true;
                if self.expect_key {
                    self.key.clear();
                }
            }
            b'{' | b'[' => {
                if self.depth == 0 && byte == b'[' {
                    self.broken = true;
                }
                self.depth += 1;
                if self.depth == 1 {
                    self.expect_key = true;
                }
            }
            b'}' | b']' => {
                self.depth = self.depth.saturating_sub(1);
                if self.depth == 0 {
                    self.broken = true;
                }
            }
            b',' if self.depth == 1 => self.expect_key = true,
            b':' if self.depth == 1 && self.after_id_key => {
                self.after_id_key = false;
                self.capturing = true;
                self.value.clear();
            }
            b' ' | b'\t' | b'\r' | b'\n' => {}
            _ if self.depth == 0 => self.broken = true,
            _ => {}
        }
    }

    /// The id, when a top-level `"id"` with a number or string value was seen.
    pub fn id(self) -> Option<RequestId> {
        let raw = self.found?;
        if raw.len() > MAX_ID_BYTES {
            return None;
        }
        match serde_json::from_slice::<serde_json::Value>(&raw).ok()? {
            serde_json::Value::Number(number) => number.as_i64().map(NumberOrString::Number),
            serde_json::Value::String(text) => Some(NumberOrString::String(text.into())),
            _ => None,
        }
    }
}

/// A child process as an rmcp transport: newline-delimited JSON on its stdin and stdout.
pub(super) struct ChildTransport {
    server: Arc<str>,
    child: Option<Box<dyn ChildWrapper>>,
    /// The child's process group: its pid, as it leads the group.
    pgid: Option<u32>,
    stdout: BufReader<ChildStdout>,
    stdin: Arc<Mutex<Option<ChildStdin>>>,
    framer: LineFramer,
    max: usize,
    /// 2025-11-25 tasks' raw path (`router::core_tasks`).
    wire: crate::wire::core_tasks::DownstreamWire,
    /// `tools/call` and `tools/list` answers decoded straight into their types.
    answers: TypedAnswers,
    /// Warnings about stray lines on the server's stdout (a server that prints garbage must not
    /// fill our log).
    stray_lines: crate::telemetry::LogBudget,
}

/// Stray stdout lines logged before the budget holds back: a few show what is wrong.
const STRAY_LINES_BURST: u32 = 10;
/// Then this many a second at most.
const STRAY_LINES_PER_SECOND: f64 = 1.0;

impl ChildTransport {
    pub(super) fn new(
        server: Arc<str>,
        mut child: Box<dyn ChildWrapper>,
        max: usize,
    ) -> std::io::Result<ChildTransport> {
        let pgid = child.id();
        let stdin = child.inner_mut().stdin().take();
        let stdout = child.inner_mut().stdout().take();
        let (Some(stdin), Some(stdout)) = (stdin, stdout) else {
            return Err(std::io::Error::other(
                "the child's stdin or stdout is not piped",
            ));
        };
        // The child leads its own process group (`connect`): the reaper ends it should this
        // process be killed.
        #[cfg(unix)]
        if let Some(pgid) = pgid {
            super::reaper::watch(pgid);
        }
        Ok(ChildTransport {
            server,
            pgid,
            child: Some(child),
            stdout: BufReader::with_capacity(64 * 1024, stdout),
            stdin: Arc::new(Mutex::new(Some(stdin))),
            framer: LineFramer::new(max),
            max,
            wire: Default::default(),
            answers: TypedAnswers::default(),
            stray_lines: crate::telemetry::LogBudget::new(
                STRAY_LINES_BURST,
                STRAY_LINES_PER_SECOND,
            ),
        })
    }

    /// The next frame. Cancel-safe: bytes are consumed only together with the framer's step.
    async fn next_frame(&mut self) -> Option<Frame> {
        loop {
            let available = match self.stdout.fill_buf().await {
                Ok([]) => return None,
                Ok(available) => available,
                Err(error) => {
                    tracing::warn!(server = %self.server, "reading the server's stdout: {error}");
                    return None;
                }
            };
            let (consumed, frame) = self.framer.push(available);
            self.stdout.consume(consumed);
            if frame.is_some() {
                return frame;
            }
        }
    }
}

impl Transport<RoleClient> for ChildTransport {
    type Error = std::io::Error;

    fn name() -> std::borrow::Cow<'static, str> {
        "stdio".into()
    }

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let stdin = self.stdin.clone();
        self.wire.sent(&item);
        self.answers.sent(&item);
        async move {
            let mut line = serde_json::to_vec(&item)?;
            line.push(b'\n');
            let mut stdin = stdin.lock().await;
            let Some(stdin) = stdin.as_mut() else {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::NotConnected,
                    "the transport is closed",
                ));
            };
            stdin.write_all(&line).await?;
            stdin.flush().await
        }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleClient>> {
        loop {
            match self.next_frame().await? {
                Frame::Line(line) => {
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    let decoded = match self.wire.received(&line) {
                        Some(value) => serde_json::from_value(value),
                        None => match self.answers.decode(&line) {
                            Some(message) => return Some(message),
                            None => serde_json::from_slice::<RxJsonRpcMessage<RoleClient>>(&line),
                        },
                    };
                    match decoded {
                        Ok(message) => {
                            if let Some(ignored) = self.stray_lines.summary() {
                                tracing::warn!(
                                    server = %self.server,
                                    "ignored {ignored} more lines on its stdout that were not \
                                     JSON-RPC messages"
                                );
                            }
                            return Some(message);
                        }
                        Err(error) => {
                            if let Some(suppressed) = self.stray_lines.admit() {
                                tracing::warn!(
                                    server = %self.server,
                                    "ignoring a line on its stdout that is not a JSON-RPC message: \
                                     {error}{}",
                                    crate::telemetry::suppressed_note(suppressed)
                                );
                            }
                        }
                    }
                }
                Frame::Oversized { id } => {
                    tracing::warn!(
                        server = %self.server,
                        limit = self.max,
                        id = %id.as_ref().map_or_else(|| "none".to_owned(), ToString::to_string),
                        "refused a message larger than the limit (security.maxMessageBytes)"
                    );
                    if let Some(id) = id {
                        return Some(JsonRpcMessage::error(
                            ErrorData::internal_error(
                                format!(
                                    "server \"{}\" sent a message larger than the {} byte limit \
                                     (security.maxMessageBytes); it was refused",
                                    self.server, self.max
                                ),
                                None,
                            ),
                            Some(id),
                        ));
                    }
                }
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        drop(self.stdin.lock().await.take());
        let Some(child) = self.child.as_mut() else {
            return Ok(());
        };
        if tokio::time::timeout(EXIT_GRACE, child.wait())
            .await
            .is_err()
        {
            #[cfg(unix)]
            {
                const SIGTERM: i32 = 15;
                let _ = child.signal(SIGTERM);
            }
            if tokio::time::timeout(EXIT_GRACE, child.wait())
                .await
                .is_err()
            {
                Box::into_pin(child.kill()).await?;
            }
        }
        self.child = None;
        // What the server started lives on in its group after the server exited.
        #[cfg(unix)]
        if let Some(pgid) = self.pgid.take() {
            super::reaper::end_group(pgid, EXIT_GRACE).await;
        }
        Ok(())
    }
}

impl Drop for ChildTransport {
    fn drop(&mut self) {
        let pgid = self.pgid.take();
        if let Some(mut child) = self.child.take()
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            handle.spawn(async move {
                // SIGKILL to the whole group.
                let _ = Box::into_pin(child.kill()).await;
                #[cfg(unix)]
                if let Some(pgid) = pgid {
                    super::reaper::forget(pgid);
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(max: usize, chunks: &[&[u8]]) -> Vec<Frame> {
        let mut framer = LineFramer::new(max);
        let mut out = Vec::new();
        for chunk in chunks {
            let mut rest = *chunk;
            while !rest.is_empty() {
                let (used, frame) = framer.push(rest);
                assert!(used > 0 && used <= rest.len());
                rest = &rest[used..];
                out.extend(frame);
            }
        }
        out
    }

    #[test]
    fn lines_within_the_limit_pass_whole() {
        assert_eq!(
            frames(10, &[b"ab", b"c\r\nde\n", b"f"]),
            [Frame::Line(b"abc".to_vec()), Frame::Line(b"de".to_vec())]
        );
        // Exactly the limit is fine.
        assert_eq!(frames(3, &[b"abc\n"]), [Frame::Line(b"abc".to_vec())]);
    }

    #[test]
    fn oversized_lines_are_skipped_with_their_id() {
        let big = format!(
            "{{\"result\":{{\"text\":\"{}\",\"id\":99}},\"jsonrpc\":\"2.0\",\"id\":7}}\n{{\"id\":1}}\n",
            "x".repeat(100)
        );
        let out = frames(50, &[&big.as_bytes()[..30], &big.as_bytes()[30..]]);
        assert_eq!(
            out,
            [
                Frame::Oversized {
                    id: Some(NumberOrString::Number(7))
                },
                Frame::Line(b"{\"id\":1}".to_vec())
            ]
        );
        let string_id = format!(
            "{{\"id\" : \"a\\\"b\",\"result\":\"{}\"}}\n",
            "y".repeat(60)
        );
        assert_eq!(
            frames(20, &[string_id.as_bytes()]),
            [Frame::Oversized {
                id: Some(NumberOrString::String("a\"b".into()))
            }]
        );
        assert_eq!(frames(4, &[b"[1,2,3]\n"]), [Frame::Oversized { id: None }]);
    }

    #[test]
    fn ids_in_nested_objects_and_strings_do_not_count() {
        let mut scanner = IdScanner::default();
        scanner.feed(br#"{"params":{"id":5},"text":"\"id\":6","method":"x"}"#);
        assert_eq!(scanner.id(), None);
    }
}
