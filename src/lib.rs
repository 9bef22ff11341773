//! pluggedin-mcp-proxy: an MCP proxy that connects to many downstream MCP servers, merges what
//! they offer into one namespaced catalog, and serves it to MCP clients.
//!
//! Reading order:
//! - [`cli`]: flags and environment variables, the original proxy's names unchanged.
//! - [`config`]: the local `mcpServers` file, its validation, and watching it for edits.
//! - [`downstream`]: one supervised connection per server (stdio child, HTTP+SSE, Streamable HTTP).
//! - [`catalog`]: merging the servers' lists under `<slug>__<name>` names.
//! - [`router`]: name → owner; forwarding requests and everything that flows back; calls parked
//!   for modern clients' input; tasks.
//! - [`builtin`]: the `pluggedin_*` tools, reached through the router.
//! - [`control`]: the control-plane boundary the built-in tools talk to, its local store (SQLite,
//!   or PostgreSQL with `--database-url`) and its plugged.in App client (App mode); the activity
//!   recorder.
//! - [`ingest`]: files into documents (HTML and PDF text extraction) for `docs add`.
//! - [`import`]: the servers of the user's MCP clients, merged into the config file.
//! - [`registry`]: an MCP registry's servers: search, show, add to the config, update.
//! - [`mail`]: SMTP delivery of notifications.
//! - [`upstream`]: serving clients (stdio, Streamable HTTP).
//! - [`inspect`]: the `tools`, `call` and `servers` commands for people.
//! - [`manage`]: the management commands (`servers list|enable|disable`, `tools enable|disable`,
//!   `workspace`, `stats`, `docs`).

pub mod builtin;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod control;
pub mod downstream;
pub mod ids;
pub mod import;
pub mod ingest;
pub mod inspect;
pub mod llm;
pub mod mail;
pub mod manage;
pub mod metrics;
pub mod names;
pub mod registry;
pub mod router;
pub mod secret;
pub mod security;
pub mod sync;
pub mod telemetry;
pub mod traces;
pub mod upstream;
pub mod wire;

use std::path::{Path, PathBuf};
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
use crate::control::app::{AppClient, AppControl, AppMode, AppSettings};
use crate::control::local::LocalStore;
use crate::control::postgres::PostgresStore;
use crate::mail::{Mailer, SmtpSettings};
use crate::router::{Control, Router};
use crate::secret::Secret;

/// How long shutdown waits for connections to close and children to exit.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Runs the proxy (or an inspector command) until it is done or told to stop.
pub async fn run(mut cli: Cli) -> anyhow::Result<ExitCode> {
    // reqwest is built without a default TLS provider (aws-lc-rs costs minutes of compile time).
    let _ = rustls::crypto::ring::default_provider().install_default();
    if cli.command.is_none()
        && let Some(endpoint) = traces::init_from_env().map_err(anyhow::Error::msg)?
    {
        tracing::info!(endpoint, "traces exported over OTLP/HTTP");
    }
    let app_settings = app_settings(&cli)?;
    if let Some(cli::Command::Console { port, open }) = cli.command
        && let Some(dir) = data_dir(cli.data_dir.clone())
        && let Some((socket, pid)) = upstream::http::find_channel(&dir).await
    {
        let listener = console_listener(
            port,
            open,
            &format!("attached to the proxy of process {pid}"),
        )
        .await?;
        let cancel = CancellationToken::new();
        tokio::select! {
            relayed = upstream::http::relay(listener, socket, cancel.clone()) => relayed?,
            signal = shutdown_signal() => tracing::info!("{signal}, shutting down"),
        }
        cancel.cancel();
        return Ok(ExitCode::SUCCESS);
    }
    let (data_dir, store) = open_store(&cli, app_settings.is_some()).await?;
    let config_path = config_path(&cli, app_settings.is_some());
    let overrides = SecurityOverrides::from_cli(&cli);
    if let Some(command) = cli.command.take_if(|command| command.adds_servers()) {
        // They read and edit the file as written (its `${VAR}` references unresolved), so a
        // variable set only for the proxy's clients does not stop them.
        let files = manage::Files {
            config: config_path.unwrap_or_else(config::edit::default_path),
            data_dir,
            explicit_data_dir: cli.data_dir.is_some(),
            app_mode: app_settings.is_some(),
        };
        return manage::add_servers(command, &files).await;
    }
    let sources = settle_sources(
        &cli,
        app_settings.as_ref(),
        config_path,
        overrides,
        data_dir,
    )
    .await?;
    if let Some(cli::Command::Auth { server }) = &cli.command {
        return authorize(server, &sources.config).await;
    }
    if let Some(command) = cli.command.take_if(|command| command.is_management()) {
        // Management commands work on the local store in both modes: the operator's settings,
        // workspaces, `stats` and the local document library live there.
        return manage::run(command, store.plane(), &sources.config).await;
    }
    let control = control_plane(sources.app.as_ref(), store);
    let mailer = mailer(&sources.config)?;
    check_workspace(cli.workspace.as_deref(), control.as_ref()).await?;

    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    let router = start_router(&cli, &sources, control, mailer, &cancel, &tracker).await;
    let outcome = match cli.command {
        Some(cli::Command::Console { port, open }) => {
            let files = api_files(&cli, sources.app.is_some())?;
            let app_refresh = Duration::from_secs(cli.app_refresh_secs.max(1));
            keep_current(sources, app_refresh, &router, &cancel, &tracker)?;
            let listener =
                console_listener(port, open, "its own connections: no proxy is running").await?;
            tokio::select! {
                served = upstream::http::serve_standalone(
                    listener,
                    router.clone(),
                    files,
                    cli.max_body_bytes,
                    cancel.child_token(),
                ) => served,
                signal = shutdown_signal() => {
                    tracing::info!("{signal}, shutting down");
                    Ok(())
                }
            }
            .map(|()| ExitCode::SUCCESS)
        }
        Some(command) => inspect::run(command, &router).await,
        None => {
            let http = (cli.transport == Transport::StreamableHttp)
                .then(|| http_options(&cli, &sources.config, app_settings.as_ref()))
                .transpose()?;
            let app_refresh = Duration::from_secs(cli.app_refresh_secs.max(1));
            keep_current(sources, app_refresh, &router, &cancel, &tracker)?;
            metrics::global().set_tool_labels(cli.metrics_tool_labels);
            match http {
                Some(options) => serve_http(&router, options).await,
                None => {
                    // The console's channel is an extra: what stops it never stops the proxy.
                    let files = api_files(&cli, app_settings.is_some())
                        .inspect_err(|error| {
                            tracing::warn!("the console cannot attach to this proxy: {error:#}");
                        })
                        .ok();
                    let channel = files.map(|files| (files, cli.max_body_bytes));
                    serve_stdio(&router, cli.metrics_port, channel, &cancel).await
                }
            }
            .map(|()| ExitCode::SUCCESS)
        }
    };
    shut_down(&cancel, &tracker).await;
    outcome
}

/// What the proxy serves from, settled at start: the config in force, and what keeps it current
/// (the file to watch in local mode, the App in App mode).
struct Sources {
    config: Config,
    /// The file to watch; none in App mode.
    config_path: Option<PathBuf>,
    overrides: SecurityOverrides,
    app: Option<Arc<AppMode>>,
}

/// App mode's settings from the flags (none in local mode); a warning for flags the transport
/// ignores.
fn app_settings(cli: &Cli) -> anyhow::Result<Option<AppSettings>> {
    let app_settings = AppSettings::resolve(
        cli.pluggedin_api_key.as_ref().map(Secret::expose),
        cli.pluggedin_api_base_url.as_deref(),
        Duration::from_secs(cli.app_timeout_secs.max(1)),
        cli.uuid_tool_prefixing.as_deref(),
    )
    .map_err(anyhow::Error::msg)?;
    if cli.transport == Transport::Stdio && (cli.stateless || cli.require_api_auth) {
        tracing::warn!(
            "--stateless and --require-api-auth only apply to --transport streamable-http"
        );
    }
    if cli.transport == Transport::StreamableHttp && cli.metrics_port.is_some() {
        tracing::warn!(
            "--metrics-port applies to stdio mode; over HTTP the metrics are at /metrics on the HTTP \
             port"
        );
    }
    Ok(app_settings)
}

/// The local store: SQLite in the data dir, or PostgreSQL with `--database-url` (local mode).
enum Store {
    Sqlite(LocalStore),
    Postgres(PostgresStore),
}

impl Store {
    fn plane(&self) -> &dyn ControlPlane {
        match self {
            Store::Sqlite(store) => store,
            Store::Postgres(store) => store,
        }
    }
}

/// The data dir (OAuth tokens are kept there too) and the local store: in the data dir, or the
/// PostgreSQL database of `--database-url` in local mode.
async fn open_store(cli: &Cli, app_mode: bool) -> anyhow::Result<(Option<PathBuf>, Store)> {
    let data_dir = data_dir(cli.data_dir.clone());
    if let Some(dir) = &data_dir {
        downstream::oauth::set_store_dir(dir);
    }
    let store = match cli.database_url.as_ref().filter(|url| !url.is_empty()) {
        Some(_) if app_mode => {
            tracing::warn!(
                "--database-url applies in local mode; App mode keeps its local settings in the \
                 data dir"
            );
            None
        }
        Some(url) => {
            let store = PostgresStore::connect(url.expose()).await?;
            tracing::info!(store = store.path(), "PostgreSQL store open");
            Some(Store::Postgres(store))
        }
        None => None,
    };
    let store = match store {
        Some(store) => store,
        None => {
            let store = LocalStore::open_async(data_dir.clone()).await?;
            tracing::info!(store = store.path(), "local store open");
            Store::Sqlite(store)
        }
    };
    Ok((data_dir, store))
}

/// The local config file: the server list in local mode; in App mode only a file given with
/// --config (never one found by searching, which may be another tool's), whose other settings
/// (auth tokens, SMTP, …) still apply while the App's servers replace its own.
fn config_path(cli: &Cli, app_mode: bool) -> Option<PathBuf> {
    if app_mode {
        cli.config.clone()
    } else {
        config::locate(cli.config.as_deref())
    }
}

/// The config file (or none) with the command line's security overrides, and in App mode the
/// App's servers in place of its own.
async fn settle_sources(
    cli: &Cli,
    app_settings: Option<&AppSettings>,
    config_path: Option<PathBuf>,
    overrides: SecurityOverrides,
    data_dir: Option<PathBuf>,
) -> anyhow::Result<Sources> {
    let mut file_config = load_config(config_path.as_deref(), cli, app_settings.is_some())?;
    overrides.apply(&mut file_config);
    Ok(match app_settings {
        Some(settings) => {
            let serving = cli.command.is_none();
            let app = start_app(settings, file_config, data_dir, serving).await?;
            // The App's server list is not a file to watch: `refresh_app` follows it.
            Sources {
                config: app.config(),
                config_path: None,
                overrides,
                app: Some(app),
            }
        }
        None => Sources {
            config: file_config,
            config_path,
            overrides,
            app: None,
        },
    })
}

/// The config file at `path`, or an empty config (with a warning where servers were expected).
fn load_config(path: Option<&Path>, cli: &Cli, app_mode: bool) -> anyhow::Result<Config> {
    let Some(path) = path else {
        let needs_servers = cli.command.as_ref().is_none_or(cli::Command::uses_servers);
        if !app_mode && needs_servers {
            let searched: Vec<String> = config::search_paths()
                .iter()
                .map(|path| path.display().to_string())
                .collect();
            tracing::warn!(
                "no config file found (looked for {}); starting with no downstream servers",
                searched.join(", ")
            );
        }
        return Ok(Config::default());
    };
    let config = Config::load(path)?;
    if !app_mode {
        tracing::info!(file = %path.display(), servers = config.servers.len(), "config loaded");
    } else if !config.servers.is_empty() {
        tracing::info!(
            file = %path.display(),
            "App mode: the servers come from the App; the file's own servers are not used"
        );
    }
    Ok(config)
}

/// App mode: the App's servers and catalog, from the last good copy or fetched.
async fn start_app(
    settings: &AppSettings,
    file_config: Config,
    data_dir: Option<PathBuf>,
    serving: bool,
) -> anyhow::Result<Arc<AppMode>> {
    let client = AppClient::new(&settings.base_url, settings.key.clone(), settings.timeout)
        .map_err(anyhow::Error::msg)?;
    let app = Arc::new(AppMode::new(
        client,
        file_config,
        data_dir,
        settings.prefix_tools,
    ));
    // Serving with a last good copy in the data dir: start from it at once and let
    // `refresh_app` fetch right away, so a slow App never delays a client's start.
    // Otherwise (and for the inspector commands, which print once) fetch first.
    let start_from_copy = app.status().fetched_at.is_some() && serving;
    if start_from_copy {
        tracing::info!(
            servers = app.servers().identities.len(),
            tools = app.catalog().tools.len(),
            "App mode: starting from the last good copy; fetching from the App"
        );
    } else {
        // Each list that answered is served, whatever the others did.
        match app.refresh().await.error {
            None => tracing::info!(
                base = %settings.base_url,
                servers = app.servers().identities.len(),
                tools = app.catalog().tools.len(),
                "App mode: server list and catalog fetched"
            ),
            Some(_) => tracing::warn!("{}", app.status().summary()),
        }
    }
    Ok(app)
}

/// The built-in tools' data: the App in App mode (with the local store for what stays local),
/// else the local store.
fn control_plane(app: Option<&Arc<AppMode>>, store: Store) -> Arc<dyn ControlPlane> {
    match (app, store) {
        (Some(app), Store::Sqlite(store)) => {
            let servers = app.clone();
            Arc::new(AppControl::new(
                app.client().clone(),
                store,
                Arc::new(move || servers.servers()),
            ))
        }
        (None, Store::Sqlite(store)) => Arc::new(store),
        // `open_store` opens PostgreSQL in local mode only.
        (_, Store::Postgres(store)) => Arc::new(store),
    }
}

/// The SMTP mailer, when the config or the environment sets one up.
fn mailer(config: &Config) -> anyhow::Result<Option<Mailer>> {
    let settings = SmtpSettings::resolve(config.smtp.as_ref(), |var| std::env::var(var).ok())?;
    Ok(settings
        .map(|settings| Mailer::new(&settings))
        .transpose()?)
}

/// `--workspace` must name a workspace that exists.
async fn check_workspace(
    workspace: Option<&str>,
    control: &dyn ControlPlane,
) -> anyhow::Result<()> {
    if let Some(workspace) = workspace
        && !control
            .workspaces()
            .await?
            .iter()
            .any(|known| known.name == workspace)
    {
        bail!("--workspace {workspace}: no such workspace (create it with `workspace create`)");
    }
    Ok(())
}

/// The router with its built-in tools and activity recorder, its settings read, and the servers
/// of `sources` applied (which starts them).
async fn start_router(
    cli: &Cli,
    sources: &Sources,
    control: Arc<dyn ControlPlane>,
    mailer: Option<Mailer>,
    cancel: &CancellationToken,
    tracker: &TaskTracker,
) -> Arc<Router> {
    prune_activity(&control, cli.activity_retention_days, tracker);
    let ids = ids::ServerIds::new(control.clone());
    if sources.app.is_none() {
        ids.ensure(sources.config.servers.keys()).await;
    }
    let recorder = Recorder::start(control.clone(), tracker, cancel.child_token());
    let router = Router::new(
        cli.prefix_mode,
        cli.page_size,
        ids,
        Control {
            builtins: Builtins::new(control.clone(), mailer),
            recorder,
            pinned_workspace: cli.workspace.clone(),
            settings_recheck: cli
                .settings_recheck_secs
                .map_or(router::SETTINGS_RECHECK, |secs| {
                    Duration::from_secs(secs.max(1))
                }),
        },
        tracker.clone(),
        cancel.clone(),
    );
    router
        .parked()
        .set_ttl(cli.parked_call_ttl.max(Duration::from_millis(1)));
    router.set_startup_wait(cli.startup_wait);
    router.set_tool_exposure(cli.tool_exposure);
    router.reload_settings().await;
    // A replica of a fleet (Streamable HTTP, stateful, on a shared store) runs its servers of
    // fleet scope only once it knows it owns them.
    if cli.transport == Transport::StreamableHttp
        && cli.command.is_none()
        && !cli.stateless
        && router.control_plane().fleet().is_some()
    {
        router.expect_fleet();
    }
    match &sources.app {
        Some(app) => {
            router.set_app(app.clone());
            router.apply_app();
        }
        None => router.apply_config(&sources.config),
    }
    router.watch_settings();
    router
}

/// Follows what the servers come from while serving: the config file's edits, or the App.
fn keep_current(
    sources: Sources,
    app_refresh: Duration,
    router: &Arc<Router>,
    cancel: &CancellationToken,
    tracker: &TaskTracker,
) -> anyhow::Result<()> {
    if let Some(path) = sources.config_path {
        watch_config(
            path,
            sources.config,
            sources.overrides,
            router,
            cancel,
            tracker,
        )?;
    }
    if let Some(app) = &sources.app {
        refresh_app(app.clone(), router, app_refresh, cancel, tracker);
    }
    Ok(())
}

/// Cancels every task and waits for them to end, for the grace period at most.
async fn shut_down(cancel: &CancellationToken, tracker: &TaskTracker) {
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
    traces::shutdown().await;
}

/// `pluggedin-mcp-proxy auth <server>`: the interactive OAuth authorization.
#[allow(
    clippy::print_stdout,
    reason = "the URL to open is the command's output for a person"
)]
async fn authorize(server: &str, config: &Config) -> anyhow::Result<ExitCode> {
    let Some(server_config) = config.servers.get(server) else {
        let known: Vec<&str> = config.servers.keys().map(String::as_str).collect();
        anyhow::bail!(
            "no server named \"{server}\" in the config (servers: {})",
            known.join(", ")
        );
    };
    let show = |url: &url::Url| {
        println!("Open this URL to authorize {server}:\n{url}");
    };
    downstream::oauth::authorize_server(server, server_config, &show)
        .await
        .map_err(anyhow::Error::msg)?;
    println!("Authorized: {server}. A running proxy uses the new tokens at its next connection.");
    Ok(ExitCode::SUCCESS)
}

/// The data dir: the given one, else `<user data dir>/pluggedin-mcp-proxy`. `None` when it
/// cannot be created (state then lives in memory only).
fn data_dir(explicit: Option<PathBuf>) -> Option<PathBuf> {
    let dir = explicit.or_else(|| dirs::data_dir().map(|dir| dir.join("pluggedin-mcp-proxy")))?;
    match create_private_dir(&dir) {
        Ok(()) => Some(dir),
        Err(error) => {
            tracing::warn!(dir = %dir.display(), "cannot create the data dir, state will not persist: {error}");
            None
        }
    }
}

/// Creates the data dir (and its parents), the data dir itself entered by its owner only: it
/// holds the store, OAuth tokens and the App's server list. An existing one is left as it is.
fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    match builder.create(dir) {
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
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

/// App mode: refreshes the App's server list and catalog every `interval`, applying what
/// changed. While a list fails (or the whole App) its last good copy stays in force and retries
/// come sooner (1 s, doubling up to `interval`), so the proxy recovers by itself.
fn refresh_app(
    app: Arc<AppMode>,
    router: &Arc<Router>,
    interval: Duration,
    cancel: &CancellationToken,
    tracker: &TaskTracker,
) {
    let router = router.clone();
    let cancel = cancel.child_token();
    tracker.spawn(async move {
        let first_retry = Duration::from_secs(1).min(interval);
        let status = app.status();
        let mut wait = match (status.reachable, &status.last_error) {
            (true, _) => interval,
            // Started from the last good copy without asking the App yet: ask now.
            (false, None) => Duration::ZERO,
            (false, Some(_)) => first_retry,
        };
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            let was_reachable = app.status().reachable;
            let refresh = app.refresh().await;
            if refresh.changed || (!was_reachable && !refresh.every_list_failed) {
                router.apply_app();
            }
            match refresh.error {
                None => {
                    if !was_reachable {
                        tracing::info!("{}", app.status().summary());
                    }
                    wait = interval;
                }
                Some(error) => {
                    tracing::debug!("App refresh incomplete: {error}");
                    wait = if was_reachable {
                        first_retry
                    } else {
                        (wait * 2).min(interval)
                    };
                }
            }
        }
    });
}

/// Binds the console command's loopback port and says where the console is (on stdout: the
/// command's result); opens it in the browser when asked.
#[allow(
    clippy::print_stdout,
    reason = "the console's address is the command's output"
)]
async fn console_listener(
    port: u16,
    open: bool,
    showing: &str,
) -> anyhow::Result<tokio::net::TcpListener> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|error| anyhow::anyhow!("cannot listen on 127.0.0.1:{port}: {error}"))?;
    let url = format!("http://{}/console/", listener.local_addr()?);
    println!("console: {url} ({showing})");
    if open {
        let opener = if cfg!(target_os = "macos") {
            "open"
        } else {
            "xdg-open"
        };
        if let Err(error) = std::process::Command::new(opener)
            .arg(&url)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
        {
            tracing::warn!("could not open a browser ({opener}): {error}; open {url}");
        }
    }
    Ok(listener)
}

/// Serves one client on stdin/stdout until stdin ends or a signal arrives; the console's control
/// channel beside it (`pluggedin-mcp-proxy console` attaches to it).
async fn serve_stdio(
    router: &Arc<Router>,
    metrics_port: Option<u16>,
    channel: Option<(upstream::http::ApiFiles, usize)>,
    cancel: &CancellationToken,
) -> anyhow::Result<()> {
    if let Some((files, max_body_bytes)) = channel {
        let serving = upstream::http::serve_channel(
            router.clone(),
            files,
            max_body_bytes,
            cancel.child_token(),
        );
        match serving.await {
            Ok(socket) => tracing::debug!(socket = %socket.display(), "console control channel"),
            Err(error) => tracing::warn!("the console cannot attach to this proxy: {error}"),
        }
    }
    metrics::global().set_transport("pipe");
    metrics::global()
        .sessions_opened
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if let Some(port) = metrics_port {
        upstream::scrape::serve_loopback(port, router.clone(), cancel.child_token()).await?;
    }
    let handler = upstream::ProxyHandler::stdio(router.clone());
    let pages = Arc::new(upstream::tool_pages::ToolPages::new(router.clone()));
    let transport = upstream::stdio::StdioTransport::new()
        .with_tool_pages(pages)
        .with_fast_calls(handler.fast_calls());
    let serve = async {
        match handler.serve_with_ct(transport, cancel.child_token()).await {
            Ok(running) => match running.waiting().await {
                Ok(rmcp::service::QuitReason::Closed) => {
                    tracing::info!("client session ended (stdin closed)");
                }
                Ok(_) => tracing::info!("client session ended"),
                Err(error) => tracing::warn!("client session task failed: {error}"),
            },
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

fn http_options(
    cli: &Cli,
    config: &Config,
    app: Option<&AppSettings>,
) -> anyhow::Result<upstream::http::HttpOptions> {
    // In App mode the API key is accepted too, as the original accepts it.
    let key = app.map(|app| Secret::new(app.key.expose()));
    let tokens: Vec<Secret> = cli
        .auth_tokens
        .iter()
        .chain(&config.auth_tokens)
        .chain(key.as_ref())
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
        max_anonymous_sessions: cli.max_anonymous_sessions,
        max_connections: cli.max_connections,
        session_ttl: Duration::from_secs(cli.session_ttl.max(1)),
        hibernate_after: (cli.session_hibernate_after > 0)
            .then(|| Duration::from_secs(cli.session_hibernate_after)),
        allowed_hosts: cli.allowed_hosts.clone(),
        cors: cli.cors,
        guard: upstream::http::GuardConfig {
            require_auth: cli.require_api_auth,
            tokens,
            rate_limit_tools: cli.rate_limit_tools,
            rate_limit_requests: cli.rate_limit_requests,
            trusted_proxies: cli.trusted_proxies.clone(),
            allowed_origins,
            named_origins: cli
                .allowed_origins
                .iter()
                .filter(|origin| *origin != "*")
                .cloned()
                .collect(),
            max_body_bytes: cli.max_body_bytes,
            stream_answers: cli.sse_answers,
        },
        api: Some(api_files(cli, app.is_some())?),
        session_key: cli.session_key.clone(),
        replica_url: cli.replica_url.clone(),
        drain: upstream::http::Drain::new(),
        drain_period: cli.drain_secs,
    })
}

/// What the console's JSON API works on: this proxy's config file and data dir.
fn api_files(cli: &Cli, app_mode: bool) -> anyhow::Result<upstream::http::ApiFiles> {
    let config = config::locate(cli.config.as_deref()).unwrap_or_else(config::edit::default_path);
    let files = manage::Files {
        config: config.clone(),
        data_dir: data_dir(cli.data_dir.clone()),
        explicit_data_dir: cli.data_dir.is_some(),
        app_mode,
    };
    Ok(upstream::http::ApiFiles {
        registry_url: manage::registry_url(None, &config)?,
        proxy: manage::proxy_entry(&files)?,
        config,
        data_dir: files.data_dir,
        app_mode,
    })
}

/// Serves MCP over Streamable HTTP until a signal arrives, then drains: the first SIGTERM or
/// SIGINT begins the drain (the replica reports not ready, takes no new sessions, serves the
/// existing ones until nothing is in flight, `--drain-secs` at most), a second one ends it at
/// once.
async fn serve_http(
    router: &Arc<Router>,
    options: upstream::http::HttpOptions,
) -> anyhow::Result<()> {
    metrics::global().set_transport("tcp");
    let drain = options.drain.clone();
    let drain_secs = options.drain_period.as_secs_f64();
    // Registered now, so that a second signal is seen however soon it follows the first.
    let mut signals = Signals::new();
    let signalled = tokio::spawn(async move {
        let signal = signals.next().await;
        drain.begin();
        tracing::info!(
            drain_secs,
            "{signal}: draining — not ready, new sessions refused, existing ones served until \
             nothing is in flight ({drain_secs} s at most; a second signal stops at once)"
        );
        let signal = signals.next().await;
        tracing::info!("{signal} again: ending the drain now");
        drain.end();
    });
    let served = upstream::http::serve(router.clone(), options).await;
    signalled.abort();
    served
}

/// Resolves on SIGINT or SIGTERM, naming which.
async fn shutdown_signal() -> &'static str {
    Signals::new().next().await
}

/// SIGINT and SIGTERM, each listened for from creation on, for as many signals as come.
struct Signals {
    #[cfg(unix)]
    unix: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Signals {
    fn new() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let unix = signal(SignalKind::interrupt())
                .and_then(|interrupt| Ok((interrupt, signal(SignalKind::terminate())?)))
                .ok();
            Signals { unix }
        }
        #[cfg(not(unix))]
        {
            Signals {}
        }
    }

    /// The next signal, named.
    async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        if let Some((interrupt, terminate)) = &mut self.unix {
            return tokio::select! {
                _ = interrupt.recv() => "SIGINT",
                _ = terminate.recv() => "SIGTERM",
            };
        }
        let _ = tokio::signal::ctrl_c().await;
        if cfg!(unix) { "SIGINT" } else { "Ctrl-C" }
    }
}
