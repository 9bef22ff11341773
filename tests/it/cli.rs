//! The command line: config errors, the inspector commands, and flags that belong to later work.

use std::process::Output;

use serde_json::json;

use crate::support::*;

fn run(args: &[&str], config: &serde_json::Value) -> (Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mcp.json");
    std::fs::write(&path, config.to_string()).unwrap();
    let output = run_cli(&path, &dir.path().join("data"), args);
    (output, dir)
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn a_config_error_exits_non_zero_naming_file_server_and_field() {
    let (output, _dir) = run(
        &["servers"],
        &json!({"mcpServers": {"broken": {"command": "x", "args": "oops"}}}),
    );
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("mcp.json")
            && message.contains("server \"broken\"")
            && message.contains("field \"args\""),
        "{message}"
    );
}

#[test]
fn tools_servers_and_call_print_for_people() {
    let config =
        json!({"mcpServers": {"demo": demo(), "gone": {"command": "/nonexistent/server"}}});
    let (output, _dir) = run(&["tools"], &config);
    assert!(output.status.success(), "{}", stderr(&output));
    let table = stdout(&output);
    assert!(
        table.lines().next().unwrap().starts_with("SERVER"),
        "{table}"
    );
    assert!(table.contains("demo__echo"), "{table}");

    let (output, _dir) = run(&["servers"], &config);
    let table = stdout(&output);
    assert!(
        table.contains("demo") && table.contains("connected"),
        "{table}"
    );
    assert!(
        table.contains("gone") && table.contains("failed: cannot start"),
        "{table}"
    );

    let (output, _dir) = run(
        &["call", "demo__echo", "--args", r#"{"message":"from cli"}"#],
        &config,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output).trim(), "Echo: from cli");

    let (output, _dir) = run(&["call", "demo__nope"], &config);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("demo__nope"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn version_and_help_name_the_original_flags() {
    let output = std::process::Command::new(proxy_bin())
        .arg("--version")
        .output()
        .unwrap();
    assert!(
        stdout(&output).starts_with("pluggedin-mcp-proxy "),
        "{}",
        stdout(&output)
    );
    let output = std::process::Command::new(proxy_bin())
        .arg("--help")
        .output()
        .unwrap();
    let help = stdout(&output);
    for flag in [
        "--pluggedin-api-key",
        "--pluggedin-api-base-url",
        "--transport",
        "--port",
        "--stateless",
        "--require-api-auth",
        "--config",
        "--data-dir",
        "--prefix-mode",
        "--log-level",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
}

#[test]
fn http_auth_without_a_token_is_a_clear_start_up_error() {
    let (output, _dir) = run(
        &[
            "--transport",
            "streamable-http",
            "--port",
            "0",
            "--require-api-auth",
        ],
        &json!({"mcpServers": {}}),
    );
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("--require-api-auth needs at least one token"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn no_config_starts_with_no_servers_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(proxy_bin())
        .current_dir(dir.path())
        .env("HOME", dir.path())
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .env("XDG_DATA_HOME", dir.path().join("data"))
        .env_remove("PLUGGEDIN_CONFIG")
        .env_remove("PLUGGEDIN_API_KEY")
        .arg("servers")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("no config file found"),
        "{}",
        stderr(&output)
    );
    assert!(stdout(&output).contains("no servers configured"));
}

#[test]
fn the_bundled_example_runs_from_another_directory_and_its_servers_end_at_stdin_eof() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(
        repo.join("target/debug/pluggedin-demo-server").is_file(),
        "the example runs the demo server that `cargo build` puts in target/debug"
    );
    let elsewhere = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(proxy_bin())
        .current_dir(elsewhere.path())
        .arg("--config")
        .arg(repo.join("examples/mcp.json"))
        .arg("--data-dir")
        .arg(elsewhere.path().join("data"))
        .args(["--log-level", "info", "tools"])
        .env_remove("PLUGGEDIN_API_KEY")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let log = stderr(&output);
    assert!(output.status.success(), "{log}");
    let table = stdout(&output);
    assert!(
        table.contains("demo__add") && table.contains("calculator__add"),
        "{table}\n{log}"
    );
    // The proxy closes each server's stdin when it is done; the demo server then ends by itself
    // (its open subscriptions/listen stream notwithstanding), so nobody waits for a SIGTERM.
    for server in ["demo", "calculator"] {
        let prefix = format!("downstream{{server={server}}}: stderr:");
        assert!(
            log.lines()
                .any(|line| line.contains(&prefix) && line.ends_with("stdin closed, exiting")),
            "{log}"
        );
    }
    assert!(!log.contains("SIGTERM"), "{log}");
}

#[tokio::test]
async fn the_log_names_servers_and_has_no_debug_dumps() {
    let mut proxy = proxy()
        .server("demo", demo())
        .start_after(Some("connected server_info="))
        .await;
    // A client's mistakes: answered to the client, not dumped into the log.
    let unknown = mcp_error(proxy.call("nosuch__tool", json!({})).await.unwrap_err());
    assert_eq!(unknown.code, rmcp::model::ErrorCode::INVALID_PARAMS);
    let bad = mcp_error(
        proxy
            .call("demo__add", json!({"a": "x"}))
            .await
            .unwrap_err(),
    );
    assert_eq!(bad.code, rmcp::model::ErrorCode::INVALID_PARAMS);
    proxy.service.close().await.unwrap();
    proxy.log.wait_for("downstream{server=demo}: stopped").await;
    let log = proxy.log.text();
    assert!(log.contains("client session ended (stdin closed)"), "{log}");
    for dump in [
        "ErrorData",
        "ErrorCode(",
        "Ok(",
        "Closed)",
        "response error",
    ] {
        assert!(!log.contains(dump), "{dump} in the log:\n{log}");
    }
    // What a server writes on stderr is filed under its name.
    let stderr_lines: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("stderr:"))
        .collect();
    assert!(!stderr_lines.is_empty(), "{log}");
    assert!(
        stderr_lines
            .iter()
            .all(|line| line.contains("downstream{server=demo}: stderr:")),
        "{log}"
    );
}

#[test]
fn commands_that_need_no_servers_do_not_ask_for_a_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(proxy_bin())
            .current_dir(dir.path())
            .env("HOME", dir.path())
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .env_remove("PLUGGEDIN_CONFIG")
            .env_remove("PLUGGEDIN_API_KEY")
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(args)
            .output()
            .unwrap()
    };
    for args in [&["docs", "list"][..], &["stats"], &["workspace", "list"]] {
        let output = run(args);
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        assert_eq!(stderr(&output), "", "{args:?} wrote to stderr");
    }
    // `servers list` works on the config's servers: without one, it says so.
    let output = run(&["servers", "list"]);
    assert!(
        stderr(&output).contains("no config file found"),
        "{}",
        stderr(&output)
    );
}
