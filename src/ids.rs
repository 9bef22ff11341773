//! Stable server UUIDs: every configured server gets one, persisted in the data dir
//! (`server-ids.json`), so `<uuid>__<tool>` names survive restarts. Writes are atomic (temp file
//! and rename); an unwritable data dir costs only persistence, never a start.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const FILE_NAME: &str = "server-ids.json";

pub struct ServerIds {
    path: Option<PathBuf>,
    ids: Mutex<BTreeMap<String, String>>,
}

impl ServerIds {
    /// Loads the ids from `data_dir`, or starts empty.
    pub fn load(data_dir: Option<&Path>) -> ServerIds {
        let path = data_dir.map(|dir| dir.join(FILE_NAME));
        let ids = path
            .as_deref()
            .and_then(|path| std::fs::read_to_string(path).ok())
            .and_then(|text| match serde_json::from_str(&text) {
                Ok(ids) => Some(ids),
                Err(error) => {
                    tracing::warn!("ignoring unreadable {FILE_NAME}: {error}");
                    None
                }
            })
            .unwrap_or_default();
        ServerIds {
            path,
            ids: Mutex::new(ids),
        }
    }

    /// The UUID of a server, made and persisted on first use.
    pub fn get(&self, server: &str) -> String {
        let mut ids = self
            .ids
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(id) = ids.get(server) {
            return id.clone();
        }
        let id = uuid::Uuid::new_v4().to_string();
        ids.insert(server.to_owned(), id.clone());
        if let Some(path) = &self.path
            && let Err(error) = save(path, &ids)
        {
            tracing::warn!(file = %path.display(), "cannot save server ids: {error}");
        }
        id
    }
}

fn save(path: &Path, ids: &BTreeMap<String, String>) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let temp = path.with_extension(format!("json.{}.tmp", std::process::id()));
    let text = serde_json::to_string_pretty(ids).map_err(std::io::Error::other)?;
    std::fs::write(&temp, text)?;
    std::fs::rename(&temp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_across_loads() {
        let dir = tempfile::tempdir().unwrap();
        let first = ServerIds::load(Some(dir.path())).get("time");
        assert!(uuid::Uuid::parse_str(&first).is_ok());
        let again = ServerIds::load(Some(dir.path())).get("time");
        assert_eq!(first, again);
        assert_ne!(first, ServerIds::load(Some(dir.path())).get("other"));
    }
}
