//! What the accept loop spends on connections, and what it says about them. A ceiling on open
//! connections (`--max-connections`): one over it is answered with a fixed 503 and closed at
//! once, without a task or a parser. Failed accepts (the process out of file descriptors, most
//! often) pause accepting with a backoff instead of retrying at once. Both are counted for
//! `/health` and logged once per episode — a line when it starts, one a minute while it lasts,
//! one with the count when it ends — never a line per connection. And hyper's own refusals of
//! requests it cannot parse (too many or too large headers, a malformed head), which it answers
//! with an empty body, get a JSON-RPC error body on their way out ([`Refusals`]).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The first pause after a failed accept; it doubles with every further failure in a row.
const FIRST_PAUSE: Duration = Duration::from_millis(10);
/// The longest pause: a descriptor freed by a closing connection is used within this.
const LONGEST_PAUSE: Duration = Duration::from_secs(1);
/// While an episode lasts, a line at most this often says how it goes.
const SUMMARY_EVERY: Duration = Duration::from_secs(60);
/// The default ceiling when the open-file limit is unknown or unlimited, and the most the default
/// ever is. Each connection holds a descriptor and, while a request runs, a task.
const DEFAULT_MAX_CONNECTIONS: u64 = 16_384;

/// The default `--max-connections`: half the process's open-file limit (the other half is for
/// the servers' pipes and sockets, the store and the runtime), so that the ceiling, not the
/// kernel, is what a flood of connections meets.
pub(crate) fn default_max_connections() -> usize {
    #[cfg(unix)]
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    #[cfg(not(unix))]
    let limit: Option<u64> = None;
    let max = limit.map_or(DEFAULT_MAX_CONNECTIONS, |limit| {
        (limit / 2).clamp(1, DEFAULT_MAX_CONNECTIONS)
    });
    usize::try_from(max).unwrap_or(usize::MAX)
}

/// Open connections, the ceiling, and what was refused or failed.
pub(crate) struct Connections {
    max: usize,
    open: AtomicUsize,
    refused: AtomicU64,
    failed_accepts: AtomicU64,
}

/// One accepted connection's place under the ceiling, given back when it drops.
pub(crate) struct Slot(Arc<Connections>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The counters `/health` shows.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConnectionCounts {
    pub(crate) open: usize,
    pub(crate) max: usize,
    pub(crate) refused: u64,
    pub(crate) failed_accepts: u64,
}

impl Connections {
    pub(crate) fn new(max: usize) -> Arc<Connections> {
        Arc::new(Connections {
            max: max.max(1),
            open: AtomicUsize::new(0),
            refused: AtomicU64::new(0),
            failed_accepts: AtomicU64::new(0),
        })
    }

    /// A place for one more connection, or `None` at the ceiling (counted as refused).
    pub(crate) fn open(self: &Arc<Self>) -> Option<Slot> {
        let taken = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < self.max).then_some(open + 1)
            });
        match taken {
            Ok(_) => Some(Slot(self.clone())),
            Err(_) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    pub(crate) fn counts(&self) -> ConnectionCounts {
        ConnectionCounts {
            open: self.open.load(Ordering::Acquire),
            max: self.max,
            refused: self.refused.load(Ordering::Relaxed),
            failed_accepts: self.failed_accepts.load(Ordering::Relaxed),
        }
    }

    /// The answer to a connection over the ceiling: written once without waiting (a client that
    /// does not read it loses nothing but the explanation), then the connection is closed.
    pub(crate) fn refusal(&self) -> Vec<u8> {
        let body = serde_json::json!({"jsonrpc": "2.0", "id": null, "error": {
            "code": -32000,
            "message": format!(
                "the proxy serves at most {} connections at once (--max-connections); retry later",
                self.max
            ),
        }})
        .to_string();
        format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
             content-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }
}

/// A run of events of one kind (failed accepts, refused connections) that the log reports as
/// one: a line at its start, a summary a minute while it lasts, a line with the count at its end.
#[derive(Default)]
struct Episode {
    started: Option<Instant>,
    count: u64,
    /// Counted since the last line about this episode.
    unreported: u64,
    reported: Option<Instant>,
}

impl Episode {
    /// One more event; whether it starts the episode (and so deserves a line).
    fn count(&mut self) -> bool {
        self.count += 1;
        self.unreported += 1;
        if self.started.is_some() {
            return false;
        }
        let now = Instant::now();
        self.started = Some(now);
        self.reported = Some(now);
        self.unreported = 0;
        true
    }

    /// While it lasts: the count since the last line, once a minute.
    fn due(&mut self) -> Option<u64> {
        let reported = self.reported?;
        if reported.elapsed() < SUMMARY_EVERY || self.unreported == 0 {
            return None;
        }
        self.reported = Some(Instant::now());
        Some(std::mem::take(&mut self.unreported))
    }

    /// The episode is over: its count and length, when there was one.
    fn end(&mut self) -> Option<(u64, Duration)> {
        let started = self.started.take()?;
        let count = std::mem::take(&mut self.count);
        self.unreported = 0;
        self.reported = None;
        Some((count, started.elapsed()))
    }
}

/// The accept loop's bookkeeping: failed accepts with their backoff, refused connections.
pub(crate) struct AcceptLog {
    connections: Arc<Connections>,
    failures: Episode,
    pause: Duration,
    refusals: Episode,
}

impl AcceptLog {
    pub(crate) fn new(connections: Arc<Connections>) -> AcceptLog {
        AcceptLog {
            connections,
            failures: Episode::default(),
            pause: FIRST_PAUSE,
            refusals: Episode::default(),
        }
    }

    /// An accept failed: how long to stop accepting. Out of descriptors (`EMFILE`, `ENFILE`) or
    /// memory, accepting again at once fails again at once — the loop that spun on it and logged
    /// every failure is what this replaces — so every failure pauses, longer each time in a row.
    pub(crate) fn failed(&mut self, error: &io::Error) -> Duration {
        self.connections
            .failed_accepts
            .fetch_add(1, Ordering::Relaxed);
        if self.failures.count() {
            tracing::warn!(
                max_connections = self.connections.max,
                "cannot accept connections: {error}; pausing accepts, longer while it lasts \
                 (failures are counted, not logged one by one; see --max-connections)"
            );
        } else if let Some(failed) = self.failures.due() {
            tracing::warn!(
                failed,
                "still cannot accept connections: {failed} failed accepts in the last minute \
                 ({error})"
            );
        }
        let pause = self.pause;
        self.pause = (self.pause * 2).min(LONGEST_PAUSE);
        pause
    }

    /// A connection was accepted: a run of failures, if any, is over.
    pub(crate) fn accepted(&mut self) {
        self.pause = FIRST_PAUSE;
        if let Some((failed, lasted)) = self.failures.end() {
            tracing::info!(
                failed,
                lasted_ms = u64::try_from(lasted.as_millis()).unwrap_or(u64::MAX),
                "accepting connections again after {failed} failed accepts"
            );
        }
    }

    /// A connection was refused at the ceiling.
    pub(crate) fn refused(&mut self) {
        let max = self.connections.max;
        if self.refusals.count() {
            tracing::warn!(
                max_connections = max,
                "connection limit of {max} reached: refusing new connections with 503 \
                 (counted, not logged one by one; see --max-connections)"
            );
        } else if let Some(refused) = self.refusals.due() {
            tracing::warn!(
                refused,
                "still at the connection limit of {max}: {refused} connections refused in the \
                 last minute"
            );
        }
    }

    /// A connection was taken under the ceiling: a run of refusals, if any, is over.
    pub(crate) fn admitted(&mut self) {
        if let Some((refused, lasted)) = self.refusals.end() {
            tracing::info!(
                refused,
                lasted_ms = u64::try_from(lasted.as_millis()).unwrap_or(u64::MAX),
                "below the connection limit again after refusing {refused} connections"
            );
        }
    }
}

/// The statuses hyper answers by itself, with an empty body, when it cannot parse a request:
/// 400 (a malformed head), 431 (too many or too large headers), 501 (a transfer coding it does
/// not know), 505 (an HTTP version it does not speak).
const HYPER_REFUSALS: [&[u8]; 4] = [b"400", b"431", b"501", b"505"];

/// A connection's socket, which gives hyper's own refusals a JSON-RPC error body. hyper writes
/// them (status line, `connection: close`, `content-length: 0`, `date`) and closes the
/// connection; our service never answers a 4xx or 5xx without a body (the guard gives every
/// refusal one), so a response head in that form, with no `content-type`, is hyper's. It is
/// replaced whole, in the same write, by the same status with a body that says why.
pub(crate) struct Refusals<T> {
    inner: T,
    /// A replacement being written: the bytes, how far, and the length of hyper's write it
    /// stands for (reported once all of it is out).
    replacing: Option<(Vec<u8>, usize, usize)>,
}

impl<T> Refusals<T> {
    pub(crate) fn new(inner: T) -> Refusals<T> {
        Refusals {
            inner,
            replacing: None,
        }
    }
}

/// The replacement for `head` when it is one of hyper's bodiless refusals.
fn replacement(head: &[u8]) -> Option<Vec<u8>> {
    let rest = head.strip_prefix(b"HTTP/1.1 ")?;
    let status = rest.get(..3)?;
    if !HYPER_REFUSALS.contains(&status) {
        return None;
    }
    let end = head.windows(4).position(|window| window == b"\r\n\r\n")?;
    if end + 4 != head.len() {
        return None;
    }
    let lower = head[..end].to_ascii_lowercase();
    let has = |needle: &[u8]| lower.windows(needle.len()).any(|window| window == needle);
    if !has(b"\r\ncontent-length: 0\r\n") && !lower.ends_with(b"\r\ncontent-length: 0") {
        return None;
    }
    if has(b"\r\ncontent-type:") {
        return None;
    }
    let status_line_end = head.windows(2).position(|window| window == b"\r\n")?;
    let status_line = &head[..status_line_end];
    let message = match status {
        b"431" => {
            "request headers too large: too many header fields, or more bytes than the proxy reads"
        }
        b"501" => "the request's transfer coding is not supported",
        b"505" => "the request's HTTP version is not supported; use HTTP/1.1",
        _ => "malformed HTTP request: the request line or a header cannot be parsed",
    };
    let body = serde_json::json!({"jsonrpc": "2.0", "id": null,
        "error": {"code": -32600, "message": message}})
    .to_string();
    let mut replaced = status_line.to_vec();
    replaced.extend_from_slice(
        format!(
            "\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    Some(replaced)
}

impl<T: AsyncWrite + Unpin> Refusals<T> {
    /// Writes the pending replacement; `Ready(Ok(n))` with hyper's length once it is all out.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        loop {
            let Some((bytes, written, stands_for)) = &mut self.replacing else {
                return Poll::Ready(Ok(0));
            };
            if *written == bytes.len() {
                let stands_for = *stands_for;
                self.replacing = None;
                return Poll::Ready(Ok(stands_for));
            }
            match Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => *written += n,
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Refusals<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Refusals<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.replacing.is_none()
            && let Some(replaced) = replacement(buf)
        {
            this.replacing = Some((replaced, 0, buf.len()));
        }
        if this.replacing.is_some() {
            return this.poll_replacement(cx);
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        // A refusal is a head alone; anything in several pieces goes as it is.
        let single = bufs.iter().filter(|buf| !buf.is_empty()).count() == 1;
        if this.replacing.is_none()
            && single
            && let Some(buf) = bufs.iter().find(|buf| !buf.is_empty())
            && let Some(replaced) = replacement(buf)
        {
            this.replacing = Some((replaced, 0, buf.len()));
        }
        if this.replacing.is_some() {
            return this.poll_replacement(cx);
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[test]
    fn hypers_bodiless_refusals_get_a_json_rpc_body() {
        let head = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: Sun, 06 Dec 2026 07:26:58 GMT\r\n\r\n";
        let replaced = String::from_utf8(replacement(head).unwrap()).unwrap();
        let (head, body) = replaced.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["error"]["code"], -32600);
        // A response of ours (a body, a content type), a success and a body chunk pass as they are.
        assert!(
            replacement(
                b"HTTP/1.1 431 X\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n"
            )
            .is_none()
        );
        assert!(replacement(b"HTTP/1.1 400 X\r\ncontent-length: 12\r\n\r\n").is_none());
        assert!(replacement(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(replacement(b"HTTP/1.1 400 X\r\ncontent-length: 0\r\n\r\n{}").is_none());
        assert!(replacement(b"data: HTTP/1.1 400\r\n\r\n").is_none());
    }

    #[tokio::test]
    async fn a_replacement_is_written_whole_through_short_writes() {
        let (client, server) = tokio::io::duplex(7);
        let mut writer = Refusals::new(server);
        let head = b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";
        let reader = tokio::spawn(async move {
            let mut client = client;
            let mut text = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut client, &mut text)
                .await
                .unwrap();
            String::from_utf8(text).unwrap()
        });
        let written = writer.write(head).await.unwrap();
        assert_eq!(written, head.len());
        writer.shutdown().await.unwrap();
        drop(writer);
        let text = reader.await.unwrap();
        assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\ncontent-type: application/json"));
        assert!(text.contains("malformed HTTP request"), "{text}");
    }

    #[test]
    fn an_episode_is_one_line_at_its_start_and_one_at_its_end() {
        let mut episode = Episode::default();
        assert!(episode.count());
        for _ in 0..1000 {
            assert!(!episode.count());
        }
        assert_eq!(episode.due(), None);
        let (count, _) = episode.end().unwrap();
        assert_eq!(count, 1001);
        assert!(episode.end().is_none());
        assert!(episode.count());
    }

    #[test]
    fn the_pause_doubles_up_to_a_second_and_starts_over_after_an_accept() {
        let mut log = AcceptLog::new(Connections::new(4));
        let error = io::Error::from_raw_os_error(24);
        let pauses: Vec<Duration> = (0..10).map(|_| log.failed(&error)).collect();
        assert_eq!(pauses[0], FIRST_PAUSE);
        assert_eq!(pauses[1], FIRST_PAUSE * 2);
        assert_eq!(pauses[9], LONGEST_PAUSE);
        log.accepted();
        assert_eq!(log.failed(&error), FIRST_PAUSE);
        assert_eq!(log.connections.counts().failed_accepts, 11);
    }

    #[test]
    fn the_ceiling_counts_refusals_and_frees_places() {
        let connections = Connections::new(2);
        let one = connections.open().unwrap();
        let _two = connections.open().unwrap();
        assert!(connections.open().is_none());
        drop(one);
        assert!(connections.open().is_some());
        let counts = connections.counts();
        assert_eq!((counts.max, counts.refused), (2, 1));
    }
}
