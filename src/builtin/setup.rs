//! `pluggedin_setup`: Markdown help per topic, describing local mode (what this proxy does without
//! an account) and App mode (the plugged.in App, with an API key).

use rmcp::model::{CallToolResult, JsonObject};

use super::{string, text};

pub(super) fn run(args: &JsonObject) -> CallToolResult {
    let topic = string(args, "topic").unwrap_or_else(|| "getting_started".into());
    text(match topic.as_str() {
        "api_key" => API_KEY,
        "configuration" => CONFIGURATION,
        "troubleshooting" => TROUBLESHOOTING,
        _ => GETTING_STARTED,
    })
}

const GETTING_STARTED: &str = "# Welcome to Plugged.in MCP! 🚀

This proxy merges many MCP servers into one, and brings its own tools.

## Local mode (the default, no account needed)
- Servers come from an `mcpServers` JSON file (`--config`, else `./mcp.json`, `./.mcp.json`, then
  `~/.config/pluggedin-mcp-proxy/mcp.json`) — the format Claude Desktop and Cursor use.
- Their tools appear as `<server>__<tool>`; edits to the file apply live.
- The built-in tools keep their data in a local database in the data dir (`--data-dir`, default
  `~/.local/share/pluggedin-mcp-proxy/`): notifications, clipboard, memory, activity.

## App mode (plugged.in account)
With `PLUGGEDIN_API_KEY` the servers and the catalog come from the plugged.in App (what you
switched on there), and the same tools keep their data in your account.

## Built-in tools
- `pluggedin_discover_tools` — every server's tools, prompts, resources and instructions
- `pluggedin_send_notification`, `pluggedin_list_notifications`, … — notifications (with e-mail via SMTP)
- `pluggedin_clipboard_*` — named and indexed clipboard entries shared between tools
- `pluggedin_memory_*` — sessions, observations and full-text memory search

More: `pluggedin_setup` with topic `api_key`, `configuration` or `troubleshooting`.";

const API_KEY: &str = "# Setting up your Plugged.in API Key 🔑

You do not need a key: without one the proxy runs in local mode, and every built-in tool works
offline against the local database.

A key (it starts with `pg_in_`) connects the proxy to the plugged.in App, which manages servers
and keeps your data in your account:

1. Sign up at https://plugged.in
2. Get your API key from https://plugged.in/settings/api-keys
3. Set it: `export PLUGGEDIN_API_KEY=pg_in_...` (macOS/Linux) or
   `set PLUGGEDIN_API_KEY=pg_in_...` (Windows), or pass `--pluggedin-api-key`
4. Restart your MCP client

A self-hosted App: set `PLUGGEDIN_API_BASE_URL` (or `--pluggedin-api-base-url`) to its URL, the
one it knows itself by (its `NEXTAUTH_URL`).";

const CONFIGURATION: &str = "# Plugged.in Configuration Guide ⚙️

## Servers
`--config PATH` (or `PLUGGEDIN_CONFIG`): an `mcpServers` JSON file. Each server has `command`/`args`/`env`
(stdio) or `url` (Streamable HTTP or SSE), and optionally `disabled`, `timeout`, `tools` (allow/deny)
and `instructions`.

## Local data
`--data-dir PATH` (or `PLUGGEDIN_DATA_DIR`): where `store.db` lives (notifications, clipboard,
memory, activity, settings). Several proxies may share it.

## Turning things on and off (applies to running proxies)
- `pluggedin-mcp-proxy servers list | enable NAME | disable NAME`
- `pluggedin-mcp-proxy tools enable NAME | disable NAME`
- `pluggedin-mcp-proxy workspace list | create NAME --servers a,b | switch NAME | delete NAME`
- `pluggedin-mcp-proxy stats --since 24h` — calls, error rate and latency per server and tool

## E-mail for notifications
Set `smtp` in the config file (`host`, `port`, `security`: `starttls`/`tls`/`none`, `username`,
`password`, `from`, `to`) or the `PLUGGEDIN_SMTP_*` environment variables.";

const TROUBLESHOOTING: &str = "# Troubleshooting Guide 🔧

## A server's tools are missing
- `pluggedin-mcp-proxy servers` shows each server's state and the reason it failed.
- `pluggedin-mcp-proxy servers list` shows which ones are disabled or outside the active workspace.
- `pluggedin_discover_tools` with `force_refresh: true` re-lists every server.

## The client shows nothing at all
Check the client's MCP configuration, for example Claude Desktop:

```json
{
  \"mcpServers\": {
    \"pluggedin\": {
      \"command\": \"pluggedin-mcp-proxy\",
      \"args\": [\"--config\", \"/path/to/mcp.json\"]
    }
  }
}
```

## App mode
`pluggedin-mcp-proxy servers` (and `GET /health` over HTTP) says whether the App answers, which of
its lists fail and why; each list is served from its last good copy meanwhile.

## Logs
The proxy logs to stderr (your client's MCP log); `--log-level debug` or `RUST_LOG=debug` for more.

## E-mail is not sent
`pluggedin_send_notification` says so when SMTP is not configured or delivery failed; see the
`configuration` topic.";
