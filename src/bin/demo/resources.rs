//! The resources: a static text, a static binary (a PNG), the watched resource that
//! `touch_watched_resource` changes, and the template `test://template/{id}/data`. Touching the
//! watched resource sends `resources/updated` to the sessions subscribed to it and to every
//! listen stream; who is subscribed is kept in [`Shared`].

use std::sync::atomic::Ordering;

use rmcp::{ErrorData as McpError, model::*};
use serde_json::json;

use crate::shared::Shared;

/// A 1x1 PNG pixel.
pub(crate) const TEST_IMAGE_BASE64: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR42mNQSjsDAAICAVXysorDAAAAAElFTkSuQmCC";
pub(crate) const STATIC_TEXT_URI: &str = "test://static-text";
pub(crate) const STATIC_BINARY_URI: &str = "test://static-binary";
pub(crate) const WATCHED_URI: &str = "test://watched-resource";
pub(crate) const TEMPLATE_URI: &str = "test://template/{id}/data";

/// The resources of `resources/list`.
pub(crate) fn list() -> Vec<Resource> {
    vec![
        Resource::new(STATIC_TEXT_URI, "static-text")
            .with_title("Static Text Resource")
            .with_description("A static text resource for testing")
            .with_mime_type("text/plain"),
        Resource::new(STATIC_BINARY_URI, "static-binary")
            .with_title("Static Binary Resource")
            .with_description("A static binary resource (image) for testing")
            .with_mime_type("image/png"),
        Resource::new(WATCHED_URI, "watched-resource")
            .with_title("Watched Resource")
            .with_description("A subscribable resource; touch_watched_resource changes it")
            .with_mime_type("text/plain"),
    ]
}

/// The templates of `resources/templates/list`.
pub(crate) fn templates() -> Vec<ResourceTemplate> {
    vec![
        ResourceTemplate::new(TEMPLATE_URI, "template")
            .with_title("Resource Template")
            .with_description("A resource template with parameter substitution")
            .with_mime_type("application/json"),
    ]
}

/// Answers `resources/read` for `uri`.
pub(crate) fn read(shared: &Shared, uri: &str) -> Result<ReadResourceResult, McpError> {
    let contents = match uri {
        STATIC_TEXT_URI => {
            ResourceContents::text("This is the content of the static text resource.", uri)
        }
        STATIC_BINARY_URI => {
            ResourceContents::blob(TEST_IMAGE_BASE64, uri).with_mime_type("image/png")
        }
        WATCHED_URI => ResourceContents::text(watched_content(shared), uri),
        _ => match template_id(uri) {
            Some(id) => ResourceContents::text(
                json!({"id": id, "templateTest": true, "data": format!("Data for ID: {id}")})
                    .to_string(),
                uri,
            )
            .with_mime_type("application/json"),
            None => {
                return Err(McpError::resource_not_found(
                    format!("Resource not found: {uri}"),
                    Some(json!({ "uri": uri })),
                ));
            }
        },
    };
    Ok(ReadResourceResult::new(vec![contents]))
}

/// `touch_watched_resource`: changes the watched resource and notifies its subscribers.
pub(crate) async fn touch_watched(shared: &Shared) {
    shared.watched_version.fetch_add(1, Ordering::Relaxed);
    shared.broadcast_resource_updated(WATCHED_URI).await;
}

fn watched_content(shared: &Shared) -> String {
    match shared.watched_version.load(Ordering::Relaxed) {
        0 => "Watched resource content".to_string(),
        n => format!("Watched resource content (update {n})"),
    }
}

/// The `id` of a `test://template/{id}/data` URI.
fn template_id(uri: &str) -> Option<&str> {
    let id = uri
        .strip_prefix("test://template/")?
        .strip_suffix("/data")?;
    (!id.is_empty() && !id.contains('/')).then_some(id)
}
