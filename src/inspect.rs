//! Inspector commands for people: `tools` prints the merged catalog, `call` runs one tool, and
//! `servers` shows each server's transport and state — all against the same configuration the
//! proxy serves. These are the only places besides the stdio transport that print to stdout.
#![allow(
    clippy::print_stdout,
    reason = "these commands print their result for a person"
)]

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rmcp::model::{CallToolRequestParams, ServerResult};

use crate::cli::Command;
use crate::router::{Caller, Router};

/// How long the commands wait in silence for servers to connect; past this they say whom they
/// wait for (servers usually connect well within it).
const QUIET_WAIT: Duration = Duration::from_millis(500);

pub async fn run(command: Command, router: &Arc<Router>) -> anyhow::Result<ExitCode> {
    await_servers(router).await;
    match command {
        Command::Tools { json, .. } => tools(router, json),
        Command::Call { tool, args } => call(router, &tool, &args).await,
        Command::Servers { .. } => servers(router),
        // Management commands never reach here (`lib::run` sends them to `manage`).
        other => anyhow::bail!("{other:?} is not an inspector command"),
    }
}

/// Waits, as a client's first look does, for the servers' first connection attempts within
/// `--startup-wait`; says on stderr whom it waits for when that takes a while, and who did not
/// make it.
#[allow(
    clippy::print_stderr,
    reason = "progress for a person at a terminal; stdout carries the result"
)]
async fn await_servers(router: &Router) {
    let wait = router.await_first_attempts();
    tokio::pin!(wait);
    if tokio::time::timeout(QUIET_WAIT, &mut wait).await.is_ok() {
        return;
    }
    let pending = router.first_attempts();
    if pending.is_empty() {
        return;
    }
    let names: Vec<&str> = pending.iter().map(|server| server.name.as_str()).collect();
    let left = router
        .startup_wait()
        .saturating_sub(pending[0].created().elapsed());
    eprintln!(
        "waiting up to {:.0} s for {} to connect (--startup-wait)…",
        left.as_secs_f32().ceil(),
        names.join(", ")
    );
    wait.await;
    let late: Vec<String> = pending
        .iter()
        .filter(|server| !server.first_attempt_done())
        .map(|server| server.name.clone())
        .collect();
    if !late.is_empty() {
        eprintln!("still starting, left out: {}", late.join(", "));
    }
}

fn tools(router: &Router, json: bool) -> anyhow::Result<ExitCode> {
    let catalog = router.catalog();
    if json {
        // As `tools/list` shows them: a 2025-11-25 tool's `execution` in its place.
        let mut tools = serde_json::json!({ "tools": &catalog.tools });
        crate::wire::core_tasks::unstash_result(&mut tools);
        println!("{}", serde_json::to_string_pretty(&tools["tools"])?);
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<[String; 3]> = catalog
        .tools
        .iter()
        .map(|tool| {
            let server = catalog
                .resolve_tool(&tool.name)
                .map(|route| route.server)
                .unwrap_or_else(|_| "(built-in)".to_owned());
            let description = tool
                .description
                .as_deref()
                .unwrap_or("")
                .lines()
                .next()
                .unwrap_or("")
                .to_owned();
            [server, tool.name.to_string(), description]
        })
        .collect();
    print_table(["SERVER", "TOOL", "DESCRIPTION"], &rows);
    println!(
        "\n{} tools from {} servers",
        rows.len(),
        router.servers().len()
    );
    Ok(ExitCode::SUCCESS)
}

fn servers(router: &Router) -> anyhow::Result<ExitCode> {
    let catalog = router.catalog();
    let served = catalog.tools_per_server();
    let visible: Vec<String> = router
        .visible_servers()
        .iter()
        .map(|server| server.name.clone())
        .collect();
    let rows: Vec<[String; 4]> = router
        .servers()
        .iter()
        .map(|server| {
            // What clients get from it: after the config's filter and the disabled tools.
            let tools = served.get(server.name.as_str()).copied().unwrap_or(0);
            let mut tools = format!("{tools} tools");
            if !visible.contains(&server.name) {
                tools.push_str(" (not served: disabled or outside the workspace)");
            }
            [
                server.name.clone(),
                server.config.transport.kind().to_owned(),
                server.state().to_string(),
                tools,
            ]
        })
        .collect();
    if let Some(app) = router.app() {
        println!("{}\n", app.status().summary());
    }
    if rows.is_empty() {
        println!("no servers configured");
    } else {
        print_table(["SERVER", "TRANSPORT", "STATE", "TOOLS"], &rows);
    }
    Ok(ExitCode::SUCCESS)
}

async fn call(router: &Router, tool: &str, args: &str) -> anyhow::Result<ExitCode> {
    let arguments: serde_json::Value =
        serde_json::from_str(args).context("--args is not valid JSON")?;
    let serde_json::Value::Object(arguments) = arguments else {
        anyhow::bail!("--args must be a JSON object");
    };
    let params = CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments);
    let result = router
        .call_tool(&Caller::detached(), params)
        .await
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    let ServerResult::CallToolResult(result) = result else {
        anyhow::bail!("the server did not answer with a tool result");
    };
    for content in &result.content {
        match content.as_text() {
            Some(text) => println!("{}", text.text),
            None => println!("{}", serde_json::to_string(content)?),
        }
    }
    if let Some(structured) = &result.structured_content {
        println!("{}", serde_json::to_string_pretty(structured)?);
    }
    Ok(if result.is_error == Some(true) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

pub(crate) fn print_table<const N: usize>(header: [&str; N], rows: &[[String; N]]) {
    let mut widths = header.map(str::len);
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count()).min(60);
        }
    }
    let line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
            let cell: String = cell.chars().take(width).collect();
            if i + 1 == N {
                text.push_str(&cell);
            } else {
                text.push_str(&format!("{cell:<width$}  "));
            }
        }
        println!("{}", text.trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}
