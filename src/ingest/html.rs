//! HTML to text, the light way: drop comments, scripts, styles and the head; turn block elements
//! into line breaks (headings into Markdown `#`, list items into `- `); decode the common
//! entities; fold whitespace. No DOM and no dependency: the library indexes words, so layout
//! beyond paragraphs does not matter, and a malformed page still yields its text.

/// Elements whose content is not text.
const SKIPPED: &[&str] = &["script", "style", "head", "noscript", "template", "svg"];
/// Elements that start a new line.
const BLOCKS: &[&str] = &[
    "p",
    "div",
    "br",
    "li",
    "ul",
    "ol",
    "tr",
    "table",
    "section",
    "article",
    "header",
    "footer",
    "nav",
    "aside",
    "main",
    "blockquote",
    "pre",
    "hr",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "dd",
    "dt",
    "dl",
    "figure",
    "figcaption",
    "form",
    "address",
    "body",
    "html",
];

/// The page's `<title>`, if it has one.
pub fn title(html: &str) -> Option<String> {
    let lower = html.to_ascii_lowercase();
    let open = lower.find("<title")?;
    let start = open + lower[open..].find('>')? + 1;
    let end = start + lower[start..].find("</title")?;
    let title = fold(&decode(&html[start..end]));
    (!title.is_empty()).then_some(title)
}

/// The text of an HTML document.
pub fn to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let lower = html.to_ascii_lowercase();
    let mut at = 0;
    let mut text_from = 0;
    while let Some(offset) = html[at..].find('<') {
        let open = at + offset;
        out.push_str(&decode(&html[text_from..open]));
        if lower[open..].starts_with("<!--") {
            at = lower[open..]
                .find("-->")
                .map_or(html.len(), |end| open + end + 3);
            text_from = at;
            continue;
        }
        let starts_tag = html[open + 1..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '/' || c == '!' || c == '?');
        let close = html[open..].find('>').map(|end| open + end);
        let Some(close) = close.filter(|_| starts_tag) else {
            // A `<` that starts no tag is text.
            out.push('<');
            at = open + 1;
            text_from = at;
            continue;
        };
        let tag = &lower[open + 1..close];
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        at = close + 1;
        if !closing && SKIPPED.contains(&name.as_str()) {
            let end_tag = format!("</{name}");
            at = lower[at..].find(&end_tag).map_or(html.len(), |end| {
                let end = at + end;
                lower[end..].find('>').map_or(html.len(), |gt| end + gt + 1)
            });
        } else if BLOCKS.contains(&name.as_str()) {
            // An item's end needs no break: the next item (or the list's end) makes one.
            if !(closing && matches!(name.as_str(), "li" | "dd" | "dt" | "tr")) {
                out.push('\n');
            }
            if !closing {
                match name.as_str() {
                    "li" => out.push_str("- "),
                    "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                        out.push('\n');
                        let level = usize::from(name.as_bytes()[1] - b'0');
                        out.push_str(&"#".repeat(level));
                        out.push(' ');
                    }
                    "p" | "blockquote" | "pre" | "table" => out.push('\n'),
                    _ => {}
                }
            } else if matches!(name.as_str(), "p" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6") {
                out.push('\n');
            }
        } else if matches!(name.as_str(), "td" | "th") {
            out.push(' ');
        }
        text_from = at;
    }
    if text_from < html.len() {
        out.push_str(&decode(&html[text_from..]));
    }
    tidy(&out)
}

/// Folds runs of spaces within lines and keeps at most one blank line between paragraphs.
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = 0;
    for line in text.lines() {
        let line = fold(line);
        if line.is_empty() {
            blank += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank > 0 { "\n\n" } else { "\n" });
        }
        blank = 0;
        out.push_str(&line);
    }
    out
}

fn fold(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Decodes the named entities pages use most and every numeric one.
fn decode(text: &str) -> String {
    if !text.contains('&') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let end = rest.find(';').filter(|end| *end <= 10);
        let decoded = end.and_then(|end| {
            let entity = &rest[1..end];
            let c = match entity {
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "quot" => '"',
                "apos" => '\'',
                "nbsp" => ' ',
                "mdash" => '—',
                "ndash" => '–',
                "hellip" => '…',
                "copy" => '©',
                _ => {
                    let number = entity.strip_prefix('#')?;
                    let code = match number.strip_prefix(['x', 'X']) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                        None => number.parse().ok()?,
                    };
                    char::from_u32(code)?
                }
            };
            Some((c, end + 1))
        });
        match decoded {
            Some((c, length)) => {
                out.push(c);
                rest = &rest[length..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_becomes_paragraphs_headings_and_items() {
        let html = "<!DOCTYPE html><html><head><title>The &amp; Title</title>\
            <style>p { color: red }</style></head><body><h1>Heading</h1>\
            <p>First   paragraph with <b>bold</b> &lt;text&gt;&#33;</p><!-- hidden -->\
            <script>var hidden = 1;</script><ul><li>one</li><li>two &#x2014; 2</li></ul>\
            <p>a < b</p></body></html>";
        assert_eq!(title(html).as_deref(), Some("The & Title"));
        assert_eq!(
            to_text(html),
            "# Heading\n\nFirst paragraph with bold <text>!\n\n- one\n- two — 2\n\na < b"
        );
    }
}
