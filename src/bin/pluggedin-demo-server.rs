//! `pluggedin-demo-server` is the MCP server used as the demo and test fixture of
//! pluggedin-mcp-proxy: it exposes the tool, resource and prompt catalog of the official MCP
//! conformance suite's fixture server plus a few friendly test tools (`echo`, `add`, `sleep`,
//! `wait_for_file`, `exit`, `roots`, `touch_watched_resource`, `pid`; `roots_seen` with
//! `--watch-roots`, which makes it follow the client's roots as a roots-using server does). By
//! default it speaks MCP over stdio; `--http PORT` serves Streamable HTTP at `/mcp` and `--sse
//! PORT` serves the legacy 2024-11-05 HTTP+SSE transport (`GET /sse` + `POST /message`), both on
//! 127.0.0.1. Every mode accepts both the `initialize` lifecycle and the 2026-07-28 per-request
//! `_meta` lifecycle. Each scenario has its own file under `demo/`; this one only wires them.

use std::{sync::Arc, time::Duration};

use clap::Parser;
use tracing::{info, warn};

#[path = "demo/catalog.rs"]
mod catalog;
#[path = "demo/cli.rs"]
mod cli;
#[path = "demo/client_input.rs"]
mod client_input;
#[path = "demo/conformance/mod.rs"]
mod conformance;
#[path = "demo/hostile.rs"]
mod hostile;
#[path = "demo/http.rs"]
mod http;
#[path = "demo/logging.rs"]
mod logging;
#[path = "demo/prompts.rs"]
mod prompts;
#[path = "demo/resources.rs"]
mod resources;
#[path = "demo/server.rs"]
mod server;
#[path = "demo/shared.rs"]
mod shared;
#[path = "demo/sse.rs"]
mod sse;
#[path = "demo/stdio.rs"]
mod stdio;
#[path = "demo/tools.rs"]
mod tools;

use cli::Cli;
use shared::Shared;

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            warn!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(error) => {
                warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => info!("Ctrl-C received, exiting"),
        () = terminate => info!("SIGTERM received, exiting"),
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    // Spans of its own when the OTLP variables say where (the proxy's traces tests).
    pluggedin_mcp_proxy::traces::init_from_env().map_err(anyhow::Error::msg)?;
    let shared = Arc::new(Shared::new(&cli));
    let serve = async {
        if cli.start_delay_ms > 0 {
            info!(ms = cli.start_delay_ms, "delaying start");
            tokio::time::sleep(Duration::from_millis(cli.start_delay_ms)).await;
        }
        if let Some(path) = &cli.start_when {
            info!(path = %path.display(), "starting once the file exists");
            tools::until_exists(path).await;
        }
        match (cli.http, cli.sse) {
            (Some(port), _) => {
                http::serve_http(
                    shared,
                    port,
                    cli.require_token.clone(),
                    cli.oauth_issuer.clone(),
                )
                .await
            }
            (None, Some(port)) => {
                sse::serve_sse(
                    shared,
                    port,
                    cli.require_token.clone(),
                    cli.oauth_issuer.clone(),
                )
                .await
            }
            (None, None) => stdio::serve_stdio(shared).await,
        }
    };
    let result = tokio::select! {
        result = serve => result,
        () = shutdown_signal() => Ok(()),
    };
    pluggedin_mcp_proxy::traces::shutdown().await;
    result
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // Without timestamps and targets: a proxy puts each stderr line into its own log, stamped.
    // rmcp's per-request warnings (a client's bad call) are the client's to see, not ours.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,rmcp::service=error,pluggedin_demo_server=info".into()),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "cannot start the async runtime");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli));
    // The stdio reader may sit in a blocking read; don't wait for it.
    runtime.shutdown_timeout(Duration::from_millis(200));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
