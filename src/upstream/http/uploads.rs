//! Documents uploaded through the console, in chunks that each fit under `--max-body-bytes`:
//! `POST /api/v1/uploads {name, size}` opens an upload and says how large a chunk may be;
//! `POST /api/v1/uploads/{id}/chunks {offset, data}` (base64) adds the next chunk;
//! `POST /api/v1/uploads/{id}/finish {tags?, description?}` turns the file into a document as
//! `docs add` does (format from the name and the bytes; HTML and PDF text extracted; binary,
//! empty and oversized files refused with the reason); `DELETE /api/v1/uploads/{id}` drops it.
//! Bounded: [`MAX_OPEN`] uploads at once, each at most the document size limit, dropped after
//! [`IDLE`] without a chunk.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;

use crate::control::MAX_DOCUMENT_BYTES;
use crate::sync::lock;

/// The most uploads open at once.
pub(super) const MAX_OPEN: usize = 16;
/// An upload without a chunk for this long is dropped.
const IDLE: Duration = Duration::from_secs(600);
/// A chunk's decoded size at most, whatever the body limit allows.
const MAX_CHUNK: usize = 1 << 20;

/// The uploads in progress.
pub(super) struct Uploads {
    open: Mutex<HashMap<String, Upload>>,
    /// A chunk's decoded size at most: its base64 in a JSON body fits under the body limit.
    pub(super) chunk_bytes: usize,
}

struct Upload {
    name: String,
    size: usize,
    bytes: Vec<u8>,
    touched: Instant,
}

/// Why an upload step was refused; the message names the cause.
#[derive(Debug, thiserror::Error)]
pub(super) enum UploadError {
    #[error("no upload {0:?} is open (finished, dropped, or idle for too long)")]
    Unknown(String),
    #[error("{MAX_OPEN} uploads are open, the most at once; finish or drop one")]
    TooMany,
    #[error("the file is {size} bytes, over the document limit of {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge { size: usize },
    #[error("{0}")]
    Invalid(String),
}

impl Uploads {
    /// Uploads whose chunks fit, as base64 in a small JSON object, under `max_body_bytes`.
    pub(super) fn new(max_body_bytes: usize) -> Uploads {
        // base64 is 4 bytes for 3; a few hundred bytes for the rest of the JSON.
        let chunk_bytes = (max_body_bytes.saturating_sub(512) / 4 * 3).clamp(1024, MAX_CHUNK);
        Uploads {
            open: Mutex::default(),
            chunk_bytes,
        }
    }

    /// Opens an upload of `size` bytes for the file `name`; returns its id.
    pub(super) fn open(&self, name: &str, size: usize) -> Result<String, UploadError> {
        if size > MAX_DOCUMENT_BYTES {
            return Err(UploadError::TooLarge { size });
        }
        let name = name.trim();
        if name.is_empty() || name.len() > 1024 {
            return Err(UploadError::Invalid(
                "a file name of 1 to 1024 bytes is required".into(),
            ));
        }
        let mut open = lock(&self.open);
        open.retain(|_, upload| upload.touched.elapsed() < IDLE);
        if open.len() >= MAX_OPEN {
            return Err(UploadError::TooMany);
        }
        let id = uuid::Uuid::new_v4().simple().to_string();
        open.insert(
            id.clone(),
            Upload {
                name: name.to_owned(),
                size,
                bytes: Vec::with_capacity(size.min(MAX_CHUNK)),
                touched: Instant::now(),
            },
        );
        Ok(id)
    }

    /// Adds a chunk at `offset` (where the last one ended); returns the bytes received so far.
    pub(super) fn chunk(&self, id: &str, offset: usize, data: &str) -> Result<usize, UploadError> {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|error| UploadError::Invalid(format!("the chunk is not base64: {error}")))?;
        if decoded.len() > self.chunk_bytes {
            return Err(UploadError::Invalid(format!(
                "the chunk is {} bytes, over the {} a chunk may have",
                decoded.len(),
                self.chunk_bytes
            )));
        }
        let mut open = lock(&self.open);
        let upload = open
            .get_mut(id)
            .ok_or_else(|| UploadError::Unknown(id.to_owned()))?;
        if offset != upload.bytes.len() {
            return Err(UploadError::Invalid(format!(
                "the chunk starts at byte {offset}, but {} bytes were received",
                upload.bytes.len()
            )));
        }
        if upload.bytes.len() + decoded.len() > upload.size {
            return Err(UploadError::Invalid(format!(
                "the chunks are longer than the {} bytes the upload announced",
                upload.size
            )));
        }
        upload.bytes.extend_from_slice(&decoded);
        upload.touched = Instant::now();
        Ok(upload.bytes.len())
    }

    /// Closes a complete upload: its file name and bytes.
    pub(super) fn take(&self, id: &str) -> Result<(PathBuf, Vec<u8>), UploadError> {
        let mut open = lock(&self.open);
        let upload = open
            .get(id)
            .ok_or_else(|| UploadError::Unknown(id.to_owned()))?;
        if upload.bytes.len() != upload.size {
            return Err(UploadError::Invalid(format!(
                "{} of the {} bytes announced were received",
                upload.bytes.len(),
                upload.size
            )));
        }
        let upload = open.remove(id).expect("looked up above");
        Ok((PathBuf::from(upload.name), upload.bytes))
    }

    /// Drops an upload.
    pub(super) fn drop_upload(&self, id: &str) -> Result<(), UploadError> {
        lock(&self.open)
            .remove(id)
            .map(|_| ())
            .ok_or_else(|| UploadError::Unknown(id.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn encoded(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn a_file_arrives_in_order_and_whole() {
        let uploads = Uploads::new(4096);
        let id = uploads.open("notes/a.md", 6).unwrap();
        assert_eq!(uploads.chunk(&id, 0, &encoded(b"abc")).unwrap(), 3);
        // A chunk sent twice, or out of order, says where the file stands.
        let error = uploads.chunk(&id, 0, &encoded(b"abc")).unwrap_err();
        assert!(
            error.to_string().contains("3 bytes were received"),
            "{error}"
        );
        // Finishing early says what is missing.
        let error = uploads.take(&id).unwrap_err();
        assert!(error.to_string().contains("3 of the 6 bytes"), "{error}");
        uploads.chunk(&id, 3, &encoded(b"def")).unwrap();
        let error = uploads.chunk(&id, 6, &encoded(b"g")).unwrap_err();
        assert!(
            error.to_string().contains("longer than the 6 bytes"),
            "{error}"
        );
        let (name, bytes) = uploads.take(&id).unwrap();
        assert_eq!(
            (name, bytes),
            (PathBuf::from("notes/a.md"), b"abcdef".to_vec())
        );
        assert!(matches!(uploads.take(&id), Err(UploadError::Unknown(_))));
    }

    #[test]
    fn uploads_are_bounded_in_number_size_and_chunk() {
        let uploads = Uploads::new(2048);
        assert!(matches!(
            uploads.open("big.txt", MAX_DOCUMENT_BYTES + 1),
            Err(UploadError::TooLarge { .. })
        ));
        let ids: Vec<String> = (0..MAX_OPEN)
            .map(|i| uploads.open(&format!("{i}.txt"), 10).unwrap())
            .collect();
        assert!(matches!(
            uploads.open("one-more.txt", 1),
            Err(UploadError::TooMany)
        ));
        uploads.drop_upload(&ids[0]).unwrap();
        let id = uploads.open("one-more.txt", 5000).unwrap();
        let error = uploads
            .chunk(&id, 0, &encoded(&vec![b'x'; uploads.chunk_bytes + 1]))
            .unwrap_err();
        assert!(error.to_string().contains("a chunk may have"), "{error}");
        let error = uploads.chunk(&id, 0, "not base64!").unwrap_err();
        assert!(error.to_string().contains("not base64"), "{error}");
    }
}
