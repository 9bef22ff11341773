//! The merged catalog: every server's tools, prompts, resources and resource templates under one
//! set of names, plus the routes back to each item's owner. A catalog is built whole from the
//! servers' current lists (cheap: a few thousand items) and replaced, never edited in place, so a
//! request always sees one consistent snapshot. It knows nothing of transports or sessions.

mod app;
pub use app::AppServerEntry;
pub mod search;
mod template;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use rmcp::model::{Prompt, PromptMessage, Resource, ResourceTemplate, Role, Tool};

use crate::config::{InstructionMessage, InstructionRole, ToolFilter, ToolHint, ToolHints};
pub use crate::downstream::ServerLists;
use crate::names::{self, PrefixMode};
use crate::security::text::{sanitize_name, sanitize_text};
use crate::traces;

/// Something a client asks for by name: a tool or prompt (by the name the client sends) or a
/// resource (by URI).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item<'a> {
    Tool(&'a str),
    Prompt(&'a str),
    Resource(&'a str),
}

impl std::fmt::Display for Item<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Item::Tool(name) => write!(f, "tool \"{name}\""),
            Item::Prompt(name) => write!(f, "prompt \"{name}\""),
            Item::Resource(uri) => write!(f, "resource \"{uri}\""),
        }
    }
}

/// Whether a server's lists offer `item` under its original name (a resource: listed, or matched
/// by a template).
pub fn offers(lists: &ServerLists, item: Item<'_>) -> bool {
    match item {
        Item::Tool(name) => lists.tools.iter().any(|tool| tool.name == name),
        Item::Prompt(name) => lists.prompts.iter().any(|prompt| prompt.name == name),
        Item::Resource(uri) => {
            lists.resources.iter().any(|resource| resource.uri == uri)
                || lists
                    .templates
                    .iter()
                    .any(|template| template::matches(&template.uri_template, uri))
        }
    }
}

/// One server's part of the input to [`Catalog::build`].
pub struct ServerEntry<'a> {
    pub name: &'a str,
    pub slug: &'a str,
    pub uuid: &'a str,
    pub filter: &'a ToolFilter,
    pub lists: &'a ServerLists,
    pub instructions: Option<&'a [InstructionMessage]>,
    /// The config's `"toolHints"` for the server's tools.
    pub hints: &'a ToolHints,
}

/// The `_meta` key of a tool that a client deferring tools loads from the start (`true`).
pub const ALWAYS_LOAD: &str = "anthropic/alwaysLoad";

/// Where a tool or prompt name leads: the owning server and the name it knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub server: String,
    pub original: String,
    /// The heads of the spans of calls to a tool, when tracing is on.
    pub heads: RouteHeads,
}

impl Route {
    fn new(server: String, original: String) -> Route {
        Route {
            server,
            original,
            heads: RouteHeads::default(),
        }
    }

    /// A route the catalog keeps for a tool's name: its copies share heads for the spans of
    /// calls to it.
    fn kept(server: String, original: String) -> Route {
        Route {
            heads: RouteHeads::new(),
            ..Route::new(server, original)
        }
    }
}

/// The span heads the calls to one tool begin with ([`traces::KeptHead`]): the proxy's server
/// span's and its client span's to the tool's server. Shared by a route's copies; none with
/// tracing off. A cache, not part of where a name leads: routes are equal whatever they hold.
#[derive(Clone, Default)]
pub struct RouteHeads(Option<Arc<[traces::KeptHead; 2]>>);

impl RouteHeads {
    fn new() -> RouteHeads {
        RouteHeads(traces::enabled().then(Default::default))
    }

    /// The server span's, for a call by the tool's name in the catalog.
    pub fn server(&self) -> Option<&traces::KeptHead> {
        self.0.as_deref().map(|[server, _]| server)
    }

    /// The client span's, for the call sent to the tool's server.
    pub fn client(&self) -> Option<&traces::KeptHead> {
        self.0.as_deref().map(|[_, client]| client)
    }
}

impl PartialEq for RouteHeads {
    fn eq(&self, _: &RouteHeads) -> bool {
        true
    }
}

impl Eq for RouteHeads {}

impl std::fmt::Debug for RouteHeads {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("RouteHeads")
    }
}

/// Where a prompt name leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromptRoute {
    Downstream(Route),
    /// The configured custom instructions of this server.
    Instructions {
        server: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("unknown {kind} \"{name}\"")]
    Unknown { kind: &'static str, name: String },
    #[error(
        "{kind} \"{name}\" is offered by several servers ({}); call it as <server>__{name}",
        servers.join(", ")
    )]
    Ambiguous {
        kind: &'static str,
        name: String,
        servers: Vec<String>,
    },
}

/// The merged catalog.
#[derive(Debug, Default)]
pub struct Catalog {
    pub tools: Vec<Tool>,
    pub prompts: Vec<Prompt>,
    pub resources: Vec<Resource>,
    pub templates: Vec<ResourceTemplate>,
    tool_routes: HashMap<String, Route>,
    prompt_routes: HashMap<String, PromptRoute>,
    ambiguous_tools: HashMap<String, Vec<String>>,
    ambiguous_prompts: HashMap<String, Vec<String>>,
    /// Slug or UUID → server name, for `<slug>__<name>` and `<uuid>__<name>` on calls.
    prefixes: HashMap<String, String>,
    /// Server → the original names of its exposed tools and prompts.
    server_tools: HashMap<String, HashSet<String>>,
    server_prompts: HashMap<String, HashSet<String>>,
    resource_routes: HashMap<String, String>,
    /// (template, owning server), in catalog order.
    template_routes: Vec<(String, String)>,
    instructions: HashMap<String, Vec<PromptMessage>>,
}

impl Catalog {
    /// Builds the catalog from the servers' lists, in the given (config) order.
    pub fn build(servers: &[ServerEntry<'_>], mode: PrefixMode) -> Catalog {
        let mut catalog = Catalog::default();
        for server in servers {
            catalog
                .prefixes
                .insert(server.slug.to_owned(), server.name.to_owned());
            catalog
                .prefixes
                .insert(server.uuid.to_owned(), server.name.to_owned());
        }
        let mut taken_prompts = HashSet::new();
        // Instructions prompts first, so they keep their exact names.
        for server in servers {
            let Some(messages) = server.instructions else {
                continue;
            };
            let name = catalog.push_instructions(server.name, server.slug, messages);
            taken_prompts.insert(name);
        }
        catalog.add_tools(servers, mode);
        catalog.add_prompts(servers, mode, taken_prompts);
        catalog.add_resources(servers);
        catalog.warn_ambiguous();
        catalog
    }

    /// The servers' tools their filters permit, under their exposed names.
    fn add_tools(&mut self, servers: &[ServerEntry<'_>], mode: PrefixMode) {
        let tool_counts = count_names(servers.iter().flat_map(|server| {
            server
                .lists
                .tools
                .iter()
                .filter(|tool| server.filter.permits(&tool.name))
                .map(|tool| tool.name.as_ref())
        }));
        let mut taken_tools = HashSet::new();
        for server in servers {
            let originals = self.server_tools.entry(server.name.to_owned()).or_default();
            for tool in &server.lists.tools {
                if !server.filter.permits(&tool.name) {
                    continue;
                }
                originals.insert(tool.name.to_string());
                let shared = tool_counts.get(tool.name.as_ref()).copied().unwrap_or(0) > 1;
                let Some(name) = exposed_name(mode, server.slug, &tool.name, shared) else {
                    self.ambiguous_tools
                        .entry(tool.name.to_string())
                        .or_default()
                        .push(server.name.to_owned());
                    continue;
                };
                let name = claim(&mut taken_tools, name);
                let mut exposed = tool.clone();
                exposed.name = name.clone().into();
                clean_text(&mut exposed.title);
                if let Some(description) = &mut exposed.description
                    && let Cow::Owned(clean) = sanitize_text(description)
                {
                    *description = clean.into();
                }
                apply_hint(&mut exposed, &server.hints.for_tool(&tool.name));
                self.tools.push(exposed);
                self.tool_routes.insert(
                    name,
                    Route::kept(server.name.to_owned(), tool.name.to_string()),
                );
            }
        }
    }

    /// The servers' prompts under their exposed names; `taken` holds the names of the
    /// instructions prompts, listed first.
    fn add_prompts(
        &mut self,
        servers: &[ServerEntry<'_>],
        mode: PrefixMode,
        mut taken: HashSet<String>,
    ) {
        let prompt_counts = count_names(
            servers
                .iter()
                .flat_map(|server| server.lists.prompts.iter().map(|p| p.name.as_str())),
        );
        for server in servers {
            let originals = self
                .server_prompts
                .entry(server.name.to_owned())
                .or_default();
            for prompt in &server.lists.prompts {
                originals.insert(prompt.name.clone());
                let shared = prompt_counts
                    .get(prompt.name.as_str())
                    .copied()
                    .unwrap_or(0)
                    > 1;
                let Some(name) = exposed_name(mode, server.slug, &prompt.name, shared) else {
                    self.ambiguous_prompts
                        .entry(prompt.name.clone())
                        .or_default()
                        .push(server.name.to_owned());
                    continue;
                };
                let name = claim(&mut taken, name);
                let mut exposed = prompt.clone();
                exposed.name = name.clone();
                clean_text(&mut exposed.title);
                clean_text(&mut exposed.description);
                for argument in exposed.arguments.iter_mut().flatten() {
                    clean_text(&mut argument.title);
                    clean_text(&mut argument.description);
                }
                self.prompts.push(exposed);
                self.prompt_routes.insert(
                    name,
                    PromptRoute::Downstream(Route::new(
                        server.name.to_owned(),
                        prompt.name.clone(),
                    )),
                );
            }
        }
    }

    /// The servers' resources and templates.
    fn add_resources(&mut self, servers: &[ServerEntry<'_>]) {
        // Resources keep their URIs; the first server to list a URI owns it. A duplicate that
        // differs from the owner's entry is hidden from clients, which is worth a warning (one
        // line per pair of servers); an identical one (two instances of one server) is not.
        let mut listed: HashMap<&str, &Resource> = HashMap::new();
        let mut shadowed: BTreeMap<(String, &str), Vec<&str>> = BTreeMap::new();
        for server in servers {
            for resource in &server.lists.resources {
                if let Some(owner) = self.resource_routes.get(&resource.uri) {
                    if listed.get(resource.uri.as_str()) != Some(&resource) {
                        shadowed
                            .entry((owner.clone(), server.name))
                            .or_default()
                            .push(&resource.uri);
                    }
                    continue;
                }
                listed.insert(&resource.uri, resource);
                self.resource_routes
                    .insert(resource.uri.clone(), server.name.to_owned());
                let mut exposed = resource.clone();
                clean_name(&mut exposed.name);
                clean_text(&mut exposed.title);
                clean_text(&mut exposed.description);
                self.resources.push(exposed);
            }
            for template in &server.lists.templates {
                self.template_routes
                    .push((template.uri_template.clone(), server.name.to_owned()));
                let mut exposed = template.clone();
                clean_name(&mut exposed.name);
                clean_text(&mut exposed.title);
                clean_text(&mut exposed.description);
                self.templates.push(exposed);
            }
        }
        for ((owner, also), uris) in shadowed {
            tracing::warn!(
                owner = %owner, also = %also, uris = %uris.join(", "),
                "resources listed by two servers; the first one serves them"
            );
        }
    }

    /// A name several servers offer, not listed under `--prefix-mode never`, is worth a warning.
    fn warn_ambiguous(&self) {
        for (name, owners) in self.ambiguous_tools.iter().chain(&self.ambiguous_prompts) {
            tracing::warn!(
                name = %name, servers = %owners.join(", "),
                "name offered by several servers is not listed (--prefix-mode never)"
            );
        }
    }

    /// Lists a server's custom instructions as the prompt `<slug>__instructions`; returns its
    /// name.
    fn push_instructions(
        &mut self,
        server: &str,
        slug: &str,
        messages: &[InstructionMessage],
    ) -> String {
        let name = names::qualify(slug, "instructions");
        let mut prompt = Prompt::new(
            name.clone(),
            Some(format!("Custom instructions for the {server} server")),
            None,
        );
        prompt.title = Some(format!("{server} instructions"));
        self.prompts.push(prompt);
        self.prompt_routes.insert(
            name.clone(),
            PromptRoute::Instructions {
                server: server.to_owned(),
            },
        );
        self.instructions.insert(
            server.to_owned(),
            messages
                .iter()
                .map(|message| {
                    let role = match message.role {
                        InstructionRole::User => Role::User,
                        InstructionRole::Assistant => Role::Assistant,
                    };
                    PromptMessage::new_text(role, message.text.clone())
                })
                .collect(),
        );
        name
    }

    /// How many of each server's tools the catalog lists: what clients see, after the config's
    /// filters and the operator's disabled tools. Servers with none are absent.
    pub fn tools_per_server(&self) -> HashMap<&str, usize> {
        let mut counts = HashMap::new();
        for tool in &self.tools {
            if let Some(route) = self.tool_routes.get(tool.name.as_ref()) {
                *counts.entry(route.server.as_str()).or_default() += 1;
            }
        }
        counts
    }

    /// The route the catalog keeps for a tool's exact name, if any (no prefixed forms).
    pub fn tool_route(&self, name: &str) -> Option<&Route> {
        self.tool_routes.get(name)
    }

    /// The owner of a tool name as a client sends it.
    pub fn resolve_tool(&self, name: &str) -> Result<Route, ResolveError> {
        if let Some(route) = self.tool_routes.get(name) {
            return Ok(route.clone());
        }
        resolve_prefixed(
            "tool",
            name,
            &self.ambiguous_tools,
            &self.prefixes,
            &self.server_tools,
        )
    }

    /// The owner of a prompt name as a client sends it.
    pub fn resolve_prompt(&self, name: &str) -> Result<PromptRoute, ResolveError> {
        if let Some(route) = self.prompt_routes.get(name) {
            return Ok(route.clone());
        }
        resolve_prefixed(
            "prompt",
            name,
            &self.ambiguous_prompts,
            &self.prefixes,
            &self.server_prompts,
        )
        .map(PromptRoute::Downstream)
    }

    /// The configured custom instructions of a server, as prompt messages.
    pub fn instructions(&self, server: &str) -> Option<&[PromptMessage]> {
        self.instructions.get(server).map(Vec::as_slice)
    }

    /// The server that serves a resource URI: the one that listed it, else the first whose
    /// template matches.
    pub fn resolve_resource(&self, uri: &str) -> Option<&str> {
        self.resource_routes
            .get(uri)
            .map(String::as_str)
            .or_else(|| {
                self.template_routes
                    .iter()
                    .find(|(template, _)| template::matches(template, uri))
                    .map(|(_, server)| server.as_str())
            })
    }

    /// The server that listed a resource template.
    pub fn resolve_template(&self, uri_template: &str) -> Option<&str> {
        self.template_routes
            .iter()
            .find(|(template, _)| template == uri_template)
            .map(|(_, server)| server.as_str())
    }
}

fn count_names<'a>(names: impl Iterator<Item = &'a str>) -> HashMap<&'a str, usize> {
    let mut counts = HashMap::new();
    for name in names {
        *counts.entry(name).or_insert(0) += 1;
    }
    counts
}

/// The name to expose, or `None` when `--prefix-mode never` must refuse an ambiguous name.
fn exposed_name(mode: PrefixMode, slug: &str, name: &str, shared: bool) -> Option<String> {
    // A downstream name with control or invisible characters is shown with `_` in their place;
    // the route keeps the original.
    let name = &*sanitize_name(name);
    match mode {
        PrefixMode::Always => Some(names::qualify(slug, name)),
        PrefixMode::Auto if shared => Some(names::qualify(slug, name)),
        PrefixMode::Never if shared => None,
        // Unprefixed names keep the 64-character bound too (found by the property tests).
        PrefixMode::Auto | PrefixMode::Never => Some(names::fit(name, 8)),
    }
}

/// Adds the config's hints to an exposed tool: `alwaysLoad` and `searchHint` into its `_meta`
/// (the server's other keys kept, the configured value winning over the server's own), and a
/// configured description in place of the server's.
fn apply_hint(tool: &mut Tool, hint: &ToolHint) {
    if let Some(description) = &hint.description {
        tool.description = Some(sanitize_text(description).into_owned().into());
    }
    if hint.always_load.is_none() && hint.search_hint.is_none() {
        return;
    }
    let meta = tool.meta.get_or_insert_with(Default::default);
    if let Some(always) = hint.always_load {
        meta.insert(ALWAYS_LOAD.to_owned(), always.into());
    }
    if let Some(words) = &hint.search_hint {
        meta.insert(
            search::SEARCH_HINT.to_owned(),
            sanitize_text(words).into_owned().into(),
        );
    }
}

/// Sanitises a downstream title or description in place (see `security::text`).
fn clean_text(text: &mut Option<String>) {
    if let Some(text) = text
        && let Cow::Owned(clean) = sanitize_text(text)
    {
        *text = clean;
    }
}

fn clean_name(name: &mut String) {
    if let Cow::Owned(clean) = sanitize_name(name) {
        *name = clean;
    }
}

/// Takes `name`, or when it is already taken a deterministic variant of it.
fn claim(taken: &mut HashSet<String>, name: String) -> String {
    if taken.insert(name.clone()) {
        return name;
    }
    let mut n = 2;
    loop {
        let candidate = names::fit(&format!("{name}-{n}"), 12);
        if taken.insert(candidate.clone()) {
            tracing::warn!(name = %name, exposed = %candidate, "name collision, renamed");
            return candidate;
        }
        n += 1;
    }
}

fn resolve_prefixed(
    kind: &'static str,
    name: &str,
    ambiguous: &HashMap<String, Vec<String>>,
    prefixes: &HashMap<String, String>,
    originals: &HashMap<String, HashSet<String>>,
) -> Result<Route, ResolveError> {
    if let Some(servers) = ambiguous.get(name) {
        return Err(ResolveError::Ambiguous {
            kind,
            name: name.to_owned(),
            servers: servers.clone(),
        });
    }
    if let Some((prefix, original)) = names::split(name) {
        let server = prefixes
            .get(prefix)
            .or_else(|| prefixes.get(&prefix.to_ascii_lowercase()));
        if let Some(server) = server
            && originals
                .get(server)
                .is_some_and(|names| names.contains(original))
        {
            return Ok(Route::new(server.clone(), original.to_owned()));
        }
    }
    Err(ResolveError::Unknown {
        kind,
        name: name.to_owned(),
    })
}

/// One page of a list: items from the cursor's offset, and the cursor of the next page.
pub fn page<T: Clone>(
    items: &[T],
    cursor: Option<&str>,
    page_size: usize,
) -> Result<(Vec<T>, Option<String>), InvalidCursor> {
    let start = match cursor {
        None => 0,
        Some(cursor) => cursor
            .parse::<usize>()
            .ok()
            .filter(|offset| *offset <= items.len())
            .ok_or_else(|| InvalidCursor(cursor.to_owned()))?,
    };
    let end = start.saturating_add(page_size.max(1)).min(items.len());
    let next = (end < items.len()).then(|| end.to_string());
    Ok((items[start..end].to_vec(), next))
}

#[derive(Debug, thiserror::Error)]
#[error("invalid cursor \"{0}\"")]
pub struct InvalidCursor(pub String);

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;
