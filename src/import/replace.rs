//! `import --replace` and `import --restore`. Replacing rewrites the servers of each imported
//! client file so that it starts only the proxy: for JSON files the servers object alone is
//! replaced in place (comments and every other key stay), for Codex's TOML the `[mcp_servers.*]`
//! tables are taken out and one for the proxy added. The file as it was is copied to the data
//! dir first, and a record says what was written. Restoring undoes exactly that edit: when the
//! file is byte for byte what was written, the backup comes back whole (byte-identical); when
//! the client changed other parts since (Claude Code rewrites `~/.claude.json` often) but the
//! servers are still the proxy entry written, only the servers are put back and the client's
//! newer rest is kept; when the servers changed too, restoring refuses and says why.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::clients::{Client, Format, Source};
use crate::config::edit::write_atomically;
use crate::config::jsonc::Document;

/// The name the proxy gets in the clients' configs.
pub const PROXY_NAME: &str = "pluggedin";

/// How a client starts the proxy.
#[derive(Debug, Clone)]
pub struct ProxyEntry {
    pub command: String,
    pub args: Vec<String>,
}

/// A file that was rewritten.
#[derive(Debug, Clone, Serialize)]
pub struct Replaced {
    pub client: Client,
    pub path: PathBuf,
    pub backup: PathBuf,
}

/// A file restored, or why not.
#[derive(Debug, Clone, Serialize)]
pub struct Restored {
    pub client: Client,
    pub path: PathBuf,
    /// `restored` (byte-identical), `servers-restored` (the servers put back, the client's
    /// later changes kept) or `refused`.
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The record of the files `--replace` rewrote, in the data dir.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Record {
    files: Vec<FileRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct FileRecord {
    client: Client,
    path: PathBuf,
    backup: PathBuf,
    /// The SHA-256 of the file as written.
    written: String,
    /// The servers objects replaced: where, what was there, what was written.
    edits: Vec<Edit>,
    at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Edit {
    #[serde(rename = "keyPath")]
    key_path: Vec<String>,
    before: String,
    after: String,
}

impl<'de> Deserialize<'de> for Client {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Client, D::Error> {
        let name = String::deserialize(deserializer)?;
        Client::parse(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown client {name}")))
    }
}

fn record_path(data_dir: &Path) -> PathBuf {
    data_dir.join("import").join("replaced.json")
}

fn load(data_dir: &Path) -> Result<Record, String> {
    let path = record_path(data_dir);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|error| format!("{} is damaged: {error}", path.display())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Record::default()),
        Err(error) => Err(format!("cannot read {}: {error}", path.display())),
    }
}

fn save(data_dir: &Path, record: &Record) -> Result<(), String> {
    let path = record_path(data_dir);
    let bytes = serde_json::to_vec_pretty(record).expect("the record serializes");
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|error| format!("cannot create {}: {error}", dir.display()))?;
    }
    crate::security::write_private(&path, &bytes)
        .map_err(|error| format!("cannot write {}: {error}", path.display()))
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The servers object a client gets: the proxy alone.
fn proxy_servers(client: Client, proxy: &ProxyEntry) -> Value {
    let mut entry = Map::new();
    if client == Client::Vscode {
        entry.insert("type".into(), json!("stdio"));
    }
    entry.insert("command".into(), json!(proxy.command));
    entry.insert("args".into(), json!(proxy.args));
    json!({ PROXY_NAME: Value::Object(entry) })
}

/// Rewrites each source's file to start only the proxy (sources of one file together).
pub(super) fn replace(
    sources: &[Source],
    proxy: &ProxyEntry,
    data_dir: &Path,
) -> Result<Vec<Replaced>, String> {
    let mut record = load(data_dir)?;
    let mut replaced = Vec::new();
    let mut paths: Vec<&PathBuf> = sources.iter().map(|source| &source.path).collect();
    paths.dedup();
    for path in paths {
        if record.files.iter().any(|file| &file.path == path) {
            // Already the proxy's (an earlier --replace not restored): nothing to do.
            continue;
        }
        let here: Vec<&Source> = sources
            .iter()
            .filter(|source| &source.path == path)
            .collect();
        let client = here[0].client;
        let original = std::fs::read(path)
            .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
        let text = String::from_utf8(original.clone())
            .map_err(|_| format!("{} is not UTF-8 text", path.display()))?;
        let (written, edits) = match here[0].format {
            Format::Json => {
                let mut document = Document::new(&text)
                    .map_err(|error| format!("{} is not valid JSON: {error}", path.display()))?;
                let mut edits = Vec::new();
                for source in &here {
                    let key_path: Vec<&str> = source.key_path.iter().map(String::as_str).collect();
                    let before = document.raw(&key_path).unwrap_or_default().to_owned();
                    document.replace(&key_path, &proxy_servers(client, proxy));
                    let after = document.raw(&key_path).unwrap_or_default().to_owned();
                    edits.push(Edit {
                        key_path: source.key_path.clone(),
                        before,
                        after,
                    });
                }
                (document.text().to_owned(), edits)
            }
            Format::Toml => (
                toml_replace(&text, proxy)
                    .map_err(|error| format!("{}: {error}", path.display()))?,
                Vec::new(),
            ),
        };
        let stamp = crate::control::time::now_ms();
        let backup = data_dir.join("import").join("backups").join(format!(
            "{stamp}-{}-{}",
            client.name(),
            path.file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default()
        ));
        if let Some(dir) = backup.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|error| format!("cannot create {}: {error}", dir.display()))?;
        }
        // The backup holds the client's servers, secrets included: owner-only.
        crate::security::write_private(&backup, &original)
            .map_err(|error| format!("cannot write the backup {}: {error}", backup.display()))?;
        write_atomically(path, written.as_bytes())
            .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
        record.files.push(FileRecord {
            client,
            path: path.clone(),
            backup: backup.clone(),
            written: sha256(written.as_bytes()),
            edits,
            at: stamp,
        });
        save(data_dir, &record)?;
        replaced.push(Replaced {
            client,
            path: path.clone(),
            backup,
        });
    }
    Ok(replaced)
}

/// Undoes `--replace` for the files of `clients` (all when empty).
pub fn restore(clients: &[Client], data_dir: &Path) -> Result<Vec<Restored>, String> {
    let mut record = load(data_dir)?;
    let mut outcomes = Vec::new();
    let mut kept = Vec::new();
    for file in std::mem::take(&mut record.files) {
        if !clients.is_empty() && !clients.contains(&file.client) {
            kept.push(file);
            continue;
        }
        match restore_file(&file) {
            Ok(outcome) => outcomes.push(Restored {
                client: file.client,
                path: file.path.clone(),
                outcome,
                reason: None,
            }),
            Err(reason) => {
                outcomes.push(Restored {
                    client: file.client,
                    path: file.path.clone(),
                    outcome: "refused",
                    reason: Some(reason),
                });
                kept.push(file);
            }
        }
    }
    record.files = kept;
    save(data_dir, &record)?;
    Ok(outcomes)
}

fn restore_file(file: &FileRecord) -> Result<&'static str, String> {
    let backup = std::fs::read(&file.backup).map_err(|error| {
        format!(
            "the backup {} cannot be read: {error}",
            file.backup.display()
        )
    })?;
    let current = match std::fs::read(&file.path) {
        Ok(current) => current,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "the file was removed since the import --replace; its backup is {}",
                file.backup.display()
            ));
        }
        Err(error) => return Err(format!("cannot read it: {error}")),
    };
    if sha256(&current) == file.written {
        write_atomically(&file.path, &backup)
            .map_err(|error| format!("cannot write it: {error}"))?;
        return Ok("restored");
    }
    let changed = |why: &str| {
        format!(
            "it changed since the import --replace ({why}), so putting the backup back would undo \
             those changes; restore it by hand from {}",
            file.backup.display()
        )
    };
    if file.edits.is_empty() {
        return Err(changed("the file is not what was written"));
    }
    let text = String::from_utf8(current).map_err(|_| changed("it is not UTF-8 text now"))?;
    let mut document = Document::new(&text).map_err(|_| changed("it is not valid JSON now"))?;
    for edit in &file.edits {
        let key_path: Vec<&str> = edit.key_path.iter().map(String::as_str).collect();
        if document.raw(&key_path) != Some(edit.after.as_str()) {
            return Err(changed(&format!(
                "its \"{}\" is no longer the proxy entry that was written",
                edit.key_path.join(".")
            )));
        }
        document.replace_raw(&key_path, &edit.before);
    }
    write_atomically(&file.path, document.text().as_bytes())
        .map_err(|error| format!("cannot write it: {error}"))?;
    Ok("servers-restored")
}

/// Codex's config with its `[mcp_servers.*]` tables taken out and one for the proxy added.
fn toml_replace(text: &str, proxy: &ProxyEntry) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut in_servers = false;
    let mut seen_table = false;
    let mut multiline: Option<&str> = None;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if let Some(delimiter) = multiline {
            if line.matches(delimiter).count() % 2 == 1 {
                multiline = None;
            }
            if !in_servers {
                out.push_str(line);
            }
            continue;
        }
        if trimmed.starts_with('[') {
            seen_table = true;
            let name = trimmed.trim_start_matches('[').trim_start();
            in_servers = name.starts_with("mcp_servers.")
                || name.starts_with("mcp_servers]")
                || name.starts_with("\"mcp_servers\"")
                || name.starts_with("mcp_servers ");
        } else if !seen_table && trimmed.starts_with("mcp_servers") {
            return Err(
                "its servers are written as dotted keys or an inline table at the top; move them \
                 into [mcp_servers.<name>] tables to use --replace"
                    .into(),
            );
        }
        for delimiter in ["\"\"\"", "'''"] {
            if line.matches(delimiter).count() % 2 == 1 {
                multiline = Some(delimiter);
            }
        }
        if !in_servers {
            out.push_str(line);
        }
    }
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    if !out.is_empty() && !out.ends_with("\n\n") {
        out.push('\n');
    }
    let args: Vec<String> = proxy.args.iter().map(|arg| toml_string(arg)).collect();
    out.push_str(&format!(
        "[mcp_servers.{PROXY_NAME}]\ncommand = {}\nargs = [{}]\n",
        toml_string(&proxy.command),
        args.join(", ")
    ));
    Ok(out)
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    let mut out = String::from("\"");
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            ch if ch.is_control() => out.push_str(&format!("\\u{:04x}", ch as u32)),
            ch => out.push(ch),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codex_tables_are_replaced_and_the_rest_kept() {
        let text = "model = \"o3\"\n\n[mcp_servers.a]\ncommand = \"npx\"\nargs = [\n  \"-y\",\n  \"x\",\n]\n\n[mcp_servers.a.env]\nK = \"v\"\n\n[profiles.fast]\nmodel = \"o4\"\n";
        let proxy = ProxyEntry {
            command: "C:\\bin\\pluggedin-mcp-proxy.exe".into(),
            args: vec!["--config".into(), "/c/mcp.json".into()],
        };
        let out = toml_replace(text, &proxy).unwrap();
        assert_eq!(
            out,
            "model = \"o3\"\n\n[profiles.fast]\nmodel = \"o4\"\n\n[mcp_servers.pluggedin]\ncommand = \"C:\\\\bin\\\\pluggedin-mcp-proxy.exe\"\nargs = [\"--config\", \"/c/mcp.json\"]\n"
        );
        let parsed: Value = basic_toml::from_str(&out).unwrap();
        assert_eq!(
            parsed["mcp_servers"]["pluggedin"]["command"],
            json!("C:\\bin\\pluggedin-mcp-proxy.exe")
        );
        assert!(toml_replace("mcp_servers.a.command = \"x\"\n", &proxy).is_err());
    }
}
