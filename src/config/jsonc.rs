//! JSON with comments and trailing commas (VS Code's and Cursor's `mcp.json` allow them), read
//! and edited in place. Reading blanks comments and trailing commas out (same length, so byte
//! offsets stay valid) and parses the rest as JSON. Editing splices text: one member's value
//! replaced, or a member added before an object's closing brace, so everything else in the file —
//! the user's comments, key order, formatting, other tools' keys — stays byte for byte.

use std::ops::Range;

use serde_json::Value;

/// `text` with comments and trailing commas replaced by spaces (newlines kept), same length.
pub fn strip(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = bytes.to_vec();
    let mut at = 0;
    // The last comma seen outside strings and comments, not yet followed by a value.
    let mut pending_comma: Option<usize> = None;
    while at < bytes.len() {
        match bytes[at] {
            b'"' => {
                pending_comma = None;
                at = string_end(bytes, at);
                continue;
            }
            b'/' if bytes.get(at + 1) == Some(&b'/') => {
                while at < bytes.len() && bytes[at] != b'\n' {
                    out[at] = b' ';
                    at += 1;
                }
                continue;
            }
            b'/' if bytes.get(at + 1) == Some(&b'*') => {
                let end = text[at + 2..]
                    .find("*/")
                    .map_or(bytes.len(), |end| at + 2 + end + 2);
                for byte in &mut out[at..end] {
                    if *byte != b'\n' {
                        *byte = b' ';
                    }
                }
                at = end;
                continue;
            }
            b',' => pending_comma = Some(at),
            b'}' | b']' => {
                if let Some(comma) = pending_comma.take() {
                    out[comma] = b' ';
                }
            }
            byte if byte.is_ascii_whitespace() => {}
            _ => pending_comma = None,
        }
        at += 1;
    }
    // Only ASCII bytes were replaced by ASCII spaces, so this stays UTF-8.
    String::from_utf8(out).unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into())
}

/// Where a string starting at `start` (its opening quote) ends (one past its closing quote).
fn string_end(bytes: &[u8], start: usize) -> usize {
    let mut at = start + 1;
    while at < bytes.len() {
        match bytes[at] {
            b'\\' => at += 2,
            b'"' => return at + 1,
            _ => at += 1,
        }
    }
    bytes.len()
}

/// Parses JSON-with-comments text.
pub fn parse(text: &str) -> Result<Value, serde_json::Error> {
    serde_json::from_str(&strip(text))
}

/// A JSON document (comments allowed) with the positions of its values, for splicing.
pub struct Document {
    text: String,
    stripped: String,
}

/// An object's members as found in the text.
struct Members {
    /// Each member: its key, where the key starts, and the span of its value.
    entries: Vec<(String, usize, Range<usize>)>,
    /// Where the object's `}` is.
    close: usize,
    /// Where its `{` is.
    open: usize,
}

impl Document {
    pub fn new(text: &str) -> Result<Document, serde_json::Error> {
        let stripped = strip(text);
        serde_json::from_str::<serde::de::IgnoredAny>(&stripped)?;
        Ok(Document {
            text: text.to_owned(),
            stripped,
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn value(&self) -> Value {
        serde_json::from_str(&self.stripped).unwrap_or(Value::Null)
    }

    /// The span of the value at `path` (object keys from the top), if there is one.
    pub fn span(&self, path: &[&str]) -> Option<Range<usize>> {
        let bytes = self.stripped.as_bytes();
        let mut span = skip_ws(bytes, 0)..value_end(bytes, skip_ws(bytes, 0))?;
        for key in path {
            let members = members(bytes, span.start)?;
            span = members
                .entries
                .into_iter()
                .find(|(name, _, _)| name == key)
                .map(|(_, _, span)| span)?;
        }
        Some(span)
    }

    /// The text of the value at `path`.
    pub fn raw(&self, path: &[&str]) -> Option<&str> {
        self.span(path).map(|span| &self.text[span])
    }

    /// Replaces the value at `path` with `value` (pretty-printed at its indentation).
    pub fn replace(&mut self, path: &[&str], value: &Value) -> bool {
        let Some(span) = self.span(path) else {
            return false;
        };
        let indent = line_indent(&self.text, span.start);
        let rendered = render(value, &indent);
        self.splice(span, &rendered);
        true
    }

    /// Replaces the value at `path` with `raw` text as it is.
    pub fn replace_raw(&mut self, path: &[&str], raw: &str) -> bool {
        let Some(span) = self.span(path) else {
            return false;
        };
        self.splice(span, raw);
        true
    }

    /// Adds `key: value` as the last member of the object at `path`; false when there is no
    /// object there.
    pub fn insert(&mut self, path: &[&str], key: &str, value: &Value) -> bool {
        let bytes = self.stripped.as_bytes();
        let Some(span) = self.span(path) else {
            return false;
        };
        let Some(members) = members(bytes, span.start) else {
            return false;
        };
        let key_json = Value::String(key.to_owned()).to_string();
        let object_indent = line_indent(&self.text, members.open);
        let member_indent = match members.entries.last() {
            // The indentation of the line the last member's key starts on.
            Some((_, key_start, _)) => line_indent(&self.text, *key_start),
            None => format!("{object_indent}  "),
        };
        let rendered = render(value, &member_indent);
        match members.entries.last() {
            Some((_, _, last)) => {
                let insertion = format!(",\n{member_indent}{key_json}: {rendered}");
                self.splice(last.end..last.end, &insertion);
            }
            None => {
                let inner = members.open + 1..members.close;
                let insertion = format!("\n{member_indent}{key_json}: {rendered}\n{object_indent}");
                self.splice(inner, &insertion);
            }
        }
        true
    }

    /// Removes the member `key` of the object at `path`; false when it is not there.
    pub fn remove(&mut self, path: &[&str], key: &str) -> bool {
        let bytes = self.stripped.as_bytes();
        let Some(span) = self.span(path) else {
            return false;
        };
        let Some(members) = members(bytes, span.start) else {
            return false;
        };
        let Some(index) = members.entries.iter().position(|(name, _, _)| name == key) else {
            return false;
        };
        let value = members.entries[index].2.clone();
        // From the end of the previous member (or the `{`) to the end of this value: its comma,
        // whitespace and key go with it.
        let start = match index {
            0 => members.open + 1,
            _ => members.entries[index - 1].2.end,
        };
        let end = if index == 0 {
            // The first member takes the comma after it instead.
            match members.entries.get(1) {
                Some(_) => {
                    let after = &self.stripped[value.end..];
                    after.find(',').map_or(value.end, |at| value.end + at + 1)
                }
                None => value.end,
            }
        } else {
            value.end
        };
        self.splice(start..end, "");
        true
    }

    fn splice(&mut self, span: Range<usize>, replacement: &str) {
        self.text.replace_range(span, replacement);
        self.stripped = strip(&self.text);
    }
}

/// Pretty JSON with every line after the first indented by `indent`.
pub fn render(value: &Value, indent: &str) -> String {
    let pretty = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    let mut out = String::with_capacity(pretty.len());
    for (index, line) in pretty.lines().enumerate() {
        if index > 0 {
            out.push('\n');
            out.push_str(indent);
        }
        out.push_str(line);
    }
    out
}

/// The whitespace at the start of the line `at` is on.
fn line_indent(text: &str, at: usize) -> String {
    let line_start = text[..at].rfind('\n').map_or(0, |newline| newline + 1);
    text[line_start..]
        .chars()
        .take_while(|ch| *ch == ' ' || *ch == '\t')
        .collect()
}

fn skip_ws(bytes: &[u8], mut at: usize) -> usize {
    while at < bytes.len() && bytes[at].is_ascii_whitespace() {
        at += 1;
    }
    at
}

/// Where the value starting at `start` ends (in stripped text, which is valid JSON).
fn value_end(bytes: &[u8], start: usize) -> Option<usize> {
    match bytes.get(start)? {
        b'"' => Some(string_end(bytes, start)),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut at = start;
            while at < bytes.len() {
                match bytes[at] {
                    b'"' => {
                        at = string_end(bytes, at);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(at + 1);
                        }
                    }
                    _ => {}
                }
                at += 1;
            }
            None
        }
        _ => {
            let mut at = start;
            while at < bytes.len()
                && !matches!(bytes[at], b',' | b'}' | b']')
                && !bytes[at].is_ascii_whitespace()
            {
                at += 1;
            }
            Some(at)
        }
    }
}

/// The members of the object starting at `open` (its `{`).
fn members(bytes: &[u8], open: usize) -> Option<Members> {
    if bytes.get(open) != Some(&b'{') {
        return None;
    }
    let mut entries = Vec::new();
    let mut at = skip_ws(bytes, open + 1);
    loop {
        match bytes.get(at)? {
            b'}' => {
                return Some(Members {
                    entries,
                    close: at,
                    open,
                });
            }
            b',' => {
                at = skip_ws(bytes, at + 1);
                continue;
            }
            b'"' => {
                let key_start = at;
                let key_end = string_end(bytes, at);
                let key: String = serde_json::from_slice(&bytes[at..key_end]).ok()?;
                at = skip_ws(bytes, key_end);
                if bytes.get(at) != Some(&b':') {
                    return None;
                }
                let start = skip_ws(bytes, at + 1);
                let end = value_end(bytes, start)?;
                entries.push((key, key_start, start..end));
                at = skip_ws(bytes, end);
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SAMPLE: &str = r#"{
  // the servers
  "servers": {
    "a": { "command": "x", }, /* trailing */
  },
  "inputs": [],
}"#;

    #[test]
    fn comments_and_trailing_commas_are_blanked_in_place() {
        let stripped = strip(SAMPLE);
        assert_eq!(stripped.len(), SAMPLE.len());
        let value: Value = serde_json::from_str(&stripped).unwrap();
        assert_eq!(value["servers"]["a"]["command"], json!("x"));
        assert_eq!(
            strip(r#"{"u": "http://x//y", "c": "a,]"}"#),
            r#"{"u": "http://x//y", "c": "a,]"}"#
        );
    }

    #[test]
    fn a_member_is_added_and_removed_keeping_everything_else() {
        let mut document = Document::new(SAMPLE).unwrap();
        assert!(document.insert(&["servers"], "b", &json!({"url": "http://h/mcp"})));
        let text = document.text().to_owned();
        assert!(text.contains("// the servers"), "{text}");
        assert!(text.contains("/* trailing */"), "{text}");
        let value = parse(&text).unwrap();
        assert_eq!(value["servers"]["b"]["url"], json!("http://h/mcp"));
        assert_eq!(value["servers"]["a"]["command"], json!("x"));
        assert!(document.remove(&["servers"], "b"));
        assert_eq!(parse(document.text()).unwrap(), parse(SAMPLE).unwrap());
        assert!(document.remove(&["servers"], "a"));
        assert_eq!(parse(document.text()).unwrap()["servers"], json!({}));
        assert!(document.insert(&["servers"], "c", &json!(1)));
        assert_eq!(parse(document.text()).unwrap()["servers"], json!({"c": 1}));
    }

    #[test]
    fn a_value_is_replaced_in_place() {
        let text = "{\n  \"mcpServers\": {\"a\": 1},\n  \"other\": [1, 2]\n}\n";
        let mut document = Document::new(text).unwrap();
        assert_eq!(document.raw(&["mcpServers"]), Some("{\"a\": 1}"));
        assert!(document.replace(&["mcpServers"], &json!({"p": {"command": "q"}})));
        assert!(document.text().ends_with("\"other\": [1, 2]\n}\n"));
        assert!(document.replace_raw(&["mcpServers"], "{\"a\": 1}"));
        assert_eq!(document.text(), text);
        assert!(document.span(&["nope"]).is_none());
    }
}
