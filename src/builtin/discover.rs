//! `pluggedin_discover_tools`: the built-in tools plus every visible server's tools, prompts,
//! resources, templates and custom instructions. Connected servers answer from their live lists,
//! the others from the catalog cache in the store (what they offered when last connected), so the
//! answer is instant. `force_refresh` re-lists the servers in the background and says so;
//! `server_uuid` narrows the report to one server. Counts are what is listed.

use std::collections::HashMap;
use std::fmt::Write as _;

use rmcp::model::JsonObject;

use super::{Builtins, Outcome, Servers, boolean, string, text};
use crate::catalog::{PromptRoute, ServerLists};
use crate::config::InstructionMessage;
use crate::names;

/// One server's part of the report.
struct ServerReport {
    name: String,
    lists: Option<ServerLists>,
    slug: String,
    instructions: Vec<InstructionMessage>,
}

/// The categories of the built-in tools, in list order.
pub(super) fn category(tool: &str) -> &'static str {
    match tool {
        "pluggedin_setup" => "Setup",
        "pluggedin_discover_tools" => "Discovery",
        "pluggedin_ask_knowledge_base" => "Knowledge Base",
        name if name.ends_with("_document") || name.ends_with("_documents") => "Documents",
        name if name.contains("notification") => "Notifications",
        name if name.starts_with("pluggedin_clipboard_") => "Clipboard",
        name if name.starts_with("pluggedin_memory_") => "Memory",
        _ => "Other",
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub(super) async fn run(builtins: &Builtins, fleet: &dyn Servers, args: &JsonObject) -> Outcome {
    let force = boolean(args, "force_refresh");
    let wanted = string(args, "server_uuid");
    let mut servers = fleet.visible_servers();
    if let Some(uuid) = &wanted {
        servers.retain(|server| server.uuid.eq_ignore_ascii_case(uuid));
        if servers.is_empty() {
            return Err(format!("Server not found: {uuid}"));
        }
    }
    let cache = match builtins.control.cached_servers().await {
        Ok(cache) => cache,
        Err(error) => {
            tracing::warn!("discovery cache unreadable: {error}");
            Vec::new()
        }
    };
    // In App mode the App discovers too (`POST /api/discover/<uuid|all>`); its answer is
    // reported, and a failure is said, not fatal: the live lists below still stand.
    let mut app_note = None;
    if force {
        // In App mode, what the App discovers shows once its tool list is read again.
        fleet.refresh(servers.clone());
        app_note = match builtins
            .control
            .trigger_discovery(wanted.as_deref(), true)
            .await
        {
            Ok(note) => note,
            Err(error) => Some(format!("The App's discovery could not be started: {error}")),
        };
    }
    let reports: Vec<ServerReport> = servers
        .iter()
        .map(|server| {
            let lists = if server.connection().is_some() {
                Some(ServerLists::clone(&server.lists()))
            } else {
                cache
                    .iter()
                    .find(|cached| cached.uuid == server.uuid)
                    .and_then(|cached| ServerLists::from_json(&cached.lists))
            };
            let lists = lists.map(|mut lists| {
                lists
                    .tools
                    .retain(|tool| fleet.tool_visible(server, &tool.name));
                lists
            });
            ServerReport {
                name: server.name.clone(),
                slug: server.slug.clone(),
                lists,
                instructions: server.config.instructions.clone().unwrap_or_default(),
            }
        })
        .collect();

    let statics = fleet.builtin_tools();
    // The names clients call: the catalog's exposed names (which depend on --prefix-mode) for
    // tools it has, `<slug>__<name>` (always callable) for tools only the cache knows.
    let catalog = fleet.catalog();
    let exposed: HashMap<(String, String), &str> = catalog
        .tools
        .iter()
        .filter_map(|tool| {
            let route = catalog.resolve_tool(&tool.name).ok()?;
            Some(((route.server, route.original), tool.name.as_ref()))
        })
        .collect();
    let exposed_prompts: HashMap<(String, String), &str> = catalog
        .prompts
        .iter()
        .filter_map(|prompt| match catalog.resolve_prompt(&prompt.name).ok()? {
            PromptRoute::Downstream(route) => {
                Some(((route.server, route.original), prompt.name.as_str()))
            }
            PromptRoute::Instructions { .. } => None,
        })
        .collect();
    let tools: Vec<(String, Option<String>)> = reports
        .iter()
        .flat_map(|report| {
            report.lists.iter().flat_map(|lists| {
                lists.tools.iter().map(|tool| {
                    let key = (report.name.clone(), tool.name.to_string());
                    let name = exposed.get(&key).map_or_else(
                        || names::qualify(&report.slug, &tool.name),
                        |name| (*name).to_owned(),
                    );
                    (name, tool.description.as_deref().map(one_line))
                })
            })
        })
        .collect();
    let prompts: Vec<(String, Option<String>)> = reports
        .iter()
        .flat_map(|report| {
            report.lists.iter().flat_map(|lists| {
                lists.prompts.iter().map(|prompt| {
                    let key = (report.name.clone(), prompt.name.clone());
                    let name = exposed_prompts.get(&key).map_or_else(
                        || names::qualify(&report.slug, &prompt.name),
                        |name| (*name).to_owned(),
                    );
                    (name, prompt.description.as_deref().map(one_line))
                })
            })
        })
        .collect();
    let resources: Vec<(String, Option<String>, String)> = reports
        .iter()
        .flat_map(|report| report.lists.iter().flat_map(|lists| lists.resources.iter()))
        .map(|resource| {
            (
                resource.name.clone(),
                resource.description.as_deref().map(one_line),
                resource.uri.clone(),
            )
        })
        .collect();
    let templates: Vec<(String, Option<String>, String)> = reports
        .iter()
        .flat_map(|report| report.lists.iter().flat_map(|lists| lists.templates.iter()))
        .map(|template| {
            (
                template.name.clone(),
                template.description.as_deref().map(one_line),
                template.uri_template.clone(),
            )
        })
        .collect();

    // Nothing known yet: in App mode, ask the App to discover (the original's cold path).
    if !force
        && tools.is_empty()
        && prompts.is_empty()
        && resources.is_empty()
        && templates.is_empty()
    {
        match builtins
            .control
            .trigger_discovery(wanted.as_deref(), false)
            .await
        {
            Ok(Some(message)) => {
                return Ok(text(format!(
                    "No cached dynamic data found. {message}\n\nNote: You can call pluggedin_discover_tools again to see the cached results including both static and dynamic tools."
                )));
            }
            Ok(None) => {}
            Err(error) => return Err(format!("Failed to trigger discovery via API: {error}")),
        }
    }
    let target = match &wanted {
        Some(uuid) => format!("server {uuid}"),
        None => "all servers".to_owned(),
    };
    let counts = format!(
        "{} dynamic tools + {} static tools = {} total tools, {} resources, {} prompts, {} templates",
        tools.len(),
        statics.len(),
        tools.len() + statics.len(),
        resources.len(),
        prompts.len(),
        templates.len()
    );
    let mut out = if force && let Some(note) = &app_note {
        format!(
            "🔄 Force refresh initiated for {target}. Discovery is running in background.\n{note}\n\nShowing current cached data ({counts}):\n\n"
        )
    } else if force {
        format!(
            "🔄 Force refresh initiated for {target}. Discovery is running in background.\n\nShowing current cached data ({counts}):\n\n"
        )
    } else {
        format!(
            "Returning cached discovery data for {target}. Found cached data: {counts}. Use force_refresh=true to update.\n\n"
        )
    };

    out.push_str("## 🔧 Static Built-in Tools (Always Available):\n");
    let mut number = 0;
    let mut current = "";
    for tool in &statics {
        let group = category(&tool.name);
        if group != current {
            if !current.is_empty() {
                out.push('\n');
            }
            let size = statics
                .iter()
                .filter(|other| category(&other.name) == group)
                .count();
            let _ = writeln!(out, "**{group} ({size}):**");
            current = group;
        }
        number += 1;
        let summary = tool
            .description
            .as_deref()
            .map(|d| {
                d.split(". ")
                    .next()
                    .unwrap_or(d)
                    .trim_end_matches('.')
                    .to_owned()
            })
            .unwrap_or_default();
        let _ = writeln!(out, "{number}. **{}** - {summary}", tool.name);
    }

    let _ = write!(
        out,
        "\n## ⚡ Dynamic MCP Tools ({}) - From Connected Servers:\n",
        tools.len()
    );
    if tools.is_empty() {
        out.push_str("No dynamic tools available. Add MCP servers to get more tools.\n");
    }
    push_items(
        &mut out,
        tools
            .iter()
            .map(|(name, d)| (name.as_str(), d.as_deref(), None)),
    );
    let pending: Vec<&str> = reports
        .iter()
        .filter(|report| report.lists.is_none())
        .map(|report| report.name.as_str())
        .collect();
    if !pending.is_empty() {
        let _ = writeln!(
            out,
            "⏳ Not discovered yet (not connected, nothing cached): {}",
            pending.join(", ")
        );
    }
    if !prompts.is_empty() {
        let _ = write!(out, "\n## 💬 Available Prompts ({}):\n", prompts.len());
        push_items(
            &mut out,
            prompts
                .iter()
                .map(|(name, d)| (name.as_str(), d.as_deref(), None)),
        );
    }
    if !resources.is_empty() {
        let _ = write!(out, "\n## 📄 Available Resources ({}):\n", resources.len());
        push_items(
            &mut out,
            resources
                .iter()
                .map(|(name, d, uri)| (name.as_str(), d.as_deref(), Some(uri.as_str()))),
        );
    }
    if !templates.is_empty() {
        let _ = write!(
            out,
            "\n## 📋 Available Resource Templates ({}):\n",
            templates.len()
        );
        push_items(
            &mut out,
            templates
                .iter()
                .map(|(name, d, uri)| (name.as_str(), d.as_deref(), Some(uri.as_str()))),
        );
    }
    let instructed: Vec<&ServerReport> = reports
        .iter()
        .filter(|report| !report.instructions.is_empty())
        .collect();
    if !instructed.is_empty() {
        out.push_str("\n## 🔧 Server Custom Instructions (Auto-Injected)\nThe following custom instructions are automatically provided to AI assistants:\n\n");
        for report in instructed {
            let raw: Vec<&str> = report
                .instructions
                .iter()
                .map(|message| message.text.as_str())
                .collect();
            let _ = write!(
                out,
                "### {}\n**Instructions:** {}\n\n",
                report.name,
                raw.join("\n")
            );
        }
    }
    if force {
        out.push_str("\n📝 **Note**: Fresh discovery is running in background. Call pluggedin_discover_tools() again in a few seconds to see if any new tools were discovered.");
    }
    Ok(text(out.trim_end().to_owned()))
}

/// `N. **name** - description (uri)`; the uri only when it differs from the name.
fn push_items<'a>(
    out: &mut String,
    items: impl Iterator<Item = (&'a str, Option<&'a str>, Option<&'a str>)>,
) {
    for (index, (name, description, uri)) in items.enumerate() {
        let _ = write!(out, "{}. **{name}**", index + 1);
        if let Some(description) = description.filter(|d| !d.is_empty()) {
            let _ = write!(out, " - {description}");
        }
        if let Some(uri) = uri.filter(|uri| *uri != name) {
            let _ = write!(out, " ({uri})");
        }
        out.push('\n');
    }
}
