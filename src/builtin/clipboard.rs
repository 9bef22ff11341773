//! The clipboard tools: named entries (upserted), indexed entries (push/pop as a stack), content
//! types, base64 images returned as image content, a TTL (24 h by default) and a 2 MB value limit.

use base64::Engine;
use rmcp::model::{CallToolResult, ContentBlock, JsonObject};
use serde_json::json;

use super::{Builtins, Outcome, boolean, integer, store_error, string, text};
use crate::control::time::locale;
use crate::control::{ClipboardEntry, ClipboardKey, ClipboardValue, ClipboardWrite};

/// The App's limit: 2 MiB of UTF-8 value.
const MAX_VALUE_BYTES: usize = 2 * 1024 * 1024;
/// The App's default time to live.
const DEFAULT_TTL_SECONDS: i64 = 24 * 3600;
/// `clipboard_list` shows this much of an image value, as the App does.
const IMAGE_PREVIEW_CHARS: usize = 1000;
/// The listing's text preview.
const PREVIEW_CHARS: usize = 100;

fn value(args: &JsonObject) -> Result<ClipboardValue, String> {
    let value = string(args, "value").unwrap_or_default();
    let content_type = string(args, "contentType").unwrap_or_else(|| "text/plain".into());
    let encoding = string(args, "encoding").unwrap_or_else(|| "utf-8".into());
    if content_type.starts_with("image/") && encoding != "base64" {
        return Err("Invalid clipboard data: Image content types require base64 encoding".into());
    }
    if value.len() > MAX_VALUE_BYTES {
        return Err(format!(
            "Clipboard entry too large. Maximum size is 2MB ({} bytes given).",
            value.len()
        ));
    }
    match encoding.as_str() {
        "base64"
            if base64::engine::general_purpose::STANDARD
                .decode(&value)
                .is_err() =>
        {
            return Err("Invalid clipboard data: \"value\" is not valid base64".into());
        }
        "hex"
            if !value.len().is_multiple_of(2) || !value.chars().all(|c| c.is_ascii_hexdigit()) =>
        {
            return Err("Invalid clipboard data: \"value\" is not valid hex".into());
        }
        _ => {}
    }
    let ttl_seconds = integer(args, "ttlSeconds").unwrap_or(DEFAULT_TTL_SECONDS);
    Ok(ClipboardValue {
        value,
        content_type,
        encoding,
        visibility: string(args, "visibility").unwrap_or_else(|| "private".into()),
        created_by_tool: string(args, "createdByTool"),
        created_by_model: string(args, "createdByModel"),
        ttl_ms: ttl_seconds.saturating_mul(1000),
    })
}

fn key(args: &JsonObject) -> Option<ClipboardKey> {
    string(args, "name")
        .map(ClipboardKey::Name)
        .or_else(|| integer(args, "idx").map(ClipboardKey::Index))
}

fn describe(key: &ClipboardKey) -> String {
    match key {
        ClipboardKey::Name(name) => format!("name=\"{name}\""),
        ClipboardKey::Index(idx) => format!("idx={idx}"),
    }
}

fn entry_key(entry: &ClipboardEntry) -> String {
    match (&entry.name, entry.idx) {
        (Some(name), _) => format!("name=\"{name}\""),
        (None, Some(idx)) => format!("idx={idx}"),
        (None, None) => "(unnamed)".into(),
    }
}

fn expires(entry: &ClipboardEntry) -> String {
    entry.expires_at.map_or_else(|| "never".into(), locale)
}

/// One entry as a tool result: image content for base64 images, else the entry as JSON.
fn single(entry: &ClipboardEntry) -> CallToolResult {
    if entry.content_type.starts_with("image/") && entry.encoding == "base64" {
        return CallToolResult::success(vec![ContentBlock::image(
            entry.value.clone(),
            entry.content_type.clone(),
        )]);
    }
    text(serde_json::to_string_pretty(entry).unwrap_or_default())
}

pub(super) async fn set(builtins: &Builtins, args: &JsonObject) -> Outcome {
    let name = string(args, "name");
    let idx = integer(args, "idx");
    if name.is_none() && idx.is_none() {
        return Err("Invalid clipboard data: Either name or idx must be provided".into());
    }
    let value = value(args)?;
    match builtins.control.clipboard_set(name, idx, value).await {
        Ok(ClipboardWrite::Saved(entry)) => Ok(text(format!(
            "Clipboard entry set successfully!\n{}\nSize: {} bytes\nExpires: {}",
            entry_key(&entry),
            entry.size_bytes,
            expires(&entry)
        ))),
        Ok(ClipboardWrite::IndexTaken(idx)) => Err(format!(
            "Index conflict: index {idx} already exists. Use a different index or name."
        )),
        Err(error) => Err(store_error("set clipboard entry", error)),
    }
}

pub(super) async fn get(builtins: &Builtins, args: &JsonObject) -> Outcome {
    if let Some(key) = key(args) {
        let content_type = string(args, "contentType");
        return match builtins
            .control
            .clipboard_get(key.clone(), content_type)
            .await
        {
            Ok(Some(entry)) => Ok(single(&entry)),
            Ok(None) => Err(format!("Clipboard entry not found: {}", describe(&key))),
            Err(error) => Err(store_error("get clipboard entry", error)),
        };
    }
    let limit = integer(args, "limit").unwrap_or(50) as u32;
    let offset = integer(args, "offset").unwrap_or(0) as u32;
    let (entries, total) = builtins
        .control
        .clipboard_list(string(args, "contentType"), limit, offset)
        .await
        .map_err(|error| store_error("list clipboard entries", error))?;
    let mut out = format!(
        "Found {total} clipboard entries (showing {}):\n\n",
        entries.len()
    );
    for (index, entry) in entries.iter().enumerate() {
        out.push_str(&format!(
            "{}. {}\n   Type: {}\n   Size: {} bytes\n   Created: {}\n",
            offset as usize + index + 1,
            entry_key(entry),
            entry.content_type,
            entry.size_bytes,
            locale(entry.created_at)
        ));
        if let Some(tool) = &entry.created_by_tool {
            out.push_str(&format!("   Created by: {tool}\n"));
        }
        if !entry.content_type.starts_with("image/") {
            let preview: String = entry.value.chars().take(PREVIEW_CHARS).collect();
            let more = entry.value.chars().count() > PREVIEW_CHARS;
            out.push_str(&format!(
                "   Preview: {preview}{}\n",
                if more { "..." } else { "" }
            ));
        }
        out.push('\n');
    }
    Ok(text(out.trim_end().to_owned()))
}

pub(super) async fn delete(builtins: &Builtins, args: &JsonObject) -> Outcome {
    if boolean(args, "clearAll") {
        let deleted = builtins
            .control
            .clipboard_delete(None)
            .await
            .map_err(|error| store_error("delete clipboard entries", error))?;
        return Ok(text(format!(
            "Cleared all clipboard entries ({deleted} removed)"
        )));
    }
    let Some(key) = key(args) else {
        return Err(
            "Invalid clipboard data: Either name, idx, or clearAll must be provided".into(),
        );
    };
    match builtins.control.clipboard_delete(Some(key.clone())).await {
        Ok(0) => Err(format!("Clipboard entry not found: {}", describe(&key))),
        Ok(1) => Ok(text("Deleted 1 clipboard entry")),
        Ok(deleted) => Ok(text(format!("Deleted {deleted} clipboard entries"))),
        Err(error) => Err(store_error("delete clipboard entry", error)),
    }
}

pub(super) async fn list(builtins: &Builtins, args: &JsonObject) -> Outcome {
    let limit = integer(args, "limit").unwrap_or(50) as u32;
    let offset = integer(args, "offset").unwrap_or(0) as u32;
    let (mut entries, total) = builtins
        .control
        .clipboard_list(string(args, "contentType"), limit, offset)
        .await
        .map_err(|error| store_error("list clipboard entries", error))?;
    for entry in &mut entries {
        if entry.content_type.starts_with("image/") {
            entry.value = entry.value.chars().take(IMAGE_PREVIEW_CHARS).collect();
        }
    }
    let body = json!({"entries": entries, "total": total, "limit": limit, "offset": offset});
    Ok(text(
        serde_json::to_string_pretty(&body).unwrap_or_default(),
    ))
}

pub(super) async fn push(builtins: &Builtins, args: &JsonObject) -> Outcome {
    let value = value(args)?;
    let entry = builtins
        .control
        .clipboard_push(value)
        .await
        .map_err(|error| store_error("push to clipboard", error))?;
    Ok(text(format!(
        "Pushed to clipboard at index {}\nSize: {} bytes\nExpires: {}",
        entry.idx.unwrap_or_default(),
        entry.size_bytes,
        expires(&entry)
    )))
}

pub(super) async fn pop(builtins: &Builtins) -> Outcome {
    match builtins.control.clipboard_pop().await {
        Ok(Some(entry)) => Ok(single(&entry)),
        Ok(None) => Err("No indexed entries to pop".into()),
        Err(error) => Err(store_error("pop from clipboard", error)),
    }
}
