//! From a registry entry to a config entry. A package runs under its registry type's runner —
//! `npx -y` (npm), `uvx` (PyPI), `dnx` (NuGet), `docker run -i --rm` (OCI) — unless the entry's
//! `runtimeHint` names another (`pipx`, `python` for `python -m`, `podman`, …), with its runtime
//! arguments before the package and its package arguments after. Values come from the entry
//! (fixed `value`s with `{variables}`, `default`s) and from the user (`--env`, `--header`,
//! `--arg`); a required one that is missing is reported, all at once, never guessed. A secret
//! value goes to the server's owner-only env file and the entry references it (`${NAME}`); the
//! config file never holds it in clear. A remote becomes a Streamable HTTP or SSE entry. The
//! entry records its origin (`"registry": {url, name, version, package}`), which makes it
//! `Origin::Registry` — checked by the security policy here and whenever it starts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::{
    Argument, Input, KeyValueInput, Package, Registry, RegistryError, Remote, ServerDetail,
};
use crate::config::edit::ConfigFile;

/// The user's values for an entry's inputs.
#[derive(Debug, Clone, Default)]
pub struct AddRequest {
    pub env: BTreeMap<String, String>,
    pub headers: BTreeMap<String, String>,
    /// Argument values by value hint or flag name (without dashes), and `{variable}` values by
    /// variable name; an argument that repeats takes several.
    pub args: BTreeMap<String, Vec<String>>,
    /// `npm`, `pypi`, `nuget`, `oci` or `remote`.
    pub package: Option<String>,
}

/// A value the entry needs and nobody gave.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Needed {
    /// `env`, `header` or `arg` (the flag to give it with).
    pub kind: &'static str,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub secret: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<String>,
}

impl std::fmt::Display for Needed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "--{} {}=…", self.kind, self.name)?;
        if let Some(description) = &self.description {
            write!(f, " ({description})")?;
        }
        if self.secret {
            write!(f, " [secret]")?;
        }
        if !self.choices.is_empty() {
            write!(f, " [one of: {}]", self.choices.join(", "))?;
        }
        Ok(())
    }
}

/// Why a server was not added.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    #[error("{}", missing_text(.0))]
    Missing(Vec<Needed>),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Invalid(String),
}

fn missing_text(needed: &[Needed]) -> String {
    let lines: Vec<String> = needed.iter().map(|needed| format!("  {needed}")).collect();
    format!(
        "required values are missing (give them, or run the command in a terminal to be asked):\n{}",
        lines.join("\n")
    )
}

/// A config entry made from a registry entry.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub entry: Value,
    /// Secret values, by the variable the entry references them as.
    #[serde(skip)]
    pub secrets: BTreeMap<String, String>,
    /// `npm`, `pypi`, `nuget`, `oci` or `remote`.
    pub kind: String,
}

/// What `add` (or `update`) wrote.
#[derive(Debug, Clone, Serialize)]
pub struct Added {
    pub name: String,
    pub registry: String,
    #[serde(rename = "registryName")]
    pub registry_name: String,
    pub version: String,
    pub kind: String,
    pub transport: String,
    pub target: String,
    pub config: PathBuf,
    #[serde(rename = "secretsFile", skip_serializing_if = "Option::is_none")]
    pub secrets_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Makes the config entry for `detail` with the user's values.
pub fn plan(registry: &str, detail: &ServerDetail, request: &AddRequest) -> Result<Plan, AddError> {
    let mut values = Values {
        request,
        missing: Vec::new(),
        secrets: BTreeMap::new(),
        used_args: BTreeMap::new(),
    };
    let (mut entry, kind) = match choose(detail, request.package.as_deref())? {
        Choice::Package(package) => (
            package_entry(package, &mut values)?,
            package.registry_type.to_ascii_lowercase(),
        ),
        Choice::Remote(remote) => (remote_entry(remote, &mut values)?, "remote".to_owned()),
    };
    if !values.missing.is_empty() {
        return Err(AddError::Missing(values.missing));
    }
    let mut source = Map::new();
    source.insert("url".into(), json!(registry));
    source.insert("name".into(), json!(detail.name));
    source.insert("version".into(), json!(detail.version));
    source.insert("package".into(), json!(kind));
    if !values.used_args.is_empty() {
        source.insert("arguments".into(), json!(values.used_args));
    }
    entry.insert("registry".into(), Value::Object(source));
    Ok(Plan {
        entry: Value::Object(entry),
        secrets: values.secrets,
        kind,
    })
}

enum Choice<'a> {
    Package(&'a Package),
    Remote(&'a Remote),
}

/// The package (or remote) to use: the one asked for, else the first package of a kind run
/// without extra software (npm, PyPI, NuGet), else the first remote, else an OCI image.
fn choose<'a>(detail: &'a ServerDetail, wanted: Option<&str>) -> Result<Choice<'a>, AddError> {
    let kinds = || {
        let mut kinds: Vec<String> = detail
            .packages
            .iter()
            .map(|package| package.registry_type.to_ascii_lowercase())
            .collect();
        if !detail.remotes.is_empty() {
            kinds.push("remote".into());
        }
        kinds.dedup();
        if kinds.is_empty() {
            "none".to_owned()
        } else {
            kinds.join(", ")
        }
    };
    if let Some(wanted) = wanted {
        let wanted = wanted.to_ascii_lowercase();
        if wanted == "remote" {
            return detail.remotes.first().map(Choice::Remote).ok_or_else(|| {
                AddError::Invalid(format!(
                    "{} has no remote (it has: {})",
                    detail.name,
                    kinds()
                ))
            });
        }
        return detail
            .packages
            .iter()
            .find(|package| package.registry_type.eq_ignore_ascii_case(&wanted))
            .map(Choice::Package)
            .ok_or_else(|| {
                AddError::Invalid(format!(
                    "{} has no {wanted} package (it has: {})",
                    detail.name,
                    kinds()
                ))
            });
    }
    let runnable = |kinds: &[&str]| {
        detail.packages.iter().find(|package| {
            kinds
                .iter()
                .any(|kind| package.registry_type.eq_ignore_ascii_case(kind))
        })
    };
    if let Some(package) = runnable(&["npm", "pypi", "nuget"]) {
        return Ok(Choice::Package(package));
    }
    if let Some(remote) = detail.remotes.first() {
        return Ok(Choice::Remote(remote));
    }
    if let Some(package) = runnable(&["oci"]) {
        return Ok(Choice::Package(package));
    }
    match detail.packages.first() {
        Some(package) => Err(unsupported_kind(&package.registry_type)),
        None => Err(AddError::Invalid(format!(
            "{} has neither packages nor remotes: it says how to run it at {}",
            detail.name,
            detail
                .website_url
                .as_deref()
                .unwrap_or("its website (none given)")
        ))),
    }
}

fn unsupported_kind(kind: &str) -> AddError {
    if kind.eq_ignore_ascii_case("mcpb") {
        AddError::Invalid(
            "its package is an MCP bundle (.mcpb), a download the proxy does not run; use a \
             client that installs bundles, or another package of the server"
                .into(),
        )
    } else {
        AddError::Invalid(format!(
            "its package is of registry type \"{kind}\", which the proxy does not run (it runs \
             npm, pypi, nuget and oci packages, and remotes)"
        ))
    }
}

/// The values being gathered for one entry.
struct Values<'a> {
    request: &'a AddRequest,
    missing: Vec<Needed>,
    secrets: BTreeMap<String, String>,
    /// The argument values given, as written into the entry (secret ones as references).
    used_args: BTreeMap<String, Vec<String>>,
}

/// A value ready for the entry, or a reference to the secrets file.
struct Resolved {
    text: String,
    secret: bool,
    /// Already written for the config (references kept, literal `${` escaped).
    escaped: bool,
}

impl Values<'_> {
    /// The value of one input: its fixed `value` (with `{variables}`), else the user's, else its
    /// default; `None` when it has none (a required one is then recorded as missing).
    fn input(
        &mut self,
        kind: &'static str,
        name: &str,
        input: &Input,
        given: Option<&str>,
    ) -> Result<Option<Resolved>, AddError> {
        if let Some(template) = &input.value {
            return self.template(template, &input.variables, input.is_secret);
        }
        let value = match (given, &input.default) {
            (Some(given), _) => Some(given.to_owned()),
            (None, Some(default)) => Some(default.clone()),
            (None, None) => None,
        };
        let Some(value) = value else {
            if input.is_required {
                self.missing.push(Needed {
                    kind,
                    name: name.to_owned(),
                    description: input.description.clone(),
                    secret: input.is_secret,
                    choices: input.choices.clone(),
                });
            }
            return Ok(None);
        };
        if !input.choices.is_empty() && !input.choices.contains(&value) && !is_reference(&value) {
            return Err(AddError::Invalid(format!(
                "{name}: {value:?} is not one of {}",
                input.choices.join(", ")
            )));
        }
        Ok(Some(Resolved {
            secret: input.is_secret && !is_reference(&value),
            text: value,
            escaped: false,
        }))
    }

    /// A fixed value with its `{variables}` filled in (a variable nobody gave, without a
    /// default, stays as written unless it is required). The text comes back written for the
    /// config: a secret variable's value goes to the secrets file and the text references it
    /// (`Bearer ${TOKEN}`), the rest is escaped as literal text.
    fn template(
        &mut self,
        template: &str,
        variables: &BTreeMap<String, Input>,
        secret: bool,
    ) -> Result<Option<Resolved>, AddError> {
        let mut text = escape_literal(template);
        let mut complete = true;
        let mut replaced = false;
        for (variable, input) in variables {
            let placeholder = format!("{{{variable}}}");
            if !text.contains(&placeholder) {
                continue;
            }
            let given = self
                .request
                .args
                .get(variable)
                .and_then(|values| values.first())
                .cloned();
            // The whole value is secret: so is each of its parts.
            let mut input = input.clone();
            input.is_secret |= secret;
            match self.input("arg", variable, &input, given.as_deref())? {
                Some(value) => {
                    replaced = true;
                    let written = if value.secret {
                        self.keep_secret(&variable_name(variable), value.text)
                    } else if is_reference(&value.text) {
                        value.text
                    } else {
                        escape_literal(&value.text)
                    };
                    if given.is_some() {
                        self.used_args
                            .insert(variable.clone(), vec![written.clone()]);
                    }
                    text = text.replace(&placeholder, &written);
                }
                None if input.is_required => complete = false,
                None => {}
            }
        }
        Ok(complete.then_some(Resolved {
            text,
            secret: secret && !replaced,
            escaped: true,
        }))
    }

    /// Puts a secret value in the secrets file under `variable`; the reference to write.
    fn keep_secret(&mut self, variable: &str, value: String) -> String {
        self.secrets.insert(variable.to_owned(), value);
        format!("${{{variable}}}")
    }

    /// An argument's words (none when it has no value and needs none).
    fn argument(&mut self, argument: &Argument) -> Result<Vec<String>, AddError> {
        let key = argument.key().unwrap_or_default();
        let given: Vec<String> = self.request.args.get(&key).cloned().unwrap_or_default();
        let mut texts = Vec::new();
        if argument.input.value.is_some() || given.len() <= 1 {
            if let Some(value) = self.input(
                "arg",
                &key,
                &argument.input,
                given.first().map(String::as_str),
            )? {
                texts.push(value);
            }
        } else if argument.is_repeated {
            for value in &given {
                if let Some(value) = self.input("arg", &key, &argument.input, Some(value))? {
                    texts.push(value);
                }
            }
        } else {
            return Err(AddError::Invalid(format!(
                "--arg {key} is given {} times, and the argument does not repeat",
                given.len()
            )));
        }
        let mut words = Vec::new();
        let mut written = Vec::new();
        for (index, value) in texts.into_iter().enumerate() {
            let text = if value.secret {
                let variable = variable_name(&format!(
                    "{key}{}",
                    if index > 0 {
                        format!("_{index}")
                    } else {
                        String::new()
                    }
                ));
                self.keep_secret(&variable, value.text)
            } else {
                value.text
            };
            if argument.input.value.is_none() && !given.is_empty() {
                written.push(text.clone());
            }
            if argument.kind == "named" {
                let flag = argument.name.clone().unwrap_or_default();
                if flag.is_empty() || !flag.starts_with('-') {
                    return Err(AddError::Invalid(format!(
                        "a named argument's name {flag:?} is not a flag"
                    )));
                }
                // A boolean flag is there or not.
                if argument.input.format.as_deref() == Some("boolean") {
                    if text == "true" {
                        words.push(flag);
                    }
                    continue;
                }
                words.push(flag);
            }
            words.push(text);
        }
        if !written.is_empty() {
            self.used_args.insert(key, written);
        }
        Ok(words)
    }

    fn arguments(&mut self, arguments: &[Argument]) -> Result<Vec<String>, AddError> {
        let mut words = Vec::new();
        for argument in arguments {
            words.extend(self.argument(argument)?);
        }
        Ok(words)
    }

    /// Environment variables or headers into `out`, secret ones as references.
    fn key_values(
        &mut self,
        kind: &'static str,
        items: &[KeyValueInput],
        given: &BTreeMap<String, String>,
        out: &mut Map<String, Value>,
    ) -> Result<(), AddError> {
        for item in items {
            let Some(value) = self.input(
                kind,
                &item.name,
                &item.input,
                given.get(&item.name).map(String::as_str),
            )?
            else {
                continue;
            };
            let text = if value.secret {
                let variable = if kind == "env" {
                    item.name.clone()
                } else {
                    variable_name(&item.name)
                };
                self.keep_secret(&variable, value.text)
            } else if value.escaped {
                value.text
            } else {
                escape_literal(&value.text)
            };
            out.insert(item.name.clone(), json!(text));
        }
        // Values given for names the entry does not list are passed too: the user knows the
        // server.
        for (name, value) in given {
            if !out.contains_key(name) {
                out.insert(name.clone(), json!(value));
            }
        }
        Ok(())
    }
}

/// Whether a value is exactly one `${NAME}` reference (an entry's own, when updating).
fn is_reference(value: &str) -> bool {
    value
        .strip_prefix("${")
        .and_then(|rest| rest.strip_suffix('}'))
        .is_some_and(crate::config::vars::is_name)
}

/// A literal value written so the config reads it back as it is.
fn escape_literal(text: &str) -> String {
    if is_reference(text) {
        text.to_owned()
    } else {
        text.replace("${", "$${")
    }
}

/// An environment variable name for a header's or an argument's secret.
fn variable_name(name: &str) -> String {
    crate::import::clients::input_variable(name)
}

fn package_entry(
    package: &Package,
    values: &mut Values<'_>,
) -> Result<Map<String, Value>, AddError> {
    let kind = package.registry_type.to_ascii_lowercase();
    if !matches!(kind.as_str(), "npm" | "pypi" | "nuget" | "oci") {
        return Err(unsupported_kind(&package.registry_type));
    }
    if let Some(transport) = &package.transport
        && transport.kind != "stdio"
    {
        return Err(AddError::Invalid(format!(
            "this package serves {} at {} instead of stdio; the proxy starts stdio packages \
             and connects to remotes: start the package yourself and add its URL to the config",
            transport.kind,
            transport.url.as_deref().unwrap_or("a URL")
        )));
    }
    let identifier = package.identifier.trim();
    if identifier.is_empty()
        || identifier.starts_with('-')
        || identifier.contains(char::is_whitespace)
    {
        return Err(AddError::Refused(format!(
            "refused: the package identifier {identifier:?} is not a package name"
        )));
    }
    let hint = package
        .runtime_hint
        .as_deref()
        .map(str::trim)
        .filter(|hint| !hint.is_empty());
    let default_runner = match kind.as_str() {
        "npm" => "npx",
        "pypi" => "uvx",
        "nuget" => "dnx",
        _ => "docker",
    };
    let command = hint.unwrap_or(default_runner).to_owned();
    let runner = command
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(&command)
        .to_ascii_lowercase();
    let version = package
        .version
        .as_deref()
        .filter(|version| !version.is_empty());
    let (prefix, spec): (Vec<&str>, String) = match runner.as_str() {
        "npx" => (vec!["-y"], versioned(identifier, version, "@")),
        "docker" | "podman" => {
            let tagged = identifier
                .rsplit('/')
                .next()
                .is_some_and(|last| last.contains(':'))
                || identifier.contains('@');
            let image = match version {
                Some(version) if !tagged => format!("{identifier}:{version}"),
                _ => identifier.to_owned(),
            };
            (vec!["run", "-i", "--rm"], image)
        }
        "pipx" => (vec!["run"], versioned(identifier, version, "==")),
        "python" | "python3" => (
            vec!["-m"],
            identifier.to_ascii_lowercase().replace(['-', '.'], "_"),
        ),
        _ => (Vec::new(), versioned(identifier, version, "@")),
    };
    let mut args: Vec<String> = prefix.into_iter().map(str::to_owned).collect();
    let mut env = Map::new();
    values.key_values(
        "env",
        &package.environment_variables,
        &values.request.env.clone(),
        &mut env,
    )?;
    let runtime = values.arguments(&package.runtime_arguments)?;
    let container = matches!(runner.as_str(), "docker" | "podman");
    args.extend(runtime);
    if container {
        // A container sees no environment but what `-e` passes: each variable by name, its
        // value from the entry's env.
        for name in env.keys() {
            args.push("-e".into());
            args.push(name.clone());
        }
    }
    args.push(spec);
    let package_args = values.arguments(&package.package_arguments)?;
    if runner == "dnx" {
        args.push("--yes".into());
        if !package_args.is_empty() {
            args.push("--".into());
        }
    }
    args.extend(package_args);
    let mut entry = Map::new();
    entry.insert("command".into(), json!(command));
    entry.insert("args".into(), json!(args));
    if !env.is_empty() {
        entry.insert("env".into(), Value::Object(env));
    }
    Ok(entry)
}

fn versioned(identifier: &str, version: Option<&str>, separator: &str) -> String {
    match version {
        Some(version) => format!("{identifier}{separator}{version}"),
        None => identifier.to_owned(),
    }
}

fn remote_entry(remote: &Remote, values: &mut Values<'_>) -> Result<Map<String, Value>, AddError> {
    let kind = match remote.kind.as_str() {
        "streamable-http" | "http" | "streamableHttp" => "streamable-http",
        "sse" => "sse",
        other => {
            return Err(AddError::Invalid(format!(
                "its remote's transport \"{other}\" is neither streamable-http nor sse"
            )));
        }
    };
    let url = values
        .template(&remote.url, &remote.variables, false)?
        .map(|resolved| resolved.text)
        .unwrap_or_else(|| remote.url.clone());
    let mut headers = Map::new();
    values.key_values(
        "header",
        &remote.headers,
        &values.request.headers.clone(),
        &mut headers,
    )?;
    if values.missing.is_empty() {
        let parsed = url::Url::parse(&url)
            .map_err(|error| AddError::Invalid(format!("its remote URL {url:?}: {error}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(AddError::Refused(format!(
                "refused: its remote URL {url:?} is not http(s)"
            )));
        }
    }
    let mut entry = Map::new();
    entry.insert("type".into(), json!(kind));
    entry.insert("url".into(), json!(url));
    if !headers.is_empty() {
        entry.insert("headers".into(), Value::Object(headers));
    }
    Ok(entry)
}

/// The config's name for a registry server: the part after its `/`, in `[A-Za-z0-9._-]`.
pub fn default_name(registry_name: &str) -> String {
    let last = registry_name.rsplit('/').next().unwrap_or(registry_name);
    let name: String = last
        .chars()
        .map(|ch| {
            if ch.is_ascii_alphanumeric() || "._-".contains(ch) {
                ch
            } else {
                '-'
            }
        })
        .collect();
    if name.is_empty() {
        "server".into()
    } else {
        name
    }
}

/// Checks an entry with the config's security settings as a registry entry, before writing it.
fn check_policy(config: &ConfigFile, name: &str, entry: &Value) -> Result<(), AddError> {
    let mut entry = entry.clone();
    if let Value::Object(map) = &mut entry {
        // Its secrets are not written yet; the references stand for them.
        map.remove("envFile");
    }
    let document = json!({ "mcpServers": { name: entry } });
    let parsed =
        crate::config::Config::parse_with_env(&config.path, &document.to_string(), &|_| {
            Some("value".into())
        })
        .map_err(|error| {
            AddError::Invalid(format!("the entry made from it does not load: {error}"))
        })?;
    let settings = crate::security::SecuritySettings::parse(config.top_level("security").as_ref())
        .map_err(|(field, message)| {
            AddError::Invalid(format!("the config's {field}: {message}"))
        })?;
    let server = parsed
        .servers
        .get(name)
        .expect("the document has the server");
    server.check(&settings).map_err(|refusal| {
        AddError::Refused(format!(
            "{refusal} — nothing was written; a registry entry is checked like the plugged.in App's \
             servers (SECURITY.md)"
        ))
    })
}

/// Where the command writes, with what.
pub struct Target<'a> {
    pub config: &'a Path,
    pub data_dir: Option<&'a Path>,
}

/// `registry add`: fetches `name` (`@version`, else the latest), makes its entry with the user's
/// values, checks it, writes its secrets and the config.
pub async fn add(
    registry: &Registry,
    target: &Target<'_>,
    name: &str,
    version: Option<&str>,
    as_name: Option<&str>,
    request: &AddRequest,
) -> Result<Added, AddError> {
    let mut config = ConfigFile::open(target.config).map_err(AddError::Invalid)?;
    let response = registry.show(name, version).await?;
    let detail = &response.server;
    let server_name = as_name
        .map(str::to_owned)
        .unwrap_or_else(|| default_name(&detail.name));
    if server_name.trim().is_empty() {
        return Err(AddError::Invalid("the server name is empty".into()));
    }
    if config.servers().contains_key(&server_name) {
        return Err(AddError::Invalid(format!(
            "the config already has a server named \"{server_name}\"; choose another name with --as \
             (or `registry update {server_name}` to move it to another version)"
        )));
    }
    let plan = plan(&registry.base_text(), detail, request)?;
    let mut notes = Vec::new();
    if response.status() == Some("deprecated") {
        notes.push(format!(
            "{} {} is deprecated in the registry",
            detail.name, detail.version
        ));
    }
    write_plan(
        &mut config,
        target,
        &server_name,
        plan.entry,
        &plan.secrets,
        false,
    )?;
    let entry = &config.servers()[&server_name];
    Ok(added(
        registry,
        target,
        &server_name,
        detail,
        &plan.kind,
        entry,
        !plan.secrets.is_empty(),
        notes,
    ))
}

#[allow(
    clippy::too_many_arguments,
    reason = "a report assembled from its parts"
)]
fn added(
    registry: &Registry,
    target: &Target<'_>,
    name: &str,
    detail: &ServerDetail,
    kind: &str,
    entry: &Value,
    has_secrets: bool,
    notes: Vec<String>,
) -> Added {
    let (transport, shown) = crate::import::describe(entry);
    Added {
        name: name.to_owned(),
        registry: registry.base_text(),
        registry_name: detail.name.clone(),
        version: detail.version.clone(),
        kind: kind.to_owned(),
        transport,
        target: shown,
        config: target.config.to_owned(),
        secrets_file: has_secrets
            .then(|| {
                target
                    .data_dir
                    .map(|dir| crate::import::secrets_path(dir, name))
            })
            .flatten(),
        notes,
    }
}

/// Checks the entry, writes its secrets (when it has any) and the config.
fn write_plan(
    config: &mut ConfigFile,
    target: &Target<'_>,
    name: &str,
    mut entry: Value,
    secrets: &BTreeMap<String, String>,
    replace: bool,
) -> Result<(), AddError> {
    if !secrets.is_empty() {
        let Some(data_dir) = target.data_dir else {
            return Err(AddError::Invalid(
                "it has secret values, and there is no data dir to keep them in".into(),
            ));
        };
        entry["envFile"] = json!(crate::import::secrets_path(data_dir, name));
    }
    check_policy(config, name, &entry)?;
    if let (false, Some(data_dir)) = (secrets.is_empty(), target.data_dir) {
        crate::import::write_secrets(&crate::import::secrets_path(data_dir, name), secrets)
            .map_err(AddError::Invalid)?;
    }
    if replace {
        config.set(name, &entry);
    } else {
        config.add(name, &entry);
    }
    config.save().map_err(AddError::Invalid)
}

/// A server of the config that came from a registry, and its latest version there.
#[derive(Debug, Clone, Serialize)]
pub struct Outdated {
    pub name: String,
    pub registry: String,
    #[serde(rename = "registryName")]
    pub registry_name: String,
    pub current: String,
    pub latest: String,
}

/// The config's registry servers, each with where it came from.
fn registry_servers(config: &ConfigFile) -> Vec<(String, Value, Map<String, Value>)> {
    config
        .servers()
        .into_iter()
        .filter_map(|(name, entry)| {
            let source = entry.get("registry")?.as_object()?.clone();
            Some((name, entry, source))
        })
        .collect()
}

fn source_text<'a>(source: &'a Map<String, Value>, key: &str) -> &'a str {
    source.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// `registry outdated`: the servers whose registry has a newer version. A registry that cannot
/// be reached is an error naming it.
pub async fn outdated(
    config_path: &Path,
    data_dir: Option<&Path>,
) -> Result<Vec<Outdated>, AddError> {
    let config = ConfigFile::open(config_path).map_err(AddError::Invalid)?;
    let mut found = Vec::new();
    for (name, _, source) in registry_servers(&config) {
        let registry = Registry::new(source_text(&source, "url"), data_dir)?;
        let latest = registry.show(source_text(&source, "name"), None).await?;
        let current = source_text(&source, "version");
        if latest.server.version != current
            && super::client::version_newer(&latest.server.version, current)
        {
            found.push(Outdated {
                name,
                registry: registry.base_text(),
                registry_name: latest.server.name.clone(),
                current: current.to_owned(),
                latest: latest.server.version,
            });
        }
    }
    Ok(found)
}

/// `registry update NAME`: moves a registry server to its registry's latest version, with the
/// values it has (its env, headers, arguments and secrets file) and the settings the user added
/// (`disabled`, `timeout`, `tools`, …). `Ok(None)`: it is at the latest already.
pub async fn update(target: &Target<'_>, name: &str) -> Result<Option<Added>, AddError> {
    let mut config = ConfigFile::open(target.config).map_err(AddError::Invalid)?;
    let Some((_, entry, source)) = registry_servers(&config)
        .into_iter()
        .find(|(server, _, _)| server == name)
    else {
        return Err(AddError::Invalid(if config.servers().contains_key(name) {
            format!(
                "server \"{name}\" did not come from a registry (its entry has no \"registry\")"
            )
        } else {
            format!("no server named \"{name}\" in {}", target.config.display())
        }));
    };
    let registry = Registry::new(source_text(&source, "url"), target.data_dir)?;
    let latest = registry.show(source_text(&source, "name"), None).await?;
    if latest.server.version == source_text(&source, "version") {
        return Ok(None);
    }
    let strings = |key: &str| -> BTreeMap<String, String> {
        entry
            .get(key)
            .and_then(Value::as_object)
            .map(|map| {
                map.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default()
    };
    let args = source
        .get("arguments")
        .and_then(Value::as_object)
        .map(|map| {
            map.iter()
                .map(|(k, v)| {
                    let values = v
                        .as_array()
                        .map(|items| {
                            items
                                .iter()
                                .filter_map(Value::as_str)
                                .map(str::to_owned)
                                .collect()
                        })
                        .unwrap_or_default();
                    (k.clone(), values)
                })
                .collect()
        })
        .unwrap_or_default();
    let request = AddRequest {
        env: strings("env"),
        headers: strings("headers"),
        args,
        package: Some(source_text(&source, "package").to_owned()).filter(|kind| !kind.is_empty()),
    };
    let plan = plan(&registry.base_text(), &latest.server, &request)?;
    let mut merged = entry.as_object().cloned().unwrap_or_default();
    for key in ["command", "args", "env", "url", "type", "headers"] {
        merged.remove(key);
    }
    if let Value::Object(new) = &plan.entry {
        for (key, value) in new {
            merged.insert(key.clone(), value.clone());
        }
    }
    let has_secrets = !plan.secrets.is_empty() || merged.contains_key("envFile");
    if plan.secrets.is_empty() {
        write_plan(
            &mut config,
            target,
            name,
            Value::Object(merged),
            &plan.secrets,
            true,
        )?;
    } else {
        merged.remove("envFile");
        write_plan(
            &mut config,
            target,
            name,
            Value::Object(merged),
            &plan.secrets,
            true,
        )?;
    }
    let entry = &config.servers()[name];
    Ok(Some(added(
        &registry,
        target,
        name,
        &latest.server,
        &plan.kind,
        entry,
        has_secrets,
        Vec::new(),
    )))
}
