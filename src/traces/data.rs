//! What a span is made of, as exported: its kind, attributes, status, and the ended span.

use std::borrow::Cow;

use super::context::SpanContext;

/// What a span stands for, as OTLP says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Internal,
    /// A request the proxy answers.
    Server,
    /// A request the proxy sends.
    Client,
}

/// An attribute's value: a name written in the code is borrowed, not copied.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Str(Cow<'static, str>),
    Int(i64),
    Bool(bool),
}

impl From<&'static str> for Value {
    fn from(text: &'static str) -> Value {
        Value::Str(Cow::Borrowed(text))
    }
}

impl From<String> for Value {
    fn from(text: String) -> Value {
        Value::Str(Cow::Owned(text))
    }
}

impl From<i64> for Value {
    fn from(int: i64) -> Value {
        Value::Int(int)
    }
}

impl From<bool> for Value {
    fn from(flag: bool) -> Value {
        Value::Bool(flag)
    }
}

/// How a span ended: unset (fine), or an error with its description.
#[derive(Clone, Debug, PartialEq)]
pub enum Status {
    Unset,
    Error(String),
}

/// One ended span, as exported.
#[derive(Clone, Debug)]
pub struct SpanData {
    pub context: SpanContext,
    pub parent: Option<[u8; 8]>,
    /// The parent came from another process (a client's `traceparent`).
    pub remote_parent: bool,
    pub name: String,
    pub kind: Kind,
    /// Unix time in nanoseconds.
    pub start: u64,
    pub end: u64,
    pub attributes: Vec<(&'static str, Value)>,
    pub status: Status,
}
