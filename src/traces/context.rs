//! W3C Trace Context: the `traceparent` a span is known by, read and written
//! (`00-<trace id>-<span id>-<flags>`, lowercase hex), and new ids.

use std::sync::Arc;

/// Where a span sits in its trace, as `traceparent` carries it, with the `tracestate` that
/// travels beside it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpanContext {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub sampled: bool,
    /// The vendors' `tracestate`, passed on as received (at most 512 bytes:
    /// [`SpanContext::parse`]); shared, as every span of the trace in this process carries it.
    pub trace_state: Option<Arc<str>>,
}

/// The most of a `tracestate` passed on (the W3C limit is 32 members of at most 256 bytes).
const MAX_TRACE_STATE: usize = 512;

impl SpanContext {
    /// A context read from `traceparent` (and `tracestate`): `None` for anything the W3C
    /// format does not allow (unknown version `ff`, zero ids, wrong lengths, upper case).
    pub fn parse(traceparent: &str, trace_state: Option<&str>) -> Option<SpanContext> {
        let mut parts = traceparent.trim().split('-');
        let version = parts.next()?;
        let trace_id = parts.next()?;
        let span_id = parts.next()?;
        let flags = parts.next()?;
        // Version 00 has exactly four parts; a later version may add more after them.
        if version.len() != 2 || version == "ff" || (version == "00" && parts.next().is_some()) {
            return None;
        }
        let trace_id: [u8; 16] = hex(trace_id)?;
        let span_id: [u8; 8] = hex(span_id)?;
        let flags = hex_byte(flags)?;
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(SpanContext {
            trace_id,
            span_id,
            sampled: flags & 1 == 1,
            trace_state: trace_state
                .map(str::trim)
                .filter(|state| !state.is_empty() && state.len() <= MAX_TRACE_STATE)
                .map(Arc::from),
        })
    }

    /// The `traceparent` naming this span.
    pub fn traceparent(&self) -> String {
        let mut text = String::with_capacity(55);
        self.write_traceparent(&mut text);
        text
    }

    /// Writes the `traceparent` naming this span at the end of `text`.
    pub fn write_traceparent(&self, text: &mut String) {
        text.push_str(std::str::from_utf8(&self.traceparent_bytes()).expect("hex is ASCII"));
    }

    /// The `traceparent` naming this span, as ASCII bytes.
    pub fn traceparent_bytes(&self) -> [u8; 55] {
        let mut out = [0u8; 55];
        out[..3].copy_from_slice(b"00-");
        hex_into(&mut out[3..35], &self.trace_id);
        out[35] = b'-';
        hex_into(&mut out[36..52], &self.span_id);
        out[52..].copy_from_slice(if self.sampled { b"-01" } else { b"-00" });
        out
    }

    /// The trace id in hex, as log lines carry it.
    pub fn trace_id_hex(&self) -> String {
        let mut text = String::with_capacity(32);
        push_hex(&mut text, &self.trace_id);
        text
    }

    /// The span id in hex.
    pub fn span_id_hex(&self) -> String {
        let mut text = String::with_capacity(16);
        push_hex(&mut text, &self.span_id);
        text
    }

    /// A child of this context: same trace, a new span id.
    pub fn child(&self) -> SpanContext {
        SpanContext {
            trace_id: self.trace_id,
            span_id: new_span_id(),
            sampled: self.sampled,
            trace_state: self.trace_state.clone(),
        }
    }
}

/// Lowercase hex of `bytes` into `out` (twice as long): a pair of digits per byte from a table.
fn hex_into(out: &mut [u8], bytes: &[u8]) {
    const PAIRS: [[u8; 2]; 256] = {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut pairs = [[0; 2]; 256];
        let mut byte = 0;
        while byte < 256 {
            pairs[byte] = [DIGITS[byte >> 4], DIGITS[byte & 0xf]];
            byte += 1;
        }
        pairs
    };
    for (pair, byte) in out.chunks_exact_mut(2).zip(bytes) {
        pair.copy_from_slice(&PAIRS[usize::from(*byte)]);
    }
}

/// A byte repeated in every byte of a 16-byte word.
const ONES: u128 = u128::MAX / 0xff;

/// The eight bytes sixteen lowercase hex digits stand for, all at once; `None` for any other
/// character. Each character is checked against both ranges by adding or subtracting in every
/// byte at once (every byte below 0x80 first, so that nothing carries between them), then its
/// value taken (its low half, 9 more for a letter) and the halves packed back into bytes.
fn unhex_word(text: [u8; 16]) -> Option<[u8; 8]> {
    let chars = u128::from_be_bytes(text);
    let high = ONES * 0x80;
    if chars & high != 0 {
        return None;
    }
    // The high bit of each byte: the character is at least `low`, or at most `top`.
    let at_least = |low: u8| (chars + ONES * u128::from(0x80 - low)) & high;
    let at_most = |top: u8| (ONES * u128::from(0x80 + top) - chars) & high;
    let letters = at_least(b'a') & at_most(b'f');
    if (at_least(b'0') & at_most(b'9')) | letters != high {
        return None;
    }
    let mut word = (chars & (ONES * 0x0f)) + (letters >> 7) * 9;
    word = (word | (word >> 4)) & 0x00ff_00ff_00ff_00ff_00ff_00ff_00ff_00ff;
    word = (word | (word >> 8)) & 0x0000_ffff_0000_ffff_0000_ffff_0000_ffff;
    word = (word | (word >> 16)) & 0x0000_0000_ffff_ffff_0000_0000_ffff_ffff;
    #[expect(clippy::cast_possible_truncation, reason = "each half holds 32 bits")]
    let packed = (((word >> 64) as u64) << 32) | (word as u64);
    Some(packed.to_be_bytes())
}

/// Lowercase hex of `bytes` at the end of `text`, as the ids are written.
fn push_hex(text: &mut String, bytes: &[u8]) {
    let mut out = [0u8; 32];
    let out = &mut out[..bytes.len() * 2];
    hex_into(out, bytes);
    text.push_str(std::str::from_utf8(out).expect("hex is ASCII"));
}

/// The bytes `text` stands for in lowercase hex (`N` a multiple of 8); `None` for anything else.
fn hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let text = text.as_bytes();
    if text.len() != N * 2 {
        return None;
    }
    let mut bytes = [0; N];
    for (out, digits) in bytes.chunks_exact_mut(8).zip(text.chunks_exact(16)) {
        out.copy_from_slice(&unhex_word(digits.try_into().expect("16 digits"))?);
    }
    Some(bytes)
}

/// The byte two lowercase hex digits stand for (the flags); `None` for anything else.
fn hex_byte(text: &str) -> Option<u8> {
    let [high, low] = text.as_bytes().try_into().ok()?;
    let mut padded = *b"0000000000000000";
    padded[14..].copy_from_slice(&[high, low]);
    Some(unhex_word(padded)?[7])
}

/// A random word, from a per-thread generator seeded from the OS on its first use: ids must be
/// unpredictable enough not to collide, not secret (W3C Trace Context), and a system call per id
/// would be most of a span's cost.
fn random_word() -> u64 {
    thread_local! {
        /// The generator's state; 0 until seeded.
        static STATE: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    }
    STATE.with(|state| {
        let mut current = state.get();
        if current == 0 {
            let mut seed = [0; 8];
            getrandom::fill(&mut seed).expect("the OS random source answers");
            current = u64::from_le_bytes(seed);
        }
        // wyrand: a 64-bit step and a 128-bit multiply, well distributed.
        let next = current.wrapping_add(0xa076_1d64_78bd_642f);
        state.set(next);
        let product = u128::from(next) * u128::from(next ^ 0xe703_7ed1_a0b4_28db);
        ((product >> 64) as u64) ^ (product as u64)
    })
}

/// A word for an id: never zero (W3C Trace Context reserves the all-zero ids).
fn nonzero_word() -> u64 {
    loop {
        let word = random_word();
        if word != 0 {
            return word;
        }
    }
}

pub(super) fn new_trace_id() -> [u8; 16] {
    let mut id = [0; 16];
    id[..8].copy_from_slice(&random_word().to_le_bytes());
    id[8..].copy_from_slice(&nonzero_word().to_le_bytes());
    id
}

pub(super) fn new_span_id() -> [u8; 8] {
    nonzero_word().to_le_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trips_and_bad_ones_are_refused() {
        let text = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let context = SpanContext::parse(text, Some("vendor=x")).unwrap();
        assert!(context.sampled);
        assert_eq!(context.traceparent(), text);
        assert_eq!(context.trace_state.as_deref(), Some("vendor=x"));
        for bad in [
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
            "00-xyz",
        ] {
            assert_eq!(SpanContext::parse(bad, None), None, "{bad}");
        }
        let later = "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00-extra";
        assert!(!SpanContext::parse(later, None).unwrap().sampled);
        let child = context.child();
        assert_eq!(child.trace_id, context.trace_id);
        assert_ne!(child.span_id, context.span_id);
    }

    /// Hex as one byte at a time writes and reads it.
    fn plain_hex(bytes: &[u8]) -> String {
        bytes.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    fn plain_unhex(text: &[u8]) -> Option<[u8; 8]> {
        let text = std::str::from_utf8(text).ok()?;
        if !text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return None;
        }
        let mut bytes = [0; 8];
        for (index, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[index * 2..index * 2 + 2], 16).ok()?;
        }
        Some(bytes)
    }

    #[test]
    fn hex_read_a_word_at_a_time_is_hex_read_a_byte_at_a_time() {
        let mut words: Vec<[u8; 8]> = (0..=255u8).map(|byte| [byte; 8]).collect();
        words.extend((0..2000).map(|_| random_word().to_le_bytes()));
        words.push(*b"\x01\x23\x45\x67\x89\xab\xcd\xef");
        for word in words {
            let mut digits = [0; 16];
            hex_into(&mut digits, &word);
            assert_eq!(digits, plain_hex(&word).as_bytes());
            assert_eq!(unhex_word(digits), Some(word));
        }
        // Every byte at every place, among digits that are valid: read as one at a time does.
        for place in 0..16 {
            for byte in 0..=255u8 {
                let mut text = *b"0123456789abcdef";
                text[place] = byte;
                assert_eq!(unhex_word(text), plain_unhex(&text), "{text:?}");
            }
        }
        assert_eq!(hex_byte("7f"), Some(0x7f));
        for bad in ["7F", "7", "7f0", "g0", ""] {
            assert_eq!(hex_byte(bad), None, "{bad}");
        }
    }
}
