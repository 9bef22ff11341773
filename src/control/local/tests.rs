use super::*;
use crate::control::{NewNotification, Severity};

fn text(value: &str) -> ClipboardValue {
    ClipboardValue {
        value: value.into(),
        content_type: "text/plain".into(),
        encoding: "utf-8".into(),
        visibility: "private".into(),
        created_by_tool: None,
        created_by_model: None,
        ttl_ms: 60_000,
    }
}

fn note(title: &str) -> NewNotification {
    NewNotification {
        kind: "CUSTOM".into(),
        title: title.into(),
        message: "m".into(),
        severity: Severity::Info,
        link: None,
        ttl_ms: 60_000,
        send_email: false,
    }
}

#[tokio::test]
async fn notifications_list_newest_first_and_complete_by_id() {
    let store = LocalStore::open(None).unwrap();
    let first = store.create_notification(note("first")).await.unwrap();
    let second = store.create_notification(note("second")).await.unwrap();
    let listed = store.list_notifications(false, None).await.unwrap();
    assert_eq!(listed, vec![second.clone(), first.clone()]);
    assert!(store.complete_notification(&first.id).await.unwrap());
    assert!(!store.complete_notification("nope").await.unwrap());
    let unread = store.list_notifications(true, None).await.unwrap();
    assert_eq!(unread.len(), 1);
    assert_eq!(unread[0].id, second.id);
    assert_eq!(
        store
            .list_notifications(false, Some(1))
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(store.delete_notification(&second.id).await.unwrap());
    assert!(!store.delete_notification(&second.id).await.unwrap());
}

#[tokio::test]
async fn clipboard_names_upsert_indexes_conflict_and_pop_is_lifo() {
    let store = LocalStore::open(None).unwrap();
    let ClipboardWrite::Saved(first) = store
        .clipboard_set(Some("k".into()), None, text("one"))
        .await
        .unwrap()
    else {
        panic!("a named set is saved");
    };
    store
        .clipboard_set(Some("k".into()), None, text("two"))
        .await
        .unwrap();
    let entry = store
        .clipboard_get(ClipboardKey::Name("k".into()), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(entry.value, "two");
    assert_eq!(
        (&entry.uuid, entry.created_at),
        (&first.uuid, first.created_at)
    );
    assert!(matches!(
        store.clipboard_set(None, Some(0), text("a")).await.unwrap(),
        ClipboardWrite::Saved(_)
    ));
    assert!(matches!(
        store.clipboard_set(None, Some(0), text("b")).await.unwrap(),
        ClipboardWrite::IndexTaken(0)
    ));
    let pushed = store.clipboard_push(text("c")).await.unwrap();
    assert_eq!(pushed.idx, Some(1));
    assert_eq!(store.clipboard_pop().await.unwrap().unwrap().value, "c");
    assert_eq!(store.clipboard_pop().await.unwrap().unwrap().value, "a");
    assert!(store.clipboard_pop().await.unwrap().is_none());
    let (entries, total) = store.clipboard_list(None, 50, 0).await.unwrap();
    assert_eq!((entries.len(), total), (1, 1));
    assert_eq!(store.clipboard_delete(None).await.unwrap(), 1);
}

#[tokio::test]
async fn expired_clipboard_entries_are_invisible() {
    let store = LocalStore::open(None).unwrap();
    let mut value = text("old");
    value.ttl_ms = -1;
    store
        .clipboard_set(Some("gone".into()), None, value)
        .await
        .unwrap();
    assert!(
        store
            .clipboard_get(ClipboardKey::Name("gone".into()), None)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn memory_search_ranks_by_full_text_relevance() {
    let store = LocalStore::open(None).unwrap();
    let session = store
        .memory_session_start("chat".into(), None)
        .await
        .unwrap();
    for (kind, content) in [
        ("insight", "JWT tokens belong in httpOnly cookies"),
        ("tool_call", "deployed the service to kubernetes with helm"),
        (
            "error_pattern",
            "kubernetes deployment failed: kubernetes image pull backoff",
        ),
    ] {
        let observation = NewObservation {
            kind: kind.into(),
            content: content.into(),
            outcome: None,
            metadata: None,
        };
        store
            .memory_observe(&session.uuid, observation)
            .await
            .unwrap();
    }
    let query = MemoryQuery {
        query: "kubernetes deployment".into(),
        ring_types: None,
        agent_uuid: None,
        top_k: 10,
        include_gut: false,
    };
    let hits = store.memory_search(query.clone()).await.unwrap();
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0].memory.ring_type, "shocks");
    assert_eq!(hits[0].relevance, Some(1.0));
    assert!(hits[1].relevance < Some(1.0));
    let shocks_only = MemoryQuery {
        ring_types: Some(vec!["practice".into()]),
        ..query
    };
    let hits = store.memory_search(shocks_only).await.unwrap();
    assert_eq!(hits.len(), 1);
    assert!(hits[0].memory.content.contains("helm"));

    let details = store
        .memory_details(vec![hits[0].memory.uuid.clone(), "missing".into()])
        .await
        .unwrap();
    assert_eq!(details.len(), 1);
    assert_eq!(details[0].access_count, 1);

    assert!(matches!(
        store
            .memory_session_end(&session.memory_session_id)
            .await
            .unwrap(),
        SessionEnd::Ended {
            observations: Some(3)
        }
    ));
    let late = NewObservation {
        kind: "insight".into(),
        content: "x".into(),
        outcome: None,
        metadata: None,
    };
    assert!(matches!(
        store.memory_observe(&session.uuid, late).await.unwrap(),
        ObserveOutcome::SessionEnded
    ));
}

#[tokio::test]
async fn settings_changes_bump_the_version_and_reach_another_connection() {
    let dir = tempfile::tempdir().unwrap();
    let one = LocalStore::open(Some(dir.path())).unwrap();
    let two = LocalStore::open(Some(dir.path())).unwrap();
    let before = two.settings_version().await.unwrap();
    one.set_tool_enabled("demo__echo", false).await.unwrap();
    one.create_workspace(Workspace {
        name: "work".into(),
        servers: ["demo".to_owned()].into(),
    })
    .await
    .unwrap();
    assert!(one.switch_workspace(Some("work")).await.unwrap());
    assert!(!one.switch_workspace(Some("nope")).await.unwrap());
    assert!(two.settings_version().await.unwrap() > before);
    let settings = two.settings().await.unwrap();
    assert!(settings.disabled_tools.contains("demo__echo"));
    assert_eq!(settings.workspace.unwrap().name, "work");
    assert!(one.delete_workspace("work").await.unwrap());
    assert_eq!(two.settings().await.unwrap().workspace, None);
}

#[tokio::test]
async fn server_uuids_are_stable_and_legacy_ids_are_imported() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("server-ids.json"),
        r#"{"old": "550e8400-e29b-41d4-a716-446655440000"}"#,
    )
    .unwrap();
    let store = LocalStore::open(Some(dir.path())).unwrap();
    assert_eq!(
        store.server_uuid("old").await.unwrap(),
        "550e8400-e29b-41d4-a716-446655440000"
    );
    let new = store.server_uuid("new").await.unwrap();
    drop(store);
    let again = LocalStore::open(Some(dir.path())).unwrap();
    assert_eq!(again.server_uuid("new").await.unwrap(), new);
}

#[test]
fn a_store_from_a_newer_version_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    drop(LocalStore::open(Some(dir.path())).unwrap());
    let connection = rusqlite::Connection::open(dir.path().join(FILE_NAME)).unwrap();
    connection.pragma_update(None, "user_version", 99).unwrap();
    drop(connection);
    let error = LocalStore::open(Some(dir.path()))
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("schema version 99"), "{error}");
    assert!(error.contains("newer pluggedin-mcp-proxy"), "{error}");
}

#[tokio::test]
async fn activity_figures_group_by_server_and_item() {
    let store = LocalStore::open(None).unwrap();
    let entry = |item: &str, duration_ms, success| Activity {
        at: 1000,
        action: crate::control::ActivityAction::ToolCall,
        server_name: "demo".into(),
        server_uuid: "u".into(),
        item: item.into(),
        duration_ms,
        success,
        error: None,
        tool_error: false,
    };
    store
        .record_activity(vec![
            entry("echo", 10, true),
            entry("echo", 30, false),
            entry("add", 5, true),
        ])
        .await
        .unwrap();
    let stats = store.activity_stats(0).await.unwrap();
    assert_eq!(stats.len(), 2);
    assert_eq!(
        (stats[1].item.as_str(), stats[1].calls, stats[1].errors),
        ("echo", 2, 1)
    );
    assert_eq!((stats[1].p50_ms, stats[1].p95_ms), (10, 30));
    assert!(store.activity_stats(2000).await.unwrap().is_empty());
    assert_eq!(store.prune_activity(2000).await.unwrap(), 3);
}

#[tokio::test]
async fn an_activity_report_cuts_its_range_into_buckets_and_stays_bounded() {
    let store = LocalStore::open(None).unwrap();
    let entry = |at, server: &str, item: &str, duration_ms, success| Activity {
        at,
        action: crate::control::ActivityAction::ToolCall,
        server_name: server.into(),
        server_uuid: "u".into(),
        item: item.into(),
        duration_ms,
        success,
        error: (!success).then(|| "=boom".to_owned()),
        tool_error: false,
    };
    let mut batch = vec![
        entry(1_000, "demo", "echo", 10, true),
        entry(1_500, "demo", "echo", 30, false),
        entry(3_500, "other", "add", 5, true),
        // Outside the range: neither counted nor listed.
        entry(4_000, "demo", "echo", 999, true),
    ];
    // More items than a report lists: the busiest come first.
    batch.extend((0..150).map(|i| entry(2_000, "many", &format!("tool_{i}"), 1, true)));
    store.record_activity(batch).await.unwrap();
    let query = |server: Option<&str>| ActivityQuery {
        since: 0,
        until: 4_000,
        buckets: 4,
        server: server.map(str::to_owned),
        item: None,
    };
    let report = store.activity_report(query(None)).await.unwrap();
    assert_eq!(report.bucket_ms, 1_000);
    let calls: Vec<u64> = report.buckets.iter().map(|(_, f)| f.calls).collect();
    assert_eq!(calls, [0, 2, 150, 1]);
    assert_eq!(report.buckets[1].1.errors, 1);
    assert_eq!(
        (report.buckets[1].1.p50_ms, report.buckets[1].1.p95_ms),
        (10, 30)
    );
    assert_eq!(report.items.len(), ActivityReport::MAX_ITEMS);
    assert_eq!(report.items[0].0, ("demo".to_owned(), "echo".to_owned()));
    assert_eq!(report.slowest.len(), ActivityReport::MAX_ENTRIES);
    assert_eq!(report.slowest[0].duration_ms, 30);
    assert_eq!(report.failing.len(), 1);
    assert_eq!(report.failing[0].error.as_deref(), Some("=boom"));
    // One server alone.
    let report = store.activity_report(query(Some("other"))).await.unwrap();
    assert_eq!(report.servers.len(), 1);
    assert_eq!(report.servers[0].1.calls, 1);
    // A report never has more buckets than its bound.
    let many = ActivityQuery {
        buckets: 100_000,
        ..query(None)
    };
    let report = store.activity_report(many).await.unwrap();
    assert_eq!(report.buckets.len(), ActivityReport::MAX_BUCKETS as usize);
    // The export: oldest first, within the range, up to the limit.
    let entries = store.activity_entries(0, 4_000, 2).await.unwrap();
    assert_eq!(
        entries.iter().map(|e| e.at).collect::<Vec<_>>(),
        [1_000, 1_500]
    );
}

#[tokio::test]
async fn rate_limit_refusals_sum_over_the_window_and_are_pruned_with_activity() {
    let store = LocalStore::open(None).unwrap();
    for (at, tool_calls, requests) in [(1000, 90, 0), (2000, 5, 7), (3000, 1, 1)] {
        store
            .record_rate_limited(RateLimited {
                at,
                tool_calls,
                requests,
            })
            .await
            .unwrap();
    }
    let since = store.rate_limited(2000).await.unwrap();
    assert_eq!((since.tool_calls, since.requests), (6, 8));
    assert_eq!(store.rate_limited(5000).await.unwrap().tool_calls, 0);
    store.prune_activity(2500).await.unwrap();
    let left = store.rate_limited(0).await.unwrap();
    assert_eq!((left.tool_calls, left.requests), (1, 1));
}

#[tokio::test]
async fn writes_outside_the_write_helper_are_refused_and_a_failed_write_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(Some(dir.path())).unwrap();
    let stray = |store: LocalStore| async move {
        store
            .read(|c| Ok(c.execute("DELETE FROM clipboard", [])?))
            .await
    };
    let error = stray(store.clone()).await.unwrap_err().to_string();
    assert!(error.contains("readonly database"), "{error}");

    let failed = store
        .write(|t| {
            t.execute("INSERT INTO meta (key, value) VALUES ('probe', '1')", [])?;
            Err::<(), _>(ControlError::Invalid("stopped halfway".into()))
        })
        .await;
    assert!(failed.is_err());
    let probes: i64 = store
        .read(|c| {
            Ok(
                c.query_row("SELECT count(*) FROM meta WHERE key = 'probe'", [], |row| {
                    row.get(0)
                })?,
            )
        })
        .await
        .unwrap();
    assert_eq!(probes, 0, "a failed write was rolled back");
    // After a write, the connection is read-only again.
    assert!(stray(store).await.is_err());
}
