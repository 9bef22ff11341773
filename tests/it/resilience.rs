//! Failures and load: crashed and hung servers, concurrency, big messages, and no orphans.

use std::time::Duration;

use rmcp::model::*;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn a_killed_server_is_restarted_while_others_keep_working() {
    let mut proxy = proxy()
        .server("crashy", demo())
        .server("steady", demo())
        .start()
        .await;
    proxy.wait_for_tool("crashy__exit").await;
    proxy.wait_for_tool("steady__echo").await;
    let first_pid = proxy.call_text("crashy__pid", json!({})).await;

    // The call in flight when the server dies gets an error naming the server.
    let error = mcp_error(
        proxy
            .call("crashy__exit", json!({"code": 3}))
            .await
            .unwrap_err(),
    );
    assert!(error.message.contains("crashy"), "{}", error.message);
    // The other server is untouched.
    assert_eq!(
        proxy
            .call_text("steady__echo", json!({"message": "ok"}))
            .await,
        "Echo: ok"
    );
    // The crashed one comes back under the same names, as a new process.
    proxy
        .next_event(|event| matches!(event, Event::ToolsChanged).then_some(()))
        .await;
    let back = tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(result) = proxy.call("crashy__pid", json!({})).await {
                return text_of(&result);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the server came back");
    assert_ne!(back, first_pid);
}

#[tokio::test]
async fn a_hung_server_times_out_and_the_proxy_stays_responsive() {
    let proxy = proxy()
        .server("hung", json!({"command": demo_bin(), "timeout": 1}))
        .server("other", demo())
        .start()
        .await;
    proxy.wait_for_tool("hung__sleep").await;
    proxy.wait_for_tool("other__echo").await;
    let error = mcp_error(
        proxy
            .call("hung__sleep", json!({"ms": 30_000}))
            .await
            .unwrap_err(),
    );
    assert_eq!(error.code, ErrorCode(-32001), "{error:?}");
    assert!(
        error.message.contains("hung") && error.message.contains("timed out"),
        "{}",
        error.message
    );
    assert_eq!(
        proxy
            .call_text("other__echo", json!({"message": "alive"}))
            .await,
        "Echo: alive"
    );
    assert_eq!(
        proxy
            .call_text("hung__echo", json!({"message": "still"}))
            .await,
        "Echo: still"
    );
}

#[tokio::test]
async fn fifty_concurrent_calls_are_matched_to_their_ids() {
    let proxy = proxy()
        .server("a", demo())
        .server("b", demo())
        .start()
        .await;
    proxy.wait_for_tool("a__echo").await;
    proxy.wait_for_tool("b__echo").await;
    let calls = (0..50).map(|i| {
        let proxy = &proxy;
        async move {
            let server = if i % 2 == 0 { "a" } else { "b" };
            // Uneven sleeps so answers come back out of order.
            if i % 5 == 0 {
                proxy
                    .call(
                        &format!("{server}__sleep"),
                        json!({"ms": 50 + (i % 7) * 20}),
                    )
                    .await
                    .unwrap();
            }
            let text = proxy
                .call_text(
                    &format!("{server}__echo"),
                    json!({"message": format!("call {i}")}),
                )
                .await;
            (i, text)
        }
    });
    for (i, text) in futures::future::join_all(calls).await {
        assert_eq!(text, format!("Echo: call {i}"));
    }
}

#[tokio::test]
async fn a_one_megabyte_argument_round_trips() {
    let proxy = proxy().server("demo", demo()).start().await;
    proxy.wait_for_tool("demo__echo").await;
    let message: String = (0..1024 * 1024)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let text = proxy
        .call_text("demo__echo", json!({"message": message}))
        .await;
    assert_eq!(text.len(), message.len() + "Echo: ".len());
    assert_eq!(&text["Echo: ".len()..], message);
}

async fn child_pids(proxy: &Proxy, tools: &[&str]) -> Vec<u32> {
    let mut pids = Vec::new();
    for tool in tools {
        proxy.wait_for_tool(tool).await;
        pids.push(
            proxy
                .call_text(tool, json!({}))
                .await
                .trim()
                .parse()
                .unwrap(),
        );
    }
    pids
}

async fn no_orphans_after(signal: Option<&str>) {
    no_orphans_of(demo(), signal).await;
}

/// Two servers started from `server`'s entry; `signal` ends the proxy (stdin EOF for `None`).
async fn no_orphans_of(server: serde_json::Value, signal: Option<&str>) {
    let proxy = proxy()
        .server("a", server.clone())
        .server("b", server)
        .start()
        .await;
    let mut pids = child_pids(&proxy, &["a__pid", "b__pid"]).await;
    // What the servers started themselves (in their process groups) must end too.
    let helpers = child_pids(&proxy, &["a__spawn_sleeper", "b__spawn_sleeper"]).await;
    assert!(helpers.iter().all(|pid| alive(*pid)));
    pids.extend(helpers);
    assert_eq!(
        children(proxy.pid).len(),
        2,
        "two children: {:?}",
        children(proxy.pid)
    );
    let proxy_pid = proxy.pid;
    match signal {
        // A proxy that cannot clean up: its reaper ends the servers' groups.
        Some("KILL") => {
            proxy.kill9().await;
            drop(proxy);
        }
        Some(signal) => {
            let status = std::process::Command::new("kill")
                .arg(format!("-{signal}"))
                .arg(proxy_pid.to_string())
                .status()
                .unwrap();
            assert!(status.success());
            wait_gone(&[proxy_pid]).await;
            drop(proxy);
        }
        // Closing the client's side closes the proxy's stdin.
        None => {
            proxy.service.cancellation_token().cancel();
            proxy.log.wait_for("client session ended").await;
            wait_gone(&[proxy_pid]).await;
        }
    }
    wait_gone(&pids).await;
}

#[tokio::test]
async fn no_orphans_after_sigterm() {
    no_orphans_after(Some("TERM")).await;
}

#[tokio::test]
async fn no_orphans_after_sigint() {
    no_orphans_after(Some("INT")).await;
}

#[tokio::test]
async fn no_orphans_after_stdin_eof() {
    no_orphans_after(None).await;
}

#[tokio::test]
async fn no_orphans_after_sigkill() {
    no_orphans_after(Some("KILL")).await;
}

/// A demo server the proxy starts and reaches over Streamable HTTP on `{port}`.
fn started_demo() -> serde_json::Value {
    json!({"command": demo_bin(), "args": ["--http", "{port}"], "url": "http://127.0.0.1:{port}/mcp"})
}

#[tokio::test]
async fn no_orphans_of_started_http_servers_after_sigterm() {
    no_orphans_of(started_demo(), Some("TERM")).await;
}

#[tokio::test]
async fn no_orphans_of_started_http_servers_after_sigkill() {
    no_orphans_of(started_demo(), Some("KILL")).await;
}

#[tokio::test]
async fn no_orphans_of_started_http_servers_after_stdin_eof() {
    no_orphans_of(started_demo(), None).await;
}

#[tokio::test]
async fn a_crashed_servers_own_children_are_ended() {
    let proxy = proxy().server("demo", demo()).start().await;
    let helper = child_pids(&proxy, &["demo__spawn_sleeper"]).await;
    let _ = proxy.call("demo__exit", json!({})).await;
    // The server is gone; the helper it left in its group is ended with the connection.
    wait_gone(&helper).await;
    proxy.wait_for_tool("demo__echo").await;
}

#[tokio::test]
async fn a_crashed_started_servers_own_children_are_ended() {
    let proxy = proxy().server("demo", started_demo()).start().await;
    let helper = child_pids(&proxy, &["demo__spawn_sleeper"]).await;
    let _ = proxy.call("demo__exit", json!({})).await;
    // The process is gone; the connection with it, and the helper it left in its group.
    wait_gone(&helper).await;
    proxy.wait_for_tool("demo__echo").await;
}
