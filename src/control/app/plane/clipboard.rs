//! The App's clipboard: named and indexed entries, push and pop, content types.

use super::*;

pub(super) async fn clipboard_set(
    plane: &AppControl,
    name: Option<String>,
    idx: Option<i64>,
    value: ClipboardValue,
) -> Result<ClipboardWrite> {
    let body = clipboard_body(name, idx, value);
    match plane
        .client
        .request(Method::POST, "/api/clipboard", Some(&body), Call::Write)
        .await
    {
        Ok(answer) => Ok(ClipboardWrite::Saved(Box::new(clipboard_of(
            answer.get("entry").unwrap_or(&answer),
        )))),
        Err(error) if is_status(&error, 409) => {
            Ok(ClipboardWrite::IndexTaken(idx.unwrap_or_default()))
        }
        Err(error) => Err(error.into()),
    }
}

pub(super) async fn clipboard_get(
    plane: &AppControl,
    key: ClipboardKey,
    content_type: Option<String>,
) -> Result<Option<ClipboardEntry>> {
    let mut query = match &key {
        ClipboardKey::Name(name) => format!("name={}", encode(name)),
        ClipboardKey::Index(idx) => format!("idx={idx}"),
    };
    if let Some(content_type) = content_type {
        query.push_str(&format!("&contentType={}", encode(&content_type)));
    }
    match plane
        .client
        .request(
            Method::GET,
            &format!("/api/clipboard?{query}&limit=50&offset=0"),
            None,
            Call::Read,
        )
        .await
    {
        Ok(answer) => Ok(answer.get("entry").map(clipboard_of)),
        Err(error) if is_status(&error, 404) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

pub(super) async fn clipboard_list(
    plane: &AppControl,
    content_type: Option<String>,
    limit: u32,
    offset: u32,
) -> Result<(Vec<ClipboardEntry>, u64)> {
    let mut query = String::new();
    if let Some(content_type) = content_type {
        query.push_str(&format!("contentType={}&", encode(&content_type)));
    }
    query.push_str(&format!("limit={limit}&offset={offset}"));
    let answer = plane
        .call(
            Method::GET,
            &format!("/api/clipboard?{query}"),
            None,
            Call::Read,
        )
        .await?;
    let entries: Vec<ClipboardEntry> = answer
        .get("entries")
        .and_then(Value::as_array)
        .map(|items| items.iter().map(clipboard_of).collect())
        .unwrap_or_default();
    let total = number(&answer, "total").map_or(entries.len() as u64, |n| n as u64);
    Ok((entries, total))
}

pub(super) async fn clipboard_delete(plane: &AppControl, key: Option<ClipboardKey>) -> Result<u64> {
    let body = match key {
        None => json!({"clearAll": true}),
        Some(ClipboardKey::Name(name)) => json!({"name": name, "clearAll": false}),
        Some(ClipboardKey::Index(idx)) => json!({"idx": idx, "clearAll": false}),
    };
    match plane
        .client
        .request(Method::DELETE, "/api/clipboard", Some(&body), Call::Write)
        .await
    {
        Ok(answer) => Ok(number(&answer, "deleted").unwrap_or(1).max(0) as u64),
        Err(error) if is_status(&error, 404) => Ok(0),
        Err(error) => Err(error.into()),
    }
}

pub(super) async fn clipboard_push(
    plane: &AppControl,
    value: ClipboardValue,
) -> Result<ClipboardEntry> {
    let body = clipboard_body(None, None, value);
    let answer = plane
        .call(Method::POST, "/api/clipboard/push", Some(body), Call::Write)
        .await?;
    Ok(clipboard_of(answer.get("entry").unwrap_or(&answer)))
}

pub(super) async fn clipboard_pop(plane: &AppControl) -> Result<Option<ClipboardEntry>> {
    match plane
        .client
        .request(
            Method::POST,
            "/api/clipboard/pop",
            Some(&json!({})),
            Call::Write,
        )
        .await
    {
        Ok(answer) => Ok(answer.get("entry").map(clipboard_of)),
        Err(error) if is_status(&error, 404) => Ok(None),
        Err(error) => Err(error.into()),
    }
}
