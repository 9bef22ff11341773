//! Where the servers and the catalog come from: the local config ([`Source::Local`]) or the
//! plugged.in App ([`Source::App`]). Every difference between the two modes is a method here:
//! how a catalog is built (the servers' lists with the config's filters and the operator's
//! disabled tools, or the App's lists), who owns a prompt or a resource (the catalog, the
//! document library, or the App's resolver), what `resources/list` holds, and whether a first
//! look waits for the servers. Forwarding to an owner is left to the router.

use std::collections::HashMap;
use std::sync::Arc;

use super::error::RouteError;
use crate::builtin::Builtins;
use crate::catalog::{
    AppServerEntry, Catalog, InvalidCursor, PromptRoute, ServerEntry, ServerLists, page,
};
use crate::config::{ToolFilter, ToolHints};
use crate::control::Settings;
use crate::control::app::{AppError, AppMode};
use crate::downstream::Downstream;
use crate::names::PrefixMode;

/// Local mode (the config file's servers, the local library) or App mode.
pub(super) enum Source {
    Local,
    /// The App's server list and catalog, kept by `AppMode`.
    App(Arc<AppMode>),
}

/// Who serves a prompt or a resource, as the source says.
pub(super) enum Owner {
    /// Resolved in the catalog (local mode, and a server's custom instructions in App mode).
    Catalog,
    /// A document of the local library (`pluggedin://documents/<id>`).
    Library,
    /// The server the App's resolver named by its UUID, or why it named none.
    App(Result<String, AppError>),
}

/// Local mode, until the router is switched to App mode.
pub(super) static LOCAL: Source = Source::Local;

impl Source {
    /// App mode's state, when in App mode.
    pub(super) fn app(&self) -> Option<&Arc<AppMode>> {
        match self {
            Source::Local => None,
            Source::App(app) => Some(app),
        }
    }

    /// Whether a client's first look waits for servers still connecting for the first time. Not
    /// in App mode: there the catalog comes whole from the App (or its saved copy), and only
    /// calls wait for the servers they need.
    pub(super) fn first_look_waits(&self) -> bool {
        matches!(self, Source::Local)
    }

    /// A client asked for the tool list (its first page). In App mode the App's tool list is
    /// read again at the next refresh, as the original read it for every `tools/list`.
    pub(super) fn tools_listed(&self) {
        if let Source::App(app) = self {
            app.tools_listed();
        }
    }

    /// The catalog of `servers` (the visible ones) with their `lists`, before the built-in tools
    /// are added: from the servers' lists in local mode, through their config's tool filters
    /// with the tools the operator disabled denied at their owners; from the App's lists in App
    /// mode, less the disabled tools.
    pub(super) fn build(
        &self,
        servers: &[Arc<Downstream>],
        lists: &[Arc<ServerLists>],
        settings: &Settings,
        hints: &HashMap<String, ToolHints>,
        mode: PrefixMode,
    ) -> Catalog {
        if let Source::App(app) = self {
            let identities = app.servers();
            let entries: Vec<AppServerEntry<'_>> = servers
                .iter()
                .map(|server| AppServerEntry {
                    name: &server.name,
                    uuid: &server.uuid,
                    instructions: server.config.instructions.as_deref(),
                    slug: identities
                        .identities
                        .iter()
                        .find(|identity| identity.name == server.name)
                        .and_then(|identity| identity.slug.as_deref()),
                })
                .collect();
            let mut catalog = Catalog::from_app(&app.catalog(), &entries);
            catalog
                .tools
                .retain(|tool| !settings.disabled_tools.contains(tool.name.as_ref()));
            return catalog;
        }
        let no_hints = ToolHints::default();
        let build = |filters: &[ToolFilter]| {
            let entries: Vec<ServerEntry<'_>> = servers
                .iter()
                .zip(lists)
                .zip(filters)
                .map(|((server, lists), filter)| ServerEntry {
                    name: &server.name,
                    slug: &server.slug,
                    uuid: &server.uuid,
                    filter,
                    lists,
                    instructions: server.config.instructions.as_deref(),
                    hints: hints.get(&server.name).unwrap_or(&no_hints),
                })
                .collect();
            Catalog::build(&entries, mode)
        };
        let mut filters: Vec<ToolFilter> = servers
            .iter()
            .map(|server| server.config.tools.clone())
            .collect();
        let mut catalog = build(&filters);
        // Disabled tools: resolve each name against the full catalog (any spelling a client
        // could call: exposed, `<slug>__`, `<uuid>__`), deny it at its owner, and build again.
        let mut denied = false;
        for name in &settings.disabled_tools {
            if let Ok(route) = catalog.resolve_tool(name)
                && let Some(index) = servers
                    .iter()
                    .position(|server| server.name == route.server)
            {
                filters[index].deny.push(route.original);
                denied = true;
            }
        }
        if denied {
            catalog = build(&filters);
        }
        catalog
    }

    /// Who owns the prompt `name`: in App mode the App resolves every prompt except the servers'
    /// custom instructions, which `catalog` answers.
    pub(super) async fn prompt_owner(&self, catalog: &Catalog, name: &str) -> Owner {
        match self {
            Source::App(app)
                if !matches!(
                    catalog.resolve_prompt(name),
                    Ok(PromptRoute::Instructions { .. })
                ) =>
            {
                Owner::App(app.resolve_prompt(name).await)
            }
            _ => Owner::Catalog,
        }
    }

    /// Who owns the resource `uri`: the App's resolver in App mode (the App's documents stay in
    /// the App); in local mode the library for its document URIs, else the catalog.
    pub(super) async fn resource_owner(&self, uri: &str) -> Owner {
        match self {
            Source::App(app) => Owner::App(app.resolve_resource(uri).await),
            Source::Local if Builtins::is_document_uri(uri) => Owner::Library,
            Source::Local => Owner::Catalog,
        }
    }

    /// A page of `resources/list`. In local mode the servers' resources, then the library's
    /// documents (`pluggedin://documents/<id>`, newest first), paged together by one offset
    /// cursor; in App mode the App's resources.
    pub(super) async fn list_resources(
        &self,
        catalog: &Catalog,
        cursor: Option<&str>,
        page_size: usize,
        builtins: &Builtins,
    ) -> Result<(Vec<rmcp::model::Resource>, Option<String>), RouteError> {
        if let Source::App(_) = self {
            return Ok(page(&catalog.resources, cursor, page_size)?);
        }
        let served = catalog.resources.len();
        let start = match cursor {
            None => 0,
            Some(text) => text
                .parse::<usize>()
                .map_err(|_| InvalidCursor(text.to_owned()))?,
        };
        let page_size = page_size.max(1);
        let mut items: Vec<rmcp::model::Resource> = catalog
            .resources
            .iter()
            .skip(start)
            .take(page_size)
            .cloned()
            .collect();
        let room = (page_size - items.len()) as u32;
        let (documents, total) = builtins
            .document_resources(start.saturating_sub(served) as u64, room.max(1))
            .await
            .map_err(|error| RouteError::Library(error.to_string()))?;
        if start > served + total as usize {
            return Err(InvalidCursor(start.to_string()).into());
        }
        items.extend(documents.into_iter().take(room as usize));
        let end = start + items.len();
        let next = (end < served + total as usize).then(|| end.to_string());
        Ok((items, next))
    }
}
