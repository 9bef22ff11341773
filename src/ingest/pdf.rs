//! Text from simple PDFs, without a PDF library. It finds the page content streams (plain or
//! `FlateDecode`), and reads the strings shown by the text operators (`Tj`, `TJ`, `'`, `"`)
//! between `BT` and `ET`, starting a new line when the text position moves down.
//!
//! Decision: `pdf-extract`/`lopdf` handle far more PDFs but add about a minute to a clean build;
//! most PDFs people keep as notes are text PDFs with standard fonts, which this reads. A PDF
//! whose text is in CID fonts without a usable encoding, scanned, or encrypted gives no text and
//! is reported as such, not stored as garbage.

use miniz_oxide::inflate::decompress_to_vec_zlib_with_limit;

/// The most one stream may inflate to: larger is a decompression bomb, not a page.
const MAX_STREAM_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PdfError {
    #[error("the PDF is encrypted")]
    Encrypted,
    #[error(
        "the PDF has no extractable text (scanned, or fonts without a standard encoding; \
         not supported)"
    )]
    NoText,
}

/// The text of a PDF's pages, in file order.
pub fn extract(bytes: &[u8]) -> Result<String, PdfError> {
    if find(bytes, b"/Encrypt", 0).is_some() {
        return Err(PdfError::Encrypted);
    }
    let mut text = String::new();
    let mut at = 0;
    while let Some(keyword) = find(bytes, b"stream", at) {
        at = keyword + 6;
        // `endstream` contains `stream`; only a keyword at a line end starts data.
        if keyword >= 3 && &bytes[keyword - 3..keyword] == b"end" {
            continue;
        }
        let data_start = match bytes.get(at..at + 2) {
            Some(b"\r\n") => at + 2,
            Some([b'\n', _]) | Some([b'\r', _]) => at + 1,
            _ => continue,
        };
        let Some(end) = find(bytes, b"endstream", data_start) else {
            break;
        };
        let dictionary_start = rfind(&bytes[..keyword], b"<<").unwrap_or(0);
        let dictionary = &bytes[dictionary_start..keyword];
        at = end + 9;
        let mut data = &bytes[data_start..end];
        while let Some((&last, rest)) = data.split_last() {
            if last == b'\n' || last == b'\r' {
                data = rest;
            } else {
                break;
            }
        }
        let inflated;
        if find(dictionary, b"/FlateDecode", 0).is_some() {
            match decompress_to_vec_zlib_with_limit(data, MAX_STREAM_BYTES) {
                Ok(bytes) => {
                    inflated = bytes;
                    data = &inflated;
                }
                Err(_) => continue,
            }
        } else if find(dictionary, b"/Filter", 0).is_some() {
            // Another filter (images, mostly): not page text.
            continue;
        }
        let page = content_text(data);
        if !page.trim().is_empty() {
            if !text.is_empty() {
                text.push_str("\n\n");
            }
            text.push_str(page.trim());
        }
    }
    let printable = text
        .chars()
        .filter(|c| !c.is_control() || c.is_whitespace())
        .count();
    if text.trim().is_empty() || printable * 10 < text.chars().count() * 9 {
        return Err(PdfError::NoText);
    }
    Ok(text)
}

/// The text a content stream shows.
fn content_text(data: &[u8]) -> String {
    let mut text = String::new();
    let mut operands: Vec<Operand> = Vec::new();
    let mut in_text = false;
    let mut i = 0;
    while i < data.len() {
        let byte = data[i];
        match byte {
            b'(' => {
                let (string, next) = literal(data, i + 1);
                operands.push(Operand::Text(string));
                i = next;
            }
            b'<' if data.get(i + 1) == Some(&b'<') => {
                // A dictionary operand (inline image parameters, marked content): skip it.
                i = find(data, b">>", i).map_or(data.len(), |end| end + 2);
            }
            b'<' => {
                let end = data[i..]
                    .iter()
                    .position(|&b| b == b'>')
                    .map_or(data.len(), |p| i + p);
                operands.push(Operand::Text(hex(&data[i + 1..end])));
                i = end + 1;
            }
            b'[' => {
                operands.push(Operand::ArrayStart);
                i += 1;
            }
            b']' => {
                operands.push(Operand::ArrayEnd);
                i += 1;
            }
            b'%' => {
                while i < data.len() && data[i] != b'\n' && data[i] != b'\r' {
                    i += 1;
                }
            }
            b if b.is_ascii_whitespace() => i += 1,
            _ => {
                let start = i;
                while i < data.len()
                    && !data[i].is_ascii_whitespace()
                    && !b"()<>[]{}/%".contains(&data[i])
                {
                    i += 1;
                }
                if start == i {
                    // A name (`/F1`) or brace: skip the delimiter and the name's characters.
                    i += 1;
                    continue;
                }
                let word = &data[start..i];
                if let Ok(number) = std::str::from_utf8(word).unwrap_or("").parse::<f64>() {
                    operands.push(Operand::Number(number));
                    continue;
                }
                match word {
                    b"BT" => in_text = true,
                    b"ET" => {
                        in_text = false;
                        text.push('\n');
                    }
                    b"Tj" | b"'" | b"\"" if in_text => {
                        if word != b"Tj" {
                            text.push('\n');
                        }
                        if let Some(Operand::Text(shown)) = operands.last() {
                            text.push_str(shown);
                        }
                    }
                    b"TJ" if in_text => {
                        for operand in &operands {
                            match operand {
                                Operand::Text(shown) => text.push_str(shown),
                                // A large negative adjustment is a gap between words.
                                Operand::Number(gap) if *gap < -200.0 => text.push(' '),
                                _ => {}
                            }
                        }
                    }
                    b"T*" if in_text => text.push('\n'),
                    b"Td" | b"TD" if in_text => {
                        let dy = match operands.as_slice() {
                            [.., Operand::Number(_), Operand::Number(dy)] => *dy,
                            _ => 0.0,
                        };
                        if dy < 0.0 {
                            text.push('\n');
                        } else if !text.ends_with([' ', '\n']) && !text.is_empty() {
                            text.push(' ');
                        }
                    }
                    b"Tm" if in_text && !text.ends_with('\n') && !text.is_empty() => {
                        text.push('\n');
                    }
                    _ => {}
                }
                operands.clear();
            }
        }
    }
    text.lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
}

enum Operand {
    Text(String),
    Number(f64),
    ArrayStart,
    ArrayEnd,
}

/// A literal string starting after its `(`: the text and the index after its `)`.
fn literal(data: &[u8], mut i: usize) -> (String, usize) {
    let mut bytes = Vec::new();
    let mut depth = 1;
    while i < data.len() {
        let byte = data[i];
        i += 1;
        match byte {
            b'\\' => {
                let Some(&next) = data.get(i) else { break };
                i += 1;
                match next {
                    b'n' => bytes.push(b'\n'),
                    b'r' => bytes.push(b'\r'),
                    b't' => bytes.push(b'\t'),
                    b'b' => bytes.push(8),
                    b'f' => bytes.push(12),
                    b'0'..=b'7' => {
                        let mut code = u32::from(next - b'0');
                        for _ in 0..2 {
                            match data.get(i) {
                                Some(&d @ b'0'..=b'7') => {
                                    code = code * 8 + u32::from(d - b'0');
                                    i += 1;
                                }
                                _ => break,
                            }
                        }
                        bytes.push((code & 0xff) as u8);
                    }
                    b'\r' | b'\n' => {
                        if next == b'\r' && data.get(i) == Some(&b'\n') {
                            i += 1;
                        }
                    }
                    other => bytes.push(other),
                }
            }
            b'(' => {
                depth += 1;
                bytes.push(byte);
            }
            b')' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
                bytes.push(byte);
            }
            _ => bytes.push(byte),
        }
    }
    (decode(&bytes), i)
}

fn hex(digits: &[u8]) -> String {
    let digits: Vec<u8> = digits
        .iter()
        .filter_map(|b| (*b as char).to_digit(16).map(|d| d as u8))
        .collect();
    let bytes: Vec<u8> = digits
        .chunks(2)
        .map(|pair| pair[0] * 16 + pair.get(1).copied().unwrap_or(0))
        .collect();
    decode(&bytes)
}

/// Bytes in the standard single-byte encodings, read as Latin-1 (UTF-16 when marked so).
fn decode(bytes: &[u8]) -> String {
    if let Some(rest) = bytes.strip_prefix(&[0xfe, 0xff]) {
        let units: Vec<u16> = rest
            .chunks(2)
            .map(|pair| u16::from_be_bytes([pair[0], pair.get(1).copied().unwrap_or(0)]))
            .collect();
        return String::from_utf16_lossy(&units);
    }
    bytes.iter().map(|&b| char::from(b)).collect()
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|window| window == needle)
        .map(|at| from + at)
}

fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .rposition(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-page PDF showing `lines`, its content stream compressed or not.
    pub(crate) fn pdf(lines: &[&str], compress: bool) -> Vec<u8> {
        let mut content = String::from("BT /F1 12 Tf 72 720 Td\n");
        for line in lines {
            content.push_str(&format!(
                "({}) Tj 0 -14 Td\n",
                line.replace('(', "\\(").replace(')', "\\)")
            ));
        }
        content.push_str("ET\n");
        let (data, filter) = if compress {
            (
                miniz_oxide::deflate::compress_to_vec_zlib(content.as_bytes(), 6),
                " /Filter /FlateDecode",
            )
        } else {
            (content.into_bytes(), "")
        };
        let mut out = b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n".to_vec();
        out.extend_from_slice(
            format!("4 0 obj << /Length {}{filter} >>\nstream\n", data.len()).as_bytes(),
        );
        out.extend_from_slice(&data);
        out.extend_from_slice(b"\nendstream\nendobj\ntrailer << /Root 1 0 R >>\n%%EOF\n");
        out
    }

    #[test]
    fn text_comes_out_of_plain_and_compressed_streams() {
        for compress in [false, true] {
            let bytes = pdf(&["Quarterly report (draft)", "Revenue grew"], compress);
            assert_eq!(
                extract(&bytes).unwrap(),
                "Quarterly report (draft)\nRevenue grew"
            );
        }
    }

    #[test]
    fn tj_arrays_octal_escapes_and_gaps() {
        let text = content_text(b"BT [(Hel) 20 (lo) -300 (W\\157rld)] TJ ET");
        assert_eq!(text, "Hello World");
    }

    #[test]
    fn pdfs_without_text_are_refused() {
        assert_eq!(extract(b"%PDF-1.4\n%%EOF"), Err(PdfError::NoText));
        assert_eq!(
            extract(b"%PDF-1.4\ntrailer << /Encrypt 5 0 R >>"),
            Err(PdfError::Encrypted)
        );
    }
}
