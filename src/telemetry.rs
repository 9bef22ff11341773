//! Logging: `tracing` to stderr only, filtered by `RUST_LOG` or `--log-level`. In stdio mode
//! stdout carries protocol messages and nothing else, so no log line may ever reach it.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `RUST_LOG` wins over `--log-level`; the default is `info`.
pub fn init(log_level: Option<&str>) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .filter(|value| !value.trim().is_empty())
        .or_else(|| log_level.map(str::to_owned))
        .unwrap_or_else(|| "info".to_owned());
    // rmcp logs every handshake and notification at info; that is our debug.
    let filter = if filter.contains("rmcp") {
        filter
    } else {
        format!("{filter},rmcp=warn")
    };
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .try_init();
}
