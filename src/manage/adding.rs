//! `import` and `registry`: the commands that add servers to the config file. The work is done
//! by `import` and `registry` (shared with the HTTP API); this is the person's side: parsing
//! `KEY=VALUE` flags, asking on a terminal for what is missing, printing what happened.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};

use crate::cli::{Command, RegistryAction};
use crate::import::{self, Client, ImportOptions, Input, Platform};
use crate::inspect::print_table;
use crate::registry::install::{self, AddError, AddRequest, Target};
use crate::registry::{self, Registry};

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
            let clients = match client.as_str() {
                "all" => Client::ALL.to_vec(),
                name => vec![Client::parse(name).with_context(|| {
                    format!(
                        "unknown client \"{name}\" (expected {}, or all)",
                        Client::ALL.map(Client::name).join(", ")
                    )
                })?],
            };
            if restore {
                return restore_clients(&clients, files);
            }
            let project = match project {
                Some(dir) => std::path::absolute(&dir)
                    .with_context(|| format!("--project {}", dir.display()))?,
                None => std::env::current_dir().context("the current directory")?,
            };
            let options = ImportOptions {
                clients,
                project,
                dry_run,
                replace,
                inputs: pairs("--input", &inputs)?,
                config_path: std::path::absolute(&files.config).unwrap_or(files.config.clone()),
                data_dir: files.data_dir.clone(),
                proxy: proxy_entry(files)?,
            };
            let mut ask = |server: &str, input: &Input| ask_input(server, input);
            let report = import::run(&options, &Platform::current(), &mut ask)
                .map_err(anyhow::Error::msg)?;
            Ok(print_import(&report))
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
            registry_command(registry_url, action, files).await
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
fn restore_clients(clients: &[Client], files: &Files) -> anyhow::Result<ExitCode> {
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

/// The registry to ask: `--registry-url`, else the config's `registryUrl`, else the official.
pub fn registry_url(flag: Option<String>, config: &std::path::Path) -> anyhow::Result<String> {
    if let Some(url) = flag {
        return Ok(url);
    }
    let file = crate::config::edit::ConfigFile::open(config).map_err(anyhow::Error::msg)?;
    match file.top_level("registryUrl") {
        None | Some(serde_json::Value::Null) => Ok(registry::OFFICIAL_URL.to_owned()),
        Some(serde_json::Value::String(url)) => Ok(url),
        Some(_) => bail!("{}: \"registryUrl\" must be a URL string", config.display()),
    }
}

#[allow(clippy::print_stdout, reason = "the command's report for a person")]
async fn registry_command(
    flag: Option<String>,
    action: RegistryAction,
    files: &Files,
) -> anyhow::Result<ExitCode> {
    let target = Target {
        config: &files.config,
        data_dir: files.data_dir.as_deref(),
    };
    match action {
        RegistryAction::Outdated => {
            let outdated = install::outdated(&files.config, files.data_dir.as_deref()).await?;
            if outdated.is_empty() {
                println!("every server from a registry is at its latest version");
            } else {
                let rows: Vec<[String; 4]> = outdated
                    .iter()
                    .map(|o| {
                        [
                            o.name.clone(),
                            o.registry_name.clone(),
                            o.current.clone(),
                            o.latest.clone(),
                        ]
                    })
                    .collect();
                print_table(["SERVER", "REGISTRY NAME", "CURRENT", "LATEST"], &rows);
            }
            return Ok(ExitCode::SUCCESS);
        }
        RegistryAction::Update { name } => {
            match install::update(&target, &name).await? {
                None => println!("{name} is at the registry's latest version already"),
                Some(added) => println!(
                    "updated {} to {} {} ({} {}); a running proxy restarts it by itself",
                    added.name, added.registry_name, added.version, added.transport, added.target
                ),
            }
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    let base = registry_url(flag, &files.config)?;
    let registry = Registry::new(&base, files.data_dir.as_deref())?;
    match action {
        RegistryAction::Search {
            query,
            limit,
            cursor,
        } => {
            let page = registry.search(&query, limit, cursor.as_deref()).await?;
            if let Some(note) = &page.from_cache {
                eprintln!(
                    "warning: {}; showing what the cache has (as of {})",
                    note.reason,
                    crate::control::time::iso(note.fetched_at)
                );
            }
            if page.servers.is_empty() {
                println!("no servers match \"{query}\" in {}", registry.base_text());
            } else {
                let rows: Vec<[String; 4]> = page
                    .servers
                    .iter()
                    .map(|server| {
                        let detail = &server.server;
                        let mut kinds: Vec<String> = detail
                            .packages
                            .iter()
                            .map(|package| package.registry_type.clone())
                            .collect();
                        if !detail.remotes.is_empty() {
                            kinds.push("remote".into());
                        }
                        [
                            detail.name.clone(),
                            detail.version.clone(),
                            kinds.join(","),
                            crate::security::text::sanitize_name(&detail.description)
                                .chars()
                                .take(70)
                                .collect(),
                        ]
                    })
                    .collect();
                print_table(["NAME", "VERSION", "KINDS", "DESCRIPTION"], &rows);
            }
            if let Some(cursor) = &page.next_cursor {
                println!("\nmore: registry search {query:?} --cursor {cursor}");
            }
        }
        RegistryAction::Show { name } => {
            let (name, version) = registry::split_name(&name);
            let response = registry.show(name, version).await?;
            print_show(&response);
        }
        RegistryAction::Add {
            name,
            env,
            headers,
            args,
            as_name,
            package,
        } => {
            let (name, version) = registry::split_name(&name);
            let mut request = AddRequest {
                env: pairs("--env", &env)?,
                headers: pairs("--header", &headers)?,
                args: BTreeMap::new(),
                package,
            };
            for (key, value) in args
                .iter()
                .map(|item| {
                    item.split_once('=')
                        .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
                        .with_context(|| format!("--arg {item:?}: expected NAME=VALUE"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?
            {
                request.args.entry(key).or_default().push(value);
            }
            let added = loop {
                match install::add(
                    &registry,
                    &target,
                    name,
                    version,
                    as_name.as_deref(),
                    &request,
                )
                .await
                {
                    Ok(added) => break added,
                    Err(AddError::Missing(needed)) if std::io::stdin().is_terminal() => {
                        for item in &needed {
                            let about = item
                                .description
                                .as_deref()
                                .map(|d| format!(" ({d})"))
                                .unwrap_or_default();
                            let Some(value) = ask_line(
                                &format!("{} {}{about}", item.kind, item.name),
                                item.secret,
                            ) else {
                                bail!("{}", AddError::Missing(needed.clone()));
                            };
                            match item.kind {
                                "env" => {
                                    request.env.insert(item.name.clone(), value);
                                }
                                "header" => {
                                    request.headers.insert(item.name.clone(), value);
                                }
                                _ => request
                                    .args
                                    .entry(item.name.clone())
                                    .or_default()
                                    .push(value),
                            }
                        }
                    }
                    Err(error) => return Err(error.into()),
                }
            };
            println!(
                "added {} ({} {}, {}) to {}: {} {}",
                added.name,
                added.registry_name,
                added.version,
                added.kind,
                added.config.display(),
                added.transport,
                added.target
            );
            if let Some(file) = &added.secrets_file {
                println!(
                    "its secret values are in {} (owner-only); the config references them",
                    file.display()
                );
            }
            for note in &added.notes {
                println!("note: {note}");
            }
            println!("a running proxy on this config starts it by itself");
        }
        RegistryAction::Outdated | RegistryAction::Update { .. } => {}
    }
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::print_stdout, reason = "the command's report for a person")]
fn print_show(response: &registry::ServerResponse) {
    let detail = &response.server;
    println!("{} {}", detail.name, detail.version);
    if let Some(title) = &detail.title {
        println!("title:       {title}");
    }
    println!("description: {}", detail.description);
    if let Some(status) = response.status() {
        println!("status:      {status}");
    }
    if let Some(url) = &detail.website_url {
        println!("website:     {url}");
    }
    if let Some(url) = detail
        .repository
        .as_ref()
        .and_then(|r| r.get("url"))
        .and_then(|u| u.as_str())
    {
        println!("repository:  {url}");
    }
    let input_line = |kind: &str, name: &str, input: &registry::Input| {
        let mut flags = Vec::new();
        if input.is_required {
            flags.push("required".to_owned());
        }
        if input.is_secret {
            flags.push("secret".to_owned());
        }
        if let Some(default) = &input.default {
            flags.push(format!("default {default}"));
        }
        if input.value.is_some() {
            flags.push("fixed".to_owned());
        }
        if !input.choices.is_empty() {
            flags.push(format!("one of {}", input.choices.join("|")));
        }
        println!(
            "    --{kind} {name}{}{}",
            input
                .description
                .as_deref()
                .map(|d| format!("  {d}"))
                .unwrap_or_default(),
            if flags.is_empty() {
                String::new()
            } else {
                format!("  [{}]", flags.join(", "))
            }
        );
    };
    for package in &detail.packages {
        println!(
            "package {} {}{}{}",
            package.registry_type,
            package.identifier,
            package
                .version
                .as_deref()
                .map(|v| format!(" {v}"))
                .unwrap_or_default(),
            package
                .runtime_hint
                .as_deref()
                .map(|h| format!(" (runs with {h})"))
                .unwrap_or_default()
        );
        for item in &package.environment_variables {
            input_line("env", &item.name, &item.input);
        }
        for argument in package
            .runtime_arguments
            .iter()
            .chain(&package.package_arguments)
        {
            if argument.input.value.is_none() {
                input_line("arg", &argument.key().unwrap_or_default(), &argument.input);
            }
            for (variable, input) in &argument.input.variables {
                input_line("arg", variable, input);
            }
        }
    }
    for remote in &detail.remotes {
        println!("remote {} {}", remote.kind, remote.url);
        for (variable, input) in &remote.variables {
            input_line("arg", variable, input);
        }
        for item in &remote.headers {
            input_line("header", &item.name, &item.input);
        }
    }
}
