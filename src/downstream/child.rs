//! The stdio transport to a child process, framed by `wire::framing`: a line (one JSON-RPC
//! message) longer than the server's limit is never buffered whole, and a refused answer still
//! fails its request at once, with an error naming the limit, instead of leaving it to time out.

use std::sync::Arc;
use std::time::Duration;

use process_wrap::tokio::ChildWrapper;
use rmcp::RoleClient;
use rmcp::model::{ErrorData, JsonRpcMessage};
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use tokio::io::AsyncWriteExt;
use tokio::process::{ChildStdin, ChildStdout};
use tokio::sync::Mutex;

use crate::wire::framing::{Frame, LineReader};
use crate::wire::lane::Lane;
use crate::wire::typed_answers::TypedAnswers;

/// How long a closing child may take to exit after its stdin closes, and again after SIGTERM.
const EXIT_GRACE: Duration = Duration::from_secs(3);

/// A child process as an rmcp transport: newline-delimited JSON on its stdin and stdout.
pub(super) struct ChildTransport {
    server: Arc<str>,
    child: Option<Box<dyn ChildWrapper>>,
    /// The child's process group: its pid, as it leads the group.
    pgid: Option<u32>,
    stdout: LineReader<ChildStdout>,
    stdin: Arc<Mutex<Option<ChildStdin>>>,
    /// Relayed requests (`tools/call`, `prompts/get`…) written and answered beside rmcp
    /// (`wire::lane`).
    lane: Arc<Lane<ChildStdin>>,
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
        let stdin = Arc::new(Mutex::new(Some(stdin)));
        Ok(ChildTransport {
            server,
            pgid,
            child: Some(child),
            stdout: LineReader::new(stdout, max),
            lane: Lane::new(stdin.clone()),
            stdin,
            max,
            wire: Default::default(),
            answers: TypedAnswers::default(),
            stray_lines: crate::telemetry::LogBudget::new(
                STRAY_LINES_BURST,
                STRAY_LINES_PER_SECOND,
            ),
        })
    }
}

impl ChildTransport {
    /// The connection's lane for relayed requests.
    pub(super) fn lane(&self) -> Arc<Lane<ChildStdin>> {
        self.lane.clone()
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
            let frame = match self.stdout.next().await {
                Ok(Some(frame)) => frame,
                Ok(None) => {
                    self.lane.close();
                    return None;
                }
                Err(error) => {
                    tracing::warn!(server = %self.server, "reading the server's stdout: {error}");
                    self.lane.close();
                    return None;
                }
            };
            match frame {
                Frame::Line(line) => {
                    if line.iter().all(u8::is_ascii_whitespace) || self.lane.deliver(line) {
                        continue;
                    }
                    let decoded = match self.wire.received(line) {
                        Some(value) => serde_json::from_value(value),
                        None => match self.answers.decode(line) {
                            Some(message) => return Some(message),
                            None => serde_json::from_slice::<RxJsonRpcMessage<RoleClient>>(line),
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
                        let error = ErrorData::internal_error(
                            format!(
                                "server \"{}\" sent a message larger than the {} byte limit \
                                 (security.maxMessageBytes); it was refused",
                                self.server, self.max
                            ),
                            None,
                        );
                        if self.lane.fail(&id, error.clone()) {
                            continue;
                        }
                        return Some(JsonRpcMessage::error(error, Some(id)));
                    }
                }
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.lane.close();
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
        self.lane.close();
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
