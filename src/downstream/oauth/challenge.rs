//! The `WWW-Authenticate` challenge a protected server answers with (RFC 6750 §3, RFC 9728 §5.1):
//! its `resource_metadata`, `scope` and `error` parameters, which start and steer an authorization.
//! Both the Bearer and the DPoP scheme are read; other parameters are ignored.

/// The parameters of a `WWW-Authenticate: Bearer ...` challenge.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Challenge {
    pub resource_metadata: Option<String>,
    pub scope: Option<String>,
    pub error: Option<String>,
}

impl Challenge {
    /// Parses the auth-params of a Bearer challenge (`key="value", key=value`).
    pub fn parse(header: &str) -> Self {
        let mut challenge = Challenge::default();
        let rest = header.trim();
        // The scheme (`Bearer`, `DPoP`): a first word without `=`.
        let rest = match rest.split_once(' ') {
            Some((scheme, params)) if !scheme.contains('=') => params,
            _ => rest,
        };
        let mut chars = rest.chars().peekable();
        loop {
            while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
                chars.next();
            }
            let key: String = chars
                .by_ref()
                .take_while(|c| *c != '=')
                .collect::<String>()
                .trim()
                .to_ascii_lowercase();
            if key.is_empty() {
                break;
            }
            let mut value = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => value.extend(chars.next()),
                        '"' => break,
                        c => value.push(c),
                    }
                }
            } else {
                while let Some(c) = chars.peek() {
                    if *c == ',' {
                        break;
                    }
                    value.push(*c);
                    chars.next();
                }
                value = value.trim().to_owned();
            }
            match key.as_str() {
                "resource_metadata" => challenge.resource_metadata = Some(value),
                "scope" => challenge.scope = Some(value),
                "error" => challenge.error = Some(value),
                _ => {}
            }
        }
        challenge
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_challenges() {
        let challenge = Challenge::parse(
            r#"Bearer error="insufficient_scope", scope="a b", resource_metadata="https://x/.well-known/oauth-protected-resource/mcp""#,
        );
        assert_eq!(challenge.error.as_deref(), Some("insufficient_scope"));
        assert_eq!(challenge.scope.as_deref(), Some("a b"));
        assert_eq!(
            challenge.resource_metadata.as_deref(),
            Some("https://x/.well-known/oauth-protected-resource/mcp")
        );
        let bare = Challenge::parse("Bearer realm=x, scope=read");
        assert_eq!(bare.scope.as_deref(), Some("read"));
    }
}
