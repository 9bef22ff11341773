//! Writing the config file for the commands that add servers (`import`, `registry add`): the
//! file is edited in place (`jsonc`), so the user's other keys, order, formatting and `${VAR}`
//! references stay as written, and replaced atomically (a temporary file beside it, then a
//! rename), which the watcher of a running proxy sees as one edit. A new file is created owner-
//! only, since servers' env and headers may hold secrets.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::jsonc::Document;

/// The config file being edited.
pub struct ConfigFile {
    pub path: PathBuf,
    document: Document,
    /// `mcpServers`, or VS Code's `servers` when that is the file's spelling.
    key: &'static str,
    /// Whether the file exists yet.
    pub exists: bool,
}

impl ConfigFile {
    /// Reads the file at `path`, or starts an empty one when there is none. A file that is not
    /// JSON, or whose servers are not an object, is an error naming it: nothing is written over it.
    pub fn open(path: &Path) -> Result<ConfigFile, String> {
        let (text, exists) = match std::fs::read_to_string(path) {
            Ok(text) => (text, true),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                ("{\n  \"mcpServers\": {}\n}\n".to_owned(), false)
            }
            Err(error) => return Err(format!("cannot read {}: {error}", path.display())),
        };
        let mut document = Document::new(&text)
            .map_err(|error| format!("{} is not valid JSON: {error}", path.display()))?;
        let value = document.value();
        let Value::Object(root) = &value else {
            return Err(format!(
                "{}: the top level must be a JSON object",
                path.display()
            ));
        };
        let key = if root.contains_key("mcpServers") || !root.contains_key("servers") {
            "mcpServers"
        } else {
            "servers"
        };
        match root.get(key) {
            Some(Value::Object(_)) => {}
            None => {
                if !document.insert(&[], key, &Value::Object(Map::new())) {
                    return Err(format!("{}: cannot add \"{key}\"", path.display()));
                }
            }
            Some(_) => {
                return Err(format!(
                    "{}: \"{key}\" must be an object of servers by name",
                    path.display()
                ));
            }
        }
        Ok(ConfigFile {
            path: path.to_owned(),
            document,
            key,
            exists,
        })
    }

    /// The servers as written (references unresolved), by name.
    pub fn servers(&self) -> Map<String, Value> {
        match self.document.value().get(self.key) {
            Some(Value::Object(servers)) => servers.clone(),
            _ => Map::new(),
        }
    }

    /// The file's other top-level settings (`registryUrl`, `security`, …) as written.
    pub fn top_level(&self, key: &str) -> Option<Value> {
        self.document.value().get(key).cloned()
    }

    /// Adds a server (the name must be free).
    pub fn add(&mut self, name: &str, entry: &Value) {
        self.document.insert(&[self.key], name, entry);
    }

    /// Replaces a server's entry.
    pub fn set(&mut self, name: &str, entry: &Value) {
        if !self.document.replace(&[self.key, name], entry) {
            self.add(name, entry);
        }
    }

    /// The text as it would be written.
    pub fn text(&self) -> &str {
        self.document.text()
    }

    /// Writes the file (atomically; its directory is created when missing).
    pub fn save(&mut self) -> Result<(), String> {
        write_atomically(&self.path, self.document.text().as_bytes())
            .map_err(|error| format!("cannot write {}: {error}", self.path.display()))?;
        self.exists = true;
        Ok(())
    }
}

/// Replaces `path` with `bytes` through a temporary file beside it and a rename. An existing
/// file keeps its permissions; a new one is readable by its owner only.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)?;
    }
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "config".to_owned());
    let temporary = path.with_file_name(format!(".{file_name}.pluggedin-tmp"));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mode = std::fs::metadata(path)
            .map(|metadata| std::os::unix::fs::PermissionsExt::mode(&metadata.permissions()))
            .unwrap_or(0o600);
        options.mode(mode & 0o777);
    }
    let mut file = options.open(&temporary)?;
    std::io::Write::write_all(&mut file, bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temporary, path)
}

/// Where the commands that add servers write when no config file exists yet: the last of the
/// search paths (`<config dir>/pluggedin-mcp-proxy/mcp.json`), which every proxy finds.
pub fn default_path() -> PathBuf {
    super::search_paths()
        .pop()
        .unwrap_or_else(|| PathBuf::from("mcp.json"))
}

/// A name for a server that is not taken: `base`, else `base-2`, `base-3`, ….
pub fn free_name(base: &str, taken: &dyn Fn(&str) -> bool) -> String {
    if !taken(base) {
        return base.to_owned();
    }
    (2..)
        .map(|n| format!("{base}-{n}"))
        .find(|name| !taken(name))
        .expect("an unbounded range has a free name")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn adding_a_server_keeps_the_rest_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mcp.json");
        let original = "{\n  \"security\": {\"allowedCommands\": [\"deno\"]},\n  \"mcpServers\": {\n    \"a\": {\"command\": \"${BIN}\"}\n  }\n}\n";
        std::fs::write(&path, original).unwrap();
        let mut file = ConfigFile::open(&path).unwrap();
        file.add("b", &json!({"url": "https://example.com/mcp"}));
        file.save().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("{\n  \"security\": {\"allowedCommands\": [\"deno\"]},"),
            "{text}"
        );
        assert!(
            text.contains("\"a\": {\"command\": \"${BIN}\"},\n    \"b\": {\n      \"url\""),
            "{text}"
        );
        let file = ConfigFile::open(&path).unwrap();
        assert_eq!(file.servers().len(), 2);
    }

    #[test]
    fn a_new_file_is_created_owner_only_and_a_broken_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/mcp.json");
        let mut file = ConfigFile::open(&path).unwrap();
        assert!(!file.exists);
        file.add("a", &json!({"command": "x"}));
        file.save().unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "{ not json").unwrap();
        assert!(
            ConfigFile::open(&path)
                .err()
                .unwrap()
                .contains("not valid JSON")
        );
        assert_eq!(free_name("a", &|name| name == "a" || name == "a-2"), "a-3");
    }
}
