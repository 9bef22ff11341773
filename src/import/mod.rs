//! `import`: the servers a user already has in their MCP clients, merged into our config file.
//! `clients` knows where each client keeps them and how it writes them; `merge` tells what is
//! already there (same name and definition: once; same name, another definition: both, the
//! newcomer renamed and reported); `secrets` keeps values only the client knew (VS Code's
//! inputs, a client's `envFile`) in an owner-only env file in the data dir that the entry
//! references. This module runs an import and writes the config in place; `replace` rewrites
//! the clients' files to start only the proxy, and undoes that. The command and the HTTP API
//! (`/api/import`) both call [`run`].

pub mod clients;
mod merge;
pub mod replace;
mod secrets;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;
use serde_json::{Value, json};

pub use clients::{Client, Input, Platform};
pub use secrets::{secrets_path, write_secrets};

use crate::config::edit::ConfigFile;
use clients::Source;

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
    let config = ConfigFile::open(&options.config_path)?;
    let mut import = Import {
        options,
        platform,
        ask,
        taken: config.servers().into_iter().collect(),
        config,
        secrets_files: Vec::new(),
        report: ImportReport {
            config: options.config_path.clone(),
            dry_run: options.dry_run,
            ..ImportReport::default()
        },
    };
    // Sources whose every server made it: only those are rewritten by `--replace`.
    let mut complete = Vec::new();
    for client in &options.clients {
        for source in clients::sources(*client, platform, &options.project) {
            if import.source(&source) {
                complete.push(source);
            }
        }
    }
    import.finish(&complete)
}

/// One import under way.
struct Import<'a> {
    options: &'a ImportOptions,
    platform: &'a Platform,
    ask: &'a mut dyn FnMut(&str, &Input) -> Option<String>,
    config: ConfigFile,
    /// Names taken so far, by our config and by what this import adds.
    taken: BTreeMap<String, Value>,
    /// The secrets files to write, with their values.
    secrets_files: Vec<(PathBuf, BTreeMap<String, String>)>,
    report: ImportReport,
}

impl Import<'_> {
    /// Reads one source and imports its servers: whether it had some and every one made it.
    fn source(&mut self, source: &Source) -> bool {
        let read = clients::read(source);
        self.report.sources.push(SourceReport {
            client: source.client,
            scope: source.scope,
            path: source.path.clone(),
            servers: read
                .as_ref()
                .ok()
                .and_then(Option::as_ref)
                .map(|read| read.servers.len()),
            error: read.as_ref().err().cloned(),
        });
        let Ok(Some(read)) = read else {
            return false;
        };
        let mut all_carried = true;
        for (name, raw) in &read.servers {
            all_carried &= self.server(source, &read.inputs, name, raw);
        }
        all_carried && !read.servers.is_empty()
    }

    /// Imports one server, or reports it unchanged or skipped; `false` when a server the user
    /// has could not be carried over.
    fn server(
        &mut self,
        source: &Source,
        inputs: &BTreeMap<String, (String, bool)>,
        name: &str,
        raw: &Value,
    ) -> bool {
        let client = source.client;
        if merge::is_this_proxy(raw) {
            self.skip(name, client, "it starts this proxy".into());
            return true;
        }
        let options = self.options;
        let ask = &mut *self.ask;
        let mut input_value = |input: &Input| {
            options
                .inputs
                .get(&input.id)
                .cloned()
                .or_else(|| ask(name, input))
        };
        let mut context = clients::Context {
            client,
            source,
            platform: self.platform,
            project: &options.project,
            inputs,
            input_value: &mut input_value,
        };
        let translated = match clients::translate(raw, &mut context) {
            Ok(translated) => translated,
            Err(reason) => {
                self.skip(name, client, reason);
                return false;
            }
        };
        let data_dir = options.data_dir.as_deref();
        if let Some(same) = merge::already_there(&self.taken, name, &translated, data_dir) {
            self.report.unchanged.push(Named {
                name: same.clone(),
                client,
            });
            return true;
        }
        let new_name = merge::new_name(&self.taken, name, client);
        let mut entry = translated.entry;
        if !translated.secrets.is_empty() {
            let Some(data_dir) = data_dir else {
                self.skip(
                    name,
                    client,
                    "it needs values kept in a secrets file, and there is no data dir to keep \
                     it in"
                        .into(),
                );
                return false;
            };
            let file = secrets_path(data_dir, &new_name);
            entry["envFile"] = json!(file);
            self.secrets_files.push((file, translated.secrets));
        }
        let (transport, target) = describe(&entry);
        self.report.added.push(Added {
            name: new_name.clone(),
            client,
            renamed_from: (new_name != name).then(|| name.to_owned()),
            transport,
            target,
        });
        self.config.add(&new_name, &entry);
        self.taken.insert(new_name, entry);
        true
    }

    fn skip(&mut self, name: &str, client: Client, reason: String) {
        self.report.skipped.push(Skipped {
            name: name.to_owned(),
            client,
            reason,
        });
    }

    /// Unless dry: writes the secrets files and the config, then replaces the `complete`
    /// sources when asked to.
    fn finish(mut self, complete: &[Source]) -> Result<ImportReport, String> {
        let options = self.options;
        if options.dry_run {
            return Ok(self.report);
        }
        if options.replace && options.data_dir.is_none() {
            return Err("--replace needs a data dir to keep the backups in".into());
        }
        for (file, values) in &self.secrets_files {
            write_secrets(file, values)?;
        }
        if !self.report.added.is_empty() {
            self.config.save()?;
        }
        if options.replace
            && let Some(data_dir) = &options.data_dir
        {
            self.report.replaced = replace::replace(complete, &options.proxy, data_dir)?;
        }
        Ok(self.report)
    }
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
        // With a URL too: a server the proxy starts and reaches over HTTP.
        match entry.get("url").and_then(Value::as_str) {
            Some(url) => {
                let kind = match text("type") {
                    "sse" => "sse",
                    _ => "streamable-http",
                };
                (kind.into(), format!("{target} ({url})"))
            }
            None => ("stdio".into(), target),
        }
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
