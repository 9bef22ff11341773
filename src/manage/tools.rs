//! `tools enable|disable NAME`: turning one tool off or on for every client, with the name
//! checked first against what a client could call, as far as that is known without connecting
//! (the built-in tools, the config's servers and the catalog cache of what each offered when a
//! proxy on this data dir last connected to it). The setting lives in the control plane; a
//! running proxy picks it up by polling.

use std::process::ExitCode;

use anyhow::bail;

use crate::cli::ToolsAction;
use crate::config::Config;
use crate::control::ControlPlane;
use crate::control::time::iso;

/// `tools enable|disable NAME`. The name is checked against what a client could call, as far as
/// it is known without connecting: the built-in tools, the config's servers (by slug or UUID)
/// and the tools each offered when a proxy on this data dir last connected to it (the catalog
/// cache). An unknown server or a tool its server did not offer is an error; a server never
/// connected yet cannot be checked, which is said. Enabling a name that is disabled always works
/// (whatever became of its server), so stale settings can be cleared.
pub(super) async fn set_enabled(
    action: ToolsAction,
    control: &dyn ControlPlane,
    config: &Config,
) -> anyhow::Result<ExitCode> {
    let (name, enabled) = match action {
        ToolsAction::Enable { name } => (name, true),
        ToolsAction::Disable { name } => (name, false),
    };
    let name = name.trim();
    if name.is_empty() {
        bail!("the tool name is empty");
    }
    let name = crate::builtin::canonical(name).unwrap_or(name);
    let disabled = control.settings().await?.disabled_tools;
    if enabled && disabled.contains(name) {
        control.set_tool_enabled(name, true).await?;
        println!("tool {name} enabled");
        return Ok(ExitCode::SUCCESS);
    }
    let known = KnownTools::load(control, config).await?;
    let tool = known.check(name).map_err(anyhow::Error::msg)?;
    if let Some(warning) = tool.warning() {
        eprintln!("warning: {warning}");
    }
    if enabled {
        // Another spelling of the same tool (`<uuid>__…` for `<slug>__…`) may be the disabled one.
        let spellings: Vec<String> = tool
            .spellings()
            .into_iter()
            .filter(|spelling| disabled.contains(spelling))
            .collect();
        if spellings.is_empty() {
            println!("tool {name} is not disabled");
        }
        for spelling in spellings {
            control.set_tool_enabled(&spelling, true).await?;
            println!("tool {spelling} enabled");
        }
    } else {
        control.set_tool_enabled(name, false).await?;
        println!("tool {name} disabled");
    }
    Ok(ExitCode::SUCCESS)
}

/// The tools a client could call, as known without connecting (see [`set_enabled`]).
struct KnownTools {
    servers: Vec<KnownServer>,
    /// The servers come from the plugged.in App, whose own slugs are not known here.
    app: bool,
}

struct KnownServer {
    name: String,
    slug: String,
    uuid: String,
    filter: crate::config::ToolFilter,
    /// The tools it offered when last connected, and when that was; `None` if never.
    cached: Option<(Vec<String>, i64)>,
}

/// A tool name that passed [`KnownTools::check`].
enum CheckedTool<'a> {
    Builtin,
    /// Offered by `server` under `original`; `filtered` when the config's filter hides it.
    Served {
        server: &'a KnownServer,
        original: String,
        filtered: bool,
    },
    /// An unprefixed name that servers offer (exposed so under `--prefix-mode auto|never`).
    Unprefixed,
    /// A server's tool that cannot be checked: the server was never connected.
    Unchecked {
        server: &'a KnownServer,
    },
    /// App mode: a prefix that is none of the config's slugs or UUIDs may be the App's slug.
    AppName,
}

impl KnownTools {
    async fn load(control: &dyn ControlPlane, config: &Config) -> anyhow::Result<KnownTools> {
        let cache = control.cached_servers().await?;
        let names: Vec<&str> = config.servers.keys().map(String::as_str).collect();
        let slugs = crate::names::unique_slugs(names.iter().copied());
        let mut servers = Vec::with_capacity(names.len());
        for ((name, server), slug) in config.servers.iter().zip(slugs) {
            // The App gives its servers their UUIDs; local ones are made (once) in the store.
            let uuid = match server.origin {
                crate::config::Origin::App => cache
                    .iter()
                    .find(|entry| &entry.name == name)
                    .map(|entry| entry.uuid.clone())
                    .unwrap_or_default(),
                crate::config::Origin::LocalFile | crate::config::Origin::Registry => {
                    control.server_uuid(name).await?
                }
            };
            let cached = cache
                .iter()
                .find(|entry| !uuid.is_empty() && entry.uuid == uuid)
                .and_then(|entry| {
                    let lists = crate::catalog::ServerLists::from_json(&entry.lists)?;
                    let tools = lists.tools.iter().map(|t| t.name.to_string()).collect();
                    Some((tools, entry.updated_at))
                });
            servers.push(KnownServer {
                name: name.clone(),
                slug,
                uuid,
                filter: server.tools.clone(),
                cached,
            });
        }
        let app = config
            .servers
            .values()
            .any(|server| server.origin == crate::config::Origin::App);
        Ok(KnownTools { servers, app })
    }

    fn server_names(&self) -> String {
        if self.servers.is_empty() {
            return "none configured".to_owned();
        }
        let names: Vec<&str> = self.servers.iter().map(|s| s.name.as_str()).collect();
        names.join(", ")
    }

    fn check(&self, name: &str) -> Result<CheckedTool<'_>, String> {
        use crate::names::qualify;
        if crate::builtin::canonical(name).is_some() {
            return Ok(CheckedTool::Builtin);
        }
        let Some((prefix, rest)) = name.split_once("__") else {
            let offered = self.servers.iter().any(|server| {
                server
                    .cached
                    .as_ref()
                    .is_some_and(|(tools, _)| tools.iter().any(|tool| tool == name))
            });
            return if offered {
                Ok(CheckedTool::Unprefixed)
            } else {
                Err(format!(
                    "no tool named \"{name}\": a server's tool is named <server>__<tool> (see \
                     `pluggedin-mcp-proxy tools`), a built-in one pluggedin_…"
                ))
            };
        };
        let Some(server) = self.servers.iter().find(|server| {
            server.slug == prefix || (!server.uuid.is_empty() && server.uuid == prefix)
        }) else {
            if self.app {
                return Ok(CheckedTool::AppName);
            }
            return Err(format!(
                "no server \"{prefix}\" for the tool \"{name}\" (servers: {})",
                self.server_names()
            ));
        };
        let Some((tools, updated_at)) = &server.cached else {
            return Ok(CheckedTool::Unchecked { server });
        };
        let found = tools.iter().find(|tool| {
            qualify(&server.slug, tool) == name || qualify(&server.uuid, tool) == name
        });
        match found {
            Some(original) => Ok(CheckedTool::Served {
                server,
                original: original.clone(),
                filtered: !server.filter.permits(original),
            }),
            None => Err(format!(
                "server \"{}\" offers no tool \"{rest}\" (as of {}, when it was last \
                 connected; `pluggedin-mcp-proxy tools` lists the tools)",
                server.name,
                iso(*updated_at)
            )),
        }
    }
}

impl CheckedTool<'_> {
    /// What the operator should know about a name that is accepted.
    fn warning(&self) -> Option<String> {
        match self {
            CheckedTool::Served {
                server,
                original,
                filtered: true,
            } => Some(format!(
                "the config's tools filter of server \"{}\" already hides \"{original}\"",
                server.name
            )),
            CheckedTool::Unchecked { server } => Some(format!(
                "server \"{}\" has not been connected with this data dir yet, so its tool names \
                 cannot be checked",
                server.name
            )),
            CheckedTool::Unprefixed => Some(
                "a server offers this name, which clients see unprefixed only under \
                 --prefix-mode auto or never; otherwise it is <server>__<tool>"
                    .to_owned(),
            ),
            CheckedTool::AppName => Some(
                "the name's prefix is none of the known servers' slugs or UUIDs; it applies if \
                 the App lists a tool under exactly this name"
                    .to_owned(),
            ),
            _ => None,
        }
    }

    /// The spellings under which this tool may have been disabled.
    fn spellings(&self) -> Vec<String> {
        use crate::names::qualify;
        match self {
            CheckedTool::Served {
                server, original, ..
            } => vec![
                qualify(&server.slug, original),
                qualify(&server.uuid, original),
            ],
            _ => Vec::new(),
        }
    }
}
