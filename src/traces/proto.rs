//! OTLP's trace export request in protobuf, written by hand: the few messages of
//! `opentelemetry/proto/collector/trace/v1/trace_service.proto` and `trace/v1/trace.proto` that a
//! span needs, by their field numbers. Writing them is a page; a protobuf code generator and the
//! OpenTelemetry crates would be about 30 s of every clean build (see ARCHITECTURE.md).

use super::data::{Kind, SpanData, Status, Value};

/// Wire types.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn tag(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint(out, (u64::from(field) << 3) | u64::from(wire));
}

fn bytes(out: &mut Vec<u8>, field: u32, value: &[u8]) {
    tag(out, field, LEN);
    varint(out, value.len() as u64);
    out.extend_from_slice(value);
}

fn fixed64(out: &mut Vec<u8>, field: u32, value: u64) {
    tag(out, field, FIXED64);
    out.extend_from_slice(&value.to_le_bytes());
}

fn fixed32(out: &mut Vec<u8>, field: u32, value: u32) {
    tag(out, field, FIXED32);
    out.extend_from_slice(&value.to_le_bytes());
}

fn number(out: &mut Vec<u8>, field: u32, value: u64) {
    tag(out, field, VARINT);
    varint(out, value);
}

/// A nested message, written in place after a one-byte length that is widened afterwards when
/// the message is longer than 127 bytes (a span; its attributes and values rarely are): no buffer
/// of its own.
fn message(out: &mut Vec<u8>, field: u32, write: impl FnOnce(&mut Vec<u8>)) {
    tag(out, field, LEN);
    let at = out.len();
    out.push(0);
    write(out);
    let len = out.len() - at - 1;
    if len < 0x80 {
        out[at] = len as u8;
    } else {
        let mut prefix = Vec::with_capacity(10);
        varint(&mut prefix, len as u64);
        out.splice(at..=at, prefix);
    }
}

/// `KeyValue { key = 1; AnyValue value = 2 }`, `AnyValue { string_value = 1; bool_value = 2;
/// int_value = 3 }`.
fn key_value(out: &mut Vec<u8>, field: u32, key: &str, value: &Value) {
    message(out, field, |kv| {
        bytes(kv, 1, key.as_bytes());
        message(kv, 2, |any| match value {
            Value::Str(text) => bytes(any, 1, text.as_bytes()),
            Value::Bool(flag) => number(any, 2, u64::from(*flag)),
            Value::Int(int) => number(any, 3, *int as u64),
        });
    });
}

/// `Span`: trace_id 1, span_id 2, trace_state 3, parent_span_id 4, name 5, kind 6,
/// start_time_unix_nano 7, end_time_unix_nano 8, attributes 9, status 15, flags 16.
fn span(out: &mut Vec<u8>, span: &SpanData) {
    message(out, 2, |s| {
        bytes(s, 1, &span.context.trace_id);
        bytes(s, 2, &span.context.span_id);
        if let Some(state) = &span.context.trace_state {
            bytes(s, 3, state.as_bytes());
        }
        if let Some(parent) = &span.parent {
            bytes(s, 4, parent);
        }
        bytes(s, 5, span.name.as_bytes());
        let kind = match span.kind {
            Kind::Internal => 1,
            Kind::Server => 2,
            Kind::Client => 3,
        };
        number(s, 6, kind);
        fixed64(s, 7, span.start);
        fixed64(s, 8, span.end);
        for (key, value) in &span.attributes {
            key_value(s, 9, key, value);
        }
        // `Status { message = 2; code = 3 }`: 2 is ERROR.
        if let Status::Error(text) = &span.status {
            message(s, 15, |status| {
                bytes(status, 2, text.as_bytes());
                number(status, 3, 2);
            });
        }
        // The sampled flag, and that whether the parent is remote is known (bit 8) and said
        // (bit 9).
        let remote = if span.remote_parent { 0x300 } else { 0x100 };
        fixed32(s, 16, u32::from(span.context.sampled) | remote);
    });
}

/// `ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1 }` with one resource
/// (`Resource { attributes = 1 }`) and one scope (`ScopeSpans { scope = 1; spans = 2 }`,
/// `InstrumentationScope { name = 1; version = 2 }`).
pub(super) fn export_request(resource: &[(&str, Value)], spans: &[SpanData]) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 * spans.len() + 128);
    message(&mut out, 1, |resource_spans| {
        message(resource_spans, 1, |attributes| {
            for (key, value) in resource {
                key_value(attributes, 1, key, value);
            }
        });
        message(resource_spans, 2, |scope_spans| {
            message(scope_spans, 1, |scope| {
                bytes(scope, 1, env!("CARGO_PKG_NAME").as_bytes());
                bytes(scope, 2, env!("CARGO_PKG_VERSION").as_bytes());
            });
            for one in spans {
                span(scope_spans, one);
            }
        });
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_nested_message_gets_its_length_widened() {
        let mut out = Vec::new();
        message(&mut out, 1, |inner| bytes(inner, 2, &[7; 200]));
        // tag 1/LEN, length 203 as two bytes, then tag 2/LEN, length 200 as two bytes.
        assert_eq!(&out[..6], &[0x0a, 0xcb, 0x01, 0x12, 0xc8, 0x01]);
        assert_eq!(out.len(), 6 + 200);
        let mut short = Vec::new();
        message(&mut short, 1, |inner| bytes(inner, 2, b"ab"));
        assert_eq!(short, [0x0a, 4, 0x12, 2, b'a', b'b']);
    }

    #[test]
    fn varints_are_little_endian_groups_of_seven() {
        let mut out = Vec::new();
        varint(&mut out, 300);
        assert_eq!(out, [0xac, 0x02]);
        out.clear();
        varint(&mut out, u64::MAX);
        assert_eq!(out.len(), 10);
        out.clear();
        tag(&mut out, 16, FIXED32);
        assert_eq!(out, [0x85, 0x01]);
    }
}
