//! `pluggedin_discover_tools`: the built-in tools plus every visible server's tools, prompts,
//! resources, templates and custom instructions. Connected servers answer from their live lists,
//! the others from the catalog cache in the store (what they offered when last connected), so the
//! answer is instant. `force_refresh` re-lists the servers in the background and says so;
//! `server_uuid` narrows the report to one server. Counts are what is listed.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use rmcp::model::{CallToolResult, JsonObject, Tool};

use super::{Builtins, Outcome, Servers, boolean, string, text};
use crate::catalog::{Catalog, PromptRoute, ServerLists};
use crate::config::InstructionMessage;
use crate::control::CachedServer;
use crate::downstream::Downstream;
use crate::names;

/// One server's part of the report.
struct ServerReport {
    name: String,
    lists: Option<ServerLists>,
    slug: String,
    instructions: Vec<InstructionMessage>,
}

/// What the report lists from the servers: (name, description) for tools and prompts, under
/// the names clients call; (name, description, uri) for resources and templates.
struct Listing {
    tools: Vec<(String, Option<String>)>,
    prompts: Vec<(String, Option<String>)>,
    resources: Vec<(String, Option<String>, String)>,
    templates: Vec<(String, Option<String>, String)>,
}

impl Listing {
    fn of(catalog: &Catalog, reports: &[ServerReport]) -> Listing {
        let resources = reports
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
        let templates = reports
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
        Listing {
            tools: called_tools(catalog, reports),
            prompts: called_prompts(catalog, reports),
            resources,
            templates,
        }
    }

    fn is_empty(&self) -> bool {
        self.tools.is_empty()
            && self.prompts.is_empty()
            && self.resources.is_empty()
            && self.templates.is_empty()
    }
}

/// The servers' tools under the names clients call: the catalog's exposed names (which depend on
/// --prefix-mode) for tools it has, `<slug>__<name>` (always callable) for tools only the cache
/// knows.
fn called_tools(catalog: &Catalog, reports: &[ServerReport]) -> Vec<(String, Option<String>)> {
    let exposed: HashMap<(String, String), &str> = catalog
        .tools
        .iter()
        .filter_map(|tool| {
            let route = catalog.resolve_tool(&tool.name).ok()?;
            Some(((route.server, route.original), tool.name.as_ref()))
        })
        .collect();
    reports
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
        .collect()
}

/// The servers' prompts under the names clients call, as [`called_tools`] names tools.
fn called_prompts(catalog: &Catalog, reports: &[ServerReport]) -> Vec<(String, Option<String>)> {
    let exposed: HashMap<(String, String), &str> = catalog
        .prompts
        .iter()
        .filter_map(|prompt| match catalog.resolve_prompt(&prompt.name).ok()? {
            PromptRoute::Downstream(route) => {
                Some(((route.server, route.original), prompt.name.as_str()))
            }
            PromptRoute::Instructions { .. } => None,
        })
        .collect();
    reports
        .iter()
        .flat_map(|report| {
            report.lists.iter().flat_map(|lists| {
                lists.prompts.iter().map(|prompt| {
                    let key = (report.name.clone(), prompt.name.clone());
                    let name = exposed.get(&key).map_or_else(
                        || names::qualify(&report.slug, &prompt.name),
                        |name| (*name).to_owned(),
                    );
                    (name, prompt.description.as_deref().map(one_line))
                })
            })
        })
        .collect()
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
    let servers = chosen_servers(fleet, wanted.as_deref())?;
    let cache = cached_lists(builtins).await;
    let app_note = if force {
        start_refresh(builtins, fleet, &servers, wanted.as_deref()).await
    } else {
        None
    };
    let reports = server_reports(fleet, &servers, &cache);
    let statics = fleet.builtin_tools();
    let listing = Listing::of(&fleet.catalog(), &reports);
    // Nothing known yet: in App mode, ask the App to discover (the original's cold path).
    if !force
        && listing.is_empty()
        && let Some(answer) = cold_discovery(builtins, wanted.as_deref()).await?
    {
        return Ok(answer);
    }
    let mut out = heading(
        force,
        app_note.as_deref(),
        wanted.as_deref(),
        &listing,
        &statics,
    );
    push_builtin_tools(&mut out, &statics);
    push_listing(&mut out, &listing, &reports);
    push_instructions(&mut out, &reports);
    if force {
        out.push_str("\n📝 **Note**: Fresh discovery is running in background. Call pluggedin_discover_tools() again in a few seconds to see if any new tools were discovered.");
    }
    Ok(text(out.trim_end().to_owned()))
}

/// The visible servers, or the one `server_uuid` names.
fn chosen_servers(
    fleet: &dyn Servers,
    wanted: Option<&str>,
) -> Result<Vec<Arc<Downstream>>, String> {
    let mut servers = fleet.visible_servers();
    if let Some(uuid) = wanted {
        servers.retain(|server| server.uuid.eq_ignore_ascii_case(uuid));
        if servers.is_empty() {
            return Err(format!("Server not found: {uuid}"));
        }
    }
    Ok(servers)
}

/// What the store remembers of the servers' lists; nothing when it cannot be read.
async fn cached_lists(builtins: &Builtins) -> Vec<CachedServer> {
    match builtins.control.cached_servers().await {
        Ok(cache) => cache,
        Err(error) => {
            tracing::warn!("discovery cache unreadable: {error}");
            Vec::new()
        }
    }
}

/// `force_refresh`: re-lists the servers in the background. In App mode the App discovers too
/// (`POST /api/discover/<uuid|all>`); its answer is the note returned, and a failure is said,
/// not fatal: the live lists still stand.
async fn start_refresh(
    builtins: &Builtins,
    fleet: &dyn Servers,
    servers: &[Arc<Downstream>],
    wanted: Option<&str>,
) -> Option<String> {
    // In App mode, what the App discovers shows once its tool list is read again.
    fleet.refresh(servers.to_vec());
    match builtins.control.trigger_discovery(wanted, true).await {
        Ok(note) => note,
        Err(error) => Some(format!("The App's discovery could not be started: {error}")),
    }
}

/// Each server's lists: live when connected, else from the cache; tools the client may not see
/// left out.
fn server_reports(
    fleet: &dyn Servers,
    servers: &[Arc<Downstream>],
    cache: &[CachedServer],
) -> Vec<ServerReport> {
    servers
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
        .collect()
}

/// With nothing known, the App's cold-path discovery: its message as the whole answer when it
/// started one, `None` when there is no App to ask.
async fn cold_discovery(
    builtins: &Builtins,
    wanted: Option<&str>,
) -> Result<Option<CallToolResult>, String> {
    match builtins.control.trigger_discovery(wanted, false).await {
        Ok(Some(message)) => Ok(Some(text(format!(
            "No cached dynamic data found. {message}\n\nNote: You can call pluggedin_discover_tools again to see the cached results including both static and dynamic tools."
        )))),
        Ok(None) => Ok(None),
        Err(error) => Err(format!("Failed to trigger discovery via API: {error}")),
    }
}

/// The report's first lines: what was done, for which servers, and the counts.
fn heading(
    force: bool,
    app_note: Option<&str>,
    wanted: Option<&str>,
    listing: &Listing,
    statics: &[Tool],
) -> String {
    let target = match wanted {
        Some(uuid) => format!("server {uuid}"),
        None => "all servers".to_owned(),
    };
    let counts = format!(
        "{} dynamic tools + {} static tools = {} total tools, {} resources, {} prompts, {} templates",
        listing.tools.len(),
        statics.len(),
        listing.tools.len() + statics.len(),
        listing.resources.len(),
        listing.prompts.len(),
        listing.templates.len()
    );
    if force && let Some(note) = app_note {
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
    }
}

/// The built-in tools by category, each with the first sentence of its description.
fn push_builtin_tools(out: &mut String, statics: &[Tool]) {
    out.push_str("## 🔧 Static Built-in Tools (Always Available):\n");
    let mut number = 0;
    let mut current = "";
    for tool in statics {
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
}

/// The servers' tools (and the servers not discovered yet), prompts, resources and templates.
fn push_listing(out: &mut String, listing: &Listing, reports: &[ServerReport]) {
    let _ = write!(
        out,
        "\n## ⚡ Dynamic MCP Tools ({}) - From Connected Servers:\n",
        listing.tools.len()
    );
    if listing.tools.is_empty() {
        out.push_str("No dynamic tools available. Add MCP servers to get more tools.\n");
    }
    push_items(
        out,
        listing
            .tools
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
    let Listing {
        prompts,
        resources,
        templates,
        ..
    } = listing;
    if !prompts.is_empty() {
        let _ = write!(out, "\n## 💬 Available Prompts ({}):\n", prompts.len());
        push_items(
            out,
            prompts
                .iter()
                .map(|(name, d)| (name.as_str(), d.as_deref(), None)),
        );
    }
    if !resources.is_empty() {
        let _ = write!(out, "\n## 📄 Available Resources ({}):\n", resources.len());
        push_items(
            out,
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
            out,
            templates
                .iter()
                .map(|(name, d, uri)| (name.as_str(), d.as_deref(), Some(uri.as_str()))),
        );
    }
}

/// The servers' custom instructions, as they are given to clients.
fn push_instructions(out: &mut String, reports: &[ServerReport]) {
    let instructed: Vec<&ServerReport> = reports
        .iter()
        .filter(|report| !report.instructions.is_empty())
        .collect();
    if instructed.is_empty() {
        return;
    }
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
