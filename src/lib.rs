//! pluggedin-mcp-proxy: an MCP proxy that connects to many downstream MCP servers, merges what
//! they offer into one namespaced catalog, and serves it to MCP clients.
//!
//! Reading order:
//! - [`cli`]: flags and environment variables, the original proxy's names unchanged.
//! - [`config`]: the local `mcpServers` file, its validation, and watching it for edits.
//! - [`downstream`]: one supervised connection per server (stdio child, HTTP+SSE, Streamable HTTP).
//! - [`catalog`]: merging the servers' lists under `<slug>__<name>` names.
//! - [`router`]: name → owner; forwarding requests and everything that flows back.
//! - [`builtin`]: the `pluggedin_*` tools, reached through the router.
//! - [`control`]: the control-plane boundary the built-in tools talk to, and its local SQLite
//!   store; the activity recorder.
//! - [`ingest`]: files into documents (HTML and PDF text extraction) for `docs add`.
//! - [`mail`]: SMTP delivery of notifications.
//! - [`upstream`]: serving clients (stdio, Streamable HTTP).
//! - [`inspect`]: the `tools`, `call` and `servers` commands for people.
//! - [`manage`]: the management commands (`servers list|enable|disable`, `tools enable|disable`,
//!   `workspace`, `stats`, `docs`).

// Sampling, roots and logging are deprecated by SEP-2577 (MCP 2026-07-28), but legacy clients and
// servers — most of them today — use them, and a proxy must carry them both ways.
#![allow(deprecated)]

pub mod builtin;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod control;
pub mod downstream;
pub mod ids;
pub mod ingest;
pub mod inspect;
pub mod mail;
pub mod manage;
pub mod router;
pub mod security;
pub mod telemetry;
pub mod upstream;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use rmcp::ServiceExt;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::builtin::Builtins;
use crate::cli::{Cli, Transport};
use crate::config::Config;
use crate::control::ControlPlane;
use crate::control::activity::Recorder;
use crate::control::local::LocalStore;
use crate::mail::{Mailer, SmtpSettings};
use crate::router::{Control, Router};
use crate::security::Secret;

/// How long shutdown waits for connections to close and children to exit.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Runs the proxy (or an inspector command) until it is done or told to stop.
pub async fn run(mut cli: Cli) -> anyhow::Result<ExitCode> {
    // reqwest is built without a default TLS provider (aws-lc-rs costs minutes of compile time).
    let _ = rustls::crypto::ring::default_provider().install_default();

    if cli
        .pluggedin_api_key
        .as_ref()
        .is_some_and(|key| !key.expose().trim().is_empty())
    {
        bail!(
            "plugged.in App mode (--pluggedin-api-key / PLUGGEDIN_API_KEY) is not available yet in \
             this version; unset the key to run on the local config file"
        );
    }
    if cli.transport == Transport::Stdio && (cli.stateless || cli.require_api_auth) {
        tracing::warn!(
            "--stateless and --require-api-auth only apply to --transport streamable-http"
        );
    }

    let config_path = config::locate(cli.config.as_deref());
    let overrides = SecurityOverrides::from_cli(&cli);
    let mut config = match &config_path {
        Some(path) => {
            let config = Config::load(path)?;
            tracing::info!(file = %path.display(), servers = config.servers.len(), "config loaded");
            config
        }
        None => {
            let searched: Vec<String> = config::search_paths()
                .iter()
                .map(|path| path.display().to_string())
                .collect();
            tracing::warn!(
                "no config file found (looked for {}); starting with no downstream servers",
                searched.join(", ")
            );
            Config::default()
        }
    };
    overrides.apply(&mut config);
    let data_dir = data_dir(cli.data_dir.clone());
    let store = LocalStore::open_async(data_dir).await?;
    tracing::info!(store = store.path(), "local store open");
    let control: Arc<dyn ControlPlane> = Arc::new(store);

    if let Some(command) = cli.command.take_if(|command| command.is_management()) {
        return manage::run(command, control.as_ref(), &config).await;
    }

    let mailer = SmtpSettings::resolve(config.smtp.as_ref(), |var| std::env::var(var).ok())?
        .map(|settings| Mailer::new(&settings))
        .transpose()?;
    if let Some(workspace) = &cli.workspace
        && !control
            .workspaces()
            .await?
            .iter()
            .any(|known| &known.name == workspace)
    {
        bail!("--workspace {workspace}: no such workspace (create it with `workspace create`)");
    }

    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    prune_activity(&control, cli.activity_retention_days, &tracker);
    let ids = ids::ServerIds::new(control.clone());
    ids.ensure(config.servers.keys()).await;
    let recorder = Recorder::start(control.clone(), &tracker, cancel.child_token());
    let router = Router::new(
        cli.prefix_mode,
        cli.page_size,
        ids,
        Control {
            builtins: Builtins::new(control.clone(), mailer),
            recorder,
            pinned_workspace: cli.workspace.clone(),
        },
        tracker.clone(),
        cancel.clone(),
    );
    router.reload_settings().await;
    router.apply_config(&config);
    router.watch_settings();

    let outcome = match cli.command {
        Some(command) => inspect::run(command, &router).await,
        None => {
            let http = (cli.transport == Transport::StreamableHttp)
                .then(|| http_options(&cli, &config))
                .transpose()?;
            if let Some(path) = config_path {
                watch_config(path, config, overrides, &router, &cancel, &tracker)?;
            }
            match http {
                Some(options) => serve_http(&router, options, &cancel).await,
                None => serve_stdio(&router, &cancel).await,
            }
            .map(|()| ExitCode::SUCCESS)
        }
    };

    cancel.cancel();
    tracker.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            tasks = tracker.len(),
            "shutdown grace period over with tasks still running"
        );
    }
    outcome
}

/// The data dir: the given one, else `<user data dir>/pluggedin-mcp-proxy`. `None` when it
/// cannot be created (state then lives in memory only).
fn data_dir(explicit: Option<PathBuf>) -> Option<PathBuf> {
    let dir = explicit.or_else(|| dirs::data_dir().map(|dir| dir.join("pluggedin-mcp-proxy")))?;
    match std::fs::create_dir_all(&dir) {
        Ok(()) => Some(dir),
        Err(error) => {
            tracing::warn!(dir = %dir.display(), "cannot create the data dir, state will not persist: {error}");
            None
        }
    }
}

/// Deletes activity older than the retention, in the background.
fn prune_activity(control: &Arc<dyn ControlPlane>, retention_days: u32, tracker: &TaskTracker) {
    let control = control.clone();
    let before = control::time::now_ms() - i64::from(retention_days) * 86_400_000;
    tracker.spawn(async move {
        match control.prune_activity(before).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, retention_days, "old activity deleted"),
            Err(error) => tracing::warn!("old activity not deleted: {error}"),
        }
    });
}

/// The command line's security flags, laid over every config the file gives (at start and on
/// each edit): a flag can turn a policy on, never off.
#[derive(Clone, Copy)]
struct SecurityOverrides {
    strict_commands: bool,
    strict_urls: bool,
    allow_local_targets: bool,
}

impl SecurityOverrides {
    fn from_cli(cli: &Cli) -> SecurityOverrides {
        SecurityOverrides {
            strict_commands: cli.strict_commands,
            strict_urls: cli.strict_urls,
            allow_local_targets: cli.allow_local_targets,
        }
    }

    fn apply(self, config: &mut Config) {
        config.security.strict_commands |= self.strict_commands;
        config.security.strict_urls |= self.strict_urls;
        config.security.allow_local_targets |= self.allow_local_targets;
    }
}

/// Applies config edits as they happen.
fn watch_config(
    path: PathBuf,
    config: Config,
    overrides: SecurityOverrides,
    router: &Arc<Router>,
    cancel: &CancellationToken,
    tracker: &TaskTracker,
) -> anyhow::Result<()> {
    let mut changes = config::watch(path.clone(), config, cancel.child_token())
        .with_context(|| format!("cannot watch {}", path.display()))?;
    let router = router.clone();
    tracker.spawn(async move {
        while let Some(mut config) = changes.recv().await {
            overrides.apply(&mut config);
            router.ids().ensure(config.servers.keys()).await;
            router.apply_config(&config);
        }
    });
    Ok(())
}

/// Serves one client on stdin/stdout until stdin ends or a signal arrives.
async fn serve_stdio(router: &Arc<Router>, cancel: &CancellationToken) -> anyhow::Result<()> {
    let handler = upstream::ProxyHandler::new(router.clone());
    let transport = upstream::stdio::StdioTransport::new();
    let serve = async {
        match handler.serve_with_ct(transport, cancel.child_token()).await {
            Ok(running) => {
                let reason = running.waiting().await;
                tracing::info!("client session ended: {reason:?}");
            }
            Err(error) => tracing::info!("client left before initializing: {error}"),
        }
    };
    tokio::select! {
        () = serve => {}
        signal = shutdown_signal() => tracing::info!("{signal}, shutting down"),
    }
    Ok(())
}

/// Origins a browser page may call the HTTP endpoint from by default: loopback only.
const LOOPBACK_ORIGINS: &[&str] = &[
    "http://localhost:*",
    "https://localhost:*",
    "http://127.0.0.1:*",
    "https://127.0.0.1:*",
    "http://[::1]:*",
    "https://[::1]:*",
];

fn http_options(cli: &Cli, config: &Config) -> anyhow::Result<upstream::http::HttpOptions> {
    let tokens: Vec<Secret> = cli
        .auth_tokens
        .iter()
        .chain(&config.auth_tokens)
        .map(|token| Secret::new(token.expose().trim()))
        .filter(|token| !token.is_empty())
        .collect();
    if cli.require_api_auth && tokens.is_empty() {
        bail!(
            "--require-api-auth needs at least one token: give --auth-token (or \
             PLUGGEDIN_AUTH_TOKEN, or \"authTokens\" in the config file)"
        );
    }
    let allowed_origins = if cli.allowed_origins.iter().any(|origin| origin == "*") {
        None
    } else if cli.allowed_origins.is_empty() {
        Some(
            LOOPBACK_ORIGINS
                .iter()
                .map(|origin| (*origin).to_owned())
                .collect(),
        )
    } else {
        Some(cli.allowed_origins.clone())
    };
    Ok(upstream::http::HttpOptions {
        host: cli.host.clone(),
        port: cli.port,
        stateless: cli.stateless,
        max_sessions: cli.max_sessions,
        session_ttl: Duration::from_secs(cli.session_ttl.max(1)),
        allowed_hosts: cli.allowed_hosts.clone(),
        cors: cli.cors,
        guard: upstream::http::GuardConfig {
            require_auth: cli.require_api_auth,
            tokens,
            rate_limit_tools: cli.rate_limit_tools,
            rate_limit_requests: cli.rate_limit_requests,
            allowed_origins,
            max_body_bytes: cli.max_body_bytes,
        },
    })
}

/// Serves MCP over Streamable HTTP until a signal arrives.
async fn serve_http(
    router: &Arc<Router>,
    options: upstream::http::HttpOptions,
    cancel: &CancellationToken,
) -> anyhow::Result<()> {
    let stop = cancel.child_token();
    let signal_stop = stop.clone();
    tokio::spawn(async move {
        let signal = shutdown_signal().await;
        tracing::info!("{signal}, shutting down");
        signal_stop.cancel();
    });
    upstream::http::serve(router.clone(), options, stop).await
}

/// Resolves on SIGINT or SIGTERM, naming which.
async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => tokio::select! {
                _ = tokio::signal::ctrl_c() => "SIGINT",
                _ = terminate.recv() => "SIGTERM",
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}
