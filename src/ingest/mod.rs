//! Files into documents, for `docs add` and the console's uploads: walking folders, telling the format from the name (and
//! the bytes), extracting the text of HTML and PDF, and refusing what is not a document —
//! unreadable, binary or over the size limit — with a reason. It builds [`NewDocument`]s and
//! leaves storing them (and deduplicating) to the control plane.

pub mod html;
pub mod pdf;

use std::path::{Path, PathBuf};

use crate::control::{MAX_DOCUMENT_BYTES, NewDocument};

/// Why a file was not ingested.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("cannot read it: {0}")]
    Unreadable(std::io::Error),
    #[error("it is {size} bytes, over the limit of {limit} bytes")]
    TooLarge { size: u64, limit: usize },
    #[error("it looks binary (not UTF-8 text, HTML or PDF)")]
    Binary,
    #[error("it has no text")]
    Empty,
    #[error(transparent)]
    Pdf(#[from] pdf::PdfError),
}

impl IngestError {
    /// The file is not a document to add (too large, binary, empty, a PDF without text): it is
    /// skipped, which is no failure. Only a file that cannot be read has failed.
    pub fn is_skip(&self) -> bool {
        !matches!(self, IngestError::Unreadable(_))
    }
}

/// A file's format, from its extension.
fn format_of(path: &Path) -> &'static str {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match extension.as_str() {
        "md" | "markdown" | "mdx" => "md",
        "json" => "json",
        "html" | "htm" | "xhtml" => "html",
        "pdf" => "pdf",
        _ => "txt",
    }
}

/// Text is UTF-8 without NULs and with few control characters.
fn text_of(bytes: Vec<u8>) -> Result<String, IngestError> {
    let text = String::from_utf8(bytes).map_err(|_| IngestError::Binary)?;
    let controls = text
        .chars()
        .filter(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t' | '\x0c'))
        .count();
    if text.contains('\0') || controls * 100 > text.len().max(1) {
        return Err(IngestError::Binary);
    }
    Ok(text)
}

/// Reads one file into a document to add (source `upload`, private).
pub fn read(path: &Path) -> Result<NewDocument, IngestError> {
    let size = std::fs::metadata(path)
        .map_err(IngestError::Unreadable)?
        .len();
    if size > MAX_DOCUMENT_BYTES as u64 {
        return Err(IngestError::TooLarge {
            size,
            limit: MAX_DOCUMENT_BYTES,
        });
    }
    let bytes = std::fs::read(path).map_err(IngestError::Unreadable)?;
    from_bytes(path, bytes)
}

/// A file's bytes into a document to add (source `upload`, private); `path` is its name (a
/// file uploaded through the console has only its name and the folders it was in).
pub fn from_bytes(path: &Path, bytes: Vec<u8>) -> Result<NewDocument, IngestError> {
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(IngestError::TooLarge {
            size: bytes.len() as u64,
            limit: MAX_DOCUMENT_BYTES,
        });
    }
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut format = format_of(path);
    if bytes.starts_with(b"%PDF-") {
        format = "pdf";
    }
    let (title, content) = match format {
        "pdf" => (stem, pdf::extract(&bytes)?),
        "html" => {
            let page = text_of(bytes)?;
            (html::title(&page).unwrap_or(stem), html::to_text(&page))
        }
        "md" => {
            let text = text_of(bytes)?;
            // A Markdown file's first line, if it is a heading, is its title.
            let heading = text
                .lines()
                .find(|line| !line.trim().is_empty())
                .and_then(|line| line.trim().strip_prefix("# "))
                .map(|title| title.trim().to_owned());
            (heading.unwrap_or(stem), text)
        }
        _ => (stem, text_of(bytes)?),
    };
    if content.trim().is_empty() {
        return Err(IngestError::Empty);
    }
    if content.len() > MAX_DOCUMENT_BYTES {
        return Err(IngestError::TooLarge {
            size: content.len() as u64,
            limit: MAX_DOCUMENT_BYTES,
        });
    }
    Ok(NewDocument {
        title: if title.trim().is_empty() {
            "Untitled".to_owned()
        } else {
            title
        },
        content,
        format: format.to_owned(),
        category: "other".to_owned(),
        source: "upload".to_owned(),
        visibility: "private".to_owned(),
        file_name: Some(path.display().to_string()),
        ..NewDocument::default()
    })
}

/// The files under `paths` (folders walked recursively, hidden entries skipped), sorted within
/// each folder, and the paths that could not be walked with the reason.
pub fn files(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<(PathBuf, String)>) {
    let mut found = Vec::new();
    let mut failed = Vec::new();
    for path in paths {
        walk(path, &mut found, &mut failed);
    }
    (found, failed)
}

fn walk(path: &Path, found: &mut Vec<PathBuf>, failed: &mut Vec<(PathBuf, String)>) {
    match std::fs::metadata(path) {
        Err(error) => failed.push((path.to_owned(), format!("cannot read it: {error}"))),
        Ok(meta) if meta.is_dir() => match std::fs::read_dir(path) {
            Err(error) => failed.push((path.to_owned(), format!("cannot list it: {error}"))),
            Ok(entries) => {
                let mut children: Vec<PathBuf> = entries
                    .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                    .filter(|child| {
                        !child
                            .file_name()
                            .is_some_and(|name| name.to_string_lossy().starts_with('.'))
                    })
                    .collect();
                children.sort();
                for child in children {
                    walk(&child, found, failed);
                }
            }
        },
        Ok(_) => found.push(path.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_files_are_refused_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let binary = dir.path().join("blob.txt");
        std::fs::write(&binary, [0u8, 159, 146, 150, 1, 2, 3]).unwrap();
        assert!(matches!(read(&binary), Err(IngestError::Binary)));
        let empty = dir.path().join("empty.md");
        std::fs::write(&empty, "  \n").unwrap();
        assert!(matches!(read(&empty), Err(IngestError::Empty)));
        assert!(read(&binary).unwrap_err().is_skip());
        assert!(read(&empty).unwrap_err().is_skip());
        let missing = read(&dir.path().join("missing.md")).unwrap_err();
        assert!(matches!(missing, IngestError::Unreadable(_)));
        assert!(!missing.is_skip(), "a file that cannot be read has failed");
        let note = dir.path().join("note.md");
        std::fs::write(&note, "# A Note\nbody").unwrap();
        let document = read(&note).unwrap();
        assert_eq!(
            (document.title.as_str(), document.format.as_str()),
            ("A Note", "md")
        );
    }
}
