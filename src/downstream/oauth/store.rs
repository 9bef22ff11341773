//! The token store: one owner-only JSON file per server under `<data dir>/oauth/` (the directory
//! owner-only too), named by a hash of the server's name and URL and holding its tokens, what
//! discovery found and its DPoP key. A proxy loads it at start, saves after each grant or refresh,
//! and, while a server waits for a user, watches for `pluggedin-mcp-proxy auth` to write it.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use url::Url;

use super::{OAuth, Session, Tokens};
use crate::sync::lock;

/// How often a server awaiting authorization looks for stored tokens.
const STORE_POLL: Duration = Duration::from_millis(500);

/// What the token file holds.
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    /// The server's URL, so that a file is never used for another server.
    url: String,
    tokens: Tokens,
    session: Session,
    /// The DPoP key (PKCS#8, base64) the tokens are bound to.
    #[serde(default)]
    dpop_key: Option<String>,
}

/// Where token files go: `<data dir>/oauth`, set once at start-up.
static STORE_DIR: OnceLock<PathBuf> = OnceLock::new();

/// Keeps tokens in `<data_dir>/oauth` (one owner-only file per server) from now on.
pub fn set_store_dir(data_dir: &Path) {
    let _ = STORE_DIR.set(data_dir.join("oauth"));
}

/// The token file of a server: its name and URL hashed, so names need no escaping.
fn store_path(server: &str, url: &Url) -> Option<PathBuf> {
    let digest = Sha256::digest(format!("{server}\n{url}").as_bytes());
    let name: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    Some(STORE_DIR.get()?.join(format!("{name}.json")))
}

/// Writes `text` to `path` readable by the owner only, replacing it atomically, in a directory
/// only the owner can enter (the tokens of every server live there).
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    crate::security::write_private(path, text.as_bytes())
}

impl OAuth {
    /// Takes up the tokens stored for this server, if any (and if still for its URL).
    pub(super) fn load(&self) {
        let Some(path) = store_path(&self.server, &self.url) else {
            return;
        };
        let Ok(text) = std::fs::read_to_string(&path) else {
            return;
        };
        match serde_json::from_str::<Stored>(&text) {
            Ok(stored) if stored.url == self.url.as_str() => {
                tracing::debug!(server = %self.server, "OAuth tokens loaded");
                *lock(&self.tokens) = Some(stored.tokens);
                *lock(&self.session) = Some(stored.session);
                *lock(&self.dpop_key) = stored.dpop_key.and_then(|key| STANDARD.decode(key).ok());
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(server = %self.server, file = %path.display(), "unreadable OAuth token file: {error}");
            }
        }
    }

    /// Returns once new tokens are stored for this server (by `pluggedin-mcp-proxy auth`, in
    /// another process), having taken them up.
    pub async fn tokens_stored(&self) {
        let Some(path) = store_path(&self.server, &self.url) else {
            return std::future::pending().await;
        };
        let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
        let before = modified(&path);
        loop {
            tokio::time::sleep(STORE_POLL).await;
            let now = modified(&path);
            if now.is_some() && now != before {
                self.load();
                self.needs_user
                    .store(false, std::sync::atomic::Ordering::Relaxed);
                return;
            }
        }
    }

    /// Writes the current tokens to the server's owner-only file.
    pub(super) fn save(&self) {
        let Some(path) = store_path(&self.server, &self.url) else {
            return;
        };
        let (Some(tokens), Some(session)) =
            (lock(&self.tokens).clone(), lock(&self.session).clone())
        else {
            return;
        };
        let stored = Stored {
            url: self.url.to_string(),
            tokens,
            session,
            dpop_key: lock(&self.dpop_key)
                .as_ref()
                .map(|key| STANDARD.encode(key)),
        };
        let text = serde_json::to_string_pretty(&stored).unwrap_or_default();
        if let Err(error) = write_private(&path, &text) {
            tracing::warn!(server = %self.server, file = %path.display(), "OAuth tokens not saved: {error}");
        }
    }
}
