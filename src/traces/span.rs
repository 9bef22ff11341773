//! Spans: started with a parent (a client's context, or the span the task is in), given
//! attributes, and handed to the exporter when they end (dropped, so that a cancelled request's
//! span ends too). A sampled span is encoded as it goes — its name and the attributes every
//! request of its kind to its target shares (its [`Head`]) when it starts, copied from a
//! per-thread cache of heads already encoded; each other attribute when it is set; the rest when
//! it ends — so that nothing is copied or allocated twice and the exporter only wraps the bytes.
//! With tracing off a span is nothing: no ids, no clock reads.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::context::{SpanContext, new_span_id, new_trace_id};
use super::data::{Kind, Value};
use super::proto::{FIXED64, FLAGS_KEY, LEN, VARINT, key};
use super::{export, proto};

thread_local! {
    /// The span the work being polled on this thread is in, for the spans it starts and the log
    /// lines it writes: set around each poll of a future run [`within`] a span, as a task-local
    /// is, but a plain cell, so that entering and leaving cost two moves of a few words.
    static CURRENT: Cell<Option<SpanContext>> = const { Cell::new(None) };
}

/// The span the current task's work is in, if any.
pub fn current() -> Option<SpanContext> {
    CURRENT
        .try_with(|current| {
            let context = current.take();
            current.set(context.clone());
            context
        })
        .ok()
        .flatten()
}

/// Runs `work` inside `span`: the spans it starts are its children, and the log lines it writes
/// carry the span's ids (`telemetry`). Without a span (tracing off), `work` runs as it is.
pub async fn within<F: Future>(span: &Span, work: F) -> F::Output {
    match &span.0 {
        Some(inner) => entered(inner.context.clone(), work).await,
        None => work.await,
    }
}

/// Runs `work` inside the span `context` names, as [`within`] does for a span known to be on.
/// A call's future is large: its caller pins it where it is made and passes the pinned
/// reference, so that nothing large is moved.
pub async fn entered<F: Future>(context: SpanContext, work: F) -> F::Output {
    let mut work = std::pin::pin!(work);
    let mut slot = Some(context);
    std::future::poll_fn(move |cx| {
        let _entered = Entered::enter(&mut slot);
        work.as_mut().poll(cx)
    })
    .await
}

/// Runs `work` inside the span `context` names (none: as it is), as [`within`] does: for work
/// moved to a task of its own.
pub async fn in_context<F: Future>(context: Option<SpanContext>, work: F) -> F::Output {
    match context {
        Some(context) => entered(context, work).await,
        None => work.await,
    }
}

/// A span made current for one poll: the slot holds the span while its work is not being
/// polled, and the one it replaced while it is, put back when the poll ends (or unwinds).
struct Entered<'a> {
    slot: &'a mut Option<SpanContext>,
}

impl<'a> Entered<'a> {
    fn enter(slot: &'a mut Option<SpanContext>) -> Entered<'a> {
        swap_current(slot);
        Entered { slot }
    }
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        swap_current(self.slot);
    }
}

fn swap_current(slot: &mut Option<SpanContext>) {
    // After the thread's locals are gone (its exit), nothing is current.
    let _ = CURRENT.try_with(|current| {
        let other = current.replace(slot.take());
        *slot = other;
    });
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, nanos)
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// The most of an error's description a span keeps (a downstream server writes it).
const MAX_STATUS: usize = 1024;
/// The most of one attribute's text a span keeps.
const MAX_VALUE: usize = 4096;

/// A span's name: `{first} {second}` (the conventions' `{mcp.method.name} {target}`), or `first`.
pub type Name<'a> = (&'static str, Option<&'a str>);

/// What a span begins with: a head gathered for it, looked up in the per-thread cache, or one
/// its owner keeps encoded ([`KeptHead`]).
#[derive(Clone, Copy)]
enum Start<'h, 'a> {
    Gathered(&'h Head<'a>),
    Kept(&'h [u8]),
}

/// A span's head encoded once and kept by the owner of what it names (a catalog's route to a
/// tool), so that the spans of its requests copy it in without the per-thread cache's hash and
/// comparison. It keeps the head of the first [`Shape`] it is asked for; a request of another
/// shape (another protocol version, say) gathers its head as usual.
#[derive(Default)]
pub struct KeptHead(OnceLock<(Shape, Box<[u8]>)>);

/// The fixed text a kept head was gathered with besides what its owner names (the caller's
/// protocol version, the transport), compared by where it is: equal only when it is the same
/// text (or both are empty).
#[derive(Clone, Copy)]
pub struct Shape(pub [&'static str; 3]);

impl Shape {
    fn is(&self, other: &Shape) -> bool {
        self.0
            .iter()
            .zip(&other.0)
            .all(|(one, other)| std::ptr::eq(*one, *other) || one.is_empty() && other.is_empty())
    }
}

/// A kept head's encoding, for [`Span::server_kept`] and [`Span::child_kept`].
#[derive(Clone, Copy)]
pub struct Encoded<'k>(&'k [u8]);

impl KeptHead {
    /// The head `gather` makes, encoded the first time and kept; `None` when what is kept has
    /// another shape.
    pub fn get<'a>(&self, shape: Shape, gather: impl FnOnce() -> Head<'a>) -> Option<Encoded<'_>> {
        let (kept, bytes) = self.0.get_or_init(|| {
            let mut bytes = Vec::new();
            gather().encode(&mut bytes);
            (shape, bytes.into())
        });
        kept.is(&shape).then_some(Encoded(bytes))
    }
}

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
        Span::server_with(&Head::new(name), remote)
    }

    /// A server span with the attributes `head` gathers.
    pub fn server_with(head: &Head<'_>, remote: Option<SpanContext>) -> Span {
        Span::start(
            Kind::Server,
            Start::Gathered(head),
            remote.as_ref(),
            true,
            None,
        )
    }

    /// A server span with the attributes `head` gathers, started at `started` (the instant its
    /// owner read to time the work).
    pub fn server_at(head: &Head<'_>, remote: Option<SpanContext>, started: Instant) -> Span {
        let head = Start::Gathered(head);
        Span::start(Kind::Server, head, remote.as_ref(), true, Some(started))
    }

    /// A server span that begins with a head its owner keeps encoded, started at `started`.
    pub fn server_kept(head: Encoded<'_>, remote: Option<SpanContext>, started: Instant) -> Span {
        let head = Start::Kept(head.0);
        Span::start(Kind::Server, head, remote.as_ref(), true, Some(started))
    }

    /// A span inside the current one; outside one, none (background work starts no trace).
    pub fn child(kind: Kind, name: Name<'_>) -> Span {
        Span::child_with(kind, &Head::new(name))
    }

    /// A span inside the current one with the attributes `head` gathers.
    pub fn child_with(kind: Kind, head: &Head<'_>) -> Span {
        Span::child_from(kind, Start::Gathered(head), None)
    }

    /// A span inside the current one with the attributes `head` gathers, started at `started`
    /// (the instant its owner read to time the work).
    pub fn child_at(kind: Kind, head: &Head<'_>, started: Instant) -> Span {
        Span::child_from(kind, Start::Gathered(head), Some(started))
    }

    /// A span inside the current one that begins with a head its owner keeps encoded, started
    /// at `started`.
    pub fn child_kept(kind: Kind, head: Encoded<'_>, started: Instant) -> Span {
        Span::child_from(kind, Start::Kept(head.0), Some(started))
    }

    fn child_from(kind: Kind, head: Start<'_, '_>, started: Option<Instant>) -> Span {
        CURRENT
            .try_with(|current| {
                let parent = current.take();
                let span = parent
                    .as_ref()
                    .map(|parent| Span::start(kind, head, Some(parent), false, started));
                current.set(parent);
                span
            })
            .ok()
            .flatten()
            .unwrap_or(Span::none())
    }

    fn start(
        kind: Kind,
        head: Start<'_, '_>,
        parent: Option<&SpanContext>,
        remote_parent: bool,
        started: Option<Instant>,
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
        recording.start = started.map_or_else(now, export::wall_at);
        recording.end = None;
        recording.status = None;
        let fields = &mut recording.fields;
        fields.clear();
        match head {
            Start::Gathered(head) => head.write(fields),
            Start::Kept(bytes) => fields.extend_from_slice(bytes),
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

    /// Says how long after its start the span ended, as its owner timed the work (one clock
    /// read for both the metrics and the span).
    pub fn end_after(&mut self, elapsed: Duration) {
        if let Some(recording) = self.recording_mut() {
            recording.end = Some(recording.start.saturating_add(nanos(elapsed)));
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
        // The fixed-size fields in one copy, each at a fixed place (the parent last, as it may
        // be missing; protobuf fields go in any order): ids, kind, times, flags.
        let mut tail = [0u8; TAIL + 10];
        tail[..2].copy_from_slice(&[key(1, LEN), 16]);
        tail[2..18].copy_from_slice(&context.trace_id);
        tail[18..20].copy_from_slice(&[key(2, LEN), 8]);
        tail[20..28].copy_from_slice(&context.span_id);
        #[expect(clippy::cast_possible_truncation, reason = "a kind is 1 to 3")]
        tail[28..30].copy_from_slice(&[key(6, VARINT), kind.number() as u8]);
        tail[30] = key(7, FIXED64);
        tail[31..39].copy_from_slice(&start.to_le_bytes());
        tail[39] = key(8, FIXED64);
        tail[40..48].copy_from_slice(&end.unwrap_or_else(now).to_le_bytes());
        // The sampled flag, and that whether the parent is remote is known (bit 8) and said
        // (bit 9).
        let remote = if *remote_parent { 0x300 } else { 0x100 };
        tail[48..50].copy_from_slice(&FLAGS_KEY);
        tail[50..54].copy_from_slice(&(u32::from(context.sampled) | remote).to_le_bytes());
        let len = match parent {
            Some(parent) => {
                tail[54..56].copy_from_slice(&[key(4, LEN), 8]);
                tail[56..64].copy_from_slice(parent);
                TAIL + 10
            }
            None => TAIL,
        };
        fields.extend_from_slice(&tail[..len]);
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
        export::submit(fields);
        give_back(inner);
    }
}

/// The bytes of a span's fixed-size fields without its parent ([`Span`]'s `drop`).
const TAIL: usize = 54;

thread_local! {
    /// Ended sampled spans, for the next spans to start on this thread: a span's bytes are
    /// copied to the exporter when it ends, so its box and its buffer can serve again at once
    /// instead of two allocations and two frees per span.
    #[expect(clippy::vec_box, reason = "the boxes are what is kept: a span is one")]
    static SPARE: RefCell<Vec<Box<Inner>>> = const { RefCell::new(Vec::new()) };
}

/// An attribute's text: fixed (a method's name, a transport), known by where it is, or
/// borrowed from the request (a tool's name, a server's), known by what it says.
#[derive(Clone, Copy)]
enum Text<'a> {
    Fixed(&'static str),
    Borrowed(&'a str),
}

impl<'a> Text<'a> {
    fn get(self) -> &'a str {
        match self {
            Text::Fixed(text) => text,
            Text::Borrowed(text) => text,
        }
    }
}

/// A span's name and the attributes that are the same for every request of its kind to its
/// target (its method, tool, server, transport), gathered on the stack, at most [`Head::MAX`]:
/// encoded once per thread and then copied in one piece ([`Span::server_with`],
/// [`Span::child_with`]). What differs per request (its id, its session) is [`Span::set`].
pub struct Head<'a> {
    name: Name<'a>,
    pairs: [(&'static str, Text<'a>); Head::MAX],
    len: usize,
}

impl<'a> Head<'a> {
    pub const MAX: usize = 8;

    pub const fn new(name: Name<'a>) -> Head<'a> {
        Head {
            name,
            pairs: [("", Text::Fixed("")); Head::MAX],
            len: 0,
        }
    }

    /// Adds an attribute whose value is fixed text.
    pub fn fixed(&mut self, key: &'static str, value: &'static str) {
        self.push(key, Text::Fixed(value));
    }

    /// Adds an attribute whose value is the request's text.
    pub fn text(&mut self, key: &'static str, value: &'a str) {
        self.push(key, Text::Borrowed(value));
    }

    /// Past [`Head::MAX`], a mistake in the code: left out.
    fn push(&mut self, key: &'static str, value: Text<'a>) {
        debug_assert!(self.len < Head::MAX, "more attributes than a head holds");
        if let Some(slot) = self.pairs.get_mut(self.len) {
            *slot = (key, value);
            self.len += 1;
        }
    }

    fn pairs(&self) -> &[(&'static str, Text<'a>)] {
        &self.pairs[..self.len]
    }

    /// Whether `text` is the name's target itself (the same bytes in memory, not only equal).
    fn repeats_name(&self, text: &str) -> bool {
        self.name.1.is_some_and(|name| std::ptr::eq(name, text))
    }

    /// A hash of what the head says, cheap to work out: fixed text by its address alone, the
    /// request's by its bytes, keys not at all (a call site always gives the same keys), and the
    /// name's target once when an attribute repeats it (the tool's name). [`Cached::is`] checks
    /// all of it, so a head that hashes as another costs only an encoding.
    fn hash(&self) -> u64 {
        let mut hash = Hash(0);
        hash.fixed(self.name.0);
        if let Some(second) = self.name.1 {
            hash.bytes(second.as_bytes());
        }
        for (_, value) in self.pairs() {
            match value {
                Text::Fixed(text) => hash.fixed(text),
                Text::Borrowed(text) if self.repeats_name(text) => hash.word(1),
                Text::Borrowed(text) => hash.bytes(text.as_bytes()),
            }
        }
        hash.0
    }

    /// The `Span` fields it stands for: the name (5), then each attribute (9).
    fn encode(&self, fields: &mut Vec<u8>) {
        // A client chooses the target (the tool it calls): cut as an attribute is.
        let (first, second) = (
            truncated(self.name.0, MAX_VALUE),
            self.name.1.map(|second| truncated(second, MAX_VALUE)),
        );
        let len = first.len() + second.map_or(0, |second| second.len() + 1);
        proto::tag(fields, 5, proto::LEN);
        proto::varint(fields, len as u64);
        fields.extend_from_slice(first.as_bytes());
        if let Some(second) = second {
            fields.push(b' ');
            fields.extend_from_slice(second.as_bytes());
        }
        for (key, value) in self.pairs() {
            let value = Value::Str(truncated(value.get(), MAX_VALUE));
            proto::key_value(fields, 9, key, value);
        }
    }

    /// Writes its fields: copied from this thread's cache when the same head was written last
    /// in its slot, else encoded (and kept there, when short).
    fn write(&self, fields: &mut Vec<u8>) {
        let hash = self.hash();
        let written = HEADS.try_with(|heads| {
            let mut heads = heads.borrow_mut();
            let slot = &mut heads[(hash % HEAD_SLOTS as u64) as usize];
            if let Some(cached) = slot
                && cached.hash == hash
                && cached.is(self)
            {
                fields.extend_from_slice(&cached.bytes);
                return;
            }
            let at = fields.len();
            self.encode(fields);
            let encoded = &fields[at..];
            if encoded.len() <= MAX_CACHED {
                *slot = Some(Cached::of(hash, self, encoded));
            }
        });
        if written.is_err() {
            self.encode(fields);
        }
    }
}

/// A head encoded, with what it said: its own copy of the request's text.
struct Cached {
    hash: u64,
    first: &'static str,
    second: Option<Box<str>>,
    pairs: Box<[(&'static str, Kept)]>,
    bytes: Box<[u8]>,
}

/// A cached head's attribute value.
enum Kept {
    Fixed(&'static str),
    Copied(Box<str>),
    /// The name's target, said again (the tool's name): compared once, as the name.
    Name,
}

impl Cached {
    fn of(hash: u64, head: &Head<'_>, bytes: &[u8]) -> Cached {
        let pairs = head.pairs().iter().map(|(key, value)| {
            let value = match value {
                Text::Fixed(text) => Kept::Fixed(text),
                Text::Borrowed(text) if head.repeats_name(text) => Kept::Name,
                Text::Borrowed(text) => Kept::Copied((*text).into()),
            };
            (*key, value)
        });
        Cached {
            hash,
            first: head.name.0,
            second: head.name.1.map(Into::into),
            pairs: pairs.collect(),
            bytes: bytes.into(),
        }
    }

    /// Whether it is `head`: the same fixed text at the same places, the same request text.
    fn is(&self, head: &Head<'_>) -> bool {
        std::ptr::eq(self.first, head.name.0)
            && self.second.as_deref() == head.name.1
            && self.pairs.len() == head.len
            && self
                .pairs
                .iter()
                .zip(head.pairs())
                .all(|((key, kept), (other, text))| {
                    std::ptr::eq(*key, *other)
                        && match (kept, text) {
                            (Kept::Fixed(kept), Text::Fixed(text)) => std::ptr::eq(*kept, *text),
                            (Kept::Name, Text::Borrowed(text)) => head.repeats_name(text),
                            (Kept::Copied(kept), Text::Borrowed(text)) => **kept == **text,
                            _ => false,
                        }
                })
    }
}

/// A fast hash of words (FxHash's step): the heads a thread writes are few, and a collision
/// costs only an encoding.
struct Hash(u64);

impl Hash {
    fn word(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    /// Fixed text, by its address.
    fn fixed(&mut self, text: &'static str) {
        self.word(text.as_ptr() as usize as u64);
    }

    fn bytes(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.word(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
        }
        let mut last = [0u8; 8];
        let rest = chunks.remainder();
        last[..rest.len()].copy_from_slice(rest);
        self.word(u64::from_le_bytes(last) ^ ((bytes.len() as u64) << 56));
    }
}

/// Slots of the heads cache, per thread: a head goes in the slot its hash names, replacing what
/// was there. The code makes a few kinds of head, times the tools and servers a thread serves.
const HEAD_SLOTS: usize = 64;
/// The longest encoding kept: longer heads (a long tool name) are encoded each time, so that the
/// cache stays within `HEAD_SLOTS` times about twice this per thread.
const MAX_CACHED: usize = 512;

thread_local! {
    /// The heads cache ([`Head::write`]).
    static HEADS: RefCell<[Option<Cached>; HEAD_SLOTS]> =
        const { RefCell::new([const { None }; HEAD_SLOTS]) };
}

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

    /// The name and attributes a span started with `head` got, encoded.
    fn written(head: &Head<'_>) -> Vec<u8> {
        let mut fields = Vec::new();
        head.write(&mut fields);
        fields
    }

    #[test]
    fn a_kept_head_is_the_gathered_heads_encoding_for_its_first_shape_only() {
        let tool = String::from("demo__echo");
        let version: &'static str = "2025-06-18";
        let gather = |version: &'static str| {
            let mut head = Head::new(("tools/call", Some(tool.as_str())));
            head.fixed("mcp.method.name", "tools/call");
            head.text("gen_ai.tool.name", &tool);
            head.fixed("mcp.protocol.version", version);
            head
        };
        let kept = KeptHead::default();
        let shape = Shape([version, "stdio", ""]);
        let first = kept
            .get(shape, || gather(version))
            .expect("the first shape is kept");
        assert_eq!(first.0, written(&gather(version)));
        // Asked again with the same shape: what is kept, without gathering.
        let again = kept.get(shape, || unreachable!("kept, not gathered again"));
        assert_eq!(again.expect("the same shape").0, first.0);
        // An empty text is the same shape wherever it is.
        let empty = String::new();
        let elsewhere: &'static str = empty.leak();
        assert!(
            kept.get(Shape([version, "stdio", elsewhere]), || gather(version))
                .is_some()
        );
        // Another version is another shape: its head is gathered by the caller.
        let other: &'static str = "2025-03-26";
        assert!(
            kept.get(Shape([other, "stdio", ""]), || gather(other))
                .is_none()
        );
        // The same text at another place is not known to be the same: not given.
        let copy: &'static str = String::from(version).leak();
        assert!(
            kept.get(Shape([copy, "stdio", ""]), || gather(copy))
                .is_none()
        );
    }

    #[test]
    fn a_head_is_encoded_as_its_name_and_attributes_set_one_by_one() {
        let tool = String::from("demo__echo");
        let mut head = Head::new(("tools/call", Some(&tool)));
        head.fixed("mcp.method.name", "tools/call");
        head.text("gen_ai.tool.name", &tool);
        let mut plain = recording();
        {
            let fields = &mut plain.recording_mut().unwrap().fields;
            proto::tag(fields, 5, proto::LEN);
            proto::varint(fields, "tools/call demo__echo".len() as u64);
            fields.extend_from_slice(b"tools/call demo__echo");
        }
        plain.set("mcp.method.name", "tools/call");
        plain.set("gen_ai.tool.name", "demo__echo");
        // Encoded, then copied from the cache: the same bytes.
        assert_eq!(written(&head), fields(&plain));
        assert_eq!(written(&head), fields(&plain));
        // Another request's text is another head, though the rest is the same; and a value that
        // shares another's text but not its length is a value of its own.
        let other = String::from("demo__add");
        let mut second = Head::new(("tools/call", Some(&other)));
        second.fixed("mcp.method.name", "tools/call");
        second.text("gen_ai.tool.name", &other);
        assert!(String::from_utf8_lossy(&written(&second)).contains("demo__add"));
        assert_eq!(written(&head), fields(&plain));
        let mut shorter = Head::new(("tools/call", Some(&tool)));
        shorter.fixed("mcp.method.name", &"tools/call"[..5]);
        shorter.text("gen_ai.tool.name", &tool);
        assert_ne!(written(&shorter), written(&head));
        assert_eq!(written(&head), fields(&plain));
        // The tool's name as a copy of the name's target, not the target itself: the same bytes
        // either way.
        let copy = tool.clone();
        let mut copied = Head::new(("tools/call", Some(&tool)));
        copied.fixed("mcp.method.name", "tools/call");
        copied.text("gen_ai.tool.name", &copy);
        assert_eq!(written(&copied), fields(&plain));
        assert_eq!(written(&copied), fields(&plain));
        assert_eq!(written(&head), fields(&plain));
    }

    #[test]
    fn long_text_is_cut_at_a_character() {
        assert_eq!(truncated("abc", 5), "abc");
        assert_eq!(truncated("aé", 2), "a");
        assert_eq!(truncated("aé", 3), "aé");
    }
}
