//! `registry add`, and the writing `update` shares with it: the server's name in the config,
//! the check of the entry by the security policy as `Origin::Registry` (with the config's own
//! security settings) before anything is written, then its secrets into the owner-only env
//! file the entry references, and the entry into the config file, in place. Nothing is written
//! when the check refuses.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Value, json};

use super::{AddError, AddRequest, plan};
use crate::config::edit::ConfigFile;
use crate::registry::{Registry, ServerDetail};

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

#[allow(
    clippy::too_many_arguments,
    reason = "a report assembled from its parts"
)]
pub(super) fn added(
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
pub(super) fn write_plan(
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
