//! Newline-delimited JSON-RPC framing with a bound, for both stdio sides: the client's stdin
//! (`upstream::stdio`) and each child's stdout (`downstream::child`).
//!
//! rmcp's stdio transports (`AsyncRwTransport`, behind `transport::stdio()` and
//! `TokioChildProcess`) skip a line they cannot parse with a debug log, answer a mis-shaped one
//! with an id-less `-32600`, and drop a line over their limit with a log line only, so its request
//! waits for its timeout; that limit is 16 MiB and neither constructor lets a caller change it.
//! A client deserves an answer for every line it sends, and a server's oversized answer should
//! fail its request at once. So we frame lines ourselves: a line longer than the limit (set by
//! the caller) is never buffered whole; its bytes are skipped as they arrive while [`IdScanner`]
//! looks for its top-level `"id"`, and the caller gets [`Frame::Oversized`] with that id to
//! answer or fail. Whole lines are handed out as slices of the read buffer, without a copy.
//!
//! When rmcp's transports report every line they refuse (with its id where there is one) and
//! take a limit, the transports can use them instead and this file goes.

use rmcp::model::{NumberOrString, RequestId};
use tokio::io::{AsyncRead, AsyncReadExt};

/// The read buffer's first size: a message of a few hundred bytes, or many of them read at once,
/// fits without growing it.
const INITIAL_CAPACITY: usize = 64 * 1024;

/// The least free space a read gets; below it the buffer is compacted or grown first.
const MIN_READ: usize = 4 * 1024;

/// A buffer grown past this for a large message is given back once that message is consumed.
const KEPT_CAPACITY: usize = 1024 * 1024;

/// The longest `"id"` value the scanner keeps, in bytes.
const MAX_ID_BYTES: usize = 256;

/// What the framer found.
#[derive(Debug, PartialEq)]
pub enum Frame<'a> {
    /// A whole line, without its line break. At the end of the stream, the unterminated rest.
    Line(&'a [u8]),
    /// A line longer than the limit, skipped; its top-level `"id"` when one was seen.
    Oversized { id: Option<RequestId> },
}

/// Lines of at most `max` bytes from an async byte stream.
#[derive(Debug)]
pub struct LineReader<R> {
    input: R,
    framer: LineFramer,
    /// The stream has ended; nothing more is read.
    ended: bool,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    pub fn new(input: R, max: usize) -> LineReader<R> {
        LineReader {
            input,
            framer: LineFramer::new(max),
            ended: false,
        }
    }

    /// The next frame, or `None` once the stream has ended and everything in it was framed.
    /// Cancel-safe: a read that is cancelled consumed nothing, and the framer steps only after
    /// a read completes.
    pub async fn next(&mut self) -> std::io::Result<Option<Frame<'_>>> {
        loop {
            if let Some(found) = self.framer.find() {
                return Ok(Some(self.framer.frame(found)));
            }
            if self.ended {
                return Ok(self.framer.finish());
            }
            if self.input.read_buf(self.framer.read_space()).await? == 0 {
                self.ended = true;
            }
        }
    }
}

/// Cuts bytes into lines of at most `max` bytes, in a buffer it owns: bytes are read into
/// [`LineFramer::read_space`], and a line is handed out as a slice of it. The bytes of a line
/// longer than `max` are dropped as they arrive.
#[derive(Debug)]
pub struct LineFramer {
    max: usize,
    buffer: Vec<u8>,
    /// Where the bytes not yet framed begin.
    start: usize,
    /// How far from `start` there is no line break.
    scanned: usize,
    /// Skipping the rest of an oversized line.
    skipping: bool,
    scanner: IdScanner,
}

/// A frame found, by position, so the buffer's borrow starts only when it is handed out.
enum Found {
    Line(std::ops::Range<usize>),
    Oversized(Option<RequestId>),
}

impl LineFramer {
    pub fn new(max: usize) -> LineFramer {
        LineFramer {
            max,
            buffer: Vec::with_capacity(INITIAL_CAPACITY),
            start: 0,
            scanned: 0,
            skipping: false,
            scanner: IdScanner::default(),
        }
    }

    /// The buffer to append read bytes to, with at least 4 KiB of free capacity.
    pub fn read_space(&mut self) -> &mut Vec<u8> {
        if self.start == self.buffer.len() {
            if self.buffer.capacity() > KEPT_CAPACITY {
                self.buffer = Vec::with_capacity(INITIAL_CAPACITY);
            }
            self.buffer.clear();
            self.start = 0;
            self.scanned = 0;
        } else if self.start > 0 && self.buffer.capacity() - self.buffer.len() < MIN_READ {
            // Only the start of one line is held here (everything before it was framed).
            self.buffer.drain(..self.start);
            self.scanned -= self.start;
            self.start = 0;
        }
        if self.buffer.capacity() - self.buffer.len() < MIN_READ {
            self.buffer.reserve(self.buffer.capacity().max(MIN_READ));
        }
        &mut self.buffer
    }

    /// The next frame in the bytes read so far. Call until `None`, then read more.
    pub fn next_frame(&mut self) -> Option<Frame<'_>> {
        let found = self.find()?;
        Some(self.frame(found))
    }

    /// At the end of the stream, after `next_frame` gave `None`: the unterminated last line, or
    /// the oversized line the stream ended in.
    pub fn finish(&mut self) -> Option<Frame<'_>> {
        let end = self.buffer.len();
        if self.skipping {
            self.skipping = false;
            return Some(Frame::Oversized {
                id: std::mem::take(&mut self.scanner).id(),
            });
        }
        if self.start == end {
            return None;
        }
        let line = self.start..end;
        self.start = end;
        self.scanned = end;
        Some(self.frame(Found::Line(without_carriage_return(&self.buffer, line))))
    }

    fn frame(&self, found: Found) -> Frame<'_> {
        match found {
            Found::Line(range) => Frame::Line(&self.buffer[range]),
            Found::Oversized(id) => Frame::Oversized { id },
        }
    }

    fn find(&mut self) -> Option<Found> {
        let end = self.buffer.len();
        let newline =
            memchr::memchr(b'\n', &self.buffer[self.scanned..end]).map(|at| self.scanned + at);
        let Some(newline) = newline else {
            if self.skipping || end - self.start > self.max {
                // Over the limit: hand what we hold to the scanner and skip from here on.
                self.scanner.feed(&self.buffer[self.start..end]);
                self.skipping = true;
                self.start = end;
            }
            self.scanned = end;
            return None;
        };
        let line = self.start..newline;
        self.start = newline + 1;
        self.scanned = newline + 1;
        if self.skipping {
            self.scanner.feed(&self.buffer[line]);
            self.skipping = false;
            return Some(Found::Oversized(std::mem::take(&mut self.scanner).id()));
        }
        if line.len() > self.max {
            let mut scanner = IdScanner::default();
            scanner.feed(&self.buffer[line]);
            return Some(Found::Oversized(scanner.id()));
        }
        Some(Found::Line(without_carriage_return(&self.buffer, line)))
    }
}

fn without_carriage_return(
    buffer: &[u8],
    mut line: std::ops::Range<usize>,
) -> std::ops::Range<usize> {
    if line.end > line.start && buffer[line.end - 1] == b'\r' {
        line.end -= 1;
    }
    line
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
            // Done: not an object, or its first top-level id is known.
            if self.broken || self.found.is_some() {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame, owned.
    #[derive(Debug, PartialEq)]
    enum Got {
        Line(Vec<u8>),
        Oversized(Option<RequestId>),
    }

    fn owned(frame: Frame<'_>) -> Got {
        match frame {
            Frame::Line(line) => Got::Line(line.to_vec()),
            Frame::Oversized { id } => Got::Oversized(id),
        }
    }

    fn line(text: &str) -> Got {
        Got::Line(text.as_bytes().to_vec())
    }

    /// Frames `chunks` as reads of those sizes, then the end of the stream.
    fn frames(max: usize, chunks: &[&[u8]]) -> Vec<Got> {
        let mut framer = LineFramer::new(max);
        let mut out = Vec::new();
        for chunk in chunks {
            framer.read_space().extend_from_slice(chunk);
            while let Some(frame) = framer.next_frame() {
                out.push(owned(frame));
            }
        }
        out.extend(framer.finish().map(owned));
        out
    }

    #[test]
    fn lines_within_the_limit_pass_whole() {
        assert_eq!(
            frames(10, &[b"ab", b"c\r\nde\n", b"f"]),
            [line("abc"), line("de"), line("f")]
        );
        // Exactly the limit is fine.
        assert_eq!(frames(3, &[b"abc\n"]), [line("abc")]);
        assert_eq!(frames(3, &[b"abc\n", b"\r\n"]), [line("abc"), line("")]);
    }

    #[test]
    fn oversized_lines_are_skipped_with_their_id() {
        let big = format!(
            "{{\"result\":{{\"text\":\"{}\",\"id\":99}},\"jsonrpc\":\"2.0\",\"id\":7}}\n{{\"id\":1}}\n",
            "x".repeat(100)
        );
        assert_eq!(
            frames(50, &[&big.as_bytes()[..30], &big.as_bytes()[30..]]),
            [
                Got::Oversized(Some(NumberOrString::Number(7))),
                line("{\"id\":1}")
            ]
        );
        // The same line arriving in one read.
        assert_eq!(
            frames(50, &[big.as_bytes()]),
            [
                Got::Oversized(Some(NumberOrString::Number(7))),
                line("{\"id\":1}")
            ]
        );
        let string_id = format!(
            "{{\"id\" : \"a\\\"b\",\"result\":\"{}\"}}\n",
            "y".repeat(60)
        );
        assert_eq!(
            frames(20, &[string_id.as_bytes()]),
            [Got::Oversized(Some(NumberOrString::String("a\"b".into())))]
        );
        assert_eq!(frames(4, &[b"[1,2,3]\n"]), [Got::Oversized(None)]);
    }

    #[test]
    fn a_stream_that_ends_in_an_oversized_line_still_reports_it() {
        assert_eq!(
            frames(8, &[b"ok\n{\"id\":3,", b"\"x\":\"long\""]),
            [line("ok"), Got::Oversized(Some(NumberOrString::Number(3)))]
        );
    }

    #[test]
    fn ids_in_nested_objects_and_strings_do_not_count() {
        let mut scanner = IdScanner::default();
        scanner.feed(br#"{"params":{"id":5},"text":"\"id\":6","method":"x"}"#);
        assert_eq!(scanner.id(), None);
    }

    #[test]
    fn frames_equal_a_plain_split_whatever_the_chunking() {
        // A fixed pseudo-random sequence (xorshift): short lines of a few letters, `\r` and `\n`.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..2_000 {
            let body: Vec<u8> = (0..next() % 80)
                .map(|_| [b'a', b'{', b'"', b'\r', b'\n'][(next() % 5) as usize])
                .collect();
            let max = 1 + (next() % 12) as usize;
            let chunk = 1 + (next() % 9) as usize;
            let chunks: Vec<&[u8]> = body.chunks(chunk).collect();
            let mut segments: Vec<&[u8]> = body.split(|byte| *byte == b'\n').collect();
            if segments.last().is_some_and(|rest| rest.is_empty()) {
                segments.pop();
            }
            let expected: Vec<Got> = segments
                .into_iter()
                .map(|segment| {
                    if segment.len() > max {
                        Got::Oversized(None)
                    } else {
                        Got::Line(segment.strip_suffix(b"\r").unwrap_or(segment).to_vec())
                    }
                })
                .collect();
            let got: Vec<Got> = frames(max, &chunks)
                .into_iter()
                .map(|frame| match frame {
                    Got::Oversized(_) => Got::Oversized(None),
                    line => line,
                })
                .collect();
            assert_eq!(
                got, expected,
                "{body:?} at most {max} bytes, read {chunk} at a time"
            );
        }
    }

    #[tokio::test]
    async fn a_reader_frames_a_stream_larger_than_its_buffer() {
        // Lines of every size up to past the buffer's first capacity, and oversized ones between.
        let mut input = Vec::new();
        let mut expected = Vec::new();
        for round in 0..40_usize {
            let size = round * round * 97;
            let text = format!("{{\"id\":{round},\"pad\":\"{}\"}}", "z".repeat(size));
            input.extend_from_slice(text.as_bytes());
            input.push(b'\n');
            if text.len() > 100_000 {
                expected.push(Got::Oversized(Some(NumberOrString::Number(round as i64))));
            } else {
                expected.push(Got::Line(text.into_bytes()));
            }
        }
        let mut reader = LineReader::new(input.as_slice(), 100_000);
        let mut out = Vec::new();
        while let Some(frame) = reader.next().await.unwrap() {
            out.push(owned(frame));
        }
        assert_eq!(out.len(), expected.len());
        assert!(out == expected, "the frames differ from the lines written");
        assert!(reader.framer.buffer.capacity() <= 2 * (100_000 + MIN_READ));
    }
}
