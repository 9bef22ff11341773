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
        } => tools(action, control).await,
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

async fn tools(action: ToolsAction, control: &dyn ControlPlane) -> anyhow::Result<ExitCode> {
    let (name, enabled) = match action {
        ToolsAction::Enable { name } => (name, true),
        ToolsAction::Disable { name } => (name, false),
    };
    let name = name.trim();
    if name.is_empty() {
        bail!("the tool name is empty");
    }
    if !name.contains("__") && crate::builtin::canonical(name).is_none() {
        tracing::warn!(
            "\"{name}\" is neither <server>__<tool> nor a built-in tool; it applies if a tool is \
             exposed under exactly this name"
        );
    }
    let name = crate::builtin::canonical(name).unwrap_or(name);
    control.set_tool_enabled(name, enabled).await?;
    println!(
        "tool {name} {}",
        if enabled { "enabled" } else { "disabled" }
    );
    Ok(ExitCode::SUCCESS)
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
    println!("activity since {} (last {since})\n", iso(from));
    if stats.is_empty() {
        println!("no activity recorded in this window");
        return Ok(ExitCode::SUCCESS);
    }
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
/// trace of that document and does not stop the others. Exits 1 if any file failed.
async fn docs_add(
    paths: &[std::path::PathBuf],
    tags: &[String],
    control: &dyn ControlPlane,
) -> anyhow::Result<ExitCode> {
    let (files, mut failed) = crate::ingest::files(paths);
    let progress = files.len() >= PROGRESS_FROM;
    let (mut added, mut duplicates) = (0usize, Vec::new());
    let (mut names, mut documents, mut bytes) = (Vec::new(), Vec::new(), 0usize);
    for (index, path) in files.iter().enumerate() {
        match crate::ingest::read(path) {
            Ok(mut document) => {
                document.tags = tags.to_vec();
                bytes += document.content.len();
                names.push(path.clone());
                documents.push(document);
            }
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
        "added {added}, duplicates {}, failed {}",
        duplicates.len(),
        failed.len()
    );
    for (path, id, title) in &duplicates {
        println!(
            "duplicate: {} (same content as {id} \"{title}\")",
            path.display()
        );
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
