//! Matching a URI against an RFC 6570 URI template, enough to route `resources/read` to the
//! server that listed the template: `{var}` matches one or more characters other than `/ ? #`,
//! `{+var}` and `{#var}` match anything, and `{?a,b}` / `{&a}` match an optional query tail.

/// Whether `uri` is an expansion of `template`.
pub(super) fn matches(template: &str, uri: &str) -> bool {
    match_from(template.as_bytes(), uri.as_bytes())
}

fn match_from(template: &[u8], uri: &[u8]) -> bool {
    let Some(&first) = template.first() else {
        return uri.is_empty();
    };
    if first != b'{' {
        return uri.first() == Some(&first) && match_from(&template[1..], &uri[1..]);
    }
    let Some(close) = template.iter().position(|&b| b == b'}') else {
        // An unterminated expression: compare literally.
        return template == uri;
    };
    let expression = &template[1..close];
    let rest = &template[close + 1..];
    match expression.first() {
        // Query expansions are optional and run to the end of the URI or the next literal.
        Some(b'?' | b'&') => {
            if match_from(rest, uri) {
                return true;
            }
            let starts_query = uri.first().is_some_and(|&b| b == b'?' || b == b'&');
            starts_query && (1..=uri.len()).any(|end| match_from(rest, &uri[end..]))
        }
        Some(b'+' | b'#') => (1..=uri.len()).any(|end| match_from(rest, &uri[end..])),
        _ => {
            let limit = uri
                .iter()
                .position(|&b| matches!(b, b'/' | b'?' | b'#'))
                .unwrap_or(uri.len());
            (1..=limit).any(|end| match_from(rest, &uri[end..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn simple_variables_match_one_segment() {
        assert!(matches(
            "test://template/{id}/data",
            "test://template/42/data"
        ));
        assert!(!matches(
            "test://template/{id}/data",
            "test://template/4/2/data"
        ));
        assert!(!matches(
            "test://template/{id}/data",
            "test://template//data"
        ));
        assert!(!matches(
            "test://template/{id}/data",
            "test://other/42/data"
        ));
    }

    #[test]
    fn reserved_expansion_matches_slashes() {
        assert!(matches("file:///{+path}", "file:///etc/hosts"));
        assert!(matches("repo://{owner}/{repo}", "repo://a/b"));
    }

    #[test]
    fn query_expansion_is_optional() {
        assert!(matches("search://items{?q,limit}", "search://items"));
        assert!(matches(
            "search://items{?q,limit}",
            "search://items?q=x&limit=3"
        ));
    }
}
