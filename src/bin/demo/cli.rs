//! The demo server's command line: the serving mode (stdio by default, `--http PORT` or
//! `--sse PORT`), what the initialize result reports, and the switches that shape the catalog
//! or the behaviour tests need (extra tools, a slow start, for a time or until a file exists, a
//! required bearer token, the hostile tools, following the client's roots). Parsing only; `main`
//! acts on it.

use clap::Parser;

/// MCP demo/test server for pluggedin-mcp-proxy (stdio by default).
#[derive(Debug, Parser)]
#[command(name = "pluggedin-demo-server", version, about)]
pub(crate) struct Cli {
    /// Serve Streamable HTTP on 127.0.0.1:PORT at /mcp (0 picks a free port).
    #[arg(long, value_name = "PORT", conflicts_with = "sse")]
    pub(crate) http: Option<u16>,
    /// Serve the legacy HTTP+SSE transport on 127.0.0.1:PORT (GET /sse, POST /message).
    #[arg(long, value_name = "PORT")]
    pub(crate) sse: Option<u16>,
    /// serverInfo name reported in the initialize result.
    #[arg(long, default_value = "pluggedin-demo-server")]
    pub(crate) name: String,
    /// Additionally expose N trivial echo tools `tool_0` … `tool_{N-1}`.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub(crate) extra_tools: usize,
    /// Sleep this long before starting to serve (simulates a slow server).
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub(crate) start_delay_ms: u64,
    /// Start serving only once PATH exists (a slow start that a test ends when it chooses).
    #[arg(long, value_name = "PATH")]
    pub(crate) start_when: Option<std::path::PathBuf>,
    /// Server instructions returned in the initialize result.
    #[arg(long, value_name = "TEXT")]
    pub(crate) instructions: Option<String>,
    /// With --http or --sse: answer 401 unless the request has `Authorization: Bearer TOKEN` (an
    /// OAuth protected server whose token can expire).
    #[arg(long, value_name = "TOKEN")]
    pub(crate) require_token: Option<String>,
    /// Behave like a hostile server (for the proxy's security tests): also expose a tool whose
    /// name and description carry control and bidi characters, `flood` (sends `count` log
    /// notifications as fast as it can) and `big` (answers with `bytes` bytes of text).
    #[arg(long)]
    pub(crate) hostile: bool,
    /// With --require-token: publish OAuth protected-resource metadata (RFC 9728) naming this
    /// authorization server, and point the 401's `WWW-Authenticate` at it.
    #[arg(long, value_name = "URL", requires = "require_token")]
    pub(crate) oauth_issuer: Option<String>,
    /// Follow the client's roots as a roots-using server does: ask `roots/list` once the client
    /// initialized and again on each `notifications/roots/list_changed`, and expose `roots_seen`
    /// (what it was told, in order).
    #[arg(long)]
    pub(crate) watch_roots: bool,
    /// Expose `count`: a counter kept in the process's memory, one more at each call (state
    /// that only this process has).
    #[arg(long)]
    pub(crate) counter: bool,
    /// Tell only the session whose call changed the tool or prompt list, as the official SDKs'
    /// servers do, instead of every session.
    #[arg(long)]
    pub(crate) notify_caller_only: bool,
}
