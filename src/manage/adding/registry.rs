//! The `registry` command: `search` (a table, the next page's cursor, a warning when the
//! answer comes from the cache), `show` (a server version and every value it takes), `add`
//! (the `--env`, `--header` and `--arg` values, a question on the terminal for each required
//! one missing, the printed outcome), `outdated` and `update`. The work is
//! `crate::registry::install`'s; the registry asked is `--registry-url`, else the config's.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::{Context, bail};

use super::{Files, ask_line, pairs};
use crate::cli::RegistryAction;
use crate::inspect::print_table;
use crate::registry::install::{self, AddError, AddRequest, Added, Target};
use crate::registry::{self, Registry};

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

/// Runs one `registry` command; `flag` is `--registry-url`.
pub(super) async fn registry_command(
    flag: Option<String>,
    action: RegistryAction,
    files: &Files,
) -> anyhow::Result<ExitCode> {
    let target = Target {
        config: &files.config,
        data_dir: files.data_dir.as_deref(),
    };
    match action {
        RegistryAction::Outdated => outdated(files).await?,
        RegistryAction::Update { name } => match install::update(&target, &name).await? {
            None => println!("{name} is at the registry's latest version already"),
            Some(added) => println!(
                "updated {} to {} {} ({} {}); a running proxy restarts it by itself",
                added.name, added.registry_name, added.version, added.transport, added.target
            ),
        },
        RegistryAction::Search {
            query,
            limit,
            cursor,
        } => {
            let registry = open(flag, files)?;
            search(&registry, &query, limit, cursor.as_deref()).await?;
        }
        RegistryAction::Show { name } => {
            let registry = open(flag, files)?;
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
            let registry = open(flag, files)?;
            let request = AddRequest {
                env: pairs("--env", &env)?,
                headers: pairs("--header", &headers)?,
                args: arguments(&args)?,
                package,
                written: false,
            };
            let added = add(&registry, &target, &name, as_name.as_deref(), request).await?;
            print_added(&added);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The registry `search`, `show` and `add` ask.
fn open(flag: Option<String>, files: &Files) -> anyhow::Result<Registry> {
    let base = registry_url(flag, &files.config)?;
    Ok(Registry::new(&base, files.data_dir.as_deref())?)
}

/// `registry outdated`: the servers behind their registry's latest version, as a table.
async fn outdated(files: &Files) -> anyhow::Result<()> {
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
    Ok(())
}

/// `registry search`: one page of servers as a table, and how to ask for the next.
async fn search(
    registry: &Registry,
    query: &str,
    limit: u32,
    cursor: Option<&str>,
) -> anyhow::Result<()> {
    let page = registry.search(query, limit, cursor).await?;
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
    Ok(())
}

/// `--arg NAME=VALUE` flags by name; a name given several times keeps every value, in order.
fn arguments(items: &[String]) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    let mut args: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (key, value) in items
        .iter()
        .map(|item| {
            item.split_once('=')
                .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
                .with_context(|| format!("--arg {item:?}: expected NAME=VALUE"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?
    {
        args.entry(key).or_default().push(value);
    }
    Ok(args)
}

/// `registry add NAME[@VERSION]`: adds the server, asking on a terminal for the required
/// values missing (then trying again) until it is added or refused.
async fn add(
    registry: &Registry,
    target: &Target<'_>,
    name: &str,
    as_name: Option<&str>,
    mut request: AddRequest,
) -> anyhow::Result<Added> {
    let (name, version) = registry::split_name(name);
    loop {
        match install::add(registry, target, name, version, as_name, &request).await {
            Ok(added) => return Ok(added),
            Err(AddError::Missing(needed)) if std::io::stdin().is_terminal() => {
                ask_missing(&needed, &mut request)?;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// Asks for each missing value on the terminal and adds it to the request; an unanswered one
/// ends the command with the list of what is missing.
fn ask_missing(needed: &[install::Needed], request: &mut AddRequest) -> anyhow::Result<()> {
    for item in needed {
        let about = item
            .description
            .as_deref()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        let Some(value) = ask_line(&format!("{} {}{about}", item.kind, item.name), item.secret)
        else {
            bail!("{}", AddError::Missing(needed.to_vec()));
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
    Ok(())
}

fn print_added(added: &Added) {
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

/// `registry show`: the server version, its packages and remotes, and every value each takes.
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
