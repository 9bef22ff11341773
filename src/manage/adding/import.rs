//! The `import` command: which clients, which project, the `--input` values given, a question
//! on the terminal for any other value only a client knew, and the printed report (what was
//! found where, added, already there, not imported and why, replaced). `--restore` puts the
//! clients' files back. The import itself is `crate::import`'s.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};

use super::{Files, ask_line, pairs};
use crate::import::{self, Client, ImportOptions, Input, Platform};
use crate::inspect::print_table;

/// The `import` flags besides the clients.
pub(super) struct Flags {
    pub(super) project: Option<PathBuf>,
    pub(super) dry_run: bool,
    pub(super) replace: bool,
    /// `--input ID=VALUE`, as given.
    pub(super) inputs: Vec<String>,
}

/// The clients named on the command line: one, or `all`.
pub(super) fn clients(name: &str) -> anyhow::Result<Vec<Client>> {
    Ok(match name {
        "all" => Client::ALL.to_vec(),
        name => vec![Client::parse(name).with_context(|| {
            format!(
                "unknown client \"{name}\" (expected {}, or all)",
                Client::ALL.map(Client::name).join(", ")
            )
        })?],
    })
}

/// Imports the clients' servers and prints the report.
pub(super) fn import(
    clients: Vec<Client>,
    flags: Flags,
    files: &Files,
) -> anyhow::Result<ExitCode> {
    let project = match flags.project {
        Some(dir) => {
            std::path::absolute(&dir).with_context(|| format!("--project {}", dir.display()))?
        }
        None => std::env::current_dir().context("the current directory")?,
    };
    let options = ImportOptions {
        clients,
        project,
        dry_run: flags.dry_run,
        replace: flags.replace,
        inputs: pairs("--input", &flags.inputs)?,
        config_path: std::path::absolute(&files.config).unwrap_or(files.config.clone()),
        data_dir: files.data_dir.clone(),
        proxy: proxy_entry(files)?,
    };
    let mut ask = |server: &str, input: &Input| ask_input(server, input);
    let report =
        import::run(&options, &Platform::current(), &mut ask).map_err(anyhow::Error::msg)?;
    Ok(print_import(&report))
}

/// How the clients start the proxy after `--replace`: this binary, with this config (and data
/// dir, when one was given).
pub fn proxy_entry(files: &Files) -> anyhow::Result<import::replace::ProxyEntry> {
    let exe = std::env::current_exe().context("the proxy's own path")?;
    let exe = std::fs::canonicalize(&exe).unwrap_or(exe);
    let mut args = vec![
        "--config".to_owned(),
        std::path::absolute(&files.config)
            .unwrap_or(files.config.clone())
            .to_string_lossy()
            .into_owned(),
    ];
    if files.explicit_data_dir
        && let Some(dir) = &files.data_dir
    {
        args.push("--data-dir".into());
        args.push(
            std::path::absolute(dir)
                .unwrap_or(dir.clone())
                .to_string_lossy()
                .into_owned(),
        );
    }
    Ok(import::replace::ProxyEntry {
        command: exe.to_string_lossy().into_owned(),
        args,
    })
}

/// Asks for the value of a client's input (`${input:id}`) on the terminal.
fn ask_input(server: &str, input: &Input) -> Option<String> {
    let about = if input.description.is_empty() {
        String::new()
    } else {
        format!(" ({})", input.description)
    };
    ask_line(
        &format!("server \"{server}\" needs ${{input:{}}}{about}", input.id),
        input.secret,
    )
}

#[allow(clippy::print_stdout, reason = "the command's report for a person")]
fn print_import(report: &import::ImportReport) -> ExitCode {
    let rows: Vec<[String; 4]> = report
        .sources
        .iter()
        .filter(|source| source.servers.is_some() || source.error.is_some())
        .map(|source| {
            [
                source.client.name().to_owned(),
                format!("{:?}", source.scope).to_lowercase(),
                source.path.display().to_string(),
                match (&source.error, source.servers) {
                    (Some(error), _) => format!("error: {error}"),
                    (None, Some(count)) => format!("{count} server(s)"),
                    (None, None) => String::new(),
                },
            ]
        })
        .collect();
    if rows.is_empty() {
        println!(
            "no client configs found (looked in {} places)",
            report.sources.len()
        );
    } else {
        print_table(["CLIENT", "SCOPE", "FILE", "FOUND"], &rows);
    }
    let verb = if report.dry_run { "would add" } else { "added" };
    if report.added.is_empty() {
        println!("\nnothing new to add to {}", report.config.display());
    } else {
        println!(
            "\n{verb} {} server(s) to {}:",
            report.added.len(),
            report.config.display()
        );
        for added in &report.added {
            let renamed = added
                .renamed_from
                .as_ref()
                .map(|original| {
                    format!(" (renamed: the config already has a different \"{original}\")")
                })
                .unwrap_or_default();
            println!(
                "  {}  from {}{renamed}  {}  {}",
                added.name,
                added.client.name(),
                added.transport,
                added.target
            );
        }
    }
    for same in &report.unchanged {
        println!(
            "already there: {} (same as {}'s)",
            same.name,
            same.client.name()
        );
    }
    let mut failed = false;
    for skipped in &report.skipped {
        println!(
            "not imported: {} from {}: {}",
            skipped.name,
            skipped.client.name(),
            skipped.reason
        );
        failed |= skipped.reason != "it starts this proxy";
    }
    for replaced in &report.replaced {
        println!(
            "replaced: {} now starts only the proxy (backup: {})",
            replaced.path.display(),
            replaced.backup.display()
        );
    }
    if !report.dry_run && !report.added.is_empty() {
        println!("a running proxy on this config picks the new servers up by itself");
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

#[allow(clippy::print_stdout, reason = "the command's report for a person")]
pub(super) fn restore_clients(clients: &[Client], files: &Files) -> anyhow::Result<ExitCode> {
    let Some(data_dir) = &files.data_dir else {
        bail!("--restore needs the data dir the --replace kept its backups in");
    };
    let outcomes = import::replace::restore(clients, data_dir).map_err(anyhow::Error::msg)?;
    if outcomes.is_empty() {
        println!("nothing to restore: no client config was replaced (with this data dir)");
    }
    let mut refused = false;
    for outcome in &outcomes {
        match outcome.outcome {
            "restored" => println!("restored {} as it was", outcome.path.display()),
            "servers-restored" => println!(
                "restored the servers of {}; its other changes since were kept",
                outcome.path.display()
            ),
            _ => {
                refused = true;
                println!(
                    "not restored: {}: {}",
                    outcome.path.display(),
                    outcome.reason.as_deref().unwrap_or_default()
                );
            }
        }
    }
    Ok(if refused {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
