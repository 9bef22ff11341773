//! Keeping registry servers current: `outdated` asks each server's registry for its latest
//! version, `update` moves one server there. An update makes the new version's entry with the
//! values the server has and keeps the settings the user added (`disabled`, `timeout`,
//! `tools`, …); it is checked and written like an `add`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use serde_json::{Map, Value};

use super::add::{Added, Target, added, write_plan};
use super::{AddError, AddRequest, Plan, plan};
use crate::config::edit::ConfigFile;
use crate::registry::Registry;

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
            && crate::registry::client::version_newer(&latest.server.version, current)
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
    let request = request_of(&entry, &source);
    let plan = plan(&registry.base_text(), &latest.server, &request)?;
    let mut merged = merged_entry(&entry, &plan);
    let has_secrets = !plan.secrets.is_empty() || merged.contains_key("envFile");
    if !plan.secrets.is_empty() {
        // The new secrets go to the server's own secrets file, which `write_plan` references.
        merged.remove("envFile");
    }
    write_plan(
        &mut config,
        target,
        name,
        Value::Object(merged),
        &plan.secrets,
        true,
    )?;
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

/// The values a registry server has, as the request for its new version: its env and headers
/// as written (secret ones as references), the arguments recorded in its origin, its package
/// type.
fn request_of(entry: &Value, source: &Map<String, Value>) -> AddRequest {
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
    AddRequest {
        env: strings("env"),
        headers: strings("headers"),
        args,
        package: Some(source_text(source, "package").to_owned()).filter(|kind| !kind.is_empty()),
        written: true,
    }
}

/// The server's entry with the new version's definition in place of the old one, and every
/// setting the user added kept.
fn merged_entry(entry: &Value, plan: &Plan) -> Map<String, Value> {
    let mut merged = entry.as_object().cloned().unwrap_or_default();
    for key in ["command", "args", "env", "url", "type", "headers"] {
        merged.remove(key);
    }
    if let Value::Object(new) = &plan.entry {
        for (key, value) in new {
            merged.insert(key.clone(), value.clone());
        }
    }
    merged
}
