//! `import` and `registry`: the commands that add servers to the config file. The work is done
//! by `import` and `registry` (shared with the HTTP API); this is the person's side: parsing
//! `KEY=VALUE` flags, asking on a terminal for what is missing, printing what happened. The
//! `import` command is in `adding/import.rs`, the `registry` command in `adding/registry.rs`;
//! what both use (the files they work on, flags, the terminal) is here.

mod import;
mod registry;

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;

use crate::cli::Command;

pub use import::proxy_entry;
pub use registry::registry_url;

/// The files these commands work on.
pub struct Files {
    /// The config file (found, given, or where a new one goes).
    pub config: PathBuf,
    pub data_dir: Option<PathBuf>,
    /// `--data-dir` was given (the proxy entry written into clients then passes it on).
    pub explicit_data_dir: bool,
    /// An API key is set: servers come from the App.
    pub app_mode: bool,
}

/// Runs `import` or `registry`.
pub async fn add_servers(command: Command, files: &Files) -> anyhow::Result<ExitCode> {
    match command {
        Command::Import {
            client,
            dry_run,
            replace,
            restore,
            project,
            inputs,
        } => {
            if files.app_mode {
                bail!(
                    "App mode: the servers come from the plugged.in App, not from the config file; \
                     add them in the App (it imports Claude Desktop configs and installs servers \
                     from its registry). Run without an API key to import into the local file"
                );
            }
            let clients = import::clients(&client)?;
            if restore {
                return import::restore_clients(&clients, files);
            }
            let flags = import::Flags {
                project,
                dry_run,
                replace,
                inputs,
            };
            import::import(clients, flags, files)
        }
        Command::Registry {
            registry_url,
            action,
        } => {
            if files.app_mode {
                bail!(
                    "App mode: servers come from the plugged.in App, whose registry finds, installs \
                     and tracks servers (community servers included) for your profile; add them \
                     there. `registry` adds to the local config file, which App mode does not serve"
                );
            }
            registry::registry_command(registry_url, action, files).await
        }
        other => bail!("{other:?} does not add servers"),
    }
}

/// `KEY=VALUE` flags into a map; a flag without `=` is an error naming it.
fn pairs(flag: &str, items: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    items
        .iter()
        .map(|item| match item.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => {
                Ok((key.trim().to_owned(), value.to_owned()))
            }
            _ => bail!("{flag} {item:?}: expected KEY=VALUE"),
        })
        .collect()
}

/// Reads one line from the terminal, its echo off for a secret. `None` without a terminal.
fn ask_line(prompt: &str, secret: bool) -> Option<String> {
    if !std::io::stdin().is_terminal() {
        return None;
    }
    let mut stderr = std::io::stderr();
    let _ = write!(stderr, "{prompt}: ");
    let _ = stderr.flush();
    let echo_off = secret && set_echo(false);
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    if echo_off {
        set_echo(true);
        let _ = writeln!(stderr);
    }
    read.ok()?;
    let line = line.trim_end_matches(['\r', '\n']).to_owned();
    (!line.is_empty()).then_some(line)
}

/// Turns the terminal's echo on or off (`stty`, which works on the terminal it is given).
fn set_echo(on: bool) -> bool {
    std::process::Command::new("stty")
        .arg(if on { "echo" } else { "-echo" })
        .stdin(std::process::Stdio::inherit())
        .status()
        .is_ok_and(|status| status.success())
}
