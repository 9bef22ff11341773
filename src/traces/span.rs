//! Spans: started with a parent (a client's context, or the span the task is in), given
//! attributes, and handed to the exporter when they end (dropped, so that a cancelled request's
//! span ends too). With tracing off a span is nothing: no ids, no clock reads.

use std::future::Future;
use std::time::{SystemTime, UNIX_EPOCH};

use super::context::{SpanContext, new_span_id, new_trace_id};
use super::data::{Kind, SpanData, Status, Value};
use super::export;

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
    match span.context() {
        Some(context) => CURRENT.scope(context.clone(), work).await,
        None => work.await,
    }
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

/// A span being timed. Ends when dropped; recorded only when sampled.
pub struct Span {
    context: Option<SpanContext>,
    /// What is recorded: `None` when not sampled or tracing is off.
    data: Option<Box<SpanData>>,
}

impl Span {
    /// No span (tracing off).
    pub const fn none() -> Span {
        Span {
            context: None,
            data: None,
        }
    }

    /// A span answering a request whose sender's context is `remote` (from its `traceparent`),
    /// else a new trace.
    pub fn server(name: impl FnOnce() -> String, remote: Option<SpanContext>) -> Span {
        Span::start(Kind::Server, name, remote, true)
    }

    /// A span inside the current one; outside one, none (background work starts no trace).
    pub fn child(kind: Kind, name: impl FnOnce() -> String) -> Span {
        match current() {
            Some(parent) => Span::start(kind, name, Some(parent), false),
            None => Span::none(),
        }
    }

    fn start(
        kind: Kind,
        name: impl FnOnce() -> String,
        parent: Option<SpanContext>,
        remote_parent: bool,
    ) -> Span {
        let Some(exporter) = export::exporter() else {
            return Span::none();
        };
        let (context, parent_id) = match &parent {
            Some(parent) => {
                let mut context = parent.child();
                context.sampled = exporter.sampler.sample(Some(parent), &context.trace_id);
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
        let data = context.sampled.then(|| {
            Box::new(SpanData {
                context: context.clone(),
                parent: parent_id,
                remote_parent: remote_parent && parent.is_some(),
                name: name(),
                kind,
                start: now(),
                end: 0,
                attributes: Vec::with_capacity(12),
                status: Status::Unset,
            })
        });
        Span {
            context: Some(context),
            data,
        }
    }

    /// Where this span sits, to pass on (`None`: tracing off).
    pub fn context(&self) -> Option<&SpanContext> {
        self.context.as_ref()
    }

    /// Whether attributes are kept (sampled): cheap to ask before working one out.
    pub fn is_recording(&self) -> bool {
        self.data.is_some()
    }

    pub fn set(&mut self, key: &'static str, value: impl Into<Value>) {
        if let Some(data) = &mut self.data {
            data.attributes.push((key, value.into()));
        }
    }

    /// Ends in error: `error.type` and the status's description.
    pub fn fail(&mut self, error_type: &str, message: &str) {
        if let Some(data) = &mut self.data {
            data.attributes
                .push(("error.type", Value::from(error_type.to_owned())));
            data.status = Status::Error(message.to_owned());
        }
    }
}

impl Drop for Span {
    fn drop(&mut self) {
        if let Some(mut data) = self.data.take() {
            data.end = now();
            export::submit(*data);
        }
    }
}
