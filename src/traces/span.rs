//! Spans: started with a parent (a client's context, or the span the task is in), given
//! attributes, and handed to the exporter when they end (dropped, so that a cancelled request's
//! span ends too). A sampled span is encoded as it goes — its name when it starts, each attribute
//! when it is set, the rest when it ends — so that nothing is copied or allocated twice and the
//! exporter only wraps the bytes. With tracing off a span is nothing: no ids, no clock reads.

use std::cell::RefCell;
use std::future::Future;
use std::time::{SystemTime, UNIX_EPOCH};

use super::context::{SpanContext, new_span_id, new_trace_id};
use super::data::{Kind, Value};
use super::proto::{FIXED64, LEN, VARINT, key};
use super::{export, proto};

tokio::task_local! {
    /// The span a task's work is in, for the spans it starts.
    static CURRENT: SpanContext;
}

/// The span the current task's work is in, if any.
pub fn current() -> Option<SpanContext> {
    CURRENT.try_with(Clone::clone).ok()
}

/// Runs `work` inside `span`: the spans it starts are its children, and the log lines it writes
/// carry the span's ids (`telemetry`). Without a span (tracing off), `work` runs as it is.
pub async fn within<F: Future>(span: &Span, work: F) -> F::Output {
    match &span.0 {
        Some(inner) => CURRENT.scope(inner.context.clone(), work).await,
        None => work.await,
    }
}

/// Runs `work` inside the span `context` names, as [`within`] does for a span known to be on:
/// the future is not moved into a wrapper of its own first (a call's is large).
pub fn entered<F: Future>(
    context: SpanContext,
    work: F,
) -> tokio::task::futures::TaskLocalFuture<SpanContext, F> {
    CURRENT.scope(context, work)
}

/// Runs `work` inside the span `context` names (none: as it is), as [`within`] does: for work
/// moved to a task of its own.
pub async fn in_context<F: Future>(context: Option<SpanContext>, work: F) -> F::Output {
    match context {
        Some(context) => CURRENT.scope(context, work).await,
        None => work.await,
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
        })
}

/// The most of an error's description a span keeps (a downstream server writes it).
const MAX_STATUS: usize = 1024;
/// The most of one attribute's text a span keeps.
const MAX_VALUE: usize = 4096;

/// A span's name: `{first} {second}` (the conventions' `{mcp.method.name} {target}`), or `first`.
pub type Name<'a> = (&'a str, Option<&'a str>);

/// A span being timed. Ends when dropped; recorded only when sampled. One pointer wide, so that
/// the requests that carry one are moved as cheaply as without: `None` with tracing off.
pub struct Span(Option<Box<Inner>>);

struct Inner {
    context: SpanContext,
    /// What is recorded: `None` when not sampled.
    recording: Option<Recording>,
}

/// A sampled span's record so far.
struct Recording {
    parent: Option<[u8; 8]>,
    /// The parent came from another process (a client's `traceparent`).
    remote_parent: bool,
    kind: Kind,
    /// Unix time in nanoseconds.
    start: u64,
    /// When it ended, if its owner timed it ([`Span::end_after`]); else it ends when dropped.
    end: Option<u64>,
    /// `Span` fields encoded so far: the name, then each attribute as it was set.
    fields: Vec<u8>,
    /// The error's description, when it ended in one.
    status: Option<Box<str>>,
}

impl Span {
    /// No span (tracing off).
    pub const fn none() -> Span {
        Span(None)
    }

    /// A span answering a request whose sender's context is `remote` (from its `traceparent`),
    /// else a new trace.
    pub fn server(name: Name<'_>, remote: Option<SpanContext>) -> Span {
        Span::start(Kind::Server, name, remote.as_ref(), true)
    }

    /// A span inside the current one; outside one, none (background work starts no trace).
    pub fn child(kind: Kind, name: Name<'_>) -> Span {
        CURRENT
            .try_with(|parent| Span::start(kind, name, Some(parent), false))
            .unwrap_or(Span::none())
    }

    fn start(
        kind: Kind,
        name: Name<'_>,
        parent: Option<&SpanContext>,
        remote_parent: bool,
    ) -> Span {
        let Some(exporter) = export::exporter() else {
            return Span::none();
        };
        let (context, parent_id) = match parent {
            Some(parent) => {
                let context = SpanContext {
                    trace_id: parent.trace_id,
                    span_id: new_span_id(),
                    sampled: exporter.sampler.sample(Some(parent), &parent.trace_id),
                    trace_state: parent.trace_state.clone(),
                };
                (context, Some(parent.span_id))
            }
            None => {
                let trace_id = new_trace_id();
                let sampled = exporter.sampler.sample(None, &trace_id);
                let context = SpanContext {
                    trace_id,
                    span_id: new_span_id(),
                    sampled,
                    trace_state: None,
                };
                (context, None)
            }
        };
        if !context.sampled {
            return Span(Some(Box::new(Inner {
                context,
                recording: None,
            })));
        }
        // A box and a buffer an ended span left, filled in place; else new ones.
        let mut inner = match spare() {
            Some(mut inner) => {
                inner.context = context;
                inner
            }
            None => Box::new(Inner {
                context,
                recording: None,
            }),
        };
        let recording = inner.recording.get_or_insert_with(|| Recording {
            parent: None,
            remote_parent: false,
            kind,
            start: 0,
            end: None,
            fields: Vec::with_capacity(384),
            status: None,
        });
        recording.parent = parent_id;
        recording.remote_parent = remote_parent && parent_id.is_some();
        recording.kind = kind;
        recording.start = now();
        recording.end = None;
        recording.status = None;
        let fields = &mut recording.fields;
        fields.clear();
        // A client chooses the target (the tool it calls): cut as an attribute is.
        let (first, second) = (
            truncated(name.0, MAX_VALUE),
            name.1.map(|second| truncated(second, MAX_VALUE)),
        );
        let len = first.len() + second.map_or(0, |second| second.len() + 1);
        proto::tag(fields, 5, proto::LEN);
        proto::varint(fields, len as u64);
        fields.extend_from_slice(first.as_bytes());
        if let Some(second) = second {
            fields.push(b' ');
            fields.extend_from_slice(second.as_bytes());
        }
        Span(Some(inner))
    }

    /// Where this span sits, to pass on (`None`: tracing off).
    pub fn context(&self) -> Option<&SpanContext> {
        self.0.as_ref().map(|inner| &inner.context)
    }

    /// Whether attributes are kept (sampled): cheap to ask before working one out.
    pub fn is_recording(&self) -> bool {
        self.recording().is_some()
    }

    fn recording(&self) -> Option<&Recording> {
        self.0.as_ref()?.recording.as_ref()
    }

    fn recording_mut(&mut self) -> Option<&mut Recording> {
        self.0.as_mut()?.recording.as_mut()
    }

    pub fn set<'a>(&mut self, key: &str, value: impl Into<Value<'a>>) {
        if let Some(recording) = self.recording_mut() {
            let value = match value.into() {
                Value::Str(text) => Value::Str(truncated(text, MAX_VALUE)),
                other => other,
            };
            proto::key_value(&mut recording.fields, 9, key, value);
        }
    }

    /// Sets attributes whose keys and values are all fixed text (a method's name, a transport),
    /// as one group: encoded once per thread, then copied in one piece. Most of a call's
    /// attributes are such pairs, and a span's are known together.
    pub fn set_fixed(&mut self, pairs: &Fixed) {
        let Some(recording) = self.recording_mut() else {
            return;
        };
        let pairs = pairs.pairs();
        let copied = FIXED.try_with(|fixed| {
            let mut fixed = fixed.borrow_mut();
            if let Some((_, bytes)) = fixed.iter().find(|(known, _)| same_pairs(known, pairs)) {
                recording.fields.extend_from_slice(bytes);
                return true;
            }
            if fixed.len() >= FIXED_GROUPS {
                return false;
            }
            let mut bytes = Vec::new();
            for (key, value) in pairs {
                let value = Value::Str(truncated(value, MAX_VALUE));
                proto::key_value(&mut bytes, 9, key, value);
            }
            recording.fields.extend_from_slice(&bytes);
            fixed.push((pairs.into(), bytes.into_boxed_slice()));
            true
        });
        if copied != Ok(true) {
            for (key, value) in pairs {
                self.set(key, *value);
            }
        }
    }

    /// Says how long after its start the span ended, as its owner timed the work (one clock
    /// read for both the metrics and the span).
    pub fn end_after(&mut self, elapsed: std::time::Duration) {
        if let Some(recording) = self.recording_mut() {
            let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
            recording.end = Some(recording.start.saturating_add(nanos));
        }
    }

    /// Ends in error: `error.type` and the status's description.
    pub fn fail(&mut self, error_type: &str, message: &str) {
        self.set("error.type", error_type);
        if let Some(recording) = self.recording_mut() {
            recording.status = Some(truncated(message, MAX_STATUS).into());
        }
    }
}

/// At most `max` bytes of `text`, cut at a character's boundary.
fn truncated(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

impl Drop for Span {
    fn drop(&mut self) {
        let Some(mut inner) = self.0.take() else {
            return;
        };
        let Inner {
            context,
            recording: Some(recording),
        } = &mut *inner
        else {
            return;
        };
        let Recording {
            parent,
            remote_parent,
            kind,
            start,
            end,
            fields,
            status,
        } = recording;
        // `Span`: trace_id 1, span_id 2, trace_state 3, parent_span_id 4, name 5 (written),
        // kind 6, start_time_unix_nano 7, end_time_unix_nano 8, attributes 9 (written),
        // status 15, flags 16.
        // The fixed-size fields in one copy: ids, kind, times.
        let mut fixed = [0u8; 2 + 16 + 2 + 8 + 2 + 8 + 2 + 9 + 9];
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            fixed[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
        };
        put(&[key(1, LEN), 16]);
        put(&context.trace_id);
        put(&[key(2, LEN), 8]);
        put(&context.span_id);
        if let Some(parent) = &parent {
            put(&[key(4, LEN), 8]);
            put(parent);
        }
        #[expect(clippy::cast_possible_truncation, reason = "a kind is 1 to 3")]
        put(&[key(6, VARINT), kind.number() as u8]);
        put(&[key(7, FIXED64)]);
        put(&start.to_le_bytes());
        put(&[key(8, FIXED64)]);
        put(&end.unwrap_or_else(now).to_le_bytes());
        fields.extend_from_slice(&fixed[..at]);
        if let Some(state) = &context.trace_state {
            proto::bytes(fields, 3, state.as_bytes());
        }
        // `Status { message = 2; code = 3 }`: 2 is ERROR.
        if let Some(text) = &status {
            proto::message(fields, 15, |status| {
                proto::bytes(status, 2, text.as_bytes());
                proto::number(status, 3, 2);
            });
        }
        // The sampled flag, and that whether the parent is remote is known (bit 8) and said
        // (bit 9).
        let remote = if *remote_parent { 0x300 } else { 0x100 };
        proto::fixed32(fields, 16, u32::from(context.sampled) | remote);
        export::submit(fields);
        give_back(inner);
    }
}

thread_local! {
    /// Ended sampled spans, for the next spans to start on this thread: a span's bytes are
    /// copied to the exporter when it ends, so its box and its buffer can serve again at once
    /// instead of two allocations and two frees per span.
    #[expect(clippy::vec_box, reason = "the boxes are what is kept: a span is one")]
    static SPARE: RefCell<Vec<Box<Inner>>> = const { RefCell::new(Vec::new()) };
}

/// A key and its value, both fixed text.
type Pair = (&'static str, &'static str);

/// Attributes whose keys and values are fixed text, gathered for [`Span::set_fixed`]: at most
/// [`Fixed::MAX`], on the stack.
pub struct Fixed {
    pairs: [Pair; Fixed::MAX],
    len: usize,
}

impl Fixed {
    pub const MAX: usize = 6;

    pub const fn new() -> Fixed {
        Fixed {
            pairs: [("", ""); Fixed::MAX],
            len: 0,
        }
    }

    /// Adds a pair (past [`Fixed::MAX`], a mistake in the code: left out).
    pub fn push(&mut self, key: &'static str, value: &'static str) {
        debug_assert!(
            self.len < Fixed::MAX,
            "more fixed attributes than a group holds"
        );
        if let Some(slot) = self.pairs.get_mut(self.len) {
            *slot = (key, value);
            self.len += 1;
        }
    }

    fn pairs(&self) -> &[Pair] {
        &self.pairs[..self.len]
    }
}

impl Default for Fixed {
    fn default() -> Fixed {
        Fixed::new()
    }
}

/// Whether two groups are the same text at the same places: fixed text is known by where it is,
/// so that a group is found without reading it.
fn same_pairs(known: &[Pair], pairs: &[Pair]) -> bool {
    known.len() == pairs.len()
        && known
            .iter()
            .zip(pairs)
            .all(|((key, value), (other_key, other_value))| {
                std::ptr::eq(*key, *other_key) && std::ptr::eq(*value, *other_value)
            })
}

/// A group of fixed attributes and its encoding.
type Encoded = (Box<[Pair]>, Box<[u8]>);

thread_local! {
    /// Groups of fixed attributes already encoded on this thread ([`Span::set_fixed`]).
    static FIXED: RefCell<Vec<Encoded>> = const { RefCell::new(Vec::new()) };
}

/// The most groups kept per thread: the code makes a few dozen; past that they are encoded
/// each time.
const FIXED_GROUPS: usize = 64;

/// The most spans kept per thread, and the largest buffer kept (a span with a long attribute
/// gives its buffer back to the allocator).
const SPARE_SPANS: usize = 16;
const SPARE_CAPACITY: usize = 2048;

fn spare() -> Option<Box<Inner>> {
    SPARE
        .try_with(|spare| spare.borrow_mut().pop())
        .ok()
        .flatten()
}

/// Keeps an ended span's box for the next: its buffer cleared, its text dropped.
fn give_back(mut inner: Box<Inner>) {
    let Some(recording) = &mut inner.recording else {
        return;
    };
    if recording.fields.capacity() > SPARE_CAPACITY {
        return;
    }
    recording.fields.clear();
    recording.status = None;
    inner.context.trace_state = None;
    let _ = SPARE.try_with(|spare| {
        let mut spare = spare.borrow_mut();
        if spare.len() < SPARE_SPANS {
            spare.push(inner);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recording() -> Span {
        let context = SpanContext {
            trace_id: [1; 16],
            span_id: [2; 8],
            sampled: true,
            trace_state: None,
        };
        let recording = Recording {
            parent: None,
            remote_parent: false,
            kind: Kind::Server,
            start: 0,
            end: None,
            fields: Vec::new(),
            status: None,
        };
        Span(Some(Box::new(Inner {
            context,
            recording: Some(recording),
        })))
    }

    fn fields(span: &Span) -> Vec<u8> {
        span.recording().unwrap().fields.clone()
    }

    #[test]
    fn fixed_pairs_are_encoded_as_any_attribute_is() {
        let (mut plain, mut fixed) = (recording(), recording());
        let mut group = Fixed::new();
        group.push("mcp.method.name", "tools/call");
        group.push("network.transport", "pipe");
        for _ in 0..2 {
            plain.set("mcp.method.name", "tools/call");
            plain.set("network.transport", "pipe");
            fixed.set_fixed(&group);
        }
        assert!(!fields(&plain).is_empty());
        assert_eq!(fields(&plain), fields(&fixed));
        // A value that shares another's text but not its length is a pair of its own, and a
        // group that starts like a known one is a group of its own.
        let mut shorter = Fixed::new();
        shorter.push("mcp.method.name", &"tools/call"[..5]);
        fixed.set_fixed(&shorter);
        plain.set("mcp.method.name", "tools");
        let mut first = Fixed::new();
        first.push("mcp.method.name", "tools/call");
        fixed.set_fixed(&first);
        plain.set("mcp.method.name", "tools/call");
        assert_eq!(fields(&plain), fields(&fixed));
    }

    #[test]
    fn long_text_is_cut_at_a_character() {
        assert_eq!(truncated("abc", 5), "abc");
        assert_eq!(truncated("aé", 2), "a");
        assert_eq!(truncated("aé", 3), "aé");
    }
}
