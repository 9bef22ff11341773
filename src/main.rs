//! The `pluggedin-mcp-proxy` binary: parse the command line, set up logging, run, and turn the
//! outcome into an exit code. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;
use pluggedin_mcp_proxy::{
    cli::{Cli, Transport},
    telemetry,
};

fn main() -> ExitCode {
    // This binary is also the reaper that ends the servers of a proxy that was killed.
    #[cfg(unix)]
    pluggedin_mcp_proxy::downstream::reaper::run_if_reaper();
    let cli = Cli::parse();
    telemetry::init(
        cli.log_level.as_deref(),
        cli.log_format,
        cli.command.is_some(),
    );
    // One client over stdio is a chain of hops (stdin → service → router → server's pipe and
    // back), each a task wake-up: on one thread they are queue pushes, on several they are
    // cross-thread wake-ups that cost more than the work (BENCHMARKS.md). HTTP serves many
    // clients at once and keeps every core.
    let mut builder = if cli.transport == Transport::StreamableHttp {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            #[allow(
                clippy::print_stderr,
                reason = "fatal start-up report, logging may be off"
            )]
            {
                eprintln!("pluggedin-mcp-proxy: cannot start the async runtime: {error}");
            }
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(pluggedin_mcp_proxy::run(cli));
    // The stdin reader sits in a blocking read that only a new line would end; everything that
    // matters has shut down by now, so do not wait for it.
    runtime.shutdown_background();
    match outcome {
        Ok(code) => code,
        Err(error) => {
            if telemetry::json() {
                tracing::error!("pluggedin-mcp-proxy: {error:#}");
                return ExitCode::from(2);
            }
            #[allow(
                clippy::print_stderr,
                reason = "the one fatal-error report of the process"
            )]
            {
                eprintln!("pluggedin-mcp-proxy: {error:#}");
            }
            ExitCode::from(2)
        }
    }
}
