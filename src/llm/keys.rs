//! Where each provider is reached and with which key: a key saved from the console (an
//! owner-only file, `<data dir>/playground/providers.json`, in an owner-only folder), else the
//! provider's usual environment variable; a base URL saved likewise, else `<PROVIDER>_BASE_URL`
//! (`ANTHROPIC_BASE_URL`, `OPENAI_BASE_URL`, `GEMINI_BASE_URL`, `XAI_BASE_URL`,
//! `OPENAI_COMPATIBLE_BASE_URL`), else the provider's own. A saved key is never given back: the
//! API says only where a key comes from ([`KeySource`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::{Endpoint, ErrorKind, LlmError, ProviderKind};
use crate::secret::Secret;
use crate::sync::lock;

/// The longest key or base URL accepted for saving.
const MAX_VALUE: usize = 4096;

/// Where a provider's key comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "from", rename_all = "lowercase")]
pub enum KeySource {
    /// Saved from the console.
    Saved,
    /// The named environment variable.
    Environment {
        variable: &'static str,
    },
    None,
}

#[derive(Clone, Default, Serialize, Deserialize)]
struct Saved {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "baseUrl")]
    base_url: Option<String>,
}

/// The providers' keys and addresses.
pub struct Keys {
    /// `None`: nothing can be saved (no data directory).
    path: Option<PathBuf>,
    saved: Mutex<BTreeMap<String, Saved>>,
    /// The process environment, read once (tests give their own).
    environment: BTreeMap<String, String>,
}

/// Why a save was refused.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("{0}")]
    Invalid(String),
    #[error("no data directory to save in")]
    Nowhere,
    #[error("could not write {path}: {error}")]
    Write { path: String, error: std::io::Error },
}

impl Keys {
    /// Reads what was saved under `data_dir` (a missing or unreadable file: nothing saved) and
    /// the process environment.
    pub fn load(data_dir: Option<&Path>) -> Keys {
        Keys::with_environment(data_dir, std::env::vars().collect())
    }

    pub fn with_environment(
        data_dir: Option<&Path>,
        environment: BTreeMap<String, String>,
    ) -> Keys {
        let path = data_dir.map(|dir| dir.join("playground").join("providers.json"));
        let saved = path
            .as_deref()
            .and_then(|path| std::fs::read_to_string(path).ok())
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        Keys {
            path,
            saved: Mutex::new(saved),
            environment,
        }
    }

    fn variable(&self, name: &str) -> Option<&str> {
        self.environment
            .get(name)
            .map(String::as_str)
            .filter(|value| !value.trim().is_empty())
    }

    pub fn key_source(&self, kind: ProviderKind) -> KeySource {
        if lock(&self.saved)
            .get(kind.id())
            .is_some_and(|saved| saved.key.is_some())
        {
            return KeySource::Saved;
        }
        kind.key_variables()
            .iter()
            .find(|variable| self.variable(variable).is_some())
            .map_or(KeySource::None, |variable| KeySource::Environment {
                variable,
            })
    }

    fn key(&self, kind: ProviderKind) -> Option<Secret> {
        if let Some(key) = lock(&self.saved)
            .get(kind.id())
            .and_then(|saved| saved.key.clone())
        {
            return Some(Secret::new(key));
        }
        kind.key_variables()
            .iter()
            .find_map(|variable| self.variable(variable))
            .map(Secret::new)
    }

    /// Where the base URL comes from: `saved`, `environment`, `default`, or `none`.
    pub fn base_url_source(&self, kind: ProviderKind) -> &'static str {
        if lock(&self.saved)
            .get(kind.id())
            .is_some_and(|saved| saved.base_url.is_some())
        {
            "saved"
        } else if self.variable(base_url_variable(kind)).is_some() {
            "environment"
        } else if kind.default_base_url().is_some() {
            "default"
        } else {
            "none"
        }
    }

    /// The base URL requests go to (`None`: an OpenAI-compatible server not configured yet).
    pub fn base_url(&self, kind: ProviderKind) -> Option<String> {
        let saved = lock(&self.saved)
            .get(kind.id())
            .and_then(|saved| saved.base_url.clone());
        let variable = base_url_variable(kind);
        saved
            .or_else(|| self.variable(variable).map(str::to_owned))
            .or_else(|| kind.default_base_url().map(str::to_owned))
            .map(|url| url.trim_end_matches('/').to_owned())
    }

    /// How to reach `kind`, or why it cannot be reached: no base URL, or no key where one is
    /// needed (every provider but an OpenAI-compatible server).
    pub fn endpoint(&self, kind: ProviderKind) -> Result<Endpoint, LlmError> {
        let missing = |message: String| LlmError {
            kind: ErrorKind::Auth,
            status: None,
            message,
        };
        let base_url = self.base_url(kind).ok_or_else(|| LlmError {
            kind: ErrorKind::InvalidRequest,
            status: None,
            message: format!(
                "no base URL for {}: save one in the playground or set {}",
                kind.title(),
                base_url_variable(kind)
            ),
        })?;
        let key = self.key(kind);
        if key.is_none() && kind != ProviderKind::Compatible {
            return Err(missing(format!(
                "no API key for {}: save one in the playground or set {}",
                kind.title(),
                kind.key_variables().join(" or ")
            )));
        }
        Ok(Endpoint {
            kind,
            base_url,
            key,
        })
    }

    /// Saves a key and/or a base URL for `kind` (an empty string forgets it; `None` keeps it).
    pub fn save(
        &self,
        kind: ProviderKind,
        key: Option<&str>,
        base_url: Option<&str>,
    ) -> Result<(), SaveError> {
        let key = key.map(str::trim);
        let base_url = base_url.map(str::trim);
        for value in [key, base_url].into_iter().flatten() {
            if value.len() > MAX_VALUE || value.chars().any(char::is_control) {
                return Err(SaveError::Invalid(format!(
                    "a key or base URL is at most {MAX_VALUE} characters, with no control \
                     characters"
                )));
            }
        }
        if let Some(url) = base_url.filter(|url| !url.is_empty()) {
            let parsed = url::Url::parse(url)
                .map_err(|error| SaveError::Invalid(format!("base URL {url:?}: {error}")))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(SaveError::Invalid(format!(
                    "base URL {url:?}: only http and https are spoken"
                )));
            }
        }
        let path = self.path.as_ref().ok_or(SaveError::Nowhere)?;
        let mut saved = lock(&self.saved);
        let mut next = saved.clone();
        let entry = next.entry(kind.id().to_owned()).or_default();
        if let Some(key) = key {
            entry.key = (!key.is_empty()).then(|| key.to_owned());
        }
        if let Some(url) = base_url {
            entry.base_url = (!url.is_empty()).then(|| url.to_owned());
        }
        next.retain(|_, entry| entry.key.is_some() || entry.base_url.is_some());
        let text = serde_json::to_string_pretty(&next).unwrap_or_default();
        write_private_file(path, &text).map_err(|error| SaveError::Write {
            path: path.display().to_string(),
            error,
        })?;
        *saved = next;
        Ok(())
    }
}

/// The variable naming a provider's base URL.
pub fn base_url_variable(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::Anthropic => "ANTHROPIC_BASE_URL",
        ProviderKind::OpenAi => "OPENAI_BASE_URL",
        ProviderKind::Gemini => "GEMINI_BASE_URL",
        ProviderKind::Xai => "XAI_BASE_URL",
        ProviderKind::Compatible => "OPENAI_COMPATIBLE_BASE_URL",
    }
}

/// Writes the file owner-only, in a folder only the owner may enter.
fn write_private_file(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    crate::security::write_private(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn environment(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn a_saved_key_wins_over_the_environment_and_is_kept_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keys::with_environment(
            Some(dir.path()),
            environment(&[("GOOGLE_API_KEY", "from-env")]),
        );
        assert_eq!(
            keys.key_source(ProviderKind::Gemini),
            KeySource::Environment {
                variable: "GOOGLE_API_KEY"
            }
        );
        keys.save(ProviderKind::Gemini, Some("saved-key"), None)
            .unwrap();
        assert_eq!(keys.key_source(ProviderKind::Gemini), KeySource::Saved);
        let endpoint = keys.endpoint(ProviderKind::Gemini).unwrap();
        assert_eq!(endpoint.key.unwrap().expose(), "saved-key");
        assert_eq!(
            endpoint.base_url,
            "https://generativelanguage.googleapis.com"
        );
        let file = dir.path().join("playground/providers.json");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Read back by a new process.
        let again = Keys::with_environment(Some(dir.path()), BTreeMap::new());
        assert_eq!(again.key_source(ProviderKind::Gemini), KeySource::Saved);
        again.save(ProviderKind::Gemini, Some(""), None).unwrap();
        assert_eq!(again.key_source(ProviderKind::Gemini), KeySource::None);
    }

    #[test]
    fn a_provider_without_a_key_or_address_says_what_to_set() {
        let keys = Keys::with_environment(None, BTreeMap::new());
        let error = keys.endpoint(ProviderKind::Anthropic).unwrap_err();
        assert_eq!(error.kind, ErrorKind::Auth);
        assert!(error.message.contains("ANTHROPIC_API_KEY"), "{error}");
        let error = keys.endpoint(ProviderKind::Compatible).unwrap_err();
        assert!(
            error.message.contains("OPENAI_COMPATIBLE_BASE_URL"),
            "{error}"
        );
        let keys = Keys::with_environment(
            None,
            environment(&[("OPENAI_COMPATIBLE_BASE_URL", "http://127.0.0.1:11434/v1/")]),
        );
        let endpoint = keys.endpoint(ProviderKind::Compatible).unwrap();
        assert_eq!(endpoint.base_url, "http://127.0.0.1:11434/v1");
        assert!(endpoint.key.is_none());
        assert!(matches!(
            keys.save(ProviderKind::OpenAi, Some("k"), None),
            Err(SaveError::Nowhere)
        ));
        let dir = tempfile::tempdir().unwrap();
        let keys = Keys::with_environment(Some(dir.path()), BTreeMap::new());
        assert!(matches!(
            keys.save(ProviderKind::OpenAi, None, Some("file:///etc/passwd")),
            Err(SaveError::Invalid(_))
        ));
    }
}
