//! OTLP's trace export request in protobuf, written by hand: the few messages of
//! `opentelemetry/proto/collector/trace/v1/trace_service.proto` and `trace/v1/trace.proto` that a
//! span needs, by their field numbers. Writing them is a page; a protobuf code generator and the
//! OpenTelemetry crates would be about 30 s of every clean build (see ARCHITECTURE.md).

use super::data::Value;

/// Wire types.
pub(super) const VARINT: u8 = 0;
pub(super) const FIXED64: u8 = 1;
pub(super) const LEN: u8 = 2;
pub(super) const FIXED32: u8 = 5;

pub(super) fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

pub(super) fn tag(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint(out, (u64::from(field) << 3) | u64::from(wire));
}

pub(super) fn bytes(out: &mut Vec<u8>, field: u32, value: &[u8]) {
    tag(out, field, LEN);
    varint(out, value.len() as u64);
    out.extend_from_slice(value);
}

/// The one-byte key of a field numbered below 16.
pub(super) const fn key(field: u8, wire: u8) -> u8 {
    (field << 3) | wire
}

pub(super) fn fixed32(out: &mut Vec<u8>, field: u32, value: u32) {
    tag(out, field, FIXED32);
    out.extend_from_slice(&value.to_le_bytes());
}

pub(super) fn number(out: &mut Vec<u8>, field: u32, value: u64) {
    tag(out, field, VARINT);
    varint(out, value);
}

/// A nested message, written in place after a one-byte length that is widened afterwards when
/// the message is longer than 127 bytes (a span; its attributes and values rarely are): no buffer
/// of its own.
pub(super) fn message(out: &mut Vec<u8>, field: u32, write: impl FnOnce(&mut Vec<u8>)) {
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
pub(super) fn key_value(out: &mut Vec<u8>, field: u32, key: &str, value: Value<'_>) {
    // Every length is known before writing: the prefixes go out once, in order.
    let any_len = match value {
        Value::Str(text) => field_len(text.len()),
        Value::Bool(flag) => 1 + varint_len(u64::from(flag)),
        Value::Int(int) => 1 + varint_len(int as u64),
    };
    let kv_len = field_len(key.len()) + field_len(any_len);
    if let (Value::Str(text), true) = (value, field < 16 && kv_len < 0x80) {
        // Every length fits in one byte, as nearly always: three copies.
        #[expect(
            clippy::cast_possible_truncation,
            reason = "the field and each length fit"
        )]
        let head = [
            self::key(field as u8, LEN),
            kv_len as u8,
            self::key(1, LEN),
            key.len() as u8,
        ];
        out.extend_from_slice(&head);
        out.extend_from_slice(key.as_bytes());
        #[expect(clippy::cast_possible_truncation, reason = "each length is below 0x80")]
        let value_head = [
            self::key(2, LEN),
            any_len as u8,
            self::key(1, LEN),
            text.len() as u8,
        ];
        out.extend_from_slice(&value_head);
        out.extend_from_slice(text.as_bytes());
        return;
    }
    out.reserve(10 + kv_len);
    tag(out, field, LEN);
    varint(out, kv_len as u64);
    bytes(out, 1, key.as_bytes());
    tag(out, 2, LEN);
    varint(out, any_len as u64);
    match value {
        Value::Str(text) => bytes(out, 1, text.as_bytes()),
        Value::Bool(flag) => number(out, 2, u64::from(flag)),
        Value::Int(int) => number(out, 3, int as u64),
    }
}

/// `ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1 }` with one resource
/// (`Resource { attributes = 1 }`: `resource`, its encoded `KeyValue`s) and one scope
/// (`ScopeSpans { scope = 1; spans = 2 }`, `InstrumentationScope { name = 1; version = 2 }`);
/// `spans` are encoded `ScopeSpans.spans` fields, as ended spans wrote them.
pub(super) fn export_request(resource: &[u8], spans: &[u8]) -> Vec<u8> {
    let mut scope = Vec::with_capacity(64);
    message(&mut scope, 1, |scope| {
        bytes(scope, 1, env!("CARGO_PKG_NAME").as_bytes());
        bytes(scope, 2, env!("CARGO_PKG_VERSION").as_bytes());
    });
    // Lengths known up front: each message's prefix written once, nothing moved.
    let scope_spans = scope.len() + spans.len();
    let resource_spans = field_len(resource.len()) + field_len(scope_spans);
    let mut out = Vec::with_capacity(field_len(resource_spans));
    tag(&mut out, 1, LEN);
    varint(&mut out, resource_spans as u64);
    bytes(&mut out, 1, resource);
    tag(&mut out, 2, LEN);
    varint(&mut out, scope_spans as u64);
    out.extend_from_slice(&scope);
    out.extend_from_slice(spans);
    out
}

/// The length of a length-delimited field of field number below 16 holding `len` bytes.
fn field_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

/// How many bytes `value` takes as a varint.
pub(super) fn varint_len(value: u64) -> usize {
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
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
    fn a_key_value_is_written_with_its_lengths_up_front() {
        let mut out = Vec::new();
        key_value(&mut out, 9, "k", Value::Str("vv"));
        // KeyValue (9) { key (1) "k", value (2) AnyValue { string_value (1) "vv" } }
        assert_eq!(out, [0x4a, 9, 0x0a, 1, b'k', 0x12, 4, 0x0a, 2, b'v', b'v']);
        out.clear();
        key_value(&mut out, 9, "k", Value::Int(300));
        assert_eq!(out, [0x4a, 8, 0x0a, 1, b'k', 0x12, 3, 0x18, 0xac, 0x02]);
        out.clear();
        key_value(&mut out, 9, "k", Value::Bool(true));
        assert_eq!(out, [0x4a, 7, 0x0a, 1, b'k', 0x12, 2, 0x10, 1]);
        let long = "x".repeat(200);
        out.clear();
        key_value(&mut out, 1, "k", Value::Str(&long));
        // 200 needs two bytes, the AnyValue (203) two, the KeyValue (3 + 3 + 203 = 209) two.
        assert_eq!(&out[..3], &[0x0a, 0xd1, 0x01]);
        assert_eq!(out.len(), 3 + 209);
    }

    #[test]
    fn varints_are_little_endian_groups_of_seven() {
        let mut out = Vec::new();
        varint(&mut out, 300);
        assert_eq!(out, [0xac, 0x02]);
        out.clear();
        varint(&mut out, u64::MAX);
        assert_eq!(out.len(), 10);
        for value in [0, 1, 127, 128, 300, 16_383, 16_384, u64::MAX] {
            out.clear();
            varint(&mut out, value);
            assert_eq!(varint_len(value), out.len(), "{value}");
        }
        out.clear();
        tag(&mut out, 16, FIXED32);
        assert_eq!(out, [0x85, 0x01]);
    }
}
