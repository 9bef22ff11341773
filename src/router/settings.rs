//! The operator's settings and what they hide: disabled servers and tools, and the workspace in
//! force (pinned by `--workspace`, or chosen in the store), read from the control plane and
//! re-read when another process changed them (the CLI, another proxy on the same database):
//! woken by the store when it pushes changes (PostgreSQL), else polled. From them follow the
//! visible servers, whether a server's tool is visible, the built-in tools that are on, and why
//! a name that does not resolve is not served ([`Visibility::not_served`]). Rebuilding the
//! catalog when they change is the router's.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use rmcp::model::Tool;
use tokio_util::sync::CancellationToken;

use super::error::RouteError;
use super::fleet::Fleet;
use crate::builtin;
use crate::catalog::Catalog;
use crate::config::ToolExposure;
use crate::control::{ControlPlane, Settings, Workspace};
use crate::downstream::Downstream;
use crate::sync::{read, write};

/// How often a running proxy looks for settings changed by another process (the CLI), when the
/// store does not say. A single indexed read; half a second feels immediate to a person at a
/// terminal.
const SETTINGS_POLL: Duration = Duration::from_millis(500);
/// How often a proxy whose store wakes it on changes re-reads the settings version anyway
/// (`--settings-recheck-secs`), so that a wake-up lost some way nobody foresaw leaves it stale
/// for this long at most, not forever. A wake-up is the rule; this is rare, hence long.
pub const SETTINGS_RECHECK: Duration = Duration::from_secs(30);

/// Why the settings watch looks at the version now.
enum Due {
    /// Woken, or time for a look.
    Now,
    /// The store will not wake us again: look now, and poll from now on.
    Polling,
}

/// The operator's settings in force, and where they come from.
pub(super) struct Visibility {
    settings: RwLock<Arc<Settings>>,
    control: Arc<dyn ControlPlane>,
    /// The workspace this process is pinned to (`--workspace`), if any.
    pinned_workspace: Option<String>,
    /// The safety re-check when the store wakes us ([`SETTINGS_RECHECK`] unless told).
    recheck: Duration,
}

impl Visibility {
    pub(super) fn new(
        control: Arc<dyn ControlPlane>,
        pinned_workspace: Option<String>,
        recheck: Duration,
    ) -> Visibility {
        Visibility {
            settings: RwLock::default(),
            control,
            pinned_workspace,
            recheck,
        }
    }

    /// The operator's settings in force.
    pub(super) fn settings(&self) -> Arc<Settings> {
        read(&self.settings).clone()
    }

    /// Reads the settings from the control plane and puts them in force; `true` when they
    /// changed.
    pub(super) async fn reload(&self) -> bool {
        let mut settings = match self.control.settings().await {
            Ok(settings) => settings,
            Err(error) => {
                tracing::warn!("settings not read: {error}");
                return false;
            }
        };
        if let Some(pinned) = &self.pinned_workspace {
            let workspaces = self.control.workspaces().await.unwrap_or_default();
            settings.workspace = Some(
                workspaces
                    .into_iter()
                    .find(|workspace| &workspace.name == pinned)
                    .unwrap_or_else(|| Workspace {
                        name: pinned.clone(),
                        servers: Default::default(),
                        tool_exposure: None,
                    }),
            );
        }
        let changed = *self.settings() != settings;
        if changed {
            *write(&self.settings) = Arc::new(settings);
            let settings = self.settings();
            tracing::info!(
                disabled_servers = settings.disabled_servers.len(),
                disabled_tools = settings.disabled_tools.len(),
                workspace = settings.workspace.as_ref().map(|w| w.name.as_str()),
                tool_exposure = self.active_exposure().map(ToolExposure::as_str),
                "settings applied"
            );
        }
        changed
    }

    /// Reloads the settings now and whenever the control plane's settings version moves, until
    /// `cancel`; `changed` runs after each reload that changed them. The version is re-read
    /// when the store wakes us (and every `recheck` in case a wake-up was lost), or every
    /// [`SETTINGS_POLL`] when the store cannot wake us.
    pub(super) async fn watch(&self, cancel: CancellationToken, changed: impl Fn()) {
        // Asked for first, so that a change made while the settings are first read wakes us.
        let mut wakes = self.control.settings_changes();
        // Read the version, then the settings: a change in between is seen next round.
        let mut seen = self.control.settings_version().await.ok();
        if self.reload().await {
            changed();
        }
        loop {
            let due = async {
                match wakes.as_mut() {
                    Some(wakes) => {
                        match tokio::time::timeout(self.recheck, wakes.changed()).await {
                            // The store stopped waking us: poll from now on.
                            Ok(false) => Due::Polling,
                            Ok(true) | Err(_) => Due::Now,
                        }
                    }
                    None => {
                        tokio::time::sleep(SETTINGS_POLL).await;
                        Due::Now
                    }
                }
            };
            tokio::select! {
                () = cancel.cancelled() => return,
                due = due => if let Due::Polling = due {
                    tracing::warn!("the store stopped announcing settings changes; polling");
                    wakes = None;
                },
            }
            match self.control.settings_version().await {
                Ok(version) if Some(version) != seen => {
                    seen = Some(version);
                    if self.reload().await {
                        changed();
                    }
                }
                Ok(_) => {}
                Err(error) => tracing::debug!("settings version not read: {error}"),
            }
        }
    }

    /// What the workspace in force says a session's `tools/list` shows (`None`: no workspace,
    /// or one that leaves it to the flag). Re-read with the settings, so a change made by
    /// `workspace set` reaches running proxies as a switch does.
    pub(super) fn active_exposure(&self) -> Option<ToolExposure> {
        self.settings()
            .workspace
            .as_ref()
            .and_then(|workspace| workspace.tool_exposure)
    }

    /// The servers of `fleet` that are on: not disabled in the config or by the operator, and in
    /// the workspace in force.
    pub(super) fn visible(&self, fleet: &Fleet) -> Vec<Arc<Downstream>> {
        let settings = self.settings();
        fleet
            .all()
            .into_iter()
            .filter(|server| {
                !server.config.disabled
                    && !settings.disabled_servers.contains(&server.name)
                    && settings
                        .workspace
                        .as_ref()
                        .is_none_or(|workspace| workspace.servers.contains(&server.name))
            })
            .collect()
    }

    /// Whether a server's tool passes the config's filter and is not disabled by the operator.
    /// `catalog` is asked for only when the server is connected.
    pub(super) fn tool_visible(
        &self,
        server: &Downstream,
        original: &str,
        catalog: impl FnOnce() -> Arc<Catalog>,
    ) -> bool {
        if !server.config.tools.permits(original) {
            return false;
        }
        let settings = self.settings();
        let qualified = crate::names::qualify(&server.slug, original);
        let by_uuid = format!("{}__{original}", server.uuid);
        if [qualified.as_str(), by_uuid.as_str()]
            .iter()
            .any(|name| settings.disabled_tools.contains(*name))
        {
            return false;
        }
        // A connected server's tools are in the catalog unless disabled under another spelling
        // (the exposed name in `auto`/`never` prefix modes) or, in App mode, not listed by the
        // App. The UUID spelling resolves in every mode.
        server.connection().is_none()
            || catalog()
                .resolve_tool(&by_uuid)
                .is_ok_and(|route| route.server == server.name)
    }

    /// Whether the operator disabled the tool `name` (as spelled in the settings).
    pub(super) fn disables(&self, name: &str) -> bool {
        self.settings().disabled_tools.contains(name)
    }

    /// The built-in tools that are on, in list order.
    pub(super) fn builtin_tools(&self) -> Vec<Tool> {
        let settings = self.settings();
        builtin::tools()
            .iter()
            .filter(|tool| !settings.disabled_tools.contains(tool.name.as_ref()))
            .cloned()
            .collect()
    }

    /// Why a tool name that did not resolve is not served, when it names a tool of `fleet` that
    /// exists: disabled by the operator, its server disabled or outside the workspace, or left
    /// out by the config's filter. `None` for a name nobody offers.
    pub(super) fn not_served(&self, name: &str, fleet: &Fleet) -> Option<RouteError> {
        let settings = self.settings();
        let not_served = |why: String| {
            Some(RouteError::NotServed {
                tool: name.to_owned(),
                why,
            })
        };
        let disabled =
            |spelling: &str| format!("is disabled (pluggedin-mcp-proxy tools enable {spelling})");
        let canonical = builtin::canonical(name).unwrap_or(name);
        if settings.disabled_tools.contains(canonical) {
            return not_served(disabled(canonical));
        }
        let (prefix, _) = name.split_once(crate::names::SEPARATOR)?;
        let server = fleet
            .all()
            .into_iter()
            .find(|server| server.slug == prefix || server.uuid == prefix)?;
        let server_name = &server.name;
        if server.config.disabled {
            return not_served(format!(
                "is in server \"{server_name}\", which the config disables (\"disabled\": true)"
            ));
        }
        if settings.disabled_servers.contains(server_name) {
            return not_served(format!(
                "is in server \"{server_name}\", which is disabled (pluggedin-mcp-proxy servers \
                 enable {server_name})"
            ));
        }
        if let Some(workspace) = &settings.workspace
            && !workspace.servers.contains(server_name)
        {
            let how = if self.pinned_workspace.is_some() {
                "this proxy serves only that one (--workspace)"
            } else {
                "pluggedin-mcp-proxy workspace switch all"
            };
            return not_served(format!(
                "is in server \"{server_name}\", which is not in the active workspace \"{}\" \
                 ({how})",
                workspace.name
            ));
        }
        let qualify = crate::names::qualify;
        let lists = server.lists();
        let original = lists
            .tools
            .iter()
            .map(|tool| tool.name.as_ref())
            .find(|tool| {
                qualify(&server.slug, tool) == name || qualify(&server.uuid, tool) == name
            })?;
        if let Some(spelling) = [
            qualify(&server.slug, original),
            qualify(&server.uuid, original),
        ]
        .into_iter()
        .find(|spelling| settings.disabled_tools.contains(spelling))
        {
            return not_served(disabled(&spelling));
        }
        if !server.config.tools.permits(original) {
            return not_served(format!(
                "is left out by the \"tools\" filter of server \"{server_name}\" in the config"
            ));
        }
        None
    }
}
