//! Management commands for people: turning servers and tools on and off, workspaces, and the
//! activity figures. They work on the control plane and the config file without connecting to
//! any server, and a running proxy on the same data dir picks their changes up within a second.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "these commands print their result for a person, and `docs add` its progress on stderr"
)]

use std::collections::BTreeSet;
use std::process::ExitCode;

use anyhow::{Context, bail};

use crate::cli::{Command, DocsAction, ServersAction, ToolsAction, WorkspaceAction};
use crate::config::Config;
use crate::control::time::{iso, locale, now_ms, parse_window};
use crate::control::{
    ControlPlane, DocumentCreate, DocumentFilter, DocumentList, DocumentSearch, Workspace,
};
use crate::inspect::print_table;

mod adding;

pub use adding::{Files, add_servers, proxy_entry, registry_url};

/// The workspace name that means "every server".
const ALL: &str = "all";

pub async fn run(
    command: Command,
    control: &dyn ControlPlane,
    config: &Config,
) -> anyhow::Result<ExitCode> {
    match command {
        Command::Servers {
            action: Some(action),
        } => servers(action, control, config).await,
        Command::Tools {
            action: Some(action),
            ..
        } => tools(action, control, config).await,
        Command::Workspace { action } => workspace(action, control, config).await,
        Command::Stats { since } => stats(&since, control).await,
        Command::Docs { action } => docs(action, control).await,
        other => bail!("{other:?} is not a management command"),
    }
}

fn known_server(config: &Config, name: &str) -> anyhow::Result<()> {
    if config.servers.contains_key(name) {
        return Ok(());
    }
    let known: Vec<&str> = config.servers.keys().map(String::as_str).collect();
    bail!(
        "no server named \"{name}\" in the config (servers: {})",
        if known.is_empty() {
            "none".to_owned()
        } else {
            known.join(", ")
        }
    )
}

async fn servers(
    action: ServersAction,
    control: &dyn ControlPlane,
    config: &Config,
) -> anyhow::Result<ExitCode> {
    match action {
        ServersAction::List => {
            let settings = control.settings().await?;
            let rows: Vec<[String; 4]> = config
                .servers
                .iter()
                .map(|(name, server)| {
                    let enabled = if server.disabled {
                        "no (config)"
                    } else if settings.disabled_servers.contains(name) {
                        "no"
                    } else {
                        "yes"
                    };
                    let in_workspace = settings
                        .workspace
                        .as_ref()
                        .is_none_or(|workspace| workspace.servers.contains(name));
                    [
                        name.clone(),
                        server.transport.kind().to_owned(),
                        enabled.to_owned(),
                        if in_workspace { "yes" } else { "no" }.to_owned(),
                    ]
                })
                .collect();
            if rows.is_empty() {
                println!("no servers configured");
            } else {
                print_table(["SERVER", "TRANSPORT", "ENABLED", "IN WORKSPACE"], &rows);
            }
            let workspace = settings
                .workspace
                .map_or_else(|| format!("{ALL} (every server)"), |w| w.name);
            println!("\nworkspace: {workspace}");
        }
        ServersAction::Enable { name } => {
            known_server(config, &name)?;
            control.set_server_enabled(&name, true).await?;
            println!("server {name} enabled");
        }
        ServersAction::Disable { name } => {
            known_server(config, &name)?;
            control.set_server_enabled(&name, false).await?;
            println!("server {name} disabled");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `tools enable|disable NAME`. The name is checked against what a client could call, as far as
/// it is known without connecting: the built-in tools, the config's servers (by slug or UUID)
/// and the tools each offered when a proxy on this data dir last connected to it (the catalog
/// cache). An unknown server or a tool its server did not offer is an error; a server never
/// connected yet cannot be checked, which is said. Enabling a name that is disabled always works
/// (whatever became of its server), so stale settings can be cleared.
async fn tools(
    action: ToolsAction,
    control: &dyn ControlPlane,
    config: &Config,
) -> anyhow::Result<ExitCode> {
    let (name, enabled) = match action {
        ToolsAction::Enable { name } => (name, true),
        ToolsAction::Disable { name } => (name, false),
    };
    let name = name.trim();
    if name.is_empty() {
        bail!("the tool name is empty");
    }
    let name = crate::builtin::canonical(name).unwrap_or(name);
    let disabled = control.settings().await?.disabled_tools;
    if enabled && disabled.contains(name) {
        control.set_tool_enabled(name, true).await?;
        println!("tool {name} enabled");
        return Ok(ExitCode::SUCCESS);
    }
    let known = KnownTools::load(control, config).await?;
    let tool = known.check(name).map_err(anyhow::Error::msg)?;
    if let Some(warning) = tool.warning() {
        eprintln!("warning: {warning}");
    }
    if enabled {
        // Another spelling of the same tool (`<uuid>__…` for `<slug>__…`) may be the disabled one.
        let spellings: Vec<String> = tool
            .spellings()
            .into_iter()
            .filter(|spelling| disabled.contains(spelling))
            .collect();
        if spellings.is_empty() {
            println!("tool {name} is not disabled");
        }
        for spelling in spellings {
            control.set_tool_enabled(&spelling, true).await?;
            println!("tool {spelling} enabled");
        }
    } else {
        control.set_tool_enabled(name, false).await?;
        println!("tool {name} disabled");
    }
    Ok(ExitCode::SUCCESS)
}

/// The tools a client could call, as known without connecting (see [`tools`]).
struct KnownTools {
    servers: Vec<KnownServer>,
    /// The servers come from the plugged.in App, whose own slugs are not known here.
    app: bool,
}

struct KnownServer {
    name: String,
    slug: String,
    uuid: String,
    filter: crate::config::ToolFilter,
    /// The tools it offered when last connected, and when that was; `None` if never.
    cached: Option<(Vec<String>, i64)>,
}

/// A tool name that passed [`KnownTools::check`].
enum CheckedTool<'a> {
    Builtin,
    /// Offered by `server` under `original`; `filtered` when the config's filter hides it.
    Served {
        server: &'a KnownServer,
        original: String,
        filtered: bool,
    },
    /// An unprefixed name that servers offer (exposed so under `--prefix-mode auto|never`).
    Unprefixed,
    /// A server's tool that cannot be checked: the server was never connected.
    Unchecked {
        server: &'a KnownServer,
    },
    /// App mode: a prefix that is none of the config's slugs or UUIDs may be the App's slug.
    AppName,
}

impl KnownTools {
    async fn load(control: &dyn ControlPlane, config: &Config) -> anyhow::Result<KnownTools> {
        let cache = control.cached_servers().await?;
        let names: Vec<&str> = config.servers.keys().map(String::as_str).collect();
        let slugs = crate::names::unique_slugs(names.iter().copied());
        let mut servers = Vec::with_capacity(names.len());
        for ((name, server), slug) in config.servers.iter().zip(slugs) {
            // The App gives its servers their UUIDs; local ones are made (once) in the store.
            let uuid = match server.origin {
                crate::config::Origin::App => cache
                    .iter()
                    .find(|entry| &entry.name == name)
                    .map(|entry| entry.uuid.clone())
                    .unwrap_or_default(),
                crate::config::Origin::LocalFile | crate::config::Origin::Registry => {
                    control.server_uuid(name).await?
                }
            };
            let cached = cache
                .iter()
                .find(|entry| !uuid.is_empty() && entry.uuid == uuid)
                .and_then(|entry| {
                    let lists = crate::catalog::ServerLists::from_json(&entry.lists)?;
                    let tools = lists.tools.iter().map(|t| t.name.to_string()).collect();
                    Some((tools, entry.updated_at))
                });
            servers.push(KnownServer {
                name: name.clone(),
                slug,
                uuid,
                filter: server.tools.clone(),
                cached,
            });
        }
        let app = config
            .servers
            .values()
            .any(|server| server.origin == crate::config::Origin::App);
        Ok(KnownTools { servers, app })
    }

    fn server_names(&self) -> String {
        if self.servers.is_empty() {
            return "none configured".to_owned();
        }
        let names: Vec<&str> = self.servers.iter().map(|s| s.name.as_str()).collect();
        names.join(", ")
    }

    fn check(&self, name: &str) -> Result<CheckedTool<'_>, String> {
        use crate::names::qualify;
        if crate::builtin::canonical(name).is_some() {
            return Ok(CheckedTool::Builtin);
        }
        let Some((prefix, rest)) = name.split_once("__") else {
            let offered = self.servers.iter().any(|server| {
                server
                    .cached
                    .as_ref()
                    .is_some_and(|(tools, _)| tools.iter().any(|tool| tool == name))
            });
            return if offered {
                Ok(CheckedTool::Unprefixed)
            } else {
                Err(format!(
                    "no tool named \"{name}\": a server's tool is named <server>__<tool> (see \
                     `pluggedin-mcp-proxy tools`), a built-in one pluggedin_…"
                ))
            };
        };
        let Some(server) = self.servers.iter().find(|server| {
            server.slug == prefix || (!server.uuid.is_empty() && server.uuid == prefix)
        }) else {
            if self.app {
                return Ok(CheckedTool::AppName);
            }
            return Err(format!(
                "no server \"{prefix}\" for the tool \"{name}\" (servers: {})",
                self.server_names()
            ));
        };
        let Some((tools, updated_at)) = &server.cached else {
            return Ok(CheckedTool::Unchecked { server });
        };
        let found = tools.iter().find(|tool| {
            qualify(&server.slug, tool) == name || qualify(&server.uuid, tool) == name
        });
        match found {
            Some(original) => Ok(CheckedTool::Served {
                server,
                original: original.clone(),
                filtered: !server.filter.permits(original),
            }),
            None => Err(format!(
                "server \"{}\" offers no tool \"{rest}\" (as of {}, when it was last \
                 connected; `pluggedin-mcp-proxy tools` lists the tools)",
                server.name,
                iso(*updated_at)
            )),
        }
    }
}

impl CheckedTool<'_> {
    /// What the operator should know about a name that is accepted.
    fn warning(&self) -> Option<String> {
        match self {
            CheckedTool::Served {
                server,
                original,
                filtered: true,
            } => Some(format!(
                "the config's tools filter of server \"{}\" already hides \"{original}\"",
                server.name
            )),
            CheckedTool::Unchecked { server } => Some(format!(
                "server \"{}\" has not been connected with this data dir yet, so its tool names \
                 cannot be checked",
                server.name
            )),
            CheckedTool::Unprefixed => Some(
                "a server offers this name, which clients see unprefixed only under \
                 --prefix-mode auto or never; otherwise it is <server>__<tool>"
                    .to_owned(),
            ),
            CheckedTool::AppName => Some(
                "the name's prefix is none of the known servers' slugs or UUIDs; it applies if \
                 the App lists a tool under exactly this name"
                    .to_owned(),
            ),
            _ => None,
        }
    }

    /// The spellings under which this tool may have been disabled.
    fn spellings(&self) -> Vec<String> {
        use crate::names::qualify;
        match self {
            CheckedTool::Served {
                server, original, ..
            } => vec![
                qualify(&server.slug, original),
                qualify(&server.uuid, original),
            ],
            _ => Vec::new(),
        }
    }
}

async fn workspace(
    action: WorkspaceAction,
    control: &dyn ControlPlane,
    config: &Config,
) -> anyhow::Result<ExitCode> {
    match action {
        WorkspaceAction::List => {
            let active = control.active_workspace().await?;
            let mut rows = vec![[
                if active.is_none() { "*" } else { "" }.to_owned(),
                ALL.to_owned(),
                "(every server)".to_owned(),
            ]];
            for workspace in control.workspaces().await? {
                let servers: Vec<&str> = workspace.servers.iter().map(String::as_str).collect();
                rows.push([
                    if active.as_deref() == Some(workspace.name.as_str()) {
                        "*"
                    } else {
                        ""
                    }
                    .to_owned(),
                    workspace.name.clone(),
                    servers.join(", "),
                ]);
            }
            print_table(["", "WORKSPACE", "SERVERS"], &rows);
        }
        WorkspaceAction::Create { name, servers } => {
            if name == ALL || name.trim().is_empty() {
                bail!("\"{name}\" cannot be a workspace name");
            }
            for server in &servers {
                known_server(config, server)?;
            }
            let servers: BTreeSet<String> = servers.into_iter().collect();
            if !control
                .create_workspace(Workspace {
                    name: name.clone(),
                    servers,
                })
                .await?
            {
                bail!("workspace \"{name}\" already exists");
            }
            println!("workspace {name} created");
        }
        WorkspaceAction::Switch { name } => {
            let target = (name != ALL).then_some(name.as_str());
            if !control.switch_workspace(target).await? {
                bail!("no workspace named \"{name}\" (see `workspace list`)");
            }
            println!("workspace {name} is active");
        }
        WorkspaceAction::Delete { name } => {
            if !control.delete_workspace(&name).await? {
                bail!("no workspace named \"{name}\"");
            }
            println!("workspace {name} deleted");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn stats(since: &str, control: &dyn ControlPlane) -> anyhow::Result<ExitCode> {
    let window = parse_window(since)
        .with_context(|| format!("--since {since:?}: expected a number and s, m, h, d or w"))?;
    let from = now_ms().saturating_sub(window);
    let stats = control.activity_stats(from).await?;
    let refused = control.rate_limited(from).await?;
    println!("activity since {} (last {since})\n", iso(from));
    if stats.is_empty() {
        println!("no activity recorded in this window");
    } else {
        let rows: Vec<[String; 6]> = stats
            .iter()
            .map(|row| {
                [
                    row.server_name.clone(),
                    row.item.clone(),
                    row.calls.to_string(),
                    format!(
                        "{:.1}%",
                        row.errors as f64 * 100.0 / row.calls.max(1) as f64
                    ),
                    format!("{}ms", row.p50_ms),
                    format!("{}ms", row.p95_ms),
                ]
            })
            .collect();
        print_table(["SERVER", "TOOL", "CALLS", "ERRORS", "P50", "P95"], &rows);
    }
    let total = refused.tool_calls + refused.requests;
    if total > 0 {
        println!(
            "\nrefused by the HTTP rate limit: {total} requests ({} tool calls, {} other requests)",
            refused.tool_calls, refused.requests
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// How many files `docs add` reads and stores at a time: enough to amortise the trip to the
/// store's thread, few enough to keep memory small on large folders.
const ADD_BATCH: usize = 256;
/// A batch also ends once its content reaches this size: a batch is one transaction, and other
/// processes on the data dir wait for its write lock, so it must end well within their busy
/// timeout. Indexing runs at several MB per second, so a batch (this much plus at most one file
/// of 10 MB) holds the lock for a second or two; the commit a batch saves matters for small
/// files, not for large ones.
const ADD_BATCH_BYTES: usize = 8 * 1024 * 1024;
/// From this many files on, `docs add` shows its progress.
const PROGRESS_FROM: usize = 200;

async fn docs(action: DocsAction, control: &dyn ControlPlane) -> anyhow::Result<ExitCode> {
    match action {
        DocsAction::Add { paths, tags } => return docs_add(&paths, &tags, control).await,
        DocsAction::List { limit, offset } => {
            let (documents, total) = control
                .list_documents(DocumentList {
                    limit: limit.max(1),
                    offset,
                    ..DocumentList::default()
                })
                .await?;
            if documents.is_empty() {
                println!("no documents (total {total})");
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<[String; 6]> = documents
                .iter()
                .map(|d| {
                    [
                        d.id.clone(),
                        d.title.clone(),
                        d.format.clone(),
                        d.source.clone(),
                        d.size_bytes.to_string(),
                        iso(d.created_at),
                    ]
                })
                .collect();
            print_table(
                ["ID", "TITLE", "FORMAT", "SOURCE", "BYTES", "CREATED"],
                &rows,
            );
            println!("\n{} of {total} document(s)", documents.len());
        }
        DocsAction::Search {
            query,
            limit,
            tags,
            source,
        } => {
            let hits = control
                .search_documents(DocumentSearch {
                    query: query.clone(),
                    filter: DocumentFilter {
                        tags,
                        source,
                        ..DocumentFilter::default()
                    },
                    limit: limit.max(1),
                })
                .await?;
            if hits.is_empty() {
                println!("nothing matches \"{query}\"");
            }
            for (index, hit) in hits.iter().enumerate() {
                println!(
                    "{}. {} [{}] {:.1}%\n   {}\n",
                    index + 1,
                    hit.document.title,
                    hit.document.id,
                    hit.relevance * 100.0,
                    hit.snippet
                );
            }
        }
        DocsAction::Show { id, versions } => {
            let Some((document, history)) = control.get_document(&id, true, versions).await? else {
                bail!("no document with id {id}");
            };
            println!("{}\n", document.title);
            println!("id:         {}", document.id);
            println!("format:     {}", document.format);
            println!("source:     {}", document.source);
            println!("visibility: {}", document.visibility);
            if let Some(model) = &document.model {
                println!("model:      {} ({})", model.name, model.provider);
            }
            if !document.tags.is_empty() {
                println!("tags:       {}", document.tags.join(", "));
            }
            if let Some(file) = &document.file_name {
                println!("file:       {file}");
            }
            println!("version:    {}", document.version);
            println!("created:    {}", locale(document.created_at));
            println!("updated:    {}", locale(document.updated_at));
            println!("sha256:     {}", document.content_hash);
            for version in &history {
                let by = version
                    .created_by
                    .as_ref()
                    .map(|m| format!(" by {}", m.name))
                    .unwrap_or_default();
                let summary = version
                    .change_summary
                    .as_ref()
                    .map(|s| format!(" - {s}"))
                    .unwrap_or_default();
                println!(
                    "  v{} {}{by}{summary}",
                    version.version,
                    iso(version.created_at)
                );
            }
            println!("\n{}", document.content);
        }
        DocsAction::Rm { id } => {
            if !control.delete_document(&id).await? {
                bail!("no document with id {id}");
            }
            println!("removed {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads and stores files in batches; one transaction per document, so a failure leaves no
/// trace of that document and does not stop the others. Files that are not documents (binary,
/// empty, too large, PDFs without text) are skipped; exits 1 only if a file failed (could not be
/// read or stored).
async fn docs_add(
    paths: &[std::path::PathBuf],
    tags: &[String],
    control: &dyn ControlPlane,
) -> anyhow::Result<ExitCode> {
    let (files, mut failed) = crate::ingest::files(paths);
    let progress = files.len() >= PROGRESS_FROM;
    let (mut added, mut duplicates, mut skipped) = (0usize, Vec::new(), Vec::new());
    let (mut names, mut documents, mut bytes) = (Vec::new(), Vec::new(), 0usize);
    for (index, path) in files.iter().enumerate() {
        match crate::ingest::read(path) {
            Ok(mut document) => {
                document.tags = tags.to_vec();
                bytes += document.content.len();
                names.push(path.clone());
                documents.push(document);
            }
            Err(error) if error.is_skip() => skipped.push((path.clone(), error.to_string())),
            Err(error) => failed.push((path.clone(), error.to_string())),
        }
        let batch_done =
            index + 1 == files.len() || documents.len() >= ADD_BATCH || bytes >= ADD_BATCH_BYTES;
        if !batch_done {
            continue;
        }
        if !documents.is_empty() {
            let stored = control
                .create_documents(std::mem::take(&mut documents))
                .await;
            for (path, outcome) in names.drain(..).zip(stored) {
                match outcome {
                    Ok(DocumentCreate::Created(_)) => added += 1,
                    Ok(DocumentCreate::Duplicate(existing)) => {
                        duplicates.push((path, existing.id, existing.title));
                    }
                    Err(error) => failed.push((path, format!("cannot store it: {error}"))),
                }
            }
            bytes = 0;
        }
        if progress {
            eprint!("\r{}/{} files", index + 1, files.len());
        }
    }
    if progress {
        eprintln!();
    }
    println!(
        "added {added}, duplicates {}, skipped {}, failed {}",
        duplicates.len(),
        skipped.len(),
        failed.len()
    );
    for (path, id, title) in &duplicates {
        println!(
            "duplicate: {} (same content as {id} \"{title}\")",
            path.display()
        );
    }
    for (path, reason) in &skipped {
        println!("skipped: {}: {reason}", path.display());
    }
    for (path, reason) in &failed {
        println!("failed: {}: {reason}", path.display());
    }
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
