//! Name encoding: slugs, `<slug>__<name>` within 64 bytes, splitting back, shortening, and the
//! sanitising and redaction of text that crosses a trust boundary. The input is split at NUL
//! bytes into a server name, a tool name and free text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pluggedin_mcp_proxy::names;
use pluggedin_mcp_proxy::security::text;

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    let mut parts = input.splitn(3, '\0');
    let server = parts.next().unwrap_or_default();
    let name = parts.next().unwrap_or_default();
    let free = parts.next().unwrap_or_default();

    let slug = names::slugify(server);
    assert!(!slug.is_empty() && slug.len() <= 40);
    assert!(
        slug.chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-')
    );
    let slugs = names::unique_slugs([server, server, name]);
    assert_ne!(slugs[0], slugs[1]);

    let qualified = names::qualify(&slug, name);
    assert!(qualified.len() <= names::MAX_NAME_LEN);
    assert_eq!(qualified, names::qualify(&slug, name));
    if !name.is_empty() && slug.len() + 2 + name.len() <= names::MAX_NAME_LEN {
        assert_eq!(names::split(&qualified), Some((slug.as_str(), name)));
    }
    if let Some((prefix, rest)) = names::split(name) {
        assert!(!prefix.is_empty() && !rest.is_empty());
    }
    let fitted = names::fit(free, 12);
    assert!(fitted.len() <= names::MAX_NAME_LEN);

    let clean = text::sanitize_name(name);
    assert!(!clean.chars().any(char::is_control));
    assert_eq!(clean.chars().count(), name.chars().count());
    let clean = text::sanitize_text(free);
    assert!(
        !clean
            .chars()
            .any(|ch| ch.is_control() && ch != '\n' && ch != '\t')
    );

    let redacted = text::redact_bounded(free, 200);
    assert!(redacted.chars().count() <= 203);
});
