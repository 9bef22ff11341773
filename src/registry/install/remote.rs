//! A remote into a Streamable HTTP or SSE entry: its URL with its `{variables}` filled in, its
//! headers (secret ones as references to the secrets file). A URL that is not http(s) is
//! refused once every value is known; where the URL may point is the security policy's
//! question, asked when the entry is checked and again whenever it connects.

use serde_json::{Map, Value, json};

use super::AddError;
use super::values::Values;
use crate::registry::Remote;

/// The entry that connects to `remote`.
pub(super) fn remote_entry(
    remote: &Remote,
    values: &mut Values<'_>,
) -> Result<Map<String, Value>, AddError> {
    let kind = match remote.kind.as_str() {
        "streamable-http" | "http" | "streamableHttp" => "streamable-http",
        "sse" => "sse",
        other => {
            return Err(AddError::Invalid(format!(
                "its remote's transport \"{other}\" is neither streamable-http nor sse"
            )));
        }
    };
    let url = values
        .template(&remote.url, &remote.variables, false)?
        .map(|resolved| resolved.text)
        .unwrap_or_else(|| remote.url.clone());
    let mut headers = Map::new();
    values.key_values(
        "header",
        &remote.headers,
        &values.request.headers.clone(),
        &mut headers,
    )?;
    if values.missing.is_empty() {
        let parsed = url::Url::parse(&url)
            .map_err(|error| AddError::Invalid(format!("its remote URL {url:?}: {error}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(AddError::Refused(format!(
                "refused: its remote URL {url:?} is not http(s)"
            )));
        }
    }
    let mut entry = Map::new();
    entry.insert("type".into(), json!(kind));
    entry.insert("url".into(), json!(url));
    if !headers.is_empty() {
        entry.insert("headers".into(), Value::Object(headers));
    }
    Ok(entry)
}
