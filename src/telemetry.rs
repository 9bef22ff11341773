//! Logging: `tracing` to stderr only, filtered by `RUST_LOG` or `--log-level`. In stdio mode
//! stdout carries protocol messages and nothing else, so no log line may ever reach it.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `RUST_LOG` wins over `--log-level`; without either, serving
/// logs at `info` and the commands for people (`tools`, `servers`, `docs`, …) at `warn`, so their
/// output is not buried under lifecycle lines.
pub fn init(log_level: Option<&str>, command: bool) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .filter(|value| !value.trim().is_empty())
        .or_else(|| log_level.map(str::to_owned))
        .unwrap_or_else(|| if command { "warn" } else { "info" }.to_owned());
    let filter =
        EnvFilter::try_new(with_rmcp_quieted(&filter)).unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .try_init();
}

/// rmcp logs every handshake and notification at info (that is our debug), and warns about every
/// error answer its service loop sends or receives — one line per outside input, with a `Debug`
/// dump of the error. The router answers and records those calls itself, so rmcp's service loop
/// speaks only of its own failures, unless the filter names rmcp.
fn with_rmcp_quieted(filter: &str) -> String {
    if filter.contains("rmcp") {
        filter.to_owned()
    } else {
        format!("{filter},rmcp=warn,rmcp::service=error")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rmcp_service_warnings_are_off_unless_the_filter_names_rmcp() {
        assert_eq!(
            with_rmcp_quieted("info"),
            "info,rmcp=warn,rmcp::service=error"
        );
        assert_eq!(with_rmcp_quieted("debug,rmcp=trace"), "debug,rmcp=trace");
    }
}
