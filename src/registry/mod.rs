//! An MCP registry: the official one (`registry.modelcontextprotocol.io`) or any that speaks its
//! read API, version `v0.1` (`modelcontextprotocol/registry`, `docs/reference/api/openapi.yaml`:
//! `GET /v0.1/servers` with `search`, `limit`, `cursor` and `version=latest`, and
//! `GET /v0.1/servers/{name}/versions/{version}`). `client` fetches, with every answer kept in
//! the data dir with its `ETag` (asked again with `If-None-Match`; a `search` that cannot reach
//! the registry answers from that cache and says so). The entries are `server.json` documents
//! (`docs/reference/server-json/server.schema.json`), read here into [`ServerDetail`]; `install`
//! turns one into a config entry. An entry is untrusted input: the entry written is checked by
//! the security policy before it is written, and again, as `Origin::Registry`, before it runs.

pub mod client;
pub mod install;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use client::{Registry, RegistryError, SearchPage};

/// The official MCP Registry.
pub const OFFICIAL_URL: &str = "https://registry.modelcontextprotocol.io";

/// One answer of the registry: a server version and the registry's metadata about it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerResponse {
    pub server: ServerDetail,
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Value>,
}

impl ServerResponse {
    /// The registry's status of this version (`active`, `deprecated`, `deleted`), if it says.
    pub fn status(&self) -> Option<&str> {
        self.meta
            .as_ref()?
            .get("io.modelcontextprotocol.registry/official")?
            .get("status")?
            .as_str()
    }
}

/// A `server.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerDetail {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default)]
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<Value>,
    #[serde(default)]
    pub packages: Vec<Package>,
    #[serde(default)]
    pub remotes: Vec<Remote>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Package {
    pub registry_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_base_url: Option<String>,
    #[serde(default)]
    pub identifier: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_hint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<Transport>,
    #[serde(default)]
    pub runtime_arguments: Vec<Argument>,
    #[serde(default)]
    pub package_arguments: Vec<Argument>,
    #[serde(default)]
    pub environment_variables: Vec<KeyValueInput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_sha256: Option<String>,
}

/// A package's transport: `stdio`, or HTTP on a URL template.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Transport {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default)]
    pub headers: Vec<KeyValueInput>,
}

/// A remote: Streamable HTTP or SSE at a URL template, with headers and URL variables.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Remote {
    #[serde(rename = "type")]
    pub kind: String,
    pub url: String,
    #[serde(default)]
    pub headers: Vec<KeyValueInput>,
    #[serde(default)]
    pub variables: BTreeMap<String, Input>,
}

/// A value the server needs: fixed, defaulted, chosen, or asked of the user.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Input {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub is_required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default)]
    pub is_secret: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placeholder: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, Input>,
}

/// An environment variable or a header.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyValueInput {
    pub name: String,
    #[serde(flatten)]
    pub input: Input,
}

/// A command-line argument: positional (a value or a value the user gives, named by its
/// `valueHint`) or named (`--flag value`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Argument {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_hint: Option<String>,
    #[serde(default)]
    pub is_repeated: bool,
    #[serde(flatten)]
    pub input: Input,
}

impl Argument {
    /// The name a user gives its value under: the value hint, else the flag without dashes.
    pub fn key(&self) -> Option<String> {
        self.value_hint.clone().or_else(|| {
            self.name
                .as_ref()
                .map(|name| name.trim_start_matches('-').to_owned())
        })
    }
}

/// `NAME@VERSION` split (a registry name has no `@`).
pub fn split_name(text: &str) -> (&str, Option<&str>) {
    match text.rsplit_once('@') {
        Some((name, version)) if !name.is_empty() && !version.is_empty() => (name, Some(version)),
        _ => (text, None),
    }
}
