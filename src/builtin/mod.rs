//! The built-in `pluggedin_*` tools: their names, wire schemas (`tools.json`, the original's
//! schemas) and text output, backed by the [`ControlPlane`]; and the original's static prompt
//! (`capabilities`). They are reached through the router
//! like any downstream tool — listed first, never prefixed, dispatched before catalog resolution —
//! so activity logging and errors treat them alike. Arguments are checked against each tool's own
//! schema; a violation, an unknown id or a broken limit is a tool error (`isError: true`) that
//! names the field or the id. What they need of the servers behind the proxy they ask through
//! [`Servers`], which the router implements: this module knows nothing of the router, SQL or HTTP.

pub mod capabilities;
mod clipboard;
mod discover;
mod documents;
mod memory;
mod notify;
pub mod search_tools;
mod setup;
mod validate;

use std::sync::{Arc, OnceLock};

use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool};
use serde_json::Value;

use crate::catalog::search::SEARCH_HINT;
use crate::catalog::{ALWAYS_LOAD, Catalog};
use crate::control::ControlPlane;
use crate::downstream::Downstream;
use crate::mail::Mailer;

/// The old name of `pluggedin_mark_notification_done` (before the original's 1.4.2), still
/// callable.
const MARK_READ_ALIAS: &str = "pluggedin_mark_notification_read";
/// The old name of `pluggedin_ask_knowledge_base` (before the original's 1.10.1), still callable:
/// it takes the same arguments and answers with the plain text, as it did then.
const RAG_ALIAS: &str = "pluggedin_rag_query";

/// The built-in tools, in the original's `tools/list` order, with their default search hints in
/// `_meta` for clients that search tools themselves.
pub fn tools() -> &'static [Tool] {
    static TOOLS: OnceLock<Vec<Tool>> = OnceLock::new();
    TOOLS.get_or_init(|| {
        let mut tools: Vec<Tool> = serde_json::from_str(include_str!("tools.json"))
            .expect("tools.json is valid (a unit test parses it)");
        for tool in &mut tools {
            let Some((_, words)) = HINTS.iter().find(|(name, _)| *name == tool.name) else {
                continue;
            };
            let meta = tool.meta.get_or_insert_with(Default::default);
            meta.insert(ALWAYS_LOAD.to_owned(), false.into());
            meta.insert(SEARCH_HINT.to_owned(), (*words).into());
        }
        tools
    })
}

/// The words a person would use for what each built-in tool does, as its `_meta` search hint
/// (`anthropic/searchHint`); none is loaded up front (`anthropic/alwaysLoad` false): a client
/// that defers tools finds them when asked for.
const HINTS: &[(&str, &str)] = &[
    (
        "pluggedin_setup",
        "get started, help, setup instructions, configure the proxy, API key, documentation",
    ),
    (
        "pluggedin_discover_tools",
        "discover tools, refresh servers, list what the MCP servers offer, find capabilities",
    ),
    (
        "pluggedin_ask_knowledge_base",
        "ask a question, answer from my documents, knowledge base, RAG, look it up in my notes",
    ),
    (
        "pluggedin_create_document",
        "save a document, write a note, create a report, store text in my library",
    ),
    (
        "pluggedin_list_documents",
        "list documents, my files, library contents, recent documents, browse notes",
    ),
    (
        "pluggedin_search_documents",
        "search documents, find a file, full-text search my library, look for notes about",
    ),
    (
        "pluggedin_get_document",
        "open a document, read a file by id, show document content, version history",
    ),
    (
        "pluggedin_update_document",
        "edit a document, append to a note, update a report, change saved text",
    ),
    (
        "pluggedin_send_notification",
        "notify me, send an alert, email me, remind, tell the user, push a message",
    ),
    (
        "pluggedin_list_notifications",
        "list notifications, alerts, unread messages, inbox, what happened",
    ),
    (
        "pluggedin_mark_notification_done",
        "mark notification done, mark as read, acknowledge an alert, dismiss",
    ),
    (
        "pluggedin_delete_notification",
        "delete a notification, remove an alert, clear a message",
    ),
    (
        "pluggedin_clipboard_set",
        "copy, save a value for later, set clipboard, remember this text, store a key",
    ),
    (
        "pluggedin_clipboard_get",
        "paste, read the clipboard, get a saved value, recall what was copied",
    ),
    (
        "pluggedin_clipboard_delete",
        "clear the clipboard, delete a saved value, remove clipboard entry",
    ),
    (
        "pluggedin_clipboard_list",
        "list clipboard entries, what is on the clipboard, saved values",
    ),
    (
        "pluggedin_clipboard_push",
        "push onto a stack, queue a value, append to clipboard, pipeline step",
    ),
    (
        "pluggedin_clipboard_pop",
        "pop from the stack, take the last value, dequeue, clipboard LIFO",
    ),
    (
        "pluggedin_memory_session_start",
        "start a memory session, begin remembering, track this conversation",
    ),
    (
        "pluggedin_memory_session_end",
        "end the memory session, summarize what was learned, stop remembering",
    ),
    (
        "pluggedin_memory_observe",
        "remember this, record an observation, note a fact, learn a preference",
    ),
    (
        "pluggedin_memory_search",
        "recall, what do you remember, search memories, past conversations, earlier decisions",
    ),
    (
        "pluggedin_memory_details",
        "memory details, full memory by id, expand a recalled memory",
    ),
];

/// The canonical name of a built-in tool, if `name` is one (or an old alias of one).
pub fn canonical(name: &str) -> Option<&'static str> {
    if name == RAG_ALIAS {
        // Not listed, and answered differently from its new name: kept distinct.
        return Some(RAG_ALIAS);
    }
    let name = if name == MARK_READ_ALIAS {
        "pluggedin_mark_notification_done"
    } else {
        name
    };
    tools()
        .iter()
        .map(|tool| tool.name.as_ref())
        .find(|known| *known == name)
}

/// How a built-in tool appears in the activity log: the original's system names.
pub fn activity_identity(tool: &str) -> (&'static str, &'static str) {
    match tool {
        "pluggedin_discover_tools" => ("Discovery System", "pluggedin_discovery"),
        name if name.starts_with("pluggedin_clipboard_") => {
            ("Clipboard System", "pluggedin_clipboard")
        }
        name if name.starts_with("pluggedin_memory_") => ("Memory System", "pluggedin_memory"),
        "pluggedin_ask_knowledge_base" | RAG_ALIAS => ("RAG System", "pluggedin_rag"),
        name if name.ends_with("_document") || name.ends_with("_documents") => {
            ("Document System", "pluggedin_documents")
        }
        name if name.contains("notification") => ("Notification System", "pluggedin_notifications"),
        _ => ("Proxy System", "pluggedin_proxy"),
    }
}

/// What the built-in tools need of the servers behind the proxy (`pluggedin_discover_tools`
/// reports on them). The router implements it.
pub trait Servers: Send + Sync {
    /// The servers that are on: not disabled in the config or by the operator, and in the
    /// workspace in force.
    fn visible_servers(&self) -> Vec<Arc<Downstream>>;

    /// Whether a server's tool passes the config's filter and is not disabled by the operator.
    fn tool_visible(&self, server: &Downstream, original: &str) -> bool;

    /// The catalog clients see now.
    fn catalog(&self) -> Arc<Catalog>;

    /// The built-in tools that are on, in list order.
    fn builtin_tools(&self) -> Vec<Tool>;

    /// Re-lists `servers` in the background (the catalog follows each), and in App mode has the
    /// App's tool list read again at its next refresh.
    fn refresh(&self, servers: Vec<Arc<Downstream>>);
}

/// The built-in tools' runtime: the control plane and the mailer.
pub struct Builtins {
    control: Arc<dyn ControlPlane>,
    mailer: Option<Mailer>,
}

impl Builtins {
    pub fn new(control: Arc<dyn ControlPlane>, mailer: Option<Mailer>) -> Builtins {
        Builtins { control, mailer }
    }

    pub fn control(&self) -> &Arc<dyn ControlPlane> {
        &self.control
    }

    /// Sends a test e-mail as notifications are sent; the recipients, or why it was not sent.
    pub async fn send_test_email(&self) -> Result<Vec<String>, String> {
        let Some(mailer) = &self.mailer else {
            return Err(
                "no SMTP server is set up (the config's \"smtp\" object or the \
                        PLUGGEDIN_SMTP_* variables)"
                    .to_owned(),
            );
        };
        let test = crate::control::Notification {
            id: "test".to_owned(),
            kind: "test".to_owned(),
            title: "Test e-mail".to_owned(),
            message: "pluggedin-mcp-proxy sends its notifications to this address.".to_owned(),
            severity: crate::control::Severity::Info,
            link: None,
            read: false,
            completed: false,
            created_at: crate::control::time::now_ms(),
            expires_at: None,
        };
        mailer
            .send(&test)
            .await
            .map(|()| mailer.recipients())
            .map_err(|error| error.to_string())
    }

    /// Whether `uri` names a document of the library (`pluggedin://documents/<id>`).
    pub fn is_document_uri(uri: &str) -> bool {
        uri.starts_with(documents::RESOURCE_PREFIX)
    }

    /// Up to `limit` documents as resources, from `offset`, and how many there are.
    pub async fn document_resources(
        &self,
        offset: u64,
        limit: u32,
    ) -> Result<(Vec<rmcp::model::Resource>, u64), crate::control::ControlError> {
        documents::resources(self, offset, limit).await
    }

    /// The document a `pluggedin://documents/<id>` URI names, as resource contents.
    pub async fn read_document(
        &self,
        uri: &str,
    ) -> Result<Option<rmcp::model::ReadResourceResult>, crate::control::ControlError> {
        documents::read_resource(self, uri).await
    }

    /// Runs built-in tool `name` (canonical) with `arguments`.
    pub async fn call(
        &self,
        servers: &dyn Servers,
        name: &str,
        arguments: Option<&JsonObject>,
    ) -> CallToolResult {
        let schema_name = if name == RAG_ALIAS {
            "pluggedin_ask_knowledge_base"
        } else {
            name
        };
        let Some(tool) = tools().iter().find(|tool| tool.name == schema_name) else {
            return failure(format!("Unknown built-in tool: {name}"));
        };
        let args = match validate::arguments(&tool.input_schema, arguments) {
            Ok(args) => args,
            Err(message) => return failure(format!("Invalid arguments for {name}: {message}")),
        };
        let outcome = match name {
            "pluggedin_setup" => Ok(setup::run(&args)),
            "pluggedin_discover_tools" => discover::run(self, servers, &args).await,
            "pluggedin_ask_knowledge_base" => {
                documents::ask(self, &args, documents::Answer::Json).await
            }
            RAG_ALIAS => documents::ask(self, &args, documents::Answer::Text).await,
            "pluggedin_create_document" => documents::create(self, &args).await,
            "pluggedin_list_documents" => documents::list(self, &args).await,
            "pluggedin_search_documents" => documents::search(self, &args).await,
            "pluggedin_get_document" => documents::get(self, &args).await,
            "pluggedin_update_document" => documents::update(self, &args).await,
            "pluggedin_send_notification" => notify::send(self, &args).await,
            "pluggedin_list_notifications" => notify::list(self, &args).await,
            "pluggedin_mark_notification_done" => notify::mark_done(self, &args).await,
            "pluggedin_delete_notification" => notify::delete(self, &args).await,
            "pluggedin_clipboard_set" => clipboard::set(self, &args).await,
            "pluggedin_clipboard_get" => clipboard::get(self, &args).await,
            "pluggedin_clipboard_delete" => clipboard::delete(self, &args).await,
            "pluggedin_clipboard_list" => clipboard::list(self, &args).await,
            "pluggedin_clipboard_push" => clipboard::push(self, &args).await,
            "pluggedin_clipboard_pop" => clipboard::pop(self).await,
            "pluggedin_memory_session_start" => memory::start(self, &args).await,
            "pluggedin_memory_session_end" => memory::end(self, &args).await,
            "pluggedin_memory_observe" => memory::observe(self, &args).await,
            "pluggedin_memory_search" => memory::search(self, &args).await,
            "pluggedin_memory_details" => memory::details(self, &args).await,
            _ => Err(format!("Unknown built-in tool: {name}")),
        };
        match outcome {
            Ok(result) => result,
            Err(message) => failure(message),
        }
    }
}

/// What a tool handler returns: a result, or the text of a tool error.
type Outcome = Result<CallToolResult, String>;

fn text(text: impl Into<String>) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(text.into())])
}

fn failure(message: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.into())])
}

/// A control-plane failure as a tool error naming what was being done.
fn store_error(doing: &str, error: crate::control::ControlError) -> String {
    tracing::warn!("{doing}: {error}");
    format!("Failed to {doing}: {error}")
}

fn string(args: &JsonObject, key: &str) -> Option<String> {
    args.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn boolean(args: &JsonObject, key: &str) -> bool {
    args.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn integer(args: &JsonObject, key: &str) -> Option<i64> {
    args.get(key)
        .and_then(|value| value.as_i64().or_else(|| value.as_f64().map(|n| n as i64)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tool_list_parses_in_the_original_order() {
        let names: Vec<&str> = tools().iter().map(|tool| tool.name.as_ref()).collect();
        assert_eq!(names.len(), 23);
        assert_eq!(names[0], "pluggedin_setup");
        assert_eq!(names[1], "pluggedin_discover_tools");
        assert_eq!(names[2], "pluggedin_ask_knowledge_base");
        assert_eq!(names[7], "pluggedin_update_document");
        assert_eq!(names[22], "pluggedin_memory_details");
        assert!(tools().iter().all(|tool| tool.annotations.is_some()));
    }

    #[test]
    fn every_builtin_tool_has_a_search_hint_and_is_not_always_loaded() {
        assert_eq!(HINTS.len(), tools().len());
        for tool in tools() {
            let meta = tool.meta.as_ref().expect("a built-in tool has _meta");
            let words = meta[SEARCH_HINT].as_str().unwrap();
            assert!(!words.is_empty(), "{}", tool.name);
            assert_eq!(meta[ALWAYS_LOAD], false, "{}", tool.name);
        }
    }

    #[test]
    fn the_old_mark_read_name_is_an_alias() {
        assert_eq!(
            canonical(MARK_READ_ALIAS),
            Some("pluggedin_mark_notification_done")
        );
        assert_eq!(
            canonical("pluggedin_clipboard_get"),
            Some("pluggedin_clipboard_get")
        );
        assert_eq!(canonical(RAG_ALIAS), Some(RAG_ALIAS));
        assert_eq!(canonical("demo__echo"), None);
    }
}
