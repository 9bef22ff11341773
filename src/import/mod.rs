//! `import`: the servers a user already has in their MCP clients, merged into our config file.
//! `clients` knows where each client keeps them and how it writes them; this module merges
//! (same name and definition: once; same name, another definition: both, the newcomer renamed
//! and reported), writes values only the client knew (VS Code's inputs, a client's `envFile`) to
//! an owner-only env file in the data dir that the entry references, and writes the config in
//! place. `replace` rewrites the clients' files to start only the proxy, and undoes that.
//! The command and the HTTP API (`/api/import`) both call [`run`].

pub mod clients;
pub mod replace;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Value, json};

pub use clients::{Client, Input, Platform};

use crate::config::edit::{ConfigFile, free_name};

/// What to import, and how.
pub struct ImportOptions {
    pub clients: Vec<Client>,
    /// The project whose project-level files are read (and whose `${workspaceFolder}` it is).
    pub project: PathBuf,
    pub dry_run: bool,
    pub replace: bool,
    /// Values for `${input:id}` references, by id.
    pub inputs: BTreeMap<String, String>,
    pub config_path: PathBuf,
    /// Where secrets files and the record of replaced files go; without one, values only a
    /// client knew cannot be kept and `--replace` is refused.
    pub data_dir: Option<PathBuf>,
    /// The entry `--replace` puts in each client's config.
    pub proxy: replace::ProxyEntry,
}

/// What an import did (or, dry, would do).
#[derive(Debug, Default, Serialize)]
pub struct ImportReport {
    pub config: PathBuf,
    #[serde(rename = "dryRun")]
    pub dry_run: bool,
    /// Each file looked at.
    pub sources: Vec<SourceReport>,
    /// Servers added to our config.
    pub added: Vec<Added>,
    /// Servers our config already had, with the same definition.
    pub unchanged: Vec<Named>,
    /// Servers not imported, and why.
    pub skipped: Vec<Skipped>,
    /// Client files rewritten to start only the proxy.
    pub replaced: Vec<replace::Replaced>,
}

#[derive(Debug, Serialize)]
pub struct SourceReport {
    pub client: Client,
    pub scope: clients::Scope,
    pub path: PathBuf,
    /// Servers found in it; `None` when the file is not there.
    pub servers: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Added {
    pub name: String,
    pub client: Client,
    /// The client's name for it, when it was renamed because the name was taken.
    #[serde(rename = "renamedFrom", skip_serializing_if = "Option::is_none")]
    pub renamed_from: Option<String>,
    pub transport: String,
    pub target: String,
}

#[derive(Debug, Serialize)]
pub struct Named {
    pub name: String,
    pub client: Client,
}

#[derive(Debug, Serialize)]
pub struct Skipped {
    pub name: String,
    pub client: Client,
    pub reason: String,
}

/// Imports the clients' servers into our config (unless dry) and, with `replace`, rewrites the
/// clients' files. `ask` is asked for values only a client knew (on a terminal); the HTTP API
/// and a command without a terminal pass one that knows nothing.
pub fn run(
    options: &ImportOptions,
    platform: &Platform,
    ask: &mut dyn FnMut(&str, &Input) -> Option<String>,
) -> Result<ImportReport, String> {
    let mut config = ConfigFile::open(&options.config_path)?;
    let existing = config.servers();
    let mut report = ImportReport {
        config: options.config_path.clone(),
        dry_run: options.dry_run,
        ..ImportReport::default()
    };
    // Names taken so far, by our config and by what this import adds.
    let mut taken: BTreeMap<String, Value> = existing.clone().into_iter().collect();
    let mut secrets_files: Vec<(PathBuf, BTreeMap<String, String>)> = Vec::new();
    // Sources whose every server made it: only those are rewritten by `--replace`.
    let mut complete = Vec::new();
    for client in &options.clients {
        for source in clients::sources(*client, platform, &options.project) {
            let read = match clients::read(&source) {
                Ok(Some(read)) => read,
                Ok(None) => {
                    report.sources.push(SourceReport {
                        client: *client,
                        scope: source.scope,
                        path: source.path.clone(),
                        servers: None,
                        error: None,
                    });
                    continue;
                }
                Err(error) => {
                    report.sources.push(SourceReport {
                        client: *client,
                        scope: source.scope,
                        path: source.path.clone(),
                        servers: None,
                        error: Some(error),
                    });
                    continue;
                }
            };
            report.sources.push(SourceReport {
                client: *client,
                scope: source.scope,
                path: source.path.clone(),
                servers: Some(read.servers.len()),
                error: None,
            });
            let mut all_carried = true;
            for (name, raw) in &read.servers {
                if clients::is_this_proxy(raw) {
                    report.skipped.push(Skipped {
                        name: name.clone(),
                        client: *client,
                        reason: "it starts this proxy".into(),
                    });
                    continue;
                }
                let mut input_value = |input: &Input| {
                    options
                        .inputs
                        .get(&input.id)
                        .cloned()
                        .or_else(|| ask(name, input))
                };
                let mut context = clients::Context {
                    client: *client,
                    source: &source,
                    platform,
                    project: &options.project,
                    inputs: &read.inputs,
                    input_value: &mut input_value,
                };
                let translated = match clients::translate(raw, &mut context) {
                    Ok(translated) => translated,
                    Err(reason) => {
                        all_carried = false;
                        report.skipped.push(Skipped {
                            name: name.clone(),
                            client: *client,
                            reason,
                        });
                        continue;
                    }
                };
                // The same server under the same name (or already imported under another name
                // from another client) is there once. An entry with values in a secrets file
                // is the same when it references its own.
                let same = taken.iter().find(|(taken_name, entry)| {
                    let related =
                        *taken_name == name || taken_name.starts_with(&format!("{name}-"));
                    let mut candidate = translated.entry.clone();
                    if !translated.secrets.is_empty() {
                        let Some(data_dir) = &options.data_dir else {
                            return false;
                        };
                        candidate["envFile"] = json!(secrets_path(data_dir, taken_name));
                    }
                    related && clients::definition(entry) == clients::definition(&candidate)
                });
                if let Some((same, _)) = same {
                    report.unchanged.push(Named {
                        name: same.clone(),
                        client: *client,
                    });
                    continue;
                }
                let new_name = if taken.contains_key(name) {
                    free_name(&format!("{name}-{}", client.name()), &|candidate| {
                        taken.contains_key(candidate)
                    })
                } else {
                    name.clone()
                };
                let mut entry = translated.entry.clone();
                if !translated.secrets.is_empty() {
                    let Some(data_dir) = &options.data_dir else {
                        all_carried = false;
                        report.skipped.push(Skipped {
                            name: name.clone(),
                            client: *client,
                            reason: "it needs values kept in a secrets file, and there is no \
                                     data dir to keep it in"
                                .into(),
                        });
                        continue;
                    };
                    let file = secrets_path(data_dir, &new_name);
                    entry["envFile"] = json!(file);
                    secrets_files.push((file, translated.secrets.clone()));
                }
                let (transport, target) = describe(&entry);
                report.added.push(Added {
                    name: new_name.clone(),
                    client: *client,
                    renamed_from: (new_name != *name).then(|| name.clone()),
                    transport,
                    target,
                });
                config.add(&new_name, &entry);
                taken.insert(new_name, entry);
            }
            if all_carried && !read.servers.is_empty() {
                complete.push(source);
            }
        }
    }
    if options.dry_run {
        return Ok(report);
    }
    if options.replace && options.data_dir.is_none() {
        return Err("--replace needs a data dir to keep the backups in".into());
    }
    for (file, values) in &secrets_files {
        write_secrets(file, values)?;
    }
    if !report.added.is_empty() {
        config.save()?;
    }
    if options.replace
        && let Some(data_dir) = &options.data_dir
    {
        report.replaced = replace::replace(&complete, &options.proxy, data_dir)?;
    }
    Ok(report)
}

/// The owner-only env file that keeps a server's values only a client knew.
pub fn secrets_path(data_dir: &Path, server: &str) -> PathBuf {
    let safe: String = server
        .chars()
        .map(|ch| {
            if ch.is_ascii_alphanumeric() || "-_.".contains(ch) {
                ch
            } else {
                '_'
            }
        })
        .collect();
    data_dir.join("secrets").join(format!("{safe}.env"))
}

/// Writes (or merges into) an owner-only env file; the directory is owner-only too.
pub fn write_secrets(file: &Path, values: &BTreeMap<String, String>) -> Result<(), String> {
    let mut all = crate::config::vars::read_env_file(file).unwrap_or_default();
    all.extend(values.iter().map(|(k, v)| (k.clone(), v.clone())));
    if let Some(dir) = file.parent() {
        create_private_dir(dir)
            .map_err(|error| format!("cannot create {}: {error}", dir.display()))?;
    }
    let text: String = all
        .iter()
        .map(|(key, value)| crate::config::vars::env_file_line(key, value))
        .collect();
    crate::security::write_private(file, text.as_bytes())
        .map_err(|error| format!("cannot write {}: {error}", file.display()))
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// A config entry's transport and target as the reports show them (secrets in the target
/// redacted; env and headers never shown).
pub fn describe(entry: &Value) -> (String, String) {
    let text = |key: &str| entry.get(key).and_then(Value::as_str).unwrap_or_default();
    if entry.get("command").is_some() {
        let mut line = vec![text("command").to_owned()];
        if let Some(Value::Array(args)) = entry.get("args") {
            line.extend(args.iter().filter_map(Value::as_str).map(str::to_owned));
        }
        let target = crate::security::text::redact_bounded(&line.join(" "), 300);
        ("stdio".into(), target)
    } else {
        let kind = match text("type") {
            "sse" => "sse",
            _ => "streamable-http",
        };
        let url = text("url");
        let shown = url::Url::parse(url)
            .map(|url| crate::config::display_url(&url))
            .unwrap_or_else(|_| url.to_owned());
        (kind.into(), shown)
    }
}
