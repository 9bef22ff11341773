//! The catalog in App mode: what the App lists, under the App's names (`<slug>__<tool>` or
//! `<uuid>__<tool>`), so that what the user switched off in the App stays off. Tools route to the
//! live connection of their `_serverUuid`; prompts and resources keep the App's unprefixed names
//! and URIs and are resolved through the App when asked for. The App's non-standard fields
//! (`_serverUuid`, `_serverSlug`, `_serverName`) are not passed on.

use std::collections::HashMap;

use rmcp::model::{Prompt, Resource, ResourceTemplate, Tool};
use serde_json::Value;

use super::{Catalog, Route};
use crate::config::InstructionMessage;
use crate::control::app::AppCatalog;
use crate::names;

/// One server the App's lists may name, as the router knows it.
pub struct AppServerEntry<'a> {
    pub name: &'a str,
    pub uuid: &'a str,
    pub slug: Option<&'a str>,
    /// The App's custom instructions, served as the prompt `<slug>__instructions` (the original
    /// listed them until 1.10 as `<name>__system_context`, then could no longer serve them).
    pub instructions: Option<&'a [InstructionMessage]>,
}

impl Catalog {
    /// Builds the catalog from the App's lists. Tools of servers not in `servers` (inactive in
    /// the App, or turned off here) are left out.
    pub fn from_app(app: &AppCatalog, servers: &[AppServerEntry<'_>]) -> Catalog {
        let mut catalog = Catalog::default();
        let by_uuid: HashMap<String, &AppServerEntry<'_>> = servers
            .iter()
            .map(|server| (server.uuid.to_ascii_lowercase(), server))
            .collect();
        for server in servers {
            catalog
                .prefixes
                .insert(server.uuid.to_ascii_lowercase(), server.name.to_owned());
            if let Some(slug) = server.slug {
                catalog
                    .prefixes
                    .insert(slug.to_owned(), server.name.to_owned());
            }
        }
        // Unprefixed names: original name → the servers offering it.
        let mut originals: HashMap<String, Vec<Route>> = HashMap::new();
        for value in &app.tools {
            let Some(uuid) = value.get("_serverUuid").and_then(Value::as_str) else {
                continue;
            };
            let Some(server) = by_uuid.get(&uuid.to_ascii_lowercase()) else {
                continue;
            };
            let Some(tool) = tool_of(value) else {
                tracing::warn!(tool = %value.get("name").unwrap_or(&serde_json::Value::Null), "the App listed a tool that does not parse; left out");
                continue;
            };
            let name = tool.name.to_string();
            let original = match names::split(&name) {
                Some((prefix, rest))
                    if prefix.eq_ignore_ascii_case(server.uuid)
                        || server.slug.is_some_and(|slug| slug == prefix) =>
                {
                    rest.to_owned()
                }
                _ => name.clone(),
            };
            let route = Route::kept(server.name.to_owned(), original.clone());
            catalog
                .server_tools
                .entry(server.name.to_owned())
                .or_default()
                .insert(original.clone());
            if catalog.tool_routes.insert(name, route.clone()).is_some() {
                continue;
            }
            originals.entry(original).or_default().push(route);
            catalog.tools.push(tool);
        }
        // `tools/call` with an unprefixed name works when exactly one server offers it.
        for (original, routes) in originals {
            if catalog.tool_routes.contains_key(&original) {
                continue;
            }
            if let [route] = routes.as_slice() {
                catalog.tool_routes.insert(original, route.clone());
            } else {
                catalog
                    .ambiguous_tools
                    .insert(original, routes.into_iter().map(|r| r.server).collect());
            }
        }
        for server in servers {
            if let Some(messages) = server.instructions {
                let slug = server.slug.unwrap_or(server.uuid);
                catalog.push_instructions(server.name, slug, messages);
            }
        }
        catalog
            .prompts
            .extend(app.prompts.iter().filter_map(prompt_of));
        catalog.resources = app.resources.iter().filter_map(resource_of).collect();
        catalog.templates = app.templates.iter().filter_map(template_of).collect();
        catalog
    }
}

/// The App's tool without its `_server*` fields (and the original's `metadata` extension).
fn tool_of(value: &Value) -> Option<Tool> {
    let mut tool = value.as_object()?.clone();
    tool.retain(|key, _| !key.starts_with("_server") && key != "metadata");
    if !tool.get("inputSchema").is_some_and(Value::is_object) {
        tool.insert(
            "inputSchema".into(),
            serde_json::json!({"type": "object", "properties": {}}),
        );
    }
    serde_json::from_value(Value::Object(tool)).ok()
}

fn prompt_of(value: &Value) -> Option<Prompt> {
    let mut prompt = value.as_object()?.clone();
    prompt.retain(|key, _| !key.starts_with('_'));
    serde_json::from_value(Value::Object(prompt)).ok()
}

fn resource_of(value: &Value) -> Option<Resource> {
    let mut resource = value.as_object()?.clone();
    resource.retain(|key, _| !key.starts_with('_'));
    if !resource.get("name").is_some_and(Value::is_string) {
        let uri = resource.get("uri")?.clone();
        resource.insert("name".into(), uri);
    }
    serde_json::from_value(Value::Object(resource)).ok()
}

/// The App spells a template's MIME type `mediaType`; MCP spells it `mimeType`.
fn template_of(value: &Value) -> Option<ResourceTemplate> {
    let mut template = value.as_object()?.clone();
    template.retain(|key, _| !key.starts_with('_'));
    if let Some(media) = template.remove("mediaType")
        && !template.contains_key("mimeType")
    {
        template.insert("mimeType".into(), media);
    }
    if !template.get("name").is_some_and(Value::is_string) {
        let uri = template.get("uriTemplate")?.clone();
        template.insert("name".into(), uri);
    }
    serde_json::from_value(Value::Object(template)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const UUID: &str = "550e8400-e29b-41d4-a716-446655440000";

    #[test]
    fn the_app_catalog_routes_by_prefix_and_unambiguous_names() {
        let app = AppCatalog {
            tools: vec![
                json!({"name": "echo-server__echo", "description": "Echo", "inputSchema": {"type": "object"},
                       "_serverUuid": UUID, "_serverSlug": "echo-server", "_serverName": "Echo"}),
                json!({"name": format!("{UUID}__add"), "inputSchema": {"type": "object"}, "_serverUuid": UUID}),
                json!({"name": "other__echo", "inputSchema": {"type": "object"}, "_serverUuid": "11111111-1111-4111-8111-111111111111"}),
                json!({"name": "gone__x", "inputSchema": {"type": "object"}, "_serverUuid": "22222222-2222-4222-8222-222222222222"}),
            ],
            prompts: vec![json!({"name": "greet", "arguments": []})],
            resources: vec![json!({"uri": "test://r1"})],
            templates: vec![json!({"uriTemplate": "test://{id}", "mediaType": "text/plain"})],
        };
        let servers = [
            AppServerEntry {
                name: "Echo",
                uuid: UUID,
                slug: Some("echo-server"),
                instructions: None,
            },
            AppServerEntry {
                name: "Other",
                uuid: "11111111-1111-4111-8111-111111111111",
                slug: Some("other"),
                instructions: None,
            },
        ];
        let catalog = Catalog::from_app(&app, &servers);
        let names: Vec<&str> = catalog.tools.iter().map(|t| t.name.as_ref()).collect();
        assert_eq!(
            names,
            ["echo-server__echo", &format!("{UUID}__add"), "other__echo"]
        );
        let tool = serde_json::to_value(&catalog.tools[0]).unwrap();
        assert!(tool.get("_serverSlug").is_none(), "{tool}");
        let route = catalog.resolve_tool("add").unwrap();
        assert_eq!(
            (route.server.as_str(), route.original.as_str()),
            ("Echo", "add")
        );
        assert_eq!(
            catalog.resolve_tool("echo-server__add").unwrap().server,
            "Echo"
        );
        assert!(matches!(
            catalog.resolve_tool("echo"),
            Err(super::super::ResolveError::Ambiguous { .. })
        ));
        assert_eq!(catalog.resources[0].name, "test://r1");
        assert_eq!(
            catalog.templates[0].mime_type.as_deref(),
            Some("text/plain")
        );
        assert_eq!(catalog.prompts[0].name, "greet");
    }
}
