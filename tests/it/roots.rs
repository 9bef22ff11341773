//! Roots: the client's roots reach the servers. Over stdio the client's roots are every server's
//! roots (server-filesystem started without directories follows them); a server asking before
//! they are known gets its configured roots and a `roots/list_changed` later. Over HTTP a server
//! gets the calling session's roots during a call (the official TypeScript SDK as the client), and
//! its configured roots outside calls.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::support::*;

/// A directory holding one file named `file`, by its canonical path (server-filesystem resolves
/// symbolic links).
fn dir_with(parent: &Path, name: &str, file: &str) -> PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join(file), "content").unwrap();
    dir.canonicalize().unwrap()
}

fn uri_of(dir: &Path) -> String {
    root_of(dir).uri
}

/// The demo server following roots, spoken to in the legacy generation (roots requests and
/// `list_changed` notifications exist only there; a modern server asks through
/// `InputRequiredResult` within a call).
fn watching_demo() -> Value {
    json!({"command": demo_bin(), "args": ["--watch-roots"], "protocol": "legacy"})
}

/// What the demo server's `roots_seen` reports, once it has seen `count` things.
async fn roots_seen(proxy: &Proxy, tool: &str, count: usize) -> Vec<Value> {
    let text = proxy
        .call_until(tool, json!({}), |text| {
            serde_json::from_str::<Vec<Value>>(text).is_ok_and(|seen| seen.len() >= count)
        })
        .await;
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn the_stdio_clients_roots_reach_server_filesystem_and_follow_their_changes() {
    let temp = tempfile::tempdir().unwrap();
    let first = dir_with(temp.path(), "first", "alpha.txt");
    let second = dir_with(temp.path(), "second", "beta.txt");
    let proxy = proxy()
        .server("fs", filesystem_stdio())
        .client_roots(vec![root_of(&first)])
        .start()
        .await;
    proxy.wait_for_tool("fs__list_allowed_directories").await;
    let first_text = first.display().to_string();
    let allowed = proxy
        .call_until("fs__list_allowed_directories", json!({}), |text| {
            text.contains(&first_text)
        })
        .await;
    println!("allowed after initialization: {allowed:?}");
    let listing = proxy
        .call_text("fs__list_directory", json!({"path": first}))
        .await;
    assert!(listing.contains("alpha.txt"), "{listing}");

    proxy.change_roots(vec![root_of(&second)]).await;
    let second_text = second.display().to_string();
    let allowed = proxy
        .call_until("fs__list_allowed_directories", json!({}), |text| {
            text.contains(&second_text) && !text.contains(&first_text)
        })
        .await;
    println!("allowed after the change: {allowed:?}");
    let listing = proxy
        .call_text("fs__list_directory", json!({"path": second}))
        .await;
    assert!(listing.contains("beta.txt"), "{listing}");
    assert!(
        proxy
            .log
            .text()
            .contains("Updated allowed directories from MCP roots"),
        "{}",
        proxy.log.text()
    );
}

#[tokio::test]
async fn a_server_asking_before_the_client_gets_configured_roots_then_list_changed() {
    let temp = tempfile::tempdir().unwrap();
    let configured = dir_with(temp.path(), "configured", "c.txt");
    let client = dir_with(temp.path(), "client", "d.txt");
    let mut demo = watching_demo();
    demo["roots"] = json!([configured]);
    let proxy = proxy()
        .server("demo", demo)
        .server("bare", watching_demo())
        .client_roots(vec![root_of(&client)])
        // Both servers asked (at their initialization) before the client is there.
        .start_after_all(&[
            "roots/list answered with the configured roots",
            "roots/list answered with an empty list (none configured)",
        ])
        .await;
    proxy.wait_for_tool("demo__roots_seen").await;
    proxy.wait_for_tool("bare__roots_seen").await;
    let seen = roots_seen(&proxy, "demo__roots_seen", 3).await;
    println!("demo saw {seen:?}");
    assert_eq!(
        seen,
        [
            json!({"roots": [{"uri": uri_of(&configured)}]}),
            json!({"listChanged": true}),
            json!({"roots": [{"uri": uri_of(&client)}]}),
        ]
    );
    let seen = roots_seen(&proxy, "bare__roots_seen", 3).await;
    println!("bare saw {seen:?}");
    assert_eq!(
        seen,
        [
            json!({"roots": []}),
            json!({"listChanged": true}),
            json!({"roots": [{"uri": uri_of(&client)}]}),
        ]
    );
}

#[tokio::test]
async fn a_server_connecting_later_gets_the_kept_roots() {
    let temp = tempfile::tempdir().unwrap();
    let client = dir_with(temp.path(), "client", "d.txt");
    let proxy = proxy()
        .server("demo", demo())
        .client_roots(vec![root_of(&client)])
        .start()
        .await;
    proxy.log.wait_for("the client's roots are known").await;
    proxy.rewrite_config(json!({
        "demo": demo(),
        "late": watching_demo(),
    }));
    proxy.wait_for_tool("late__roots_seen").await;
    let seen = roots_seen(&proxy, "late__roots_seen", 1).await;
    println!("late saw {seen:?}");
    assert_eq!(seen, [json!({"roots": [{"uri": uri_of(&client)}]})]);
    let asked = proxy.requests.lock().unwrap().clone();
    assert_eq!(
        asked,
        ["roots/list"],
        "the client was asked once, at initialization"
    );
}

#[tokio::test]
async fn a_client_without_roots_leaves_servers_their_configured_roots() {
    let temp = tempfile::tempdir().unwrap();
    let configured = dir_with(temp.path(), "configured", "c.txt");
    let mut demo = watching_demo();
    demo["roots"] = json!([{"uri": configured, "name": "configured"}]);
    let proxy = proxy()
        .server("demo", demo)
        .client_without_roots()
        .start()
        .await;
    proxy.wait_for_tool("demo__roots_seen").await;
    let expected = json!([{"uri": uri_of(&configured), "name": "configured"}]);
    let seen = roots_seen(&proxy, "demo__roots_seen", 1).await;
    println!("demo saw {seen:?}");
    assert_eq!(seen[0], json!({ "roots": expected }));
    // Asked during a call, too.
    let during = proxy.call_text("demo__roots", json!({})).await;
    println!("demo__roots answered {during}");
    assert_eq!(serde_json::from_str::<Value>(&during).unwrap(), expected);
    assert!(proxy.requests.lock().unwrap().is_empty());
}

/// Runs `tests/clients/ts_roots_client.mjs` against `url` with `plan`; returns what it printed.
async fn ts_client(url: &str, plan: Value) -> Value {
    ts_sdk();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/ts_roots_client.mjs");
    let output = tokio::time::timeout(
        WAIT * 2,
        tokio::process::Command::new("node")
            .arg(script)
            .arg(url)
            .arg(plan.to_string())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the TypeScript client finishes")
    .unwrap();
    assert!(
        output.status.success(),
        "the TypeScript client failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test]
async fn over_http_a_server_gets_the_calling_sessions_roots_during_a_call() {
    let temp = tempfile::tempdir().unwrap();
    let (first, second, changed) = (
        uri_of(&dir_with(temp.path(), "first", "a.txt")),
        uri_of(&dir_with(temp.path(), "second", "b.txt")),
        uri_of(&dir_with(temp.path(), "changed", "c.txt")),
    );
    // The same demo server twice: asking with a request during the call (legacy), and with an
    // `InputRequiredResult` the proxy answers for the session (modern).
    let servers = json!({
        "old": {"command": demo_bin(), "protocol": "legacy"},
        "new": {"command": demo_bin(), "protocol": "modern"},
    });
    let (_child, log, url) = spawn_http_proxy(&temp, servers, &[]).await;
    log.wait_for("server=old}: connected").await;
    log.wait_for("server=new}: connected").await;
    let seen = ts_client(
        &url,
        json!([
            {"session": "a", "roots": [{"uri": first}]},
            {"session": "b", "roots": [{"uri": second}]},
            {"session": "a", "call": "old__roots"},
            {"session": "b", "call": "old__roots"},
            {"session": "a", "call": "new__roots"},
            {"session": "b", "call": "new__roots"},
            {"session": "a", "roots": [{"uri": changed}]},
            {"session": "a", "call": "old__roots", "until": changed},
            {"session": "a", "call": "new__roots"},
        ]),
    )
    .await;
    println!("the TypeScript client saw {seen}");
    let texts: Vec<&str> = seen["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|text| text.as_str().unwrap())
        .collect();
    let only = |text: &str, uri: &str| {
        [&first, &second, &changed]
            .iter()
            .all(|other| text.contains(other.as_str()) == (*other == uri))
    };
    assert!(only(texts[0], &first), "{seen}");
    assert!(only(texts[1], &second), "{seen}");
    assert!(only(texts[2], &first), "{seen}");
    assert!(only(texts[3], &second), "{seen}");
    assert!(only(texts[4], &changed), "{seen}");
    assert!(only(texts[5], &changed), "{seen}");
    // Session b's roots were kept after the first question; a's were asked again after its change.
    assert_eq!(seen["asked"]["b"], 1, "{seen}");
    assert!(seen["asked"]["a"].as_u64().unwrap() >= 2, "{seen}");
}

#[tokio::test]
async fn over_http_server_filesystem_gets_its_configured_roots_outside_calls() {
    let temp = tempfile::tempdir().unwrap();
    let configured = dir_with(temp.path(), "configured", "c.txt");
    let client = dir_with(temp.path(), "client", "d.txt");
    let mut fs = filesystem_stdio();
    fs["roots"] = json!([{"uri": configured, "name": "configured"}]);
    let (_child, log, url) = spawn_http_proxy(&temp, json!({ "fs": fs }), &[]).await;
    log.wait_for("roots/list answered with the configured roots")
        .await;
    let configured_text = configured.display().to_string();
    let seen = ts_client(
        &url,
        json!([
            {"session": "a", "roots": [{"uri": uri_of(&client)}]},
            {"session": "a", "call": "fs__list_allowed_directories", "until": configured_text},
            {"session": "a", "call": "fs__list_directory", "arguments": {"path": configured}},
        ]),
    )
    .await;
    println!("the TypeScript client saw {seen}");
    let allowed = seen["texts"][0].as_str().unwrap();
    assert!(!allowed.contains(&client.display().to_string()), "{seen}");
    assert!(
        seen["texts"][1].as_str().unwrap().contains("c.txt"),
        "{seen}"
    );
    // server-filesystem asks only at its start and on list_changed: never during this client's calls.
    assert_eq!(seen["asked"]["a"], 0, "{seen}");
}
