//! The event stream of a legacy SSE connection: the response body parsed into SSE events, with a
//! per-event size cap applied to the raw bytes before the parser buffers them. What the events mean
//! is the reader's business.

use futures::{StreamExt, stream::BoxStream};
use sse_stream::{Sse, SseStream};

use crate::telemetry::error_chain;

/// The SSE events of one response body.
pub(super) type EventStream = BoxStream<'static, Result<Sse, sse_stream::Error>>;

/// Error of the byte stream fed to the SSE parser.
#[derive(Debug, thiserror::Error)]
enum BodyError {
    #[error("{}", error_chain(.0))]
    Read(reqwest::Error),
    #[error("event larger than the size limit (security.maxMessageBytes)")]
    TooLarge,
}

/// Whether the stream failed because an event outgrew the size limit.
pub(super) fn is_too_large(error: &sse_stream::Error) -> bool {
    matches!(error, sse_stream::Error::Body(e) if matches!(e.downcast_ref::<BodyError>(), Some(BodyError::TooLarge)))
}

/// What went wrong with the stream, for an error message or a log line.
pub(super) fn stream_error_detail(error: &sse_stream::Error) -> String {
    match error {
        sse_stream::Error::Body(e) => e.to_string(),
        other => format!("malformed event stream: {other}"),
    }
}

/// Turns the response body into a stream of SSE events, with the per-event size cap applied
/// to the raw bytes before the parser buffers them.
pub(super) fn event_stream(response: reqwest::Response, limit: usize) -> EventStream {
    let mut guard = EventSizeGuard::new(limit);
    let mut failed = false;
    let bytes = response.bytes_stream().map(move |chunk| {
        if failed {
            return Err(BodyError::TooLarge);
        }
        let chunk = chunk.map_err(|e| BodyError::Read(e.without_url()))?;
        if guard.observe(&chunk) {
            Ok(chunk)
        } else {
            failed = true;
            Err(BodyError::TooLarge)
        }
    });
    Box::pin(SseStream::from_bytes_stream(bytes))
}

/// Tracks how many bytes the SSE parser would hold for the event being received: the data of
/// the completed lines of the current event (comments excluded) plus the line in progress.
#[derive(Debug)]
struct EventSizeGuard {
    limit: usize,
    event_bytes: usize,
    line_bytes: usize,
    line_is_comment: bool,
    after_cr: bool,
}

impl EventSizeGuard {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            event_bytes: 0,
            line_bytes: 0,
            line_is_comment: false,
            after_cr: false,
        }
    }

    /// Feeds a chunk; returns false once the current event exceeds the limit.
    fn observe(&mut self, chunk: &[u8]) -> bool {
        for &byte in chunk {
            let after_cr = std::mem::take(&mut self.after_cr);
            match byte {
                b'\n' if after_cr => {}
                b'\r' | b'\n' => {
                    self.end_line();
                    self.after_cr = byte == b'\r';
                }
                _ => {
                    if self.line_bytes == 0 {
                        self.line_is_comment = byte == b':';
                    }
                    self.line_bytes += 1;
                }
            }
            if self.event_bytes.saturating_add(self.line_bytes) > self.limit {
                return false;
            }
        }
        true
    }

    fn end_line(&mut self) {
        if self.line_bytes == 0 {
            // A blank line dispatches the event.
            self.event_bytes = 0;
        } else if !self.line_is_comment {
            // +1 for the newline the parser inserts between data lines.
            self.event_bytes = self.event_bytes.saturating_add(self.line_bytes + 1);
        }
        self.line_bytes = 0;
        self.line_is_comment = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_guard_counts_one_event() {
        let mut guard = EventSizeGuard::new(12);
        assert!(guard.observe(b"data: 1234\n\n"), "11 bytes, then reset");
        assert!(guard.observe(b": comment\r\n: comment\r\n: comment\r"));
        assert!(
            guard.observe(b"\ndata:\r\n\r\ndata: 12"),
            "CRLF split across chunks"
        );
        assert!(guard.observe(b"345"));
        assert!(!guard.observe(b"67"), "13 bytes in one event");
        let mut guard = EventSizeGuard::new(12);
        assert!(
            !guard.observe(b": a long comment line"),
            "an unfinished line counts"
        );
    }
}
