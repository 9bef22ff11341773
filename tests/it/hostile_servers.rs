//! What a broken or hostile downstream server can do to the proxy, bounded: garbage on its stdout
//! and a flood on its stderr cost a few log lines a second, not a line per input, and the server
//! (and the proxy) keep serving.

use serde_json::{Value, json};

use crate::support::*;

/// `tests/servers/flood_server.py`: a minimal MCP server whose `flood` tool writes garbage.
fn flood_server() -> Value {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/flood_server.py");
    json!({"command": venv_python(), "args": [script]})
}

/// The proxy's log lines about `server`.
fn lines_about(log: &str, server: &str) -> usize {
    let tag = format!("server={server}");
    log.lines().filter(|line| line.contains(&tag)).count()
}

#[tokio::test]
async fn garbage_on_a_servers_stdout_costs_a_few_log_lines_not_one_each() {
    let proxy = proxy().server("noisy", flood_server()).start().await;
    let text = proxy
        .call_text("noisy__flood", json!({"lines": 100_000}))
        .await;
    assert_eq!(text, "flooded");
    // Still answering after the flood.
    assert_eq!(proxy.call_text("noisy__flood", json!({})).await, "flooded");
    let log = proxy.log.text();
    let stray = log
        .lines()
        .filter(|line| line.contains("not a JSON-RPC message"))
        .count();
    println!("100,000 garbage lines logged as {stray} lines");
    assert!(
        (1..200).contains(&stray),
        "{stray} log lines for 100,000 garbage lines"
    );
}

#[tokio::test]
async fn a_stderr_flood_costs_a_bounded_number_of_log_lines() {
    let proxy = proxy().server("noisy", flood_server()).start().await;
    // 50 MB of stderr in 4 KiB lines.
    let text = proxy
        .call_text(
            "noisy__flood",
            json!({"stderr_lines": 12_800, "stderr_width": 4096}),
        )
        .await;
    assert_eq!(text, "flooded");
    assert_eq!(proxy.call_text("noisy__flood", json!({})).await, "flooded");
    let log = proxy.log.text();
    let logged = lines_about(&log, "noisy");
    println!(
        "12,800 stderr lines (50 MB) logged as {logged} lines, {} bytes of log",
        log.len()
    );
    assert!(logged < 2_000, "{logged} log lines for 12,800 stderr lines");
    assert!(log.len() < 10 * 1024 * 1024, "{} bytes of log", log.len());
}

#[tokio::test]
async fn access_keys_a_server_prints_are_redacted_in_the_log() {
    // A server that prints its secrets on stderr, then serves.
    let leaky = format!(
        "echo 'starting with AKIAIOSFODNN7EXAMPLE and ghp_abcdefghijklmnopqrstuvwxyz0123456789 \
         and sk-ant-api03-abcdefghijklmnopqrstuvwxyz' >&2; exec {}",
        demo_bin()
    );
    let proxy = proxy()
        .server("leaky", json!({"command": "sh", "args": ["-c", leaky]}))
        .start()
        .await;
    proxy.log.wait_for("stderr: starting with").await;
    let log = proxy.log.text();
    for secret in [
        "AKIAIOSFODNN7EXAMPLE",
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "sk-ant-api03",
    ] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
    assert!(
        log.contains("starting with [REDACTED] and [REDACTED] and [REDACTED]"),
        "{log}"
    );
}
