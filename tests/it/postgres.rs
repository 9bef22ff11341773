//! The PostgreSQL store through the real binary: proxies given one `--database-url` share the
//! built-in tools' data and the settings, whatever their data dirs, a settings change reaches
//! every running proxy as it is made, and none of them writes the SQLite store or prints the
//! password.

use serde_json::{Value, json};

use crate::pg_cluster;
use crate::support::*;

/// The cluster's URL for `database`-less `url`, with a password the server does not ask for
/// (the test cluster trusts its socket), to see that it is never shown.
fn with_password(url: &str) -> String {
    url.replace("postgres:///", "postgres://postgres:pg-s3cret@/")
        .replace("&user=postgres", "")
}

#[tokio::test]
async fn two_proxies_on_one_database_share_documents_clipboard_and_settings() {
    let database = pg_cluster::database().await;
    let url = with_password(&database);
    let first = proxy().arg("--database-url").arg(&url).start().await;
    // Its own temp dir, so its own data dir: what it reads comes from the database, over TLS
    // on loopback this time.
    let tls = pg_cluster::cluster().tls_url(&pg_cluster::name_of(&database));
    let second = proxy().env("PLUGGEDIN_DATABASE_URL", &tls).start().await;

    let created = first
        .call_text(
            "pluggedin_create_document",
            json!({
                "title": "Airships",
                "content": "Zeppelins crossed the ocean before airliners did.",
                "metadata": {"model": {"name": "claude-3-opus", "provider": "anthropic"}}
            }),
        )
        .await;
    assert!(
        created.starts_with("Document created successfully!"),
        "{created}"
    );
    let id = line_after(&created, "ID:");
    let read = second
        .call_text(
            "pluggedin_get_document",
            json!({"documentId": id, "includeContent": true}),
        )
        .await;
    assert!(read.contains("Zeppelins crossed the ocean"), "{read}");
    let found = second
        .call_text(
            "pluggedin_search_documents",
            json!({"query": "zeppelin ocean"}),
        )
        .await;
    assert!(found.contains(&id), "{found}");
    assert!(found.contains("**Zeppelins**"), "{found}");

    first
        .call_text(
            "pluggedin_clipboard_set",
            json!({"name": "handoff", "value": "from the first proxy"}),
        )
        .await;
    let entry: Value = serde_json::from_str(
        &second
            .call_text("pluggedin_clipboard_get", json!({"name": "handoff"}))
            .await,
    )
    .unwrap();
    assert_eq!(entry["value"], "from the first proxy");

    // A management command on the database adds what a running proxy then finds.
    let file = first.dir.path().join("balloons.md");
    std::fs::write(&file, "Balloons rise on hot air.").unwrap();
    let added = first.cli_ok(&[
        "--database-url",
        &url,
        "docs",
        "add",
        file.to_str().unwrap(),
    ]);
    assert!(added.contains("added 1,"), "{added}");
    let found = second
        .call_text("pluggedin_search_documents", json!({"query": "balloons"}))
        .await;
    assert!(found.contains("(1 found)"), "{found}");

    for proxy in [&first, &second] {
        assert!(
            !proxy.data_dir().join("store.db").exists(),
            "no SQLite store"
        );
        let log = proxy.log.text();
        assert!(log.contains("PostgreSQL store open"), "{log}");
        assert!(!log.contains("pg-s3cret"), "{log}");
    }
}

#[tokio::test]
async fn a_tool_disabled_through_one_proxy_leaves_the_others_list_when_announced() {
    let database = pg_cluster::database().await;
    let mut first = proxy()
        .server("demo", demo())
        .arg("--database-url")
        .arg(&database)
        .start()
        .await;
    // The second re-checks the settings on its own only every hour: what it learns within the
    // test's wait, it learns from the announcement.
    let mut second = proxy()
        .server("demo", demo())
        .arg("--database-url")
        .arg(&database)
        .env("PLUGGEDIN_SETTINGS_RECHECK_SECS", "3600")
        .start()
        .await;
    second.wait_for_tool("demo__echo").await;
    second.log.wait_for("listening for settings changes").await;
    let said = first.cli_ok(&[
        "--database-url",
        &database,
        "tools",
        "disable",
        "demo__echo",
    ]);
    assert_eq!(said.trim(), "tool demo__echo disabled");
    let names = second
        .tools_changed_until(|names| !names.contains(&"demo__echo".to_owned()))
        .await;
    assert!(names.contains(&"demo__add".to_owned()), "{names:?}");
    // The proxy whose database the command wrote hears it the same way.
    first
        .tools_changed_until(|names| !names.contains(&"demo__echo".to_owned()))
        .await;
}

#[tokio::test]
async fn an_unreachable_database_stops_the_start_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "postgres://postgres:pg-s3cret@/nowhere?host={}",
        dir.path().display()
    );
    let output = std::process::Command::new(proxy_bin())
        .args(["--database-url", &url, "--data-dir"])
        .arg(dir.path().join("data"))
        .args(["docs", "list"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("store unavailable"), "{stderr}");
    assert!(stderr.contains("postgres://postgres@/nowhere"), "{stderr}");
    assert!(!stderr.contains("pg-s3cret"), "{stderr}");
}
