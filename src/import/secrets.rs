//! The owner-only env files in the data dir (`secrets/<server>.env`) that keep a server's
//! values only a client knew, or a registry entry's secret values; the config entry references
//! them through its `envFile`, which the config loader reads like any other. `import` and
//! `registry add` both write them here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The owner-only env file that keeps a server's secret values.
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
