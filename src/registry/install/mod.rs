//! From a registry entry to a config entry. [`plan`] chooses the package or remote to run and
//! makes the entry: `package` (runners per registry type) or `remote`, with `values` filling in
//! what the entry needs from the user and keeping secrets apart. `add` checks the entry with
//! the security policy, writes its secrets to an owner-only env file and the entry to the
//! config; `update` moves a registry server to its registry's latest version, `outdated` lists
//! those behind. The entry records its origin (`"registry": {url, name, version, package}`),
//! which makes it `Origin::Registry` — checked by the security policy here and whenever it starts.

mod add;
mod package;
mod remote;
mod update;
mod values;

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value, json};

pub use add::{Added, Target, add, default_name};
pub use update::{Outdated, outdated, update};

use super::{Package, RegistryError, Remote, ServerDetail};
use package::package_entry;
use remote::remote_entry;
use values::Values;

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
    /// The values are as the config file holds them (an update re-reads them from the entry):
    /// taken as written, not escaped again.
    pub written: bool,
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

/// Makes the config entry for `detail` with the user's values.
pub fn plan(registry: &str, detail: &ServerDetail, request: &AddRequest) -> Result<Plan, AddError> {
    let mut values = Values::new(request);
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
