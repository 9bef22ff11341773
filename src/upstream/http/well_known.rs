//! `GET /.well-known/mcp-config` and `/.well-known/mcp.json` (also under `/mcp/`): the document
//! Smithery and similar hosts read to start the proxy over HTTP and to configure it, in the
//! original's shape — how to start it (`startCommand`: HTTP at `/mcp`, health at `/health`) and
//! a JSON Schema of its settings. The settings are ours: every visible flag that has an
//! environment variable, read from the command line's own definition so the two cannot drift.

use std::sync::OnceLock;

use axum::Router as AxumRouter;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use clap::CommandFactory;
use serde_json::{Map, Value, json};

/// The routes, for any state.
pub(super) fn routes<S: Clone + Send + Sync + 'static>() -> AxumRouter<S> {
    let mut router = AxumRouter::new();
    for path in [
        "/.well-known/mcp-config",
        "/.well-known/mcp.json",
        "/mcp/.well-known/mcp-config",
        "/mcp/.well-known/mcp.json",
    ] {
        router = router.route(path, get(config));
    }
    router
}

async fn config() -> impl IntoResponse {
    static BODY: OnceLock<String> = OnceLock::new();
    let body = BODY.get_or_init(|| document().to_string());
    ([(header::CONTENT_TYPE, "application/json")], body.clone())
}

/// The document: how to start the proxy over HTTP, and its settings as a JSON Schema.
fn document() -> Value {
    json!({
        "startCommand": {"type": "http", "endpoint": "/mcp", "health": "/health"},
        "transport": "streamable-http",
        "endpoint": "/mcp",
        "sseEndpoint": "/mcp",
        "configSchema": {
            "type": "object",
            "properties": settings(),
            "required": [],
        },
    })
}

/// Each visible flag with an environment variable, under that variable's name: its help as the
/// description, its default, and `"true"`/`"false"` for switches.
fn settings() -> Map<String, Value> {
    let command = crate::cli::Cli::command();
    let mut properties = Map::new();
    for arg in command.get_arguments() {
        let Some(env) = arg.get_env().and_then(|env| env.to_str()) else {
            continue;
        };
        if arg.is_hide_set() {
            continue;
        }
        let mut property = Map::new();
        property.insert("type".into(), json!("string"));
        if let Some(help) = arg.get_help() {
            let help = help.to_string();
            let flag = arg
                .get_long()
                .map(|long| format!(" (--{long})"))
                .unwrap_or_default();
            property.insert("description".into(), json!(format!("{help}{flag}")));
        }
        let switch = matches!(
            arg.get_action(),
            clap::ArgAction::SetTrue | clap::ArgAction::SetFalse
        );
        if switch {
            property.insert("enum".into(), json!(["true", "false"]));
            property.insert("default".into(), json!("false"));
        } else if let [default] = arg.get_default_values() {
            property.insert("default".into(), json!(default.to_string_lossy()));
        }
        properties.insert(env.to_owned(), Value::Object(property));
    }
    // The App a key belongs to: the original's default, which ours is too.
    if let Some(base) = properties
        .get_mut("PLUGGEDIN_API_BASE_URL")
        .and_then(Value::as_object_mut)
    {
        base.insert(
            "default".into(),
            json!(crate::control::app::DEFAULT_BASE_URL),
        );
    }
    properties
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_has_the_original_shape_and_our_settings() {
        let document = document();
        assert_eq!(document["startCommand"]["endpoint"], json!("/mcp"));
        assert_eq!(document["startCommand"]["health"], json!("/health"));
        let properties = &document["configSchema"]["properties"];
        assert!(
            properties["PLUGGEDIN_API_KEY"]["description"]
                .as_str()
                .unwrap()
                .contains("--pluggedin-api-key")
        );
        assert_eq!(
            properties["PLUGGEDIN_API_BASE_URL"]["default"],
            json!("https://plugged.in")
        );
        assert_eq!(properties["PORT"]["default"], json!("12006"));
        assert_eq!(
            properties["PLUGGEDIN_STRICT_URLS"]["enum"],
            json!(["true", "false"])
        );
        // Hidden tuning flags are not advertised.
        assert!(properties.get("PLUGGEDIN_APP_TIMEOUT_SECS").is_none());
    }
}
