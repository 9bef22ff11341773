//! Environment references in the config file: `${VAR}` and `${VAR:-default}` (Claude Code's
//! syntax), resolved when the file is loaded, in a server's `command`, `args`, `env` values,
//! `cwd`, `url` and `headers` values. A server's `envFile` (a dotenv file, as VS Code and Cursor
//! read it) is looked up first, then the proxy's own environment. `$${` writes a literal `${`.
//! A reference to a variable that is not set and has no default is an error naming it; anything
//! else between `${` and `}` (`${input:…}`, `${env:…}`) is an error too, so a value copied from a
//! client's config never reaches a server half-resolved.

use std::collections::BTreeMap;
use std::path::Path;

/// Why a text could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VarError {
    /// `${NAME}` without a default, and `NAME` is set nowhere.
    Missing(String),
    /// `${…}` that is not `${NAME}` or `${NAME:-default}`.
    Unsupported(String),
    /// `${` without its `}`.
    Unclosed,
}

impl std::fmt::Display for VarError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VarError::Missing(name) => write!(
                f,
                "the environment variable {name} is not set (referenced as ${{{name}}}; give it \
                 a value, or a default with ${{{name}:-default}})"
            ),
            VarError::Unsupported(reference) => write!(
                f,
                "${{{reference}}} is not an environment reference; write ${{VAR}} or \
                 ${{VAR:-default}} (and $${{ for a literal ${{)"
            ),
            VarError::Unclosed => write!(f, "a ${{ has no closing }}"),
        }
    }
}

/// Whether `name` is a variable name: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

/// Replaces every `${NAME}` and `${NAME:-default}` in `text` with `lookup(NAME)` (or the
/// default when that is `None` or empty, as a shell does for `:-`).
pub fn expand(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, VarError> {
    if !text.contains("${") {
        return Ok(text.to_owned());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        if rest[..at].ends_with('$') {
            // `$${` is a literal `${`.
            out.push_str(&rest[..at - 1]);
            out.push_str("${");
            rest = &rest[at + 2..];
            continue;
        }
        out.push_str(&rest[..at]);
        let inner_start = at + 2;
        let Some(close) = rest[inner_start..].find('}') else {
            return Err(VarError::Unclosed);
        };
        let inner = &rest[inner_start..inner_start + close];
        let (name, default) = match inner.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (inner, None),
        };
        if !is_name(name) {
            return Err(VarError::Unsupported(inner.to_owned()));
        }
        match (lookup(name).filter(|value| !value.is_empty()), default) {
            (Some(value), _) => out.push_str(&value),
            (None, Some(default)) => out.push_str(default),
            (None, None) => match lookup(name) {
                // Set but empty, without a default: empty, as a shell gives it.
                Some(value) => out.push_str(&value),
                None => return Err(VarError::Missing(name.to_owned())),
            },
        }
        rest = &rest[inner_start + close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The names `text` refers to (for reports; malformed references are skipped).
pub fn references(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        let escaped = rest[..at].ends_with('$');
        let after = &rest[at + 2..];
        let Some(close) = after.find('}') else { break };
        let inner = &after[..close];
        let name = inner.split_once(":-").map_or(inner, |(name, _)| name);
        if !escaped && is_name(name) && !names.iter().any(|known| known == name) {
            names.push(name.to_owned());
        }
        rest = &after[close + 1..];
    }
    names
}

/// Reads a dotenv file: `KEY=VALUE` lines, `export KEY=VALUE`, `#` comments, blank lines, values
/// optionally in single quotes (taken as written) or double quotes (with `\n`, `\"`, `\\`).
/// Errors name the line.
pub fn read_env_file(path: &Path) -> Result<BTreeMap<String, String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    parse_env_file(&text).map_err(|(line, message)| format!("{}:{line}: {message}", path.display()))
}

/// Parses dotenv text; an error is the line number and what is wrong.
pub fn parse_env_file(text: &str) -> Result<BTreeMap<String, String>, (usize, String)> {
    let mut vars = BTreeMap::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let Some((key, value)) = line.split_once('=') else {
            return Err((index + 1, "expected KEY=VALUE".into()));
        };
        let key = key.trim();
        if !is_name(key) {
            return Err((index + 1, format!("{key:?} is not a variable name")));
        }
        let value = value.trim();
        let value = if let Some(quoted) = value.strip_prefix('\'') {
            quoted
                .strip_suffix('\'')
                .ok_or((index + 1, "a single quote is not closed".to_owned()))?
                .to_owned()
        } else if let Some(quoted) = value.strip_prefix('"') {
            let inner = quoted
                .strip_suffix('"')
                .ok_or((index + 1, "a double quote is not closed".to_owned()))?;
            unescape(inner)
        } else {
            // An unquoted value ends at ` #` (a comment).
            value
                .split_once(" #")
                .map_or(value, |(value, _)| value)
                .trim_end()
                .to_owned()
        };
        vars.insert(key.to_owned(), value);
    }
    Ok(vars)
}

fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(ch) = chars.next() {
        if ch != '\\' {
            out.push(ch);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// A dotenv line for `key=value`, quoted so that [`parse_env_file`] reads `value` back as it is.
pub fn env_file_line(key: &str, value: &str) -> String {
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for ch in value.chars() {
        match ch {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            other => quoted.push(other),
        }
    }
    quoted.push('"');
    format!("{key}={quoted}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOME_DIR" => Some("/home/me".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn references_resolve_with_defaults_and_escapes() {
        assert_eq!(expand("${HOME_DIR}/x", &env).unwrap(), "/home/me/x");
        assert_eq!(expand("${NOPE:-fallback}", &env).unwrap(), "fallback");
        assert_eq!(expand("${EMPTY:-d}", &env).unwrap(), "d");
        assert_eq!(expand("${EMPTY}", &env).unwrap(), "");
        assert_eq!(expand("a $${HOME_DIR} b", &env).unwrap(), "a ${HOME_DIR} b");
        assert_eq!(
            expand("$5 and $HOME_DIR", &env).unwrap(),
            "$5 and $HOME_DIR"
        );
        assert_eq!(
            expand("Bearer ${NOPE:-}", &env).unwrap(),
            "Bearer ",
            "an empty default is a value"
        );
    }

    #[test]
    fn missing_and_foreign_references_are_errors_naming_them() {
        assert_eq!(
            expand("${NOPE}", &env),
            Err(VarError::Missing("NOPE".into()))
        );
        assert_eq!(
            expand("${input:token}", &env),
            Err(VarError::Unsupported("input:token".into()))
        );
        assert_eq!(expand("${HOME_DIR", &env), Err(VarError::Unclosed));
        assert!(
            VarError::Missing("GITHUB_TOKEN".into())
                .to_string()
                .contains("GITHUB_TOKEN is not set")
        );
    }

    #[test]
    fn dotenv_files_read_quotes_comments_and_exports() {
        let vars = parse_env_file(
            "# comment\nA=1\nexport B = two words # note\nC='x # y'\nD=\"line\\nnext \\\"q\\\"\"\n",
        )
        .unwrap();
        assert_eq!(vars["A"], "1");
        assert_eq!(vars["B"], "two words");
        assert_eq!(vars["C"], "x # y");
        assert_eq!(vars["D"], "line\nnext \"q\"");
        assert_eq!(parse_env_file("nope").unwrap_err().0, 1);
        let written = env_file_line("K", "a \"b\" \\ c\nd");
        assert_eq!(parse_env_file(&written).unwrap()["K"], "a \"b\" \\ c\nd");
    }

    #[test]
    fn references_are_listed_once() {
        assert_eq!(
            references("${A} ${B:-x} $${C} ${A} ${input:x}"),
            vec!["A".to_owned(), "B".to_owned()]
        );
    }
}
