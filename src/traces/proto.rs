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

/// The key of `Span.flags` (field 16, fixed32): two bytes of varint.
pub(super) const FLAGS_KEY: [u8; 2] = {
    let tag = (16 << 3) | FIXED32;
    [0x80 | (tag & 0x7f), tag >> 7]
};

/// The one-byte key of a field numbered below 16.
pub(super) const fn key(field: u8, wire: u8) -> u8 {
    (field << 3) | wire
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

/// The start of an export request, before its spans: `ExportTraceServiceRequest { repeated
/// ResourceSpans resource_spans = 1 }` with one resource (`Resource { attributes = 1 }`:
/// `resource`, its encoded `KeyValue`s) and one scope (`ScopeSpans { scope = 1; spans = 2 }`,
/// `InstrumentationScope { name = 1; version = 2 }`). Ended spans are written after it as
/// `ScopeSpans.spans` fields; the two lengths that depend on them are left as room of
/// [`PADDED`] bytes each, filled by [`finish_export`] when the batch is sent, so that the spans
/// are sent where they were written, never copied into a request.
pub(super) fn export_head(resource: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(resource.len() + 64);
    tag(&mut out, 1, LEN);
    out.extend_from_slice(&[0; PADDED]);
    bytes(&mut out, 1, resource);
    tag(&mut out, 2, LEN);
    out.extend_from_slice(&[0; PADDED]);
    message(&mut out, 1, |scope| {
        bytes(scope, 1, env!("CARGO_PKG_NAME").as_bytes());
        bytes(scope, 2, env!("CARGO_PKG_VERSION").as_bytes());
    });
    out
}

/// The bytes of a length written in room of fixed size: a varint with continuation bits on
/// bytes it does not need (protobuf's parsers read varints of up to ten bytes), enough for
/// lengths below 2^35.
pub(super) const PADDED: usize = 5;

/// Fills in the lengths of an export request that starts with `head_len` bytes of
/// [`export_head`] and has its spans after them, to the end of `request`.
pub(super) fn finish_export(request: &mut [u8], head_len: usize) {
    let spans = request.len() - head_len;
    // The head: tag, room, the resource field, tag, room, the scope field.
    let scope_spans_room = 1 + PADDED + field_len_of(&request[1 + PADDED..]) + 1;
    let scope = head_len - scope_spans_room - PADDED;
    let scope_spans = scope + spans;
    let resource_spans = request.len() - 1 - PADDED;
    padded(&mut request[1..=PADDED], resource_spans as u64);
    padded(
        &mut request[scope_spans_room..scope_spans_room + PADDED],
        scope_spans as u64,
    );
}

/// The whole length of the length-delimited field that `bytes` starts with (tag of one byte).
fn field_len_of(bytes: &[u8]) -> usize {
    let mut len = 0u64;
    let mut at = 1;
    for (shift, byte) in bytes[1..].iter().enumerate().take(10) {
        len |= u64::from(byte & 0x7f) << (7 * shift);
        at += 1;
        if byte & 0x80 == 0 {
            break;
        }
    }
    at + usize::try_from(len).unwrap_or(usize::MAX)
}

/// `value` as a varint of exactly [`PADDED`] bytes.
fn padded(out: &mut [u8], value: u64) {
    debug_assert!(value < 1 << 35, "a length the room holds");
    for (index, byte) in out.iter_mut().enumerate() {
        let group = ((value >> (7 * index)) & 0x7f) as u8;
        *byte = if index + 1 < PADDED {
            group | 0x80
        } else {
            group
        };
    }
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
    fn an_export_request_reads_as_one_with_its_lengths_in_the_usual_form() {
        let mut resource = Vec::new();
        key_value(&mut resource, 1, "service.name", Value::Str("p"));
        let head = export_head(&resource);
        let mut span = Vec::new();
        bytes(&mut span, 5, &[9; 150]);
        let mut request = head.clone();
        for _ in 0..3 {
            bytes(&mut request, 2, &span);
        }
        finish_export(&mut request, head.len());
        // The same request written with the shortest lengths.
        let mut scope = Vec::new();
        message(&mut scope, 1, |scope| {
            bytes(scope, 1, env!("CARGO_PKG_NAME").as_bytes());
            bytes(scope, 2, env!("CARGO_PKG_VERSION").as_bytes());
        });
        for _ in 0..3 {
            bytes(&mut scope, 2, &span);
        }
        let mut resource_spans = Vec::new();
        bytes(&mut resource_spans, 1, &resource);
        bytes(&mut resource_spans, 2, &scope);
        let mut usual = Vec::new();
        bytes(&mut usual, 1, &resource_spans);
        assert_eq!(canonical(&request), usual);
    }

    /// `bytes` with every varint rewritten in its shortest form, reading length-delimited
    /// fields as messages down to the spans' own fields (field 5 of a span is its name).
    fn canonical(bytes: &[u8]) -> Vec<u8> {
        fn read_varint(bytes: &[u8], at: &mut usize) -> u64 {
            let mut value = 0;
            let mut shift = 0;
            loop {
                let byte = bytes[*at];
                *at += 1;
                value |= u64::from(byte & 0x7f) << shift;
                shift += 7;
                if byte & 0x80 == 0 {
                    return value;
                }
            }
        }
        fn walk(bytes: &[u8], depth: usize, out: &mut Vec<u8>) {
            let mut at = 0;
            while at < bytes.len() {
                let key = read_varint(bytes, &mut at);
                varint(out, key);
                assert_eq!(key & 7, u64::from(LEN), "only length-delimited fields here");
                let len = usize::try_from(read_varint(bytes, &mut at)).unwrap();
                let inner = &bytes[at..at + len];
                at += len;
                let mut nested = Vec::new();
                // Request > ResourceSpans > ScopeSpans: messages; below them, bytes as they are.
                if depth < 3 && !(depth == 1 && key >> 3 == 1) && !(depth == 2 && key >> 3 == 1) {
                    walk(inner, depth + 1, &mut nested);
                } else {
                    nested.extend_from_slice(inner);
                }
                varint(out, nested.len() as u64);
                out.extend_from_slice(&nested);
            }
        }
        let mut out = Vec::new();
        walk(bytes, 0, &mut out);
        out
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
        assert_eq!(out, FLAGS_KEY);
    }
}
