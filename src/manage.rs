//! Management commands for people: turning servers and tools on and off, workspaces, the
//! activity figures and the document library. They work on the control plane and the config
//! file without connecting to any server, and a running proxy on the same data dir picks their
//! changes up within a second. `servers`, `workspace` and `stats` are here; `tools` checks a
//! tool's name before it is turned off or on, `docs` stores and reads documents, and `adding`
//! is the person's side of `import` and `registry`.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "these commands print their result for a person, and `docs add` its progress on stderr"
)]

use std::collections::BTreeSet;
use std::process::ExitCode;

use anyhow::{Context, bail};

use crate::cli::{Command, ServersAction, WorkspaceAction};
use crate::config::{Config, ToolExposure};
use crate::control::time::{iso, now_ms, parse_window};
use crate::control::{ControlPlane, Workspace};
use crate::inspect::print_table;

mod adding;
mod docs;
mod tools;

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
        } => tools::set_enabled(action, control, config).await,
        Command::Workspace { action } => workspace(action, control, config).await,
        Command::Stats { since } => stats(&since, control).await,
        Command::Docs { action } => docs::run(action, control).await,
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
                "default".to_owned(),
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
                    workspace
                        .tool_exposure
                        .map_or("default", ToolExposure::as_str)
                        .to_owned(),
                ]);
            }
            print_table(["", "WORKSPACE", "SERVERS", "TOOL EXPOSURE"], &rows);
        }
        WorkspaceAction::Create {
            name,
            servers,
            tool_exposure,
        } => {
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
                    tool_exposure,
                })
                .await?
            {
                bail!("workspace \"{name}\" already exists");
            }
            println!("workspace {name} created");
        }
        WorkspaceAction::Set {
            name,
            tool_exposure,
        } => {
            let exposure =
                match tool_exposure.as_str() {
                    "default" => None,
                    other => Some(other.parse::<ToolExposure>().map_err(|why| {
                        anyhow::anyhow!("--tool-exposure: {why}, nor \"default\"")
                    })?),
                };
            if !control.set_workspace_exposure(&name, exposure).await? {
                bail!("no workspace named \"{name}\" (see `workspace list`)");
            }
            let shown = exposure.map_or("default", ToolExposure::as_str);
            println!("workspace {name}: tool exposure {shown}");
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
    if let Some(fleet) = control.fleet() {
        let owners = fleet.server_owners().await?;
        if !owners.is_empty() {
            println!("\nservers of fleet scope, each run by one replica:\n");
            let rows: Vec<[String; 3]> = owners
                .into_iter()
                .map(|(server, replica)| [server, replica.id.to_string(), replica.url])
                .collect();
            print_table(["SERVER", "REPLICA", "URL"], &rows);
        }
    }
    Ok(ExitCode::SUCCESS)
}
