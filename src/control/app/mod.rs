//! App mode: the plugged.in App's HTTP API as the control plane. `client` speaks HTTP (bearer
//! key, a timeout per kind of call, reads retried once, shared identical GETs, errors with the
//! App's reason); `servers` turns `/api/mcp-servers` into our config (every server of
//! [`Origin::App`](crate::config::Origin)); `mode` keeps the App's server list and catalog, each
//! list with its last good copy in the data dir, and resolves prompt and resource owners; `plane`
//! implements [`ControlPlane`](crate::control::ControlPlane) on the App's
//! endpoints with the original proxy's request bodies. Like the rest of `control`, nothing here
//! knows MCP types: catalog lists stay JSON until the catalog module reads them.

mod client;
mod mode;
mod plane;
mod servers;

use std::time::Duration;

pub use client::{ApiKey, AppClient, AppError, Call};
pub use mode::{AppCatalog, AppList, AppMode, AppStatus, CACHE_FILE, Refresh};
pub use plane::AppControl;
pub use servers::{AppIdentity, AppServers};

/// The App the original proxy talks to when no base URL is given.
pub const DEFAULT_BASE_URL: &str = "https://plugged.in";

/// The key and base URL of App mode, checked at start-up.
#[derive(Debug, Clone)]
pub struct AppSettings {
    pub key: ApiKey,
    pub base_url: url::Url,
    /// The base of every App request's bound (see [`Call`]).
    pub timeout: Duration,
    /// Ask for the App's prefixed tool names (`PLUGGEDIN_UUID_TOOL_PREFIXING` is not `false`).
    pub prefix_tools: bool,
}

impl AppSettings {
    /// App mode's settings from the flags (or their environment variables): `None` without a
    /// key (local mode). A key that does not have the App's format, or a base URL that does not
    /// parse as http(s), is an error — the original fell silently into keyless mode instead, and
    /// stripped hyphens from the URL; the URL is used as given here.
    /// `tool_prefixing` is `PLUGGEDIN_UUID_TOOL_PREFIXING`: as in the original, only the exact
    /// text `false` switches the App's tool prefixes off.
    pub fn resolve(
        key: Option<&str>,
        base_url: Option<&str>,
        timeout: Duration,
        tool_prefixing: Option<&str>,
    ) -> Result<Option<AppSettings>, String> {
        let Some(key) = key.filter(|key| !key.trim().is_empty()) else {
            return Ok(None);
        };
        let key = ApiKey::parse(key)
            .map_err(|reason| format!("--pluggedin-api-key / PLUGGEDIN_API_KEY: {reason}"))?;
        let text = base_url
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .unwrap_or(DEFAULT_BASE_URL);
        let base_url = url::Url::parse(text).map_err(|error| {
            format!("--pluggedin-api-base-url / PLUGGEDIN_API_BASE_URL \"{text}\" does not parse as a URL: {error}")
        })?;
        if !matches!(base_url.scheme(), "http" | "https") || base_url.host().is_none() {
            return Err(format!(
                "--pluggedin-api-base-url / PLUGGEDIN_API_BASE_URL \"{text}\" must be an http or https URL with a host"
            ));
        }
        Ok(Some(AppSettings {
            key,
            base_url,
            timeout,
            prefix_tools: tool_prefixing != Some("false"),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_key_is_local_mode_and_bad_settings_are_errors() {
        let timeout = Duration::from_secs(1);
        assert!(
            AppSettings::resolve(None, None, timeout, None)
                .unwrap()
                .is_none()
        );
        assert!(
            AppSettings::resolve(Some("  "), None, timeout, None)
                .unwrap()
                .is_none()
        );
        let key = "k".repeat(40);
        let settings = AppSettings::resolve(Some(&key), None, timeout, None)
            .unwrap()
            .unwrap();
        assert_eq!(settings.base_url.as_str(), "https://plugged.in/");
        assert!(settings.prefix_tools);
        for (value, prefix) in [
            (Some("false"), false),
            (Some("0"), true),
            (Some("FALSE"), true),
        ] {
            let settings = AppSettings::resolve(Some(&key), None, timeout, value)
                .unwrap()
                .unwrap();
            assert_eq!(settings.prefix_tools, prefix, "{value:?}");
        }
        let hyphen = AppSettings::resolve(
            Some(&key),
            Some("https://my-host.example:3000/a_b"),
            timeout,
            None,
        )
        .unwrap()
        .unwrap();
        assert_eq!(hyphen.base_url.host_str(), Some("my-host.example"));
        let error = AppSettings::resolve(Some("short"), None, timeout, None).unwrap_err();
        assert!(error.contains("PLUGGEDIN_API_KEY"));
        assert!(!error.contains("short"));
        assert!(AppSettings::resolve(Some(&key), Some("not a url"), timeout, None).is_err());
        assert!(AppSettings::resolve(Some(&key), Some("ftp://x"), timeout, None).is_err());
    }
}
