//! `pluggedin_proxy_capabilities`: the original proxy's static prompt, listed first in
//! `prompts/list` in both modes and answered here, through the router, like the built-in tools.
//! Its guide is written from the built-in tools' own definitions (the ones a client can call
//! now, with their parameters), then a few words on what the proxy does around them.

use std::fmt::Write as _;

use rmcp::model::{GetPromptResult, Prompt, PromptMessage, Role, Tool};
use serde_json::Value;

/// The prompt's name, as the original lists it.
pub const NAME: &str = "pluggedin_proxy_capabilities";
/// How its `prompts/get` appears in the activity log: the original's system names.
pub const ACTIVITY_IDENTITY: (&str, &str) = ("Proxy System", "pluggedin_proxy");
const DESCRIPTION: &str = "Learn about the Plugged.in MCP Proxy capabilities and available tools";

/// The prompt as listed: no arguments.
pub fn prompt() -> Prompt {
    Prompt::new(NAME, Some(DESCRIPTION), Some(Vec::new()))
}

/// The prompt's one message: the guide to `tools`, the built-in tools a client sees.
pub fn get(tools: &[Tool]) -> GetPromptResult {
    let mut result = GetPromptResult::new(vec![PromptMessage::new_text(Role::User, guide(tools))]);
    result.description = Some(DESCRIPTION.to_owned());
    result
}

fn guide(tools: &[Tool]) -> String {
    let mut out = String::from(
        "# Plugged.in MCP Proxy Capabilities\n\n\
         The Plugged.in MCP Proxy is one MCP server in front of many: it connects to the MCP \
         servers you configured, merges their tools, prompts and resources into one catalog \
         (a server's items are named `<server>__<name>`), routes every call to the server that \
         owns it, and brings built-in tools of its own.\n\n",
    );
    let _ = writeln!(out, "## Built-in tools ({})\n", tools.len());
    let mut current = "";
    for tool in tools {
        let category = super::discover::category(&tool.name);
        if category != current {
            let _ = writeln!(out, "### {category}\n");
            current = category;
        }
        let _ = writeln!(out, "#### `{}`", tool.name);
        if let Some(description) = &tool.description {
            let _ = writeln!(out, "{}", one_line(description));
        }
        let parameters = parameters(tool);
        if parameters.is_empty() {
            out.push_str("- Parameters: none\n");
        } else {
            out.push_str("- Parameters:\n");
            for line in parameters {
                let _ = writeln!(out, "  - {line}");
            }
        }
        out.push('\n');
    }
    out.push_str(
        "## What the proxy does\n\n\
         - **One catalog**: every server's tools, prompts, resources and resource templates, \
         namespaced so that names never clash; a tool is also callable by its plain name when \
         one server alone offers it.\n\
         - **Live servers**: local processes (stdio), Streamable HTTP and legacy HTTP+SSE \
         servers, restarted with backoff when they fail; a call to a server that is starting \
         waits for it.\n\
         - **Everything flows back**: progress, logging, list changes, resource updates, \
         sampling, elicitation and roots pass between your client and the servers.\n\
         - **Two modes**: without an API key the servers come from a local `mcpServers` file and \
         the built-in tools keep their data in a local database; with `PLUGGEDIN_API_KEY` the \
         servers, the catalog and the built-in tools' data come from the plugged.in App.\n\n\
         ## Getting started\n\n\
         1. Call `pluggedin_discover_tools` to see every server's tools, prompts and resources.\n\
         2. Call a server's tool by its `<server>__<tool>` name.\n\
         3. For setup help, call `pluggedin_setup` (topics `getting_started`, `api_key`, \
         `configuration`, `troubleshooting`).\n\n\
         ## Monitoring\n\n\
         Every tool call, prompt and resource read is recorded in an activity log (with the \
         plugged.in App in App mode). Over HTTP, `GET /health` reports each server's state and \
         the App's.\n",
    );
    out
}

/// `name` (type, required or default): description — one per property of the input schema.
fn parameters(tool: &Tool) -> Vec<String> {
    let schema = &tool.input_schema;
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    properties
        .iter()
        .map(|(name, property)| {
            let mut notes = Vec::new();
            if let Some(values) = property.get("enum").and_then(Value::as_array) {
                let values: Vec<String> = values.iter().map(shown).collect();
                notes.push(values.join(" | "));
            } else if let Some(kind) = property.get("type").and_then(Value::as_str) {
                notes.push(kind.to_owned());
            }
            if required.contains(&name.as_str()) {
                notes.push("required".to_owned());
            } else if let Some(default) = property.get("default") {
                notes.push(format!("default {}", shown(default)));
            } else {
                notes.push("optional".to_owned());
            }
            let mut line = format!("`{name}` ({})", notes.join(", "));
            if let Some(description) = property.get("description").and_then(Value::as_str) {
                let _ = write!(line, ": {}", one_line(description));
            }
            line
        })
        .collect()
}

fn shown(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guide_lists_every_tool_with_its_parameters() {
        let tools = super::super::tools();
        let text = guide(tools);
        assert!(text.starts_with("# Plugged.in MCP Proxy Capabilities\n"));
        for tool in tools {
            assert!(
                text.contains(&format!("#### `{}`", tool.name)),
                "{}",
                tool.name
            );
        }
        assert!(
            text.contains("`query` (string, required)"),
            "the knowledge base's query is listed as required"
        );
        assert!(text.contains("`severity` (INFO | SUCCESS | WARNING | ALERT, default INFO)"));
        let listed = prompt();
        assert_eq!(listed.name, NAME);
        assert_eq!(listed.arguments, Some(Vec::new()));
    }
}
