//! Text that crosses a trust boundary: error messages on their way to clients and logs (secrets
//! redacted, length bounded), and names and descriptions from downstream servers (control and
//! invisible formatting characters removed before clients, and the models behind them, see them).

use std::borrow::Cow;

/// The longest error message passed to a client, in characters.
pub const MAX_CLIENT_ERROR_CHARS: usize = 1000;

/// Keys whose value is a secret when followed by `=` or `:` (case-insensitive, anywhere in a
/// word, so `access_token=` and `X-Api-Key:` count too).
const SECRET_KEYS: &[&str] = &[
    "password", "passwd", "token", "api_key", "api-key", "apikey", "secret",
];

/// Schemes whose following word is a credential (`Bearer abc`, `Basic dXNlcjpwYXNz`).
const AUTH_SCHEMES: &[&str] = &["bearer", "basic"];

const REDACTED: &str = "[REDACTED]";

/// `text` with secrets replaced by `[REDACTED]` (`password=…`, `token: …`, `api_key=…`,
/// `Bearer …`, and the key variants above) and cut to `limit` characters (`...` marks a cut).
/// Linear in the length of `text`.
pub fn redact_bounded(text: &str, limit: usize) -> String {
    let mut out = String::with_capacity(text.len().min(limit * 4 + 16));
    let mut rest = text;
    let mut chars = 0usize;
    let mut word_start = true;
    while !rest.is_empty() {
        if chars > limit {
            break;
        }
        let key = if word_start { key_shape_at(rest) } else { None };
        if let Some(skip) = key.or_else(|| secret_at(rest)) {
            if rest.starts_with("://") {
                out.push_str("://");
                chars += 3;
            }
            out.push_str(REDACTED);
            chars += REDACTED.len();
            rest = &rest[skip..];
            continue;
        }
        let next = rest.chars().next().map_or(1, char::len_utf8);
        word_start = !rest[..next]
            .chars()
            .all(|ch| ch.is_alphanumeric() || ch == '_' || ch == '-');
        out.push_str(&rest[..next]);
        chars += 1;
        rest = &rest[next..];
    }
    if chars > limit || !rest.is_empty() {
        let cut: String = out.chars().take(limit).collect();
        return format!("{cut}...");
    }
    out
}

/// [`redact_bounded`] at [`MAX_CLIENT_ERROR_CHARS`]: what an error message sent to a client gets.
pub fn for_client(text: &str) -> String {
    redact_bounded(text, MAX_CLIENT_ERROR_CHARS)
}

/// When `text` starts with a secret (key and value, or scheme and credential, or the password of
/// a URL's `user:password@`), the length of it.
fn secret_at(text: &str) -> Option<usize> {
    if let Some(authority) = text.strip_prefix("://") {
        let end = authority
            .find(|ch: char| ch == '/' || ch == '?' || ch == '#' || ch.is_whitespace())
            .unwrap_or(authority.len());
        if let Some(at) = authority[..end].rfind('@')
            && authority[..at].contains(':')
        {
            // Keep `://`, hide `user:password`, keep `@host`.
            return Some(3 + at);
        }
    }
    for key in SECRET_KEYS {
        if starts_with_ignore_case(text, key) {
            let mut at = key.len();
            let bytes = text.as_bytes();
            // `"token": "…"` in JSON: the key's closing quote, then the separator.
            if matches!(bytes.get(at), Some(b'"' | b'\'')) {
                at += 1;
            }
            while matches!(bytes.get(at), Some(b' ')) {
                at += 1;
            }
            if !matches!(bytes.get(at), Some(b'=' | b':')) {
                continue;
            }
            at += 1;
            if let Some(end) = value_end(text, at) {
                return Some(end);
            }
        }
    }
    for scheme in AUTH_SCHEMES {
        if starts_with_ignore_case(text, scheme)
            && text.as_bytes().get(scheme.len()) == Some(&b' ')
            && let Some(end) = value_end(text, scheme.len())
        {
            return Some(end);
        }
    }
    None
}

/// A key's prefix, the bytes its body is made of, and its body's least length.
type KeyShape = (&'static str, fn(u8) -> bool, usize);

/// Well-known access-key shapes that are secrets wherever they stand, with or without a key
/// before them: a prefix, the characters their body uses, and its least length.
const KEY_SHAPES: &[KeyShape] = &[
    // AWS access key ids (long-lived and temporary).
    ("AKIA", is_upper_alnum, 16),
    ("ASIA", is_upper_alnum, 16),
    // GitHub tokens: personal, OAuth, user-to-server, server-to-server, refresh, fine-grained.
    ("ghp_", is_alnum, 30),
    ("gho_", is_alnum, 30),
    ("ghu_", is_alnum, 30),
    ("ghs_", is_alnum, 30),
    ("ghr_", is_alnum, 30),
    ("github_pat_", is_token_char, 20),
    // OpenAI (`sk-…`, `sk-proj-…`) and Anthropic (`sk-ant-…`) API keys.
    ("sk-", is_token_char, 20),
    // Stripe secret and restricted keys.
    ("sk_live_", is_alnum, 16),
    ("sk_test_", is_alnum, 16),
    ("rk_live_", is_alnum, 16),
    // Slack tokens.
    ("xoxb-", is_token_char, 10),
    ("xoxp-", is_token_char, 10),
    ("xoxa-", is_token_char, 10),
    ("xoxs-", is_token_char, 10),
    // Google API keys.
    ("AIza", is_token_char, 30),
    // GitLab personal access tokens.
    ("glpat-", is_token_char, 20),
    // JSON Web Tokens (a base64url JSON header starts `eyJ`).
    ("eyJ", is_jwt_char, 30),
];

fn is_upper_alnum(byte: u8) -> bool {
    byte.is_ascii_uppercase() || byte.is_ascii_digit()
}

fn is_alnum(byte: u8) -> bool {
    byte.is_ascii_alphanumeric()
}

fn is_token_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-'
}

fn is_jwt_char(byte: u8) -> bool {
    is_token_char(byte) || byte == b'.'
}

/// When `text` (at the start of a word) starts with a well-known access key, its length.
fn key_shape_at(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    KEY_SHAPES.iter().find_map(|(prefix, body, least)| {
        let rest = bytes.strip_prefix(prefix.as_bytes())?;
        let length = rest.iter().take_while(|byte| body(**byte)).count();
        (length >= *least).then_some(prefix.len() + length)
    })
}

/// The end of a value starting at `at` after optional spaces and an optional quote; `None` when
/// the value is empty.
fn value_end(text: &str, mut at: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    while matches!(bytes.get(at), Some(b' ' | b'\t')) {
        at += 1;
    }
    let quote = match bytes.get(at) {
        Some(q @ (b'"' | b'\'')) => {
            at += 1;
            Some(*q)
        }
        _ => None,
    };
    let start = at;
    while let Some(&byte) = bytes.get(at) {
        let ends = match quote {
            Some(q) => byte == q,
            None => byte.is_ascii_whitespace() || matches!(byte, b'&' | b',' | b';' | b'"' | b'\''),
        };
        if ends {
            break;
        }
        at += 1;
    }
    if at == start {
        return None;
    }
    if quote.is_some() && bytes.get(at).is_some() {
        at += 1;
    }
    Some(at)
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.len() >= prefix.len()
        && text.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// Characters that render as nothing or reorder text: zero-width ones, bidirectional overrides
/// and isolates, the byte-order mark. They hide text from the person reading a description.
fn is_invisible_format(ch: char) -> bool {
    matches!(ch, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// A name (tool, prompt, resource, argument) fit for clients: control and invisible formatting
/// characters become `_`.
pub fn sanitize_name(name: &str) -> Cow<'_, str> {
    if !name
        .chars()
        .any(|ch| ch.is_control() || is_invisible_format(ch))
    {
        return Cow::Borrowed(name);
    }
    Cow::Owned(
        name.chars()
            .map(|ch| {
                if ch.is_control() || is_invisible_format(ch) {
                    '_'
                } else {
                    ch
                }
            })
            .collect(),
    )
}

/// A description or title fit for clients: line breaks and tabs stay, other control characters
/// become spaces, invisible formatting characters go.
pub fn sanitize_text(text: &str) -> Cow<'_, str> {
    let bad = |ch: char| (ch.is_control() && ch != '\n' && ch != '\t') || is_invisible_format(ch);
    if !text.chars().any(bad) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .filter(|ch| !is_invisible_format(*ch))
            .map(|ch| if bad(ch) { ' ' } else { ch })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_keys_schemes_and_json() {
        assert_eq!(
            for_client("boom token=abc123 Bearer xyz password: hunter2 API_KEY=k ok"),
            "boom [REDACTED] [REDACTED] [REDACTED] [REDACTED] ok"
        );
        assert_eq!(
            for_client(r#"{"access_token": "s3cr3t", "x": 1}"#),
            r#"{"access_[REDACTED], "x": 1}"#
        );
        assert_eq!(for_client("GET /x?apikey=abc&y=2"), "GET /x?[REDACTED]&y=2");
        assert_eq!(
            for_client("Authorization: Basic dXNlcg=="),
            "Authorization: [REDACTED]"
        );
        assert_eq!(for_client("tokens are fine"), "tokens are fine");
        assert_eq!(
            for_client("error sending request for url (http://me:pa55@host:8/mcp)"),
            "error sending request for url (http://[REDACTED]@host:8/mcp)"
        );
        assert_eq!(for_client("see http://host/a@b"), "see http://host/a@b");
        assert_eq!(for_client("a bearer of news"), "a [REDACTED] news");
    }

    #[test]
    fn redacts_well_known_key_shapes_wherever_they_stand() {
        assert_eq!(
            for_client("key AKIAIOSFODNN7EXAMPLE in use"),
            "key [REDACTED] in use"
        );
        assert_eq!(
            for_client("cloning with ghp_abcdefghijklmnopqrstuvwxyz0123456789 failed"),
            "cloning with [REDACTED] failed"
        );
        assert_eq!(
            for_client(
                "OPENAI sk-proj-abcdefghijklmnopqrstuvwx, anthropic sk-ant-api03-aaaaaaaaaaaaaaaaaaaaaa"
            ),
            "OPENAI [REDACTED], anthropic [REDACTED]"
        );
        assert_eq!(
            for_client("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig_nature-x"),
            "jwt [REDACTED]"
        );
        assert_eq!(for_client("xoxb-1234567890-abcdef"), "[REDACTED]");
        // Not keys: too short, or inside a word.
        assert_eq!(
            for_client("task-runner sk-1 ASKIA"),
            "task-runner sk-1 ASKIA"
        );
        assert_eq!(
            for_client("mask-abcdefghijklmnopqrstuvwxyz"),
            "mask-abcdefghijklmnopqrstuvwxyz"
        );
    }

    #[test]
    fn bounds_by_characters() {
        let long = "é".repeat(5000);
        let cut = for_client(&long);
        assert_eq!(cut.chars().count(), MAX_CLIENT_ERROR_CHARS + 3);
        assert!(cut.ends_with("..."));
        assert_eq!(redact_bounded("abc", 3), "abc");
        assert_eq!(redact_bounded("abcd", 3), "abc...");
    }

    #[test]
    fn names_and_text_lose_control_characters() {
        assert_eq!(sanitize_name("get_time"), "get_time");
        assert_eq!(sanitize_name("evil\u{7}\u{1b}[31mtool"), "evil__[31mtool");
        assert_eq!(sanitize_name("a\u{202E}b"), "a_b");
        assert_eq!(sanitize_text("line\nnext\ttab"), "line\nnext\ttab");
        assert_eq!(sanitize_text("x\u{0}y\u{1b}z\u{200B}w\r"), "x y zw ");
    }
}
