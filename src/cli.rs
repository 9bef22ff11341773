//! Command-line flags and environment variables. The original proxy's names are kept unchanged
//! (`--pluggedin-api-key`, `--transport`, `--port` 12006 with `PORT`, `--stateless`,
//! `--require-api-auth`); our additions are `--config`, `--data-dir`, `--prefix-mode`,
//! `--log-level`, `--log-format`, `--workspace`, `--activity-retention-days`, the inspector
//! subcommands and the management subcommands (`servers list|enable|disable`, `tools
//! enable|disable`, `workspace`, `stats`, `import`, `registry`). Command-line values win over the
//! environment.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::ToolExposure;
use crate::names::PrefixMode;
use crate::secret::Secret;
use crate::telemetry::LogFormat;

/// The default HTTP port of the original proxy's 1.x line and of its README.
pub const DEFAULT_PORT: u16 = 12006;

#[derive(Debug, Parser)]
#[command(
    name = "pluggedin-mcp-proxy",
    version,
    about = "PluggedinMCP MCP Server - The One MCP to manage all your MCPs",
    long_about = "An MCP proxy that connects to many MCP servers (stdio, HTTP+SSE, Streamable HTTP), \
                  merges their tools, prompts and resources into one namespaced catalog and serves \
                  it to one MCP client. Without an API key, servers come from a local mcpServers \
                  JSON file (see --config)."
)]
pub struct Cli {
    /// API key for the plugged.in App (App mode)
    #[arg(long, env = "PLUGGEDIN_API_KEY", hide_env_values = true, global = true)]
    pub pluggedin_api_key: Option<Secret>,

    /// Base URL of the plugged.in App
    #[arg(long, env = "PLUGGEDIN_API_BASE_URL", global = true)]
    pub pluggedin_api_base_url: Option<String>,

    /// Seconds between refreshes of the App's server list and catalog (App mode); while the App
    /// is unreachable, retries come sooner (from 1 s, doubling up to this)
    #[arg(
        long,
        env = "PLUGGEDIN_APP_REFRESH_SECS",
        default_value_t = 60,
        hide = true,
        global = true
    )]
    pub app_refresh_secs: u64,

    /// The bound on an ordinary request to the App, in seconds (App mode); slower kinds of
    /// request get a multiple of it
    #[arg(
        long,
        env = "PLUGGEDIN_APP_TIMEOUT_SECS",
        default_value_t = 15,
        hide = true,
        global = true
    )]
    pub app_timeout_secs: u64,

    /// `false` asks the App for its plain tool names instead of `<slug>__`/`<uuid>__` ones (App
    /// mode; only the exact text `false` counts, as in the original)
    #[arg(
        long,
        env = "PLUGGEDIN_UUID_TOOL_PREFIXING",
        hide = true,
        global = true
    )]
    pub uuid_tool_prefixing: Option<String>,

    /// Transport served to the MCP client
    #[arg(long, value_enum, default_value_t = Transport::Stdio)]
    pub transport: Transport,

    /// Port for the Streamable HTTP server
    #[arg(long, env = "PORT", default_value_t = DEFAULT_PORT)]
    pub port: u16,

    /// Address to bind the Streamable HTTP server to
    #[arg(long, env = "BIND_HOST", default_value = "127.0.0.1")]
    pub host: String,

    /// Stateless mode for Streamable HTTP (no sessions)
    #[arg(long)]
    pub stateless: bool,

    /// Require `Authorization: Bearer <token>` on Streamable HTTP requests (all but
    /// initialize, ping and server/discover); tokens: the API key, --auth-token, or the config's
    /// "authTokens"
    #[arg(long)]
    pub require_api_auth: bool,

    /// A bearer token accepted with --require-api-auth (repeatable; the environment variable
    /// takes a comma-separated list)
    #[arg(
        long = "auth-token",
        env = "PLUGGEDIN_AUTH_TOKEN",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub auth_tokens: Vec<Secret>,

    /// Most concurrent HTTP sessions; the least recently used one is evicted beyond it
    #[arg(long, default_value_t = 10_000)]
    pub max_sessions: usize,

    /// With --require-api-auth: most HTTP sessions made without a token, in a pool of their own
    /// (the least recently used is evicted beyond it); they never evict a session with a token
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub max_anonymous_sessions: usize,

    /// Most open HTTP connections; one more is answered 503 and closed. Default: half the
    /// open-file limit (at most 16384)
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,

    /// Seconds an idle HTTP session lives
    #[arg(long, default_value_t = 1800)]
    pub session_ttl: u64,

    /// The key that seals HTTP session ids across a fleet (replicas on one `--database-url`);
    /// without it the replicas share a key kept in the database
    #[arg(long, env = "PLUGGEDIN_SESSION_KEY", hide_env_values = true)]
    pub session_key: Option<Secret>,

    /// Where the other replicas of a fleet reach this one (`http://host:port`); default: the
    /// address it listens on, which must then not be a wildcard
    #[arg(long, env = "PLUGGEDIN_REPLICA_URL", value_name = "URL")]
    pub replica_url: Option<String>,

    /// Seconds after which an idle HTTP session (no request in flight, no GET stream open) gives
    /// up its worker and keeps only what it needs to resume on its next request; 0 never does
    #[arg(long, default_value_t = 60)]
    pub session_hibernate_after: u64,

    /// Answer every request of an HTTP session on an SSE stream, even a quick one (by default a
    /// request whose answer is its first message within 100 ms gets it as a JSON body)
    #[arg(long)]
    pub sse_answers: bool,

    /// Limit HTTP tool calls to N per minute per token (or per client address for requests
    /// without one); 0, the default, is no limit
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub rate_limit_tools: u32,

    /// Limit other HTTP requests to N per minute per token (or per client address for requests
    /// without one); 0, the default, is no limit
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub rate_limit_requests: u32,

    /// Addresses of the load balancers or proxies in front (`CIDR[,CIDR…]`, repeatable): a
    /// request from one of them is counted by the client address its `X-Forwarded-For` names
    /// (the right-most one not itself trusted); from any other peer the header is ignored
    #[arg(
        long = "trusted-proxies",
        env = "PLUGGEDIN_TRUSTED_PROXIES",
        value_name = "CIDR",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<Cidr>,

    /// An Origin allowed to call the HTTP endpoint (repeatable, `*` for any; default: loopback
    /// origins only)
    #[arg(long = "allowed-origin")]
    pub allowed_origins: Vec<String>,

    /// A Host header value accepted (repeatable; default: loopback names when bound to loopback,
    /// any otherwise)
    #[arg(long = "allowed-host")]
    pub allowed_hosts: Vec<String>,

    /// Seconds an HTTP proxy drains after SIGTERM or SIGINT at most: it reports not ready
    /// (`/health/ready`), refuses new sessions, and serves the existing ones until nothing is in
    /// flight; a second signal ends the drain at once
    #[arg(
        long,
        env = "PLUGGEDIN_DRAIN_SECS",
        default_value = "15",
        value_parser = seconds
    )]
    pub drain_secs: std::time::Duration,

    /// Largest accepted HTTP request body, in bytes
    #[arg(long, default_value_t = 4 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Seconds a client's first look (`initialize`, `server/discover`, the first lists) and the
    /// `tools`, `call` and `servers` commands wait for servers still connecting for the first
    /// time; 0 answers at once with what is connected
    #[arg(
        long,
        env = "PLUGGEDIN_STARTUP_WAIT",
        default_value = "10",
        value_parser = seconds,
        global = true
    )]
    pub startup_wait: std::time::Duration,

    /// Seconds a modern client's call waits, parked, for the client to retry with the input a
    /// legacy server asked for; then it is cancelled downstream
    #[arg(long, default_value = "600", value_parser = seconds)]
    pub parked_call_ttl: std::time::Duration,

    /// CORS headers on HTTP responses: `permissive` (the original's) or `off`
    #[arg(long, value_enum, default_value_t = Cors::Permissive)]
    pub cors: Cors,

    /// The local server list, an `mcpServers` JSON file (default: ./mcp.json, ./.mcp.json,
    /// then `<config dir>/pluggedin-mcp-proxy/mcp.json`)
    #[arg(long, env = "PLUGGEDIN_CONFIG", global = true)]
    pub config: Option<PathBuf>,

    /// Where local state lives (default: `<user data dir>/pluggedin-mcp-proxy`)
    #[arg(long, env = "PLUGGEDIN_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,

    /// The local store in a PostgreSQL database instead of SQLite in the data dir:
    /// `postgres://user:password@host:port/dbname` (`?host=/run/postgresql` for a Unix socket;
    /// without TLS, `sslmode=disable`). Proxies on several machines can share it. Local mode
    /// only; the data dir still holds OAuth tokens and the console's socket
    #[arg(
        long,
        env = "PLUGGEDIN_DATABASE_URL",
        hide_env_values = true,
        global = true
    )]
    pub database_url: Option<Secret>,

    /// How downstream names are namespaced: always `<slug>__<name>`, only on collision, or never
    #[arg(long, value_enum, default_value_t = PrefixMode::Always, global = true)]
    pub prefix_mode: PrefixMode,

    /// Log filter for stderr (`error`, `warn`, `info`, `debug`, `trace`, or a tracing directive);
    /// `RUST_LOG` wins when set
    #[arg(long, global = true)]
    pub log_level: Option<String>,

    /// How log lines on stderr are written: `human` (one line of text each) or `json` (one JSON
    /// object each: timestamp, level, target, the message and fields, the spans it is in)
    #[arg(
        long,
        value_enum,
        env = "PLUGGEDIN_LOG_FORMAT",
        default_value_t = LogFormat::Human,
        global = true
    )]
    pub log_format: LogFormat,

    /// Stdio mode: serve Prometheus metrics at `http://127.0.0.1:PORT/metrics` (in HTTP mode
    /// they are at `/metrics` on the HTTP port)
    #[arg(long, env = "PLUGGEDIN_METRICS_PORT", value_name = "PORT")]
    pub metrics_port: Option<u16>,

    /// How many tools get a metrics label of their own (the first called); the others are counted
    /// under `other`, so the number of series stays bounded whatever the catalog's size
    #[arg(long, value_name = "N", default_value_t = crate::metrics::DEFAULT_TOOL_LABELS)]
    pub metrics_tool_labels: usize,

    /// Apply the command policy (allow-listed commands, no shell metacharacters, bounded
    /// arguments, clean environment) to servers from the local config file too; servers from the
    /// plugged.in App always get it
    #[arg(long, env = "PLUGGEDIN_STRICT_COMMANDS", global = true)]
    pub strict_commands: bool,

    /// Apply the URL policy (no loopback, private, link-local or cloud-metadata destinations, no
    /// blocked ports, checked after DNS and on redirects) and the header rules to servers from
    /// the local config file too; servers from the plugged.in App always get it
    #[arg(long, env = "PLUGGEDIN_STRICT_URLS", global = true)]
    pub strict_urls: bool,

    /// With the URL policy, still permit loopback and private destinations and the blocked ports
    /// (cloud metadata stays refused)
    #[arg(long, env = "PLUGGEDIN_ALLOW_LOCAL_TARGETS", global = true)]
    pub allow_local_targets: bool,

    /// Seconds between re-reads of the settings version when the store announces settings
    /// changes (PostgreSQL), in case an announcement was lost; 30 when not given
    #[arg(
        long,
        env = "PLUGGEDIN_SETTINGS_RECHECK_SECS",
        hide = true,
        global = true
    )]
    pub settings_recheck_secs: Option<u64>,

    /// Items per page of list results (tools, prompts, resources)
    #[arg(
        long,
        env = "PLUGGEDIN_PAGE_SIZE",
        default_value_t = 1000,
        hide = true,
        global = true
    )]
    pub page_size: usize,

    /// What a session's `tools/list` shows: `all` tools, or `search`: the pinned tools
    /// (`alwaysLoad`) and four meta-tools that search, describe, call and activate the rest
    #[arg(
        long,
        env = "PLUGGEDIN_TOOL_EXPOSURE",
        value_name = "all|search",
        default_value = "all",
        value_parser = clap::value_parser!(ToolExposure)
    )]
    pub tool_exposure: ToolExposure,

    /// Serve only this workspace's servers (pinned: `workspace switch` does not move this
    /// process); without it, the active workspace is followed live
    #[arg(long, env = "PLUGGEDIN_WORKSPACE")]
    pub workspace: Option<String>,

    /// Days of activity kept for `stats`; older entries are deleted at start
    #[arg(
        long,
        env = "PLUGGEDIN_ACTIVITY_RETENTION_DAYS",
        default_value_t = 30,
        global = true
    )]
    pub activity_retention_days: u32,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// A block of addresses, `ADDRESS/BITS` (a lone address is its own block).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: std::net::IpAddr,
    bits: u8,
}

impl Cidr {
    /// Whether `address` is in the block (an IPv4-mapped IPv6 address as its IPv4 address).
    pub fn contains(&self, address: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        let address = match address {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
            IpAddr::V4(_) => address,
        };
        match (self.network, address) {
            (IpAddr::V4(network), IpAddr::V4(address)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.bits)).unwrap_or(0);
                u32::from(network) & mask == u32::from(address) & mask
            }
            (IpAddr::V6(network), IpAddr::V6(address)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.bits))
                    .unwrap_or(0);
                u128::from(network) & mask == u128::from(address) & mask
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Cidr, String> {
        let text = text.trim();
        let (address, bits) = match text.split_once('/') {
            Some((address, bits)) => (address, Some(bits)),
            None => (text, None),
        };
        let network: std::net::IpAddr = address
            .parse()
            .map_err(|_| format!("\"{text}\" is not an address or ADDRESS/BITS block"))?;
        let most = if network.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            None => most,
            Some(bits) => bits
                .parse::<u8>()
                .ok()
                .filter(|bits| *bits <= most)
                .ok_or_else(|| format!("\"{text}\": the prefix is 0 to {most} bits"))?,
        };
        Ok(Cidr { network, bits })
    }
}

/// The CORS preset of the HTTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Cors {
    /// `Access-Control-Allow-Origin: *` and the original proxy's allowed and exposed headers.
    Permissive,
    /// No CORS headers.
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Transport {
    Stdio,
    #[value(name = "streamable-http")]
    StreamableHttp,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Connect to the configured servers and print the merged tool catalog; or turn a tool on
    /// or off in every running proxy
    Tools {
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        action: Option<ToolsAction>,
    },
    /// Serve the console on a loopback port: the running stdio proxy's (the one your MCP client
    /// started, through its control channel), or with none running, one with its own
    /// connections
    Console {
        /// The loopback port (0: any free one; the address is printed)
        #[arg(long, default_value_t = 12007)]
        port: u16,
        /// Open it in the default browser
        #[arg(long)]
        open: bool,
    },
    /// Call one tool of the merged catalog and print its result
    Call {
        /// The tool's name as `tools` prints it
        tool: String,
        /// The arguments, a JSON object
        #[arg(long, default_value = "{}")]
        args: String,
    },
    /// Connect and show each configured server's transport and state; or list, enable and
    /// disable servers (applies to running proxies)
    Servers {
        #[command(subcommand)]
        action: Option<ServersAction>,
    },
    /// Named sets of servers: list, create, switch (applies to running proxies), delete
    Workspace {
        #[command(subcommand)]
        action: WorkspaceAction,
    },
    /// The document library: add files and folders, list, search, show and remove documents
    Docs {
        #[command(subcommand)]
        action: DocsAction,
    },
    /// Authorize with an OAuth-protected HTTP server: prints the URL to open, waits for the
    /// browser's redirect on a loopback port and stores the tokens for the proxy to use
    Auth {
        /// The server's name in the config
        server: String,
    },
    /// Import the servers your MCP clients already have into the config file (and, with
    /// --replace, make the clients start only the proxy)
    Import {
        /// claude-desktop, claude-code, cursor, vscode, windsurf, cline, codex, or all
        #[arg(default_value = "all")]
        client: String,
        /// Show what would be imported, change nothing
        #[arg(long)]
        dry_run: bool,
        /// Then rewrite each imported client config so that it starts only the proxy (a backup
        /// of each file goes to the data dir first)
        #[arg(long, conflicts_with = "restore")]
        replace: bool,
        /// Undo an earlier --replace (refused for a file whose servers changed since)
        #[arg(long)]
        restore: bool,
        /// The project whose project-level configs are read (default: the current directory)
        #[arg(long, value_name = "DIR")]
        project: Option<PathBuf>,
        /// A value for a client's `${input:ID}` (repeatable)
        #[arg(long = "input", value_name = "ID=VALUE")]
        inputs: Vec<String>,
    },
    /// Find servers in an MCP registry (the official one by default) and add them
    Registry {
        /// The registry's base URL (default: the config's "registryUrl", else the official
        /// MCP Registry)
        #[arg(long, value_name = "URL")]
        registry_url: Option<String>,
        #[command(subcommand)]
        action: RegistryAction,
    },
    /// Calls, error rate and p50/p95 duration per server and tool, from the activity log
    Stats {
        /// The window: a number and s, m, h, d or w (`90m`, `24h`, `7d`)
        #[arg(long, default_value = "24h")]
        since: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum RegistryAction {
    /// Servers whose name or description contains QUERY (their latest versions), a page at a
    /// time
    Search {
        #[arg(default_value = "")]
        query: String,
        /// Servers per page
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// The page after the one that printed this cursor
        #[arg(long)]
        cursor: Option<String>,
    },
    /// A server's description, packages, remotes and the variables each needs
    Show {
        /// NAME or NAME@VERSION (default: the latest)
        name: String,
    },
    /// Add a server to the config file
    Add {
        /// NAME or NAME@VERSION (default: the latest)
        name: String,
        /// An environment variable's value (repeatable)
        #[arg(long = "env", value_name = "KEY=VALUE")]
        env: Vec<String>,
        /// A header's value, for a remote (repeatable)
        #[arg(long = "header", value_name = "KEY=VALUE")]
        headers: Vec<String>,
        /// An argument's value, by its name or value hint, or a variable's (repeatable)
        #[arg(long = "arg", value_name = "NAME=VALUE")]
        args: Vec<String>,
        /// The server's name in the config (default: the last part of NAME)
        #[arg(long = "as", value_name = "NAME")]
        as_name: Option<String>,
        /// Which way to run it when it has several: npm, pypi, oci, nuget, or remote
        #[arg(long, value_name = "KIND")]
        package: Option<String>,
    },
    /// The config's servers from a registry that has a newer version
    Outdated,
    /// Move a server of the config to the registry's latest version, keeping its values
    Update {
        /// The server's name in the config
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ToolsAction {
    /// Turn a tool back on (`<server>__<tool>` or a built-in tool's name)
    Enable { name: String },
    /// Turn a tool off: it is neither listed nor callable
    Disable { name: String },
}

#[derive(Debug, Subcommand)]
pub enum ServersAction {
    /// The configured servers, whether each is on, and the workspace (without connecting)
    List,
    /// Turn a server back on
    Enable { name: String },
    /// Turn a server off: its tools, prompts and resources leave the catalog
    Disable { name: String },
}

#[derive(Debug, Subcommand)]
pub enum WorkspaceAction {
    /// The workspaces and their servers; `*` marks the active one
    List,
    /// A new workspace of the given servers
    Create {
        name: String,
        /// Comma-separated server names
        #[arg(long, value_delimiter = ',', required = true)]
        servers: Vec<String>,
        /// What sessions' tools/list shows while it is active: `all` or `search` (default: what
        /// the proxy's own --tool-exposure says)
        #[arg(long = "tool-exposure", value_name = "all|search")]
        tool_exposure: Option<crate::config::ToolExposure>,
    },
    /// Change a workspace's settings (applies to running proxies)
    Set {
        name: String,
        /// What sessions' tools/list shows while it is active: `all`, `search`, or `default`
        /// (what the proxy's own --tool-exposure says)
        #[arg(
            long = "tool-exposure",
            value_name = "all|search|default",
            required = true
        )]
        tool_exposure: String,
    },
    /// Make a workspace the active one (`all`: every server)
    Switch { name: String },
    /// Delete a workspace (if it was active, every server is served again)
    Delete { name: String },
}

#[derive(Debug, Subcommand)]
pub enum DocsAction {
    /// Add files, and folders recursively (md, txt, json, html, pdf; other names are read as
    /// text); prints what was added, what was already there, what was skipped (not a document)
    /// and what failed, with why
    Add {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Tags for every added document, comma-separated
        #[arg(long, value_delimiter = ',')]
        tags: Vec<String>,
    },
    /// The documents, newest first
    List {
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long, default_value_t = 0)]
        offset: u64,
    },
    /// Ranked full-text search, with the matched words highlighted
    Search {
        query: String,
        #[arg(long, default_value_t = 10)]
        limit: u32,
        /// Only documents with this tag (repeatable)
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// Only documents from this source: upload, ai_generated or api
        #[arg(long)]
        source: Option<String>,
    },
    /// A document's details and text
    Show {
        id: String,
        /// Also list its versions
        #[arg(long)]
        versions: bool,
    },
    /// Remove a document and its versions
    Rm { id: String },
}

impl Command {
    /// Management commands work on the store and the config file without connecting to servers.
    pub fn is_management(&self) -> bool {
        matches!(
            self,
            Command::Tools {
                action: Some(_),
                ..
            } | Command::Servers { action: Some(_) }
                | Command::Workspace { .. }
                | Command::Stats { .. }
                | Command::Docs { .. }
        )
    }

    /// `import` and `registry`: they write the config file (and need no servers running).
    pub fn adds_servers(&self) -> bool {
        matches!(self, Command::Import { .. } | Command::Registry { .. })
    }

    /// Whether the command works on the configured servers (the others — `docs`, `stats`,
    /// `workspace list|set|switch|delete` — need no config file and do not ask for one).
    pub fn uses_servers(&self) -> bool {
        !matches!(
            self,
            Command::Docs { .. }
                | Command::Stats { .. }
                | Command::Workspace {
                    action: WorkspaceAction::List
                        | WorkspaceAction::Set { .. }
                        | WorkspaceAction::Switch { .. }
                        | WorkspaceAction::Delete { .. }
                }
        )
    }
}

/// A duration in seconds as flags take it: a number from 0 to a day, fractions allowed.
fn seconds(text: &str) -> Result<std::time::Duration, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("\"{text}\" is not a number of seconds"))?;
    if !(0.0..=86_400.0).contains(&value) {
        return Err(format!("{text} is out of range (0 to 86400 seconds)"));
    }
    Ok(std::time::Duration::from_secs_f64(value))
}
